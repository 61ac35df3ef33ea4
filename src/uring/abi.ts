// The ABI shared with the native core: a mirror of native/abi.h (the one source of these numbers). test/abi.test.ts
// checks that every name and value here matches the header (MP_OP_CANCEL_FD there is Op.CancelFd here).

/** Request-row fields (MP_ROW_*): ROW_I32 int32 per row. */
export const enum Row { Op = 0, Fd = 1, Flags = 2, UdLo = 3, UdHi = 4, A = 5, B = 6, C = 7, I32 = 8 }

/** Request-row opcodes (MP_OP_*); the operands of each are described in native/abi.h. */
export const enum Op {
  Nop = 0,
  Accept = 1,
  Recv = 2,
  Send = 3,
  Close = 4,
  CancelFd = 5,
  Shutdown = 6,
  Connect = 7,
  FdInstall = 8,
  CancelUd = 9,
  Read = 10,
  Splice = 15,
  Poll = 16,
  Timeout = 17,
}

/** Row flags (MP_F_*); from bit PosShift up, the high bits of a file position (Read, Splice). */
export const enum RowFlag { Fixed = 1, Hardlink = 2, Link = 4, NoOff = 8, More = 16, Ref = 32, PosShift = 8 }

/** Event-row fields (MP_EV_*): EV_I32 int32 per completion. */
export const enum Ev { UdLo = 0, UdHi = 1, Res = 2, Flags = 3, I32 = 4 }

/** Header fields (MP_HDR_*). */
export const enum Hdr { Rows = 0, Recycle = 1, Err = 2, I32 = 8 }

/** Socket options a connection can set and read back (MP_SOCKOPT_*). */
export const enum SockOpt { Nodelay = 1, Keepalive = 2, Keepidle = 3, Linger0 = 4 }

/** Slots of the native counters (MP_ST_*): a Float64Array over the control region. */
export const enum Stat {
  Enters = 0, Sqes = 1, Cqes = 2, Batches = 3, OverflowFlush = 4, Wakeups = 5, EmptyWakeups = 6, JsCalls = 7,
  RecycleRefused = 8, RowsRefused = 9, SubmitFailed = 10, Flushes = 11, Inflight = 12, F64 = 16,
}

/**
 * user_data (MP_UD_*). Low word: a handle, or Orphan / Read | chunk / Native. High word: tag << TagShift | the handle's
 * generation (GenMask bits).
 */
export const enum Ud { TagShift = 24, GenMask = 0xffffff, Orphan = 0x7fffffff, Read = 0x40000000, Native = -1 }

/**
 * Tags (MP_TAG_*): which of a handle's requests completed. FdResult in a tag: a non-negative result is a new fd, closed
 * by whoever meets it when it belongs to no handle (stale, Orphan, or Native: an fd install the native side gave up on).
 */
export const enum Tag {
  FdResult = 0x80,
  Nop = 0,
  Accept = 1,
  Recv = 2,
  Send = 3,
  Close = 4,
  CancelFd = 5,
  Shutdown = 6,
  Connect = 7,
  FdInstall = 0x88,
  CancelUd = 9,
  Read = 10,
  AcceptOne = 11,
  AcceptOneFd = 0x8c,
  AcceptKeep = 13,
  AcceptFd = 0x8e,
  SpliceIn = 15,
  SplicePoll = 16,
  SpliceOut = 17,
  SpliceWait = 18,
}

/** Kernel numbers the TypeScript side needs (MP_KOP_*, MP_CQE_*, MP_POLLOUT, MP_SHUT_WR). */
/** Fixed bounds of the native core (MP_BOUND_*); src/limits.ts `bounds` re-exports them beside the others. */
export const enum Bound { DrainRounds = 16, ListenMembers = 256 }

export const enum Kernel {
  OpPollAdd = 6, OpSplice = 30, OpSendZc = 47, OpFixedFdInstall = 54,
  CqeFBuffer = 1, CqeFMore = 2, CqeFSockNonempty = 4, CqeBufferShift = 16,
  PollOut = 4, ShutWr = 1,
}
