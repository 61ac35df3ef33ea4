// megapipe's ABI: the contract between the native core (native/*.c) and the TypeScript side of the io_uring backend.
// It is the one source of every number both sides use; src/uring/abi.ts mirrors it, and test/abi.test.ts checks that
// the two agree (same names, same values: MP_OP_CANCEL_FD here is Op.CancelFd there).
//
// Shared memory (the control region, one per channel): a header, request rows (JavaScript writes, C reads), event rows
// (C writes, JavaScript reads), counters (C writes), the recycle list (JavaScript writes buffer ids) and an address
// area (sockaddrs for connect). The receive pool and the send arena are regions of their own.
#ifndef MEGAPIPE_ABI_H
#define MEGAPIPE_ABI_H

// ---- request rows: MP_ROW_I32 int32 each --------------------------------------------------------------------------
enum mp_row {
  MP_ROW_OP = 0,      // enum mp_op
  MP_ROW_FD = 1,      // a descriptor, or a direct-descriptor slot (MP_F_FIXED)
  MP_ROW_FLAGS = 2,   // MP_F_*; from bit MP_F_POS_SHIFT up, the high bits of a file position
  MP_ROW_UD_LO = 3,   // user_data, low word: the handle (or MP_UD_*)
  MP_ROW_UD_HI = 4,   // user_data, high word: tag << 24 | generation
  MP_ROW_A = 5,       // operands, per op (below)
  MP_ROW_B = 6,
  MP_ROW_C = 7,
  MP_ROW_I32 = 8,
};

enum mp_op {
  MP_OP_NOP = 0,
  MP_OP_ACCEPT = 1,       // fd = listener; a: 1 = multishot; c: 1 = into the direct-descriptor table (an lwsocket)
  MP_OP_RECV = 2,         // fd; provided buffers; a = per-completion cap (0: none); c: 1 = single-shot, else multishot;
                          //   b = a multishot's total in bytes, after which it ends (0: none; only where probe().recvCap)
  MP_OP_SEND = 3,         // fd; a = offset in the send arena, b = length (MP_F_REF: a = reference slot, c = offset in it)
  MP_OP_CLOSE = 4,        // fd (or slot, MP_F_FIXED)
  MP_OP_CANCEL_FD = 5,    // fd; cancels every request on it
  MP_OP_SHUTDOWN = 6,     // fd; c = how (SHUT_WR…)
  MP_OP_CONNECT = 7,      // fd; a = offset in the address area, b = address length
  MP_OP_FD_INSTALL = 8,   // fd = slot; the result is a new regular fd
  MP_OP_CANCEL_UD = 9,    // cancels the request whose user_data is (a, b)
  MP_OP_READ = 10,        // fd = a regular file; a = offset in the send arena, b = length; position = c | flags high bits
  MP_OP_SPLICE = 15,      // fd = out (a pipe, or a socket); a = in fd, b = length; in position as for READ, none with MP_F_NOOFF
  MP_OP_POLL = 16,        // fd; c = poll events (one shot)
  MP_OP_TIMEOUT = 17,     // a = milliseconds: completes (-ETIME) after that long
};

// row flags
#define MP_F_FIXED 1        // the fd is a direct-descriptor slot
#define MP_F_HARDLINK 2     // the next row runs after this one whatever its result
#define MP_F_LINK 4         // the next row runs after this one if it fully succeeds (else it is cancelled)
#define MP_F_NOOFF 8        // MP_OP_SPLICE: the input has no position (a pipe)
#define MP_F_MORE 16        // MP_OP_SEND, MP_OP_SPLICE: more follows at once (MSG_MORE / SPLICE_F_MORE)
#define MP_F_REF 32         // MP_OP_SEND: the bytes are in reference slot a (channelRefSet), from offset c
#define MP_F_POS_SHIFT 8    // flags >> MP_F_POS_SHIFT: a file position's bits 32 and up (files up to 2^56 bytes)

// ---- event rows: MP_EV_I32 int32 each (a completion: a copied CQE, or one of a request that never reached the kernel)
enum mp_ev { MP_EV_UD_LO = 0, MP_EV_UD_HI = 1, MP_EV_RES = 2, MP_EV_FLAGS = 3, MP_EV_I32 = 4 };

// ---- the header: MP_HDR_I32 int32 ----------------------------------------------------------------------------------
enum mp_hdr {
  MP_HDR_ROWS = 0,      // rows staged; after a flush, the rows kept (refused), moved to the front of the request area
  MP_HDR_RECYCLE = 1,   // buffer ids staged in the recycle list
  MP_HDR_ERR = 2,       // after a flush that kept rows or SQEs back: why (-errno); else 0
  MP_HDR_I32 = 8,
};

// ---- counters: MP_ST_F64 doubles, written by C, read by JavaScript (stats()) ---------------------------------------
enum mp_stat {
  MP_ST_ENTERS = 0,          // io_uring_enter calls
  MP_ST_SQES = 1,            // SQEs the kernel took
  MP_ST_CQES = 2,            // CQEs drained
  MP_ST_BATCHES = 3,         // event batches handed to JavaScript
  MP_ST_OVERFLOW_FLUSH = 4,  // enters made to flush an overflowed completion queue
  MP_ST_WAKEUPS = 5,         // eventfd wake-ups
  MP_ST_EMPTY_WAKEUPS = 6,   // wake-ups that found nothing
  MP_ST_JS_CALLS = 7,        // calls into JavaScript
  MP_ST_RECYCLE_REFUSED = 8, // recycled buffer ids refused: out of range, or in the ring already
  MP_ST_ROWS_REFUSED = 9,    // rows refused (completed with -EINVAL, or -ECANCELED behind one in a link chain)
  MP_ST_SUBMIT_FAILED = 10,  // flushes that kept rows or SQEs back (io_uring_enter refused them, or no room)
  MP_ST_FLUSHES = 11,        // flushes that entered the kernel with requests
  MP_ST_INFLIGHT = 12,       // requests in the kernel (taken, final completion not yet drained)
  MP_ST_F64 = 16,
};

