// The row and event layouts shared with native/megapipe.c. Change both together.

/** Request-row opcodes (row[0]) and the operation tag carried in user_data (hi >>> 24). */
export const enum Op {
  Nop = 0,
  Accept = 1,        // row: a = 1 multishot, c = 1 direct. As a user_data tag: multishot, direct descriptor
  /** c = 1: single-shot (the first of a connection), else multishot */
  Recv = 2,
  /** a = send-arena offset, b = length; RowFlag.Ref: a = reference slot (channelRefSet), c = offset in its bytes */
  Send = 3,
  Close = 4,
  CancelFd = 5,
  Shutdown = 6,
  Connect = 7,
  FdInstall = 8,
  CancelUd = 9,
  /** a = send-arena offset, b = length, c = file position (low 32 bits; the high bits ride in row flags >> 8) */
  Read = 10,
  /** fd = out (pipe or socket), a = in fd, b = length, c = in position as for Read (RowFlag.NoOff: a pipe, none) */
  Splice = 15,
  /** fd, c = poll events; one shot */
  Poll = 16,
  /** a = milliseconds: completes (-ETIME) after that long */
  Timeout = 17,
  // user_data tags only (the row opcode is Accept). 0x80 (UdFlag.FdResult): the result is a new regular fd
  AcceptFd = 0x80 | 14,     // multishot, regular fd
  AcceptOne = 11,           // single, direct
  AcceptOneFd = 0x80 | 12,  // single, regular fd
  FdInstallTag = 0x80 | 8,  // the tag of an FdInstall row: its result is a new regular fd
  SpliceIn = 15,     // a spliced sendFile: file -> pipe (row Splice)
  SplicePoll = 16,   //   the connection's socket writable (row Poll)
  SpliceOut = 17,    //   pipe -> socket (row Splice)
  SpliceWait = 18,   //   a timed wait before SpliceOut, where a poll cannot wait (row Timeout; see spliceNext)
  /** The kernel's IORING_OP_FIXED_FD_INSTALL opcode number (looked for in the probe's op list). */
  KernelFixedFdInstall = 54,
}

/**
 * Bits of the user_data tag (user_data bit 63 = bit 31 of the high word = 0x80 of the tag byte): FdResult, a
 * non-negative result is a new regular fd, which the native side closes if the completion is never delivered
 * (MP_UD_FD_RESULT in native/megapipe.c); JavaScript closes it when no handle takes it.
 */
export const enum UdFlag { FdResult = 0x80 }

/** Row flags; the bits from 8 up carry a file position's high bits (Read, Splice). More: MSG_MORE / SPLICE_F_MORE. */
export const enum RowFlag { Fixed = 1, HardLink = 2, Link = 4, NoOff = 8, More = 16, Ref = 32 }
export const enum CqeFlag { Buffer = 1, More = 2, SockNonempty = 4 }
export const ROW_I32 = 8;
export const EV_I32 = 4;

/** Slots of the native counters (Float64Array over the control region). */
export const enum Stat {
  Enters = 0, Sqes, Cqes, Batches, OverflowFlush, Wakeups, EmptyWakeups, JsCalls,
  RecycleRefused, RowsRefused, SubmitFailed, Flushes, Inflight,
}
