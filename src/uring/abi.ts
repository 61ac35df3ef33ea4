// The row and event layouts shared with native/megapipe.c. Change both together.

/** Request-row opcodes (row[0]) and the operation tag carried in user_data (hi >>> 24). */
export const enum Op {
  Nop = 0,
  Accept = 1,        // row: a = 1 multishot, c = 1 direct. As a user_data tag: multishot, direct descriptor
  Recv = 2,
  Send = 3,
  Close = 4,
  CancelFd = 5,
  Shutdown = 6,
  Connect = 7,
  FdInstall = 8,
  CancelUd = 9,
  /** a = send-arena offset, b = length, c = file position (low 32 bits; the high bits ride in row flags >> 8) */
  Read = 10,
  // user_data tags only (the row opcode is Accept)
  AcceptFd = 14,     // multishot, regular fd
  AcceptOne = 11,    // single, direct
  AcceptOneFd = 12,  // single, regular fd
  /** The kernel's IORING_OP_FIXED_FD_INSTALL opcode number (looked for in the probe's op list). */
  KernelFixedFdInstall = 54,
}

export const enum RowFlag { Fixed = 1, HardLink = 2 }
export const enum CqeFlag { Buffer = 1, More = 2, SockNonempty = 4 }
export const ROW_I32 = 8;
export const EV_I32 = 4;

/** Slots of the native counters (Float64Array over the control region). */
export const enum Stat { Enters = 0, Sqes, Cqes, Batches, OverflowFlush, Wakeups, EmptyWakeups, JsCalls }