// ---- user_data ------------------------------------------------------------------------------------------------------
// Low word: the handle a request belongs to, or one of MP_UD_*. High word: tag << MP_UD_TAG_SHIFT | generation (the
// handle's, MP_UD_GEN_MASK bits): a completion finds its handle without a lookup, and a stale one (the handle was
// reused) is recognized.
#define MP_UD_TAG_SHIFT 24
#define MP_UD_GEN_MASK 0xffffff
#define MP_UD_ORPHAN 0x7fffffff   // a request of no handle (the close of a connection refused at accept)
#define MP_UD_READ 0x40000000     // a file read into send chunk n: MP_UD_READ | n
#define MP_UD_NATIVE -1           // a request the native side made for itself (JavaScript skips its completion: see below)

// tags: which of a handle's requests completed. MP_TAG_FD_RESULT in a tag: a non-negative result is a new regular fd,
// owned by whoever takes the completion — closed by the native side if it is never delivered (a closing channel), and
// by JavaScript when it belongs to no handle (stale, MP_UD_ORPHAN, or MP_UD_NATIVE: the native side's fd install whose
// synchronous caller gave up waiting for it)
#define MP_TAG_FD_RESULT 0x80
enum mp_tag {
  MP_TAG_NOP = 0,
  MP_TAG_ACCEPT = 1,            // the keep-accepting request: multishot, into the table
  MP_TAG_RECV = 2,
  MP_TAG_SEND = 3,
  MP_TAG_CLOSE = 4,
  MP_TAG_CANCEL_FD = 5,
  MP_TAG_SHUTDOWN = 6,
  MP_TAG_CONNECT = 7,
  MP_TAG_FD_INSTALL = 0x88,     // 8 | MP_TAG_FD_RESULT
  MP_TAG_CANCEL_UD = 9,
  MP_TAG_READ = 10,
  MP_TAG_ACCEPT_ONE = 11,       // one accept into the table, its slot reserved
  MP_TAG_ACCEPT_ONE_FD = 0x8c,  // one accept, a regular fd (12 | MP_TAG_FD_RESULT)
  MP_TAG_ACCEPT_KEEP = 13,      // the keep-accepting request while the table is nearly full: one at a time, reserved
  MP_TAG_ACCEPT_FD = 0x8e,      // the keep-accepting request, regular fds (14 | MP_TAG_FD_RESULT)
  MP_TAG_SPLICE_IN = 15,        // a spliced sendFile's round: file -> pipe
  MP_TAG_SPLICE_POLL = 16,      //   the socket writable
  MP_TAG_SPLICE_OUT = 17,       //   pipe -> socket
  MP_TAG_SPLICE_WAIT = 18,      //   a timed wait where a poll cannot wait (the peer half-closed)
};

// ---- kernel numbers the TypeScript side needs ----------------------------------------------------------------------
#define MP_KOP_POLL_ADD 6             // IORING_OP_POLL_ADD (probed before splicing)
#define MP_KOP_SPLICE 30              // IORING_OP_SPLICE
#define MP_KOP_SEND_ZC 47             // IORING_OP_SEND_ZC (6.0: the witness of multishot receive)
#define MP_KOP_FIXED_FD_INSTALL 54    // IORING_OP_FIXED_FD_INSTALL (6.8: toFd)
#define MP_CQE_F_BUFFER 1             // IORING_CQE_F_BUFFER (the buffer id is in flags >> 16)
#define MP_CQE_F_MORE 2               // IORING_CQE_F_MORE
#define MP_CQE_F_SOCK_NONEMPTY 4      // IORING_CQE_F_SOCK_NONEMPTY
#define MP_CQE_BUFFER_SHIFT 16        // IORING_CQE_BUFFER_SHIFT
#define MP_POLLOUT 4                  // POLLOUT
#define MP_SHUT_WR 1                  // shutdown(2)'s SHUT_WR

// ---- socket options a connection can set (channelSetSockOpt / setSockOpt) and read back (…GetSockOpt) ------------
enum mp_sockopt {
  MP_SOCKOPT_NODELAY = 1,    // TCP_NODELAY: value 0 or 1 (megapipe's sockets start with 1, set on the listener)
  MP_SOCKOPT_KEEPALIVE = 2,  // SO_KEEPALIVE: value 0 or 1
  MP_SOCKOPT_KEEPIDLE = 3,   // TCP_KEEPIDLE: seconds, 1..32767
  MP_SOCKOPT_LINGER0 = 4,    // SO_LINGER {on, 0 s}: the close that follows resets the connection (RST); set only
};

// ---- fixed bounds: not configurable; src/limits.ts (`bounds`) states them for TypeScript and how they relate -------
#define MP_BOUND_DRAIN_ROUNDS 16     // event batches delivered per wake-up before the rest of Node's loop runs
#define MP_BOUND_LISTEN_MEMBERS 256  // listening sockets in one partitioned listener

#endif
