// megapipe native core: one io_uring per channel, living inside Node's event loop.
//
// Contract with the TypeScript side (src/uring/): this file owns the ring, memory ordering and the kernel;
// it holds no policy. JavaScript writes request rows into a shared control region and calls submit (or returns
// from the event callback); C turns rows into SQEs, enters the kernel once, copies completions out of the ring
// in bounded batches into event rows, advances the ring, and only then calls JavaScript once per batch.
// Every error comes back as -errno; JavaScript maps errno to stable codes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

// ---- constants newer than the 6.1 headers installed here (values from the current uapi header) ----------
#define MP_SOCKET_URING_OP_GETSOCKOPT 2   // enum io_uring_socket_op (Linux 6.7)
#ifndef IORING_OP_FIXED_FD_INSTALL
#define IORING_OP_FIXED_FD_INSTALL 54
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#ifndef IORING_FILE_INDEX_ALLOC
#define IORING_FILE_INDEX_ALLOC (~0U)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_ASYNC_CANCEL_FD_FIXED
#define IORING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#endif
#ifndef SO_INCOMING_CPU
#define SO_INCOMING_CPU 49
#endif
#ifndef SKF_AD_CPU
#define SKF_AD_CPU 36
#endif

// ---- request rows (written by JavaScript; see src/uring/ring-abi.ts, which must match) --------------------
enum {
  MP_OP_NOP = 0,
  MP_OP_ACCEPT = 1,        // fd=listener; a: 1 = multishot; c: 1 = direct descriptor (lwsocket)
  MP_OP_RECV = 2,          // fd; receive with provided buffers; a = per-completion cap (0 = none); c: 1 = single-shot, else multishot
  MP_OP_SEND = 3,          // fd; a = offset in send arena, b = length (MP_F_REF: a = reference slot, c = offset in it)
  MP_OP_CLOSE = 4,         // fd (or slot when direct)
  MP_OP_CANCEL_FD = 5,     // fd; cancel every request on it
  MP_OP_SHUTDOWN = 6,      // fd; c = how
  MP_OP_CONNECT = 7,       // fd; a = offset in address area, b = address length
  MP_OP_FD_INSTALL = 8,    // fd = direct slot; result is a new regular fd
  MP_OP_CANCEL_UD = 9,     // cancel the request whose user_data is (a, b)
  MP_OP_READ = 10,         // fd = a regular file; a = offset in send arena, b = length,
                           // file position = c | (row flags >> 8) << 32 (files up to 2^56 bytes)
  MP_OP_SPLICE = 15,       // fd = out (a pipe, or a socket: direct when MP_F_FIXED); a = in fd (never a slot), b = length;
                           // in position as for MP_OP_READ, or none (a pipe) with MP_F_NOOFF
  MP_OP_POLL = 16,         // fd; c = poll events (one shot)
  MP_OP_TIMEOUT = 17,      // a = milliseconds: completes (-ETIME) after that long
};
#define MP_ROW_I32 8
#define MP_F_FIXED 1u      // row flag: fd is a direct-descriptor slot
#define MP_F_HARDLINK 2u   // row flag: the next row runs after this one whatever its result
#define MP_F_LINK 4u       // row flag: the next row runs after this one if it fully succeeds (else it is cancelled)
#define MP_F_NOOFF 8u      // row flag (MP_OP_SPLICE): the input has no position (a pipe)
#define MP_F_MORE 16u      // row flag (MP_OP_SEND, MP_OP_SPLICE): more follows at once (MSG_MORE: full segments only)
#define MP_F_REF 32u       // row flag (MP_OP_SEND): a = a reference slot (channelRefSet), c = offset in its bytes
#define MP_EV_I32 4        // event row: user_data lo, user_data hi, res, flags (a copied CQE)
// header: [0] request rows staged (after a flush: rows kept, moved to the front), [1] buffers to recycle,
// [2] after a flush that kept rows: why (-errno), else 0
#define MP_HDR_I32 8
#define MP_STATS_F64 16

enum {
  ST_ENTERS = 0, ST_SQES, ST_CQES, ST_BATCHES, ST_OVERFLOW_FLUSH, ST_WAKEUPS, ST_EMPTY_WAKEUPS, ST_JS_CALLS,
  ST_RECYCLE_REFUSED,   // recycled buffer ids refused: out of range, or already in the ring
  ST_ROWS_REFUSED,      // request rows refused by prep_row (completed with -EINVAL, never submitted)
  ST_SUBMIT_FAILED,     // flushes that kept rows because io_uring_enter (or a full SQ) refused them
  ST_FLUSHES,           // flushes that entered the kernel with requests
  ST_INFLIGHT,          // requests in the kernel (a copy of ch->inflight, for JavaScript)
};
// user_data of requests the native side makes for itself (handle 0xffffffff: the JavaScript drain skips them)
#define UD_SYNC_CMD(seq) (0xffffffffULL | ((uint64_t)((seq) & 0xffffff) << 32))
#define UD_TEARDOWN_CANCEL (0xffffffffULL | (0xfffffeULL << 32))
#define TEARDOWN_MS 2000   // close() gives up waiting for the kernel when no request has completed for this long
// user_data bit 63 (bit 31 of its high word, above the op tag): a non-negative result is a new regular fd, owned by
// whoever receives the completion (set by JavaScript on accepts without direct descriptors and on fd installs)
#define MP_UD_FD_RESULT (1ULL << 63)

typedef struct {
  unsigned *head, *tail, *flags, *array, mask, entries;
  struct io_uring_sqe *sqes;
  void *ring_ptr; size_t ring_sz; void *sqes_ptr; size_t sqes_sz;
} sq_t;
typedef struct {
  unsigned *head, *tail, *flags, mask, entries;
  struct io_uring_cqe *cqes;
  void *ring_ptr; size_t ring_sz;
} cq_t;

typedef struct channel {
  int ring_fd, ring_index;   // ring_index >= 0 when the ring fd is registered (IORING_ENTER_REGISTERED_RING)
  unsigned setup_flags, features;
  sq_t sq; cq_t cq;
  struct __kernel_timespec *sq_ts;   // per SQ entry: the timespec of an MP_OP_TIMEOUT row
  int efd;
  int32_t sync_val;       // optval of channelIncomingCpu's getsockopt command
  uint32_t sync_seq;
  uv_poll_t poll;
  int poll_started, closed, refs;   // refs: the JS external + the uv handle; freed when both are gone
  napi_env env;
  napi_ref cb_ref, resource_ref;
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup, env_closing;
  // control region: header, request rows, event rows, stats, recycle list, address area
  uint8_t *ctl; size_t ctl_sz;
  int32_t *hdr, *req, *ev, *recycle; double *stats; uint8_t *addr;
  unsigned req_max, ev_max, recycle_max, addr_sz;
  // requests the kernel has taken whose final completion (no IORING_CQE_F_MORE) has not been drained yet
  unsigned inflight;
  // rows refused by prep_row: completed with their error by the next drain, ahead of the CQ (never submitted)
  uint64_t *rej_ud; int32_t *rej_res; unsigned rej_n, rej_max, rej_flush;
  // provided-buffer ring; in_ring[bid]: the buffer is in the ring (recycling it again would publish it twice)
  struct io_uring_buf_ring *br; size_t br_sz; unsigned br_entries, br_mask; uint16_t br_tail;
  uint8_t *rbuf; size_t rbuf_sz; unsigned rbuf_count, rbuf_size;
  uint8_t *in_ring;
  // the memory JavaScript sees (control region, receive pool, send arena), shared with their ArrayBuffers
  struct mem_owner *mem;
  // send arena
  uint8_t *sbuf; size_t sbuf_sz;
  // reference slots: memory of JavaScript buffers sent without a copy (channelRefSet). The JavaScript side keeps each
  // buffer alive, unchanged, while a send from its slot is in flight; rows are checked against the recorded length.
  const uint8_t **ref_ptr; uint32_t *ref_len; unsigned ref_max;
  unsigned files;
  int in_callback;
  int ring_up;        // the ring is set up and mapped (teardown has work to do)
} channel_t;

// The memory regions JavaScript sees (control region, receive pool, send arena) are used by three parties: C (the
// control region, until the channel is freed), the kernel (until the ring is torn down, which happens before the
// channel is freed) and JavaScript (while an ArrayBuffer over it is reachable). They are unmapped when the last of
// them lets go: the channel and each ArrayBuffer hold a reference. `pinned`: close() could not make sure the kernel had
// let go (a request still pending after TEARDOWN_MS); the memory then stays mapped for the life of the process rather
// than risk the kernel writing into memory reused for something else.
typedef struct mem_owner {
  int refs, pinned;
  struct { void *p; size_t sz; } r[3];
} mem_owner_t;
static void mem_unref(mem_owner_t *m) {
  if (!m || --m->refs > 0) return;
  if (!m->pinned) for (int i = 0; i < 3; i++) if (m->r[i].p) munmap(m->r[i].p, m->r[i].sz);
  free(m);
}

// ---- raw syscalls ----------------------------------------------------------------------------------------
static int sys_setup(unsigned entries, struct io_uring_params *p) {
  int r = (int)syscall(__NR_io_uring_setup, entries, p);
  return r < 0 ? -errno : r;
}
static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  int r = (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
  return r < 0 ? -errno : r;
}
// io_uring_enter waiting at most `ms` for `min_complete` completions (IORING_ENTER_EXT_ARG, 5.11).
static int sys_enter_timeout(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, unsigned ms) {
  struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long long)(ms % 1000) * 1000000 };
  struct io_uring_getevents_arg arg = { .sigmask = 0, .sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts };
  int r = (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
  return r < 0 ? -errno : r;
}
static int sys_register(int fd, unsigned op, const void *arg, unsigned nr) {
  int r = (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
  return r < 0 ? -errno : r;
}

static void *map_anon(size_t sz) {
  void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
static size_t page_round(size_t n) { size_t pg = 4096; return (n + pg - 1) & ~(pg - 1); }

// ---- ring setup and teardown -----------------------------------------------------------------------------
// Tries the best flag set first and steps down on EINVAL (older kernels). Returns the ring fd or -errno.
static int ring_setup(unsigned entries, unsigned cq_entries, struct io_uring_params *out) {
  static const unsigned wanted[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SUBMIT_ALL,
    0,
  };
  int r = -EINVAL;
  // MEGAPIPE_RING_SETUP=N starts the step-down at entry N: lets the tests run the paths older kernels take
  size_t first = 0;
  const char *force = getenv("MEGAPIPE_RING_SETUP");
  if (force && *force >= '0' && *force <= '4' && force[1] == 0) first = (size_t)(*force - '0');
  for (size_t i = first; i < sizeof wanted / sizeof wanted[0]; i++) {
    memset(out, 0, sizeof *out);
    out->flags = wanted[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    out->cq_entries = cq_entries;
    r = sys_setup(entries, out);
    if (r >= 0 || r != -EINVAL) return r;
  }
  return r;
}

static int ring_map(channel_t *ch, struct io_uring_params *p) {
  sq_t *sq = &ch->sq; cq_t *cq = &ch->cq;
  sq->ring_sz = p->sq_off.array + p->sq_entries * sizeof(unsigned);
  cq->ring_sz = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
  int single = (p->features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) { if (cq->ring_sz > sq->ring_sz) sq->ring_sz = cq->ring_sz; cq->ring_sz = sq->ring_sz; }
  sq->ring_ptr = mmap(NULL, sq->ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ch->ring_fd, IORING_OFF_SQ_RING);
  if (sq->ring_ptr == MAP_FAILED) return -errno;
  if (single) cq->ring_ptr = sq->ring_ptr;
  else {
    cq->ring_ptr = mmap(NULL, cq->ring_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ch->ring_fd, IORING_OFF_CQ_RING);
    if (cq->ring_ptr == MAP_FAILED) return -errno;
  }
  sq->sqes_sz = p->sq_entries * sizeof(struct io_uring_sqe);
  sq->sqes_ptr = mmap(NULL, sq->sqes_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ch->ring_fd, IORING_OFF_SQES);
  if (sq->sqes_ptr == MAP_FAILED) return -errno;
  uint8_t *s = sq->ring_ptr, *c = cq->ring_ptr;
  sq->head = (unsigned *)(s + p->sq_off.head); sq->tail = (unsigned *)(s + p->sq_off.tail);
  sq->flags = (unsigned *)(s + p->sq_off.flags); sq->array = (unsigned *)(s + p->sq_off.array);
  sq->mask = *(unsigned *)(s + p->sq_off.ring_mask); sq->entries = p->sq_entries; sq->sqes = sq->sqes_ptr;
  cq->head = (unsigned *)(c + p->cq_off.head); cq->tail = (unsigned *)(c + p->cq_off.tail);
  cq->flags = p->cq_off.flags ? (unsigned *)(c + p->cq_off.flags) : NULL;
  cq->mask = *(unsigned *)(c + p->cq_off.ring_mask); cq->entries = p->cq_entries;
  cq->cqes = (struct io_uring_cqe *)(c + p->cq_off.cqes);
  // identity SQ array, written once
  for (unsigned i = 0; i < sq->entries; i++) sq->array[i] = i;
  return 0;
}

static void ring_unmap(channel_t *ch) {
  if (ch->sq.sqes_ptr && ch->sq.sqes_ptr != MAP_FAILED) munmap(ch->sq.sqes_ptr, ch->sq.sqes_sz);
  if (ch->cq.ring_ptr && ch->cq.ring_ptr != MAP_FAILED && ch->cq.ring_ptr != ch->sq.ring_ptr) munmap(ch->cq.ring_ptr, ch->cq.ring_sz);
  if (ch->sq.ring_ptr && ch->sq.ring_ptr != MAP_FAILED) munmap(ch->sq.ring_ptr, ch->sq.ring_sz);
  ch->sq.sqes_ptr = ch->cq.ring_ptr = ch->sq.ring_ptr = NULL;
}

// Every io_uring_enter of a channel goes through here: the SQEs the kernel took are now in flight.
static int ch_enter(channel_t *ch, unsigned to_submit, unsigned min_complete, unsigned flags) {
  int fd = ch->ring_fd;
  if (ch->ring_index >= 0) { fd = ch->ring_index; flags |= IORING_ENTER_REGISTERED_RING; }
  ch->stats[ST_ENTERS] += 1;
  int r = sys_enter(fd, to_submit, min_complete, flags);
  if (r > 0) { ch->inflight += (unsigned)r; ch->stats[ST_SQES] += r; }
  return r;
}

static inline unsigned sq_queued(channel_t *ch) {
  return *ch->sq.tail - atomic_load_explicit((_Atomic unsigned *)ch->sq.head, memory_order_acquire);
}

// ---- submission: request rows -> SQEs ----------------------------------------------------------------------
static inline struct io_uring_sqe *sqe_get(channel_t *ch) {
  unsigned head = atomic_load_explicit((_Atomic unsigned *)ch->sq.head, memory_order_acquire);
  unsigned tail = *ch->sq.tail;
  if (tail - head >= ch->sq.entries) return NULL;
  struct io_uring_sqe *s = &ch->sq.sqes[tail & ch->sq.mask];
  memset(s, 0, sizeof *s);
  return s;
}
static inline void sqe_commit(channel_t *ch) {
  atomic_store_explicit((_Atomic unsigned *)ch->sq.tail, *ch->sq.tail + 1, memory_order_release);
}

// A file position in a row (MP_OP_READ, MP_OP_SPLICE): the low 32 bits in c, the rest in the flags from bit 8 up.
static inline uint64_t row_pos(uint32_t c, unsigned rf) { return (uint64_t)c | ((uint64_t)(rf >> 8) << 32); }

// Converts one row to an SQE. Returns 0, or -EINVAL for a row that names an unknown op or points outside its region
// (a bug in the TypeScript side): the SQE is then not used, and the row completes with -EINVAL (refuse_row).
static int prep_row(channel_t *ch, struct io_uring_sqe *s, const int32_t *row) {
  unsigned op = (unsigned)row[0], rf = (unsigned)row[2];
  int fd = row[1];
  uint32_t a = (uint32_t)row[5], b = (uint32_t)row[6], c = (uint32_t)row[7];
  s->user_data = (uint64_t)(uint32_t)row[3] | ((uint64_t)(uint32_t)row[4] << 32);
  s->fd = fd;
  if (rf & MP_F_FIXED) s->flags |= IOSQE_FIXED_FILE;
  if (rf & MP_F_HARDLINK) s->flags |= IOSQE_IO_HARDLINK;
  if (rf & MP_F_LINK) s->flags |= IOSQE_IO_LINK;
  switch (op) {
  case MP_OP_NOP: s->opcode = IORING_OP_NOP; return 0;
  case MP_OP_ACCEPT:
    s->opcode = IORING_OP_ACCEPT;
    if (a & 1) s->ioprio |= IORING_ACCEPT_MULTISHOT;
    // a direct descriptor has no fd-table entry, so O_CLOEXEC makes no sense for it (the kernel says EINVAL)
    if (c & 1) { s->file_index = IORING_FILE_INDEX_ALLOC; s->accept_flags = SOCK_NONBLOCK; }
    else s->accept_flags = SOCK_CLOEXEC | SOCK_NONBLOCK;
    return 0;
  case MP_OP_RECV:
    s->opcode = IORING_OP_RECV;
    if (!(c & 1)) s->ioprio |= IORING_RECV_MULTISHOT;
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = 0;
    s->len = a;
    return 0;
  case MP_OP_SEND:
    if (rf & MP_F_REF) {
      if (a >= ch->ref_max || (uint64_t)c + b > ch->ref_len[a]) break;
      s->addr = (uint64_t)(uintptr_t)(ch->ref_ptr[a] + c);
    } else {
      if ((uint64_t)a + b > ch->sbuf_sz) break;
      s->addr = (uint64_t)(uintptr_t)(ch->sbuf + a);
    }
    s->opcode = IORING_OP_SEND;
    s->len = b;
    s->msg_flags = MSG_NOSIGNAL | MSG_WAITALL | ((rf & MP_F_MORE) ? MSG_MORE : 0);
    return 0;
  case MP_OP_CLOSE:
    s->opcode = IORING_OP_CLOSE;
    if (rf & MP_F_FIXED) { s->flags &= ~IOSQE_FIXED_FILE; s->fd = 0; s->file_index = (unsigned)fd + 1; }
    return 0;
  case MP_OP_CANCEL_FD:
    s->opcode = IORING_OP_ASYNC_CANCEL;
    s->cancel_flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL | ((rf & MP_F_FIXED) ? IORING_ASYNC_CANCEL_FD_FIXED : 0);
    s->flags &= ~IOSQE_FIXED_FILE;
    return 0;
  case MP_OP_SHUTDOWN:
    s->opcode = IORING_OP_SHUTDOWN;
    s->len = c;
    return 0;
  case MP_OP_CONNECT:
    if ((uint64_t)a + b > ch->addr_sz) break;
    s->opcode = IORING_OP_CONNECT;
    s->addr = (uint64_t)(uintptr_t)(ch->addr + a);
    s->off = b;
    return 0;
  case MP_OP_FD_INSTALL:
    s->opcode = IORING_OP_FIXED_FD_INSTALL;
    s->flags |= IOSQE_FIXED_FILE;
    s->rw_flags = 0;  // install_fd_flags: O_CLOEXEC on the new fd
    return 0;
  case MP_OP_READ:
    if ((uint64_t)a + b > ch->sbuf_sz || (rf & MP_F_FIXED)) break;
    s->opcode = IORING_OP_READ;
    s->addr = (uint64_t)(uintptr_t)(ch->sbuf + a);
    s->len = b;
    s->off = row_pos(c, rf);
    return 0;
  case MP_OP_SPLICE:
    // always run by an io-wq worker: both ends must be nonblocking (a pipe made by pipeOpen, a nonblocking socket)
    // so that a worker never waits for a peer; the caller polls the socket before splicing into it
    s->opcode = IORING_OP_SPLICE;
    s->splice_fd_in = (int32_t)a;
    s->len = b;
    s->splice_off_in = (rf & MP_F_NOOFF) ? (uint64_t)-1 : row_pos(c, rf);
    s->off = (uint64_t)-1;
    s->splice_flags = (rf & MP_F_MORE) ? SPLICE_F_MORE : 0;
    return 0;
  case MP_OP_POLL:
    s->opcode = IORING_OP_POLL_ADD;
    s->poll32_events = c;
    return 0;
  case MP_OP_TIMEOUT: {
    // the kernel copies the timespec when it takes the SQE (in this flush's enter): one slot per SQ entry suffices
    struct __kernel_timespec *ts = &ch->sq_ts[s - ch->sq.sqes];
    ts->tv_sec = a / 1000; ts->tv_nsec = (long long)(a % 1000) * 1000000;
    s->opcode = IORING_OP_TIMEOUT;
    s->fd = -1;
    s->flags &= ~IOSQE_FIXED_FILE;
    s->addr = (uint64_t)(uintptr_t)ts;
    s->len = 1;
    s->off = 0;   // no completion count: a pure timer
    return 0;
  }
  case MP_OP_CANCEL_UD:
    s->opcode = IORING_OP_ASYNC_CANCEL;
    s->fd = -1;
    s->flags &= ~IOSQE_FIXED_FILE;
    s->addr = (uint64_t)a | ((uint64_t)b << 32);
    return 0;
  default: break;
  }
  return -EINVAL;
}

static inline uint64_t row_ud(const int32_t *row) { return (uint64_t)(uint32_t)row[3] | ((uint64_t)(uint32_t)row[4] << 32); }

// Records the completion of a row that never reaches the kernel (refused, or cancelled with a refused link head).
// False when the list is full (the row is then kept for the next flush, after a drain has emptied the list).
static int complete_unsubmitted(channel_t *ch, uint64_t ud, int32_t res) {
  if (ch->rej_n >= ch->rej_max) return 0;
  ch->rej_ud[ch->rej_n] = ud; ch->rej_res[ch->rej_n] = res; ch->rej_n++;
  return 1;
}

// Returns buffers named in the recycle list to the provided-buffer ring (one store-release of the tail). An id out of
// range, or of a buffer that is in the ring already, is refused (counted): publishing a buffer twice would let the
// kernel write two receives into it, one of them into bytes the application still reads.
static void recycle_buffers(channel_t *ch, unsigned n) {
  if (n > ch->recycle_max) n = ch->recycle_max;
  unsigned k = 0;
  for (unsigned i = 0; i < n; i++) {
    unsigned bid = (unsigned)ch->recycle[i];
    if (bid >= ch->rbuf_count || ch->in_ring[bid]) { ch->stats[ST_RECYCLE_REFUSED] += 1; continue; }
    ch->in_ring[bid] = 1;
    struct io_uring_buf *b = &ch->br->bufs[(uint16_t)(ch->br_tail + k) & ch->br_mask];
    b->addr = (uint64_t)(uintptr_t)(ch->rbuf + (size_t)bid * ch->rbuf_size);
    b->len = ch->rbuf_size;
    b->bid = (uint16_t)bid;
    k++;
  }
  ch->br_tail += (uint16_t)k;
  atomic_store_explicit((_Atomic uint16_t *)&ch->br->tail, ch->br_tail, memory_order_release);
}

// io_uring_enter's refusals that mean "not now" (request memory, completion-queue pressure): what it did not take
// stays in the SQ for the next enter. Any other (EBADF, EFAULT, EINVAL, ENXIO…) means it will never take these.
static inline int enter_transient(int r) { return r == -EAGAIN || r == -EBUSY || r == -ENOMEM || r == -EINTR; }

// Takes back every SQE the kernel has not consumed; each completes unsubmitted with `err` (the kernel refused them).
static void withdraw_sq(channel_t *ch, int err) {
  unsigned head = atomic_load_explicit((_Atomic unsigned *)ch->sq.head, memory_order_acquire), tail = *ch->sq.tail;
  for (unsigned i = head; i != tail; i++) complete_unsubmitted(ch, ch->sq.sqes[i & ch->sq.mask].user_data, err);
  atomic_store_explicit((_Atomic unsigned *)ch->sq.tail, head, memory_order_release);
}

// Enters the kernel with every SQE between the kernel's head and our tail (including any a failed enter left), and with
// GETEVENTS when asked or when the kernel has deferred work or overflowed completions. Returns 0 or -errno; after a
// lasting refusal (not enter_transient) nothing is left in the SQ: those requests complete with the error.
static int submit_queued(channel_t *ch, int getevents) {
  unsigned flags = 0;
  int need_events = getevents && (ch->setup_flags & IORING_SETUP_DEFER_TASKRUN);
  unsigned sqf = atomic_load_explicit((_Atomic unsigned *)ch->sq.flags, memory_order_relaxed);
  if (sqf & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) { need_events = 1; ch->stats[ST_OVERFLOW_FLUSH] += (sqf & IORING_SQ_CQ_OVERFLOW) ? 1 : 0; }
  if (need_events) flags |= IORING_ENTER_GETEVENTS;
  unsigned queued = sq_queued(ch);
  if (queued == 0 && !need_events) return 0;
  if (queued) ch->stats[ST_FLUSHES] += 1;
  for (int intr = 0;;) {
    int r = ch_enter(ch, queued, 0, flags);
    if (r == -EINTR && ++intr < 3) continue;   // a signal: try again, a few times (then it is a transient refusal)
    if (r < 0) { if (!enter_transient(r)) withdraw_sq(ch, r); return r; }
    if ((unsigned)r >= queued) return 0;
    if (r == 0) return -EAGAIN;   // the kernel took none (out of request memory): the rest stays in the SQ
    queued -= (unsigned)r;        // SUBMIT_ALL makes this rare: retry the rest
  }
}

// Pushes what JavaScript staged (recycled buffers, request rows) and enters the kernel once. Every staged row either
// reaches the kernel, completes unsubmitted (refused: -EINVAL), or is kept: a row that found no room (the SQ still
// full after an enter, or the list of unsubmitted completions full) stays staged, moved with the rows after it to
// the front of the request area; hdr[0] says how many, hdr[2] why. JavaScript retries them (its policy). SQEs an
// enter refused stay in the SQ and go with the next enter. Returns 0 or the -errno that kept rows or SQEs back.
static int flush_staged(channel_t *ch, int getevents) {
  unsigned nrec = (unsigned)ch->hdr[1];
  if (nrec) { recycle_buffers(ch, nrec); ch->hdr[1] = 0; }
  unsigned nreq = (unsigned)ch->hdr[0];
  if (nreq > ch->req_max) nreq = ch->req_max;
  int err = 0;
  unsigned i = 0;
  // completions of unsubmitted requests wait for a drain: without room for this flush's worth, keep everything staged
  if (ch->rej_max - ch->rej_n < ch->rej_flush) { i = 0; err = -EBUSY; goto keep; }
  struct io_uring_sqe *linked = NULL;   // the last SQE of this flush if it links to the next row
  int cancel_next = 0;                  // the row before was refused and linked to this one: cancel it too
  for (; i < nreq; i++) {
    const int32_t *row = ch->req + (size_t)i * MP_ROW_I32;
    unsigned rf = (unsigned)row[2];
    if (cancel_next) {
      // a link chain whose earlier member never reached the kernel: the kernel would have cancelled this one
      if (!complete_unsubmitted(ch, row_ud(row), -ECANCELED)) { err = -EBUSY; break; }
      ch->stats[ST_ROWS_REFUSED] += 1;
      cancel_next = (rf & MP_F_LINK) != 0;
      continue;
    }
    // a link chain goes to the kernel in one enter (the kernel ends a chain at the end of a submission: split, its
    // members would run unordered — a close before the send it follows): without room for the whole chain in the SQ
    // (SQEs a refused enter left behind), submit what is queued first
    if (!linked && (rf & (MP_F_LINK | MP_F_HARDLINK))) {
      unsigned len = 1;
      while (i + len < nreq && ((unsigned)ch->req[(size_t)(i + len - 1) * MP_ROW_I32 + 2] & (MP_F_LINK | MP_F_HARDLINK))) len++;
      if (ch->sq.entries - sq_queued(ch) < len) {
        int r = submit_queued(ch, 0);
        if (r < 0) { err = r; break; }
        if (ch->sq.entries - sq_queued(ch) < len) { err = -EBUSY; break; }
      }
    }
    struct io_uring_sqe *s = sqe_get(ch);
    if (!s) {   // SQ full: submit what is queued, then go on (a chain never reaches here: it was given room above)
      int r = submit_queued(ch, 0);
      if (r < 0) { err = r; break; }
      if (!(s = sqe_get(ch))) { err = -EBUSY; break; }
    }
    if (prep_row(ch, s, row) < 0) {
      if (!complete_unsubmitted(ch, row_ud(row), -EINVAL)) { err = -EBUSY; break; }
      ch->stats[ST_ROWS_REFUSED] += 1;
      // the previous SQE must not link to whatever comes next; rows linked behind this one are cancelled
      if (linked) linked->flags &= (uint8_t)~(IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
      linked = NULL;
      cancel_next = (rf & MP_F_LINK) != 0;
      continue;
    }
    sqe_commit(ch);
    linked = (rf & (MP_F_LINK | MP_F_HARDLINK)) ? s : NULL;
  }
keep:;
  // rows not taken: to the front of the area, for JavaScript to take back
  unsigned kept = nreq - i;
  if (kept && i) memmove(ch->req, ch->req + (size_t)i * MP_ROW_I32, (size_t)kept * MP_ROW_I32 * 4);
  ch->hdr[0] = (int32_t)kept;
  int r = submit_queued(ch, getevents);
  if (!err) err = r;
  else if (r < 0 && enter_transient(err) && !enter_transient(r)) err = r;   // a lasting refusal says more
  if (err) ch->stats[ST_SUBMIT_FAILED] += 1;
  ch->hdr[2] = err;
  return err;
}

static inline void ev_row(int32_t *e, uint64_t ud, int32_t res, uint32_t flags) {
  e[0] = (int32_t)(uint32_t)ud; e[1] = (int32_t)(uint32_t)(ud >> 32); e[2] = res; e[3] = (int32_t)flags;
}

// Accounts for one completion taken off the CQ: a final one ends its request; one with a buffer took it off the ring.
static inline void cqe_seen(channel_t *ch, const struct io_uring_cqe *c) {
  if (!(c->flags & IORING_CQE_F_MORE)) ch->inflight--;
  if (c->flags & IORING_CQE_F_BUFFER) { unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT; if (bid < ch->rbuf_count) ch->in_ring[bid] = 0; }
}

// Copies up to ev_max completions into event rows — first those of rows that never reached the kernel, then the CQ's —
// then advances the CQ head (store-release).
static unsigned drain_cq(channel_t *ch) {
  unsigned n = 0;
  if (ch->rej_n) {
    unsigned m = ch->rej_n < ch->ev_max ? ch->rej_n : ch->ev_max;
    for (; n < m; n++) ev_row(ch->ev + (size_t)n * MP_EV_I32, ch->rej_ud[n], ch->rej_res[n], 0);
    ch->rej_n -= m;
    if (ch->rej_n) { memmove(ch->rej_ud, ch->rej_ud + m, ch->rej_n * sizeof *ch->rej_ud); memmove(ch->rej_res, ch->rej_res + m, ch->rej_n * sizeof *ch->rej_res); }
  }
  unsigned head = *ch->cq.head;
  unsigned tail = atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire);
  unsigned k = tail - head;
  if (k > ch->ev_max - n) k = ch->ev_max - n;
  for (unsigned i = 0; i < k; i++) {
    const struct io_uring_cqe *c = &ch->cq.cqes[(head + i) & ch->cq.mask];
    cqe_seen(ch, c);
    ev_row(ch->ev + (size_t)(n + i) * MP_EV_I32, c->user_data, c->res, c->flags);
  }
  atomic_store_explicit((_Atomic unsigned *)ch->cq.head, head + k, memory_order_release);
  ch->stats[ST_CQES] += k;
  ch->stats[ST_INFLIGHT] = ch->inflight;
  return n + k;
}

static int cq_nonempty(channel_t *ch) {
  return ch->rej_n != 0 || atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire) != *ch->cq.head;
}

// Makes the next loop iteration run a turn: completions are waiting that no kernel signal will announce.
static void wake_self(channel_t *ch) { uint64_t one = 1; ssize_t w = write(ch->efd, &one, sizeof one); (void)w; }

// After an enter made outside a turn (JavaScript's own flush, a side request): completions it posted inline must
// not wait for an unrelated wake-up. Inside a turn the drain loop picks them up.
static void wake_if_posted(channel_t *ch) { if (!ch->in_callback && !ch->closed && cq_nonempty(ch)) wake_self(ch); }

// ---- the event loop turn -----------------------------------------------------------------------------------
#define LOOP_MAX 16   // batches per wake-up before yielding to the rest of the event loop

static void call_js(channel_t *ch, unsigned n) {
  napi_env env = ch->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, resource, argv[1], result;
  napi_get_reference_value(env, ch->cb_ref, &cb);
  napi_get_reference_value(env, ch->resource_ref, &resource);
  napi_create_uint32(env, n, &argv[0]);
  ch->stats[ST_JS_CALLS] += 1;
  ch->in_callback = 1;
  napi_status st = napi_make_callback(env, ch->async_ctx, resource, cb, 1, argv, &result);
  ch->in_callback = 0;
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

// While a turn runs, the ring's eventfd is muted (IORING_CQ_EVENTFD_DISABLED): the turn's own GETEVENTS enters
// post completions and would otherwise signal it, waking the next loop iteration for nothing (about a third of
// all wake-ups under short connections). Unmuting is followed by a full fence and a look at the CQ and at
// IORING_SQ_TASKRUN, so work that arrived while muted is never left without a wake-up.
static inline void evfd_mute(channel_t *ch, int on) {
  if (!ch->cq.flags) return;
  unsigned f = atomic_load_explicit((_Atomic unsigned *)ch->cq.flags, memory_order_relaxed);
  f = on ? (f | IORING_CQ_EVENTFD_DISABLED) : (f & ~IORING_CQ_EVENTFD_DISABLED);
  atomic_store_explicit((_Atomic unsigned *)ch->cq.flags, f, memory_order_release);
  if (!on) atomic_thread_fence(memory_order_seq_cst);
}

static int work_pending(channel_t *ch) {
  if (cq_nonempty(ch)) return 1;
  unsigned sqf = atomic_load_explicit((_Atomic unsigned *)ch->sq.flags, memory_order_acquire);
  return (sqf & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
}

static void run_turn(channel_t *ch) {
  int delivered = 0;
  evfd_mute(ch, 1);
  for (int i = 0; i < LOOP_MAX && !ch->closed; i++) {
    flush_staged(ch, 1);   // rows it could not submit stay staged (hdr[0]); JavaScript sees them when it stages next
    unsigned n = drain_cq(ch);
    if (n == 0) break;
    delivered = 1;
    ch->stats[ST_BATCHES] += 1;
    call_js(ch, n);
  }
  if (ch->closed) return;
  // the last batch's rows (handed off by JavaScript), and SQEs a refused enter left in the SQ: if the kernel refuses
  // them now, JavaScript is told at once (a call with no events) so that its retry policy runs — nothing is ever left
  // staged with nothing to submit it
  if ((ch->hdr[0] || ch->hdr[1] || sq_queued(ch)) && flush_staged(ch, 0) < 0 && !ch->closed) call_js(ch, 0);
  if (ch->closed) return;
  if (!delivered) ch->stats[ST_EMPTY_WAKEUPS] += 1;
  evfd_mute(ch, 0);
  // completions left over (LOOP_MAX reached, posted inline by the last submit, or deferred work that arrived
  // while the eventfd was muted): wake ourselves again
  if (work_pending(ch)) wake_self(ch);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status; (void)events;
  channel_t *ch = h->data;
  if (ch->closed) return;
  uint64_t v; ssize_t rd = read(ch->efd, &v, sizeof v); (void)rd;
  ch->stats[ST_WAKEUPS] += 1;
  run_turn(ch);
}

// ---- teardown ---------------------------------------------------------------------------------------------
static void ch_release(channel_t *ch) {
  if (--ch->refs == 0) {
    mem_unref(ch->mem);
    free(ch->ref_ptr); free(ch->ref_len); free(ch->rej_ud); free(ch->rej_res); free(ch->in_ring); free(ch->sq_ts);
    free(ch);
  }
}

// Reaps completions without delivering them (the channel is closing): only the in-flight count matters now.
// A completion that will never be delivered may carry a new regular fd (an accept without a direct descriptor, an fd
// install: MP_UD_FD_RESULT in its user_data): nobody else will close it.
static void reap_discard(channel_t *ch) {
  unsigned head = *ch->cq.head;
  unsigned tail = atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire);
  for (unsigned i = head; i != tail; i++) {
    const struct io_uring_cqe *c = &ch->cq.cqes[i & ch->cq.mask];
    cqe_seen(ch, c);
    if ((c->user_data & MP_UD_FD_RESULT) && c->res >= 0) close(c->res);
  }
  atomic_store_explicit((_Atomic unsigned *)ch->cq.head, tail, memory_order_release);
}

static uint64_t now_ms(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

// Cancels every request of the ring and waits until the kernel has completed them all, so that no request can read or
// write the channel's memory afterwards. However many are in flight, it goes on while they keep completing; it gives
// up when none has completed for TEARDOWN_MS. Returns 0, or -ETIMEDOUT when some are still pending then.
static int ring_quiesce(channel_t *ch) {
  // SQEs committed but never submitted are dropped: rewind our tail to the kernel's head
  atomic_store_explicit((_Atomic unsigned *)ch->sq.tail, atomic_load_explicit((_Atomic unsigned *)ch->sq.head, memory_order_acquire), memory_order_release);
  if (ch->hdr) ch->hdr[0] = 0;
  int fd = ch->ring_fd;
  unsigned flags = IORING_ENTER_GETEVENTS;
  if (ch->ring_index >= 0) { fd = ch->ring_index; flags |= IORING_ENTER_REGISTERED_RING; }
  reap_discard(ch);
  uint64_t progress_at = now_ms();
  while (ch->inflight > 0 && now_ms() - progress_at < TEARDOWN_MS) {
    unsigned before = ch->inflight;
    // cancel whatever is pending now (again each round: a linked request starts only when the one before it ends)
    struct io_uring_sqe *s = sqe_get(ch);
    unsigned n = 0;
    if (s) {
      s->opcode = IORING_OP_ASYNC_CANCEL;
      s->fd = -1;
      s->cancel_flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
      s->user_data = UD_TEARDOWN_CANCEL;
      sqe_commit(ch);
      n = 1;
    }
    int r = sys_enter_timeout(fd, n, 1, flags, 50);
    if (r > 0) ch->inflight += (unsigned)r;
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) break;   // the ring itself is unusable
    reap_discard(ch);
    if (ch->inflight < before + (unsigned)(r > 0 ? r : 0)) progress_at = now_ms();
  }
  if (ch->stats) ch->stats[ST_INFLIGHT] = ch->inflight;
  return ch->inflight == 0 ? 0 : -ETIMEDOUT;
}

// Releases the ring and everything registered with it. Every direct descriptor (lwsocket) is closed here, so their
// peers read EOF (or a reset) now, and listener sockets are no longer held by an armed accept. The ring fd is
// unregistered from this thread's registered-ring table (16 slots per thread) and closed. Returns what ring_quiesce
// returned: on -ETIMEDOUT the channel's memory stays mapped for good (mem->pinned).
static int ring_teardown(channel_t *ch) {
  int r = 0;
  if (ch->ring_up) {
    r = ring_quiesce(ch);
    if (r == 0) {
      if (ch->files) sys_register(ch->ring_fd, IORING_UNREGISTER_FILES, NULL, 0);
      if (ch->br) { struct io_uring_buf_reg reg = { .bgid = 0 }; sys_register(ch->ring_fd, IORING_UNREGISTER_PBUF_RING, &reg, 1); }
    }
    ring_unmap(ch);
    ch->ring_up = 0;
  }
  if (ch->ring_index >= 0) {
    struct io_uring_rsrc_update up = { .offset = (unsigned)ch->ring_index };
    sys_register(ch->ring_fd, IORING_UNREGISTER_RING_FDS, &up, 1);
    ch->ring_index = -1;
  }
  if (ch->ring_fd >= 0) { close(ch->ring_fd); ch->ring_fd = -1; }   // the kernel's teardown of what is left (if anything)
  if (r == 0) { if (ch->br) munmap(ch->br, ch->br_sz); }
  else if (ch->mem) ch->mem->pinned = 1;
  ch->br = NULL;
  return r;
}

static void on_poll_closed(uv_handle_t *h) {
  channel_t *ch = h->data;
  if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; }
  // an environment teardown waits for this (on_env_cleanup): it is complete now
  if (ch->env_closing) { napi_async_cleanup_hook_handle hk = ch->env_closing; ch->env_closing = NULL; napi_remove_async_cleanup_hook(hk); }
  ch_release(ch);
}

// Stops the loop integration (the uv_poll, then the eventfd) and drops the reference the uv handle holds.
static void loop_detach(channel_t *ch) {
  if (ch->poll_started) { uv_poll_stop(&ch->poll); uv_close((uv_handle_t *)&ch->poll, on_poll_closed); }
  else { if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; } ch_release(ch); }
}

// Closes the channel: the ring is torn down (every request cancelled and completed, every lwsocket closed), the loop
// integration stopped, JavaScript's callback released. The memory regions stay mapped until their ArrayBuffers are
// collected (JavaScript may still hold views); the kernel no longer touches them. Returns 0 or -ETIMEDOUT (see
// ring_teardown).
static int ch_close(channel_t *ch) {
  if (ch->closed) return 0;
  ch->closed = 1;
  napi_env env = ch->env;
  if (ch->cleanup) { napi_remove_async_cleanup_hook(ch->cleanup); ch->cleanup = NULL; }
  int r = ring_teardown(ch);
  if (ch->cb_ref) { napi_delete_reference(env, ch->cb_ref); ch->cb_ref = NULL; }
  if (ch->resource_ref) { napi_delete_reference(env, ch->resource_ref); ch->resource_ref = NULL; }
  if (ch->async_ctx) { napi_async_destroy(env, ch->async_ctx); ch->async_ctx = NULL; }
  loop_detach(ch);
  return r;
}

// The environment (a worker thread, or the main thread at exit) is going away with the channel still open: the same
// teardown as close(), without JavaScript; the hook is removed once the uv handle has closed (on_poll_closed).
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  channel_t *ch = arg;
  ch->cleanup = NULL;
  if (ch->closed) { napi_remove_async_cleanup_hook(handle); return; }
  ch->closed = 1;
  ring_teardown(ch);
  if (ch->poll_started) ch->env_closing = handle; else napi_remove_async_cleanup_hook(handle);
  loop_detach(ch);
}

static void finalize_region(napi_env env, void *data, void *hint) {
  (void)env; (void)data;
  mem_unref(hint);
}
static void finalize_channel(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  ch_release((channel_t *)data);
}

// ---- N-API helpers -----------------------------------------------------------------------------------------
#define NAPI_OK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "MP_ERR_NAPI", #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, const char *what, int neg) {
  napi_value msg, code, err, errnum;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(-neg));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "MP_ERR_SYSCALL", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  napi_create_int32(env, neg, &errnum);
  napi_set_named_property(env, err, "errno", errnum);
  napi_throw(env, err);
  return NULL;
}


static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x; napi_create_double(env, v, &x); napi_set_named_property(env, obj, name, x);
}
static void set_bool(napi_env env, napi_value obj, const char *name, int v) {
  napi_value x; napi_get_boolean(env, v != 0, &x); napi_set_named_property(env, obj, name, x);
}

// An ArrayBuffer over channel memory `p` (which `owner` unmaps when the channel and every such ArrayBuffer are gone).
static napi_value wrap_region(napi_env env, mem_owner_t *owner, void *p, size_t sz) {
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, sz, finalize_region, owner, &ab) != napi_ok) return NULL;
  owner->refs++;
  return ab;
}

static channel_t *get_channel(napi_env env, napi_value v) {
  channel_t *ch = NULL;
  if (napi_get_value_external(env, v, (void **)&ch) != napi_ok || !ch) {
    napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "not a channel");
    return NULL;
  }
  return ch;
}

// ---- probe(): what this kernel offers, without keeping anything ----------------------------------------------
static napi_value Probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out; napi_create_object(env, &out);
  struct utsname u; uname(&u);
  napi_value rel; napi_create_string_utf8(env, u.release, NAPI_AUTO_LENGTH, &rel);
  napi_set_named_property(env, out, "kernel", rel);
  struct io_uring_params p;
  int fd = ring_setup(8, 16, &p);
  if (fd < 0) { set_num(env, out, "errno", fd); set_bool(env, out, "ok", 0); return out; }
  set_bool(env, out, "ok", 1);
  set_num(env, out, "errno", 0);
  set_num(env, out, "setupFlags", p.flags);
  set_num(env, out, "features", p.features);
  set_bool(env, out, "singleIssuer", p.flags & IORING_SETUP_SINGLE_ISSUER);
  set_bool(env, out, "deferTaskrun", p.flags & IORING_SETUP_DEFER_TASKRUN);
  set_bool(env, out, "coopTaskrun", p.flags & IORING_SETUP_COOP_TASKRUN);
  set_bool(env, out, "bundles", p.features & IORING_FEAT_RECVSEND_BUNDLE);
  set_bool(env, out, "nodrop", p.features & IORING_FEAT_NODROP);
  size_t psz = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *pr = calloc(1, psz);
  int last_op = -1;
  napi_value ops; napi_create_array(env, &ops);
  if (pr && sys_register(fd, IORING_REGISTER_PROBE, pr, 256) >= 0) {
    last_op = pr->last_op;
    uint32_t k = 0;
    for (unsigned i = 0; i < pr->ops_len && i < 256; i++)
      if (pr->ops[i].flags & IO_URING_OP_SUPPORTED) { napi_value v; napi_create_uint32(env, pr->ops[i].op, &v); napi_set_element(env, ops, k++, v); }
  }
  free(pr);
  napi_set_named_property(env, out, "ops", ops);
  set_num(env, out, "lastOp", last_op);
  // a provided-buffer ring (5.19) is required by the channel; test it here
  struct io_uring_buf_ring *br = map_anon(4096);
  int pbuf = -EOPNOTSUPP;
  if (br) {
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = 8, .bgid = 0 };
    pbuf = sys_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1);
    if (pbuf >= 0) { struct io_uring_buf_reg ur = { .bgid = 0 }; sys_register(fd, IORING_UNREGISTER_PBUF_RING, &ur, 1); }
  }
  set_bool(env, out, "bufRing", pbuf >= 0);
  // a sparse fixed-file table (5.19) is required for lwsockets
  struct io_uring_rsrc_register rr = { .nr = 4, .flags = IORING_RSRC_REGISTER_SPARSE };
  int sparse = sys_register(fd, IORING_REGISTER_FILES2, &rr, sizeof rr);
  set_bool(env, out, "sparseFiles", sparse >= 0);
  close(fd);
  if (br) munmap(br, 4096);
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
  set_num(env, out, "nofileSoft", (double)rl.rlim_cur);
  set_num(env, out, "nofileHard", (double)rl.rlim_max);
  return out;
}

// ---- channelCreate(options, callback, resource) -> {channel, ctl, recv, send, layout} -------------------------
// Every option is range-checked before any arithmetic on it (TypeScript's limits.ts checks them first and states how
// they relate; these checks keep the addon safe on its own). A RangeError (MP_ERR_OUT_OF_RANGE) names the option.
typedef struct { const char *name; uint32_t def, lo, hi; } opt_spec_t;
enum { O_SQ, O_CQ, O_FILES, O_RCOUNT, O_RSIZE, O_SSIZE, O_REQ, O_EV, O_ADDR, O_REF, O_COUNT };
static const opt_spec_t opt_specs[O_COUNT] = {
  [O_SQ] = { "sqEntries", 1024, 2, 32768 },        [O_CQ] = { "cqEntries", 8192, 4, 1u << 20 },
  [O_FILES] = { "files", 16384, 0, 1u << 20 },     [O_RCOUNT] = { "recvBuffers", 2048, 1, 32768 },
  [O_RSIZE] = { "recvBufferSize", 16384, 64, 1u << 24 }, [O_SSIZE] = { "sendArenaBytes", 32u << 20, 64, 0x7fffffffu },
  [O_REQ] = { "requestRows", 1024, 1, 65535 },     [O_EV] = { "eventRows", 1024, 1, 65535 },
  [O_ADDR] = { "addressBytes", 32 * 1024, 0, 1u << 24 }, [O_REF] = { "refSlots", 0, 0, 1u << 24 },
};

// Reads option `i` of `o` into out[i]; false (a RangeError thrown) when it is present but not an integer in range.
static int get_opt(napi_env env, napi_value o, int i, uint32_t *out) {
  const opt_spec_t *sp = &opt_specs[i];
  napi_value v; bool has = false;
  out[i] = sp->def;
  if (napi_has_named_property(env, o, sp->name, &has) != napi_ok || !has) return 1;
  napi_get_named_property(env, o, sp->name, &v);
  double d = -1;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int64_t)d || d < sp->lo || d > sp->hi) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s must be an integer in %u..%u", sp->name, sp->lo, sp->hi);
    napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  out[i] = (uint32_t)d;
  return 1;
}

static napi_value ChannelCreate(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "channelCreate(options, callback, resource)"); return NULL; }
  uint32_t o[O_COUNT];
  for (int i = 0; i < O_COUNT; i++) if (!get_opt(env, argv[0], i, o)) return NULL;
  unsigned rcount = o[O_RCOUNT], rsize = o[O_RSIZE], req_max = o[O_REQ], ev_max = o[O_EV], addr_sz = o[O_ADDR], ref_max = o[O_REF];

  channel_t *ch = calloc(1, sizeof *ch);
  if (!ch) return throw_errno(env, "calloc", -ENOMEM);
  ch->ring_fd = -1; ch->ring_index = -1; ch->efd = -1; ch->env = env; ch->refs = 2;
  ch->req_max = req_max; ch->ev_max = ev_max; ch->recycle_max = rcount; ch->addr_sz = addr_sz; ch->files = o[O_FILES];
  const char *step = "allocate";
  int r = -ENOMEM;
  ch->mem = calloc(1, sizeof *ch->mem);
  ch->in_ring = calloc(rcount, 1);
  if (!ch->mem || !ch->in_ring) goto fail;
  ch->mem->refs = 1;   // the channel's own: each region is recorded in it as soon as it is mapped (unmapped with it)

  step = "io_uring_setup";
  struct io_uring_params p;
  if ((r = ring_setup(o[O_SQ], o[O_CQ], &p)) < 0) goto fail;
  ch->ring_fd = r; ch->setup_flags = p.flags; ch->features = p.features;
  step = "mmap ring";
  if ((r = ring_map(ch, &p)) < 0) goto fail;
  ch->ring_up = 1;
  // completions of requests that never reach the kernel: room for two flushes' worth (a flush's rows and a withdrawn
  // SQ), and a flush only starts with one flush's worth free (flush_staged), so a withdrawal always fits
  step = "allocate";
  r = -ENOMEM;
  ch->rej_flush = req_max + ch->sq.entries;
  ch->rej_max = 2 * ch->rej_flush;
  ch->rej_ud = calloc(ch->rej_max, sizeof *ch->rej_ud);
  ch->rej_res = calloc(ch->rej_max, sizeof *ch->rej_res);
  ch->sq_ts = calloc(ch->sq.entries, sizeof *ch->sq_ts);
  if (!ch->rej_ud || !ch->rej_res || !ch->sq_ts) goto fail;

  step = "register ring fd";   // optional: without it each enter looks the ring fd up in the fd table
  struct io_uring_rsrc_update up = { .offset = -1U, .data = (uint64_t)ch->ring_fd };
  if (sys_register(ch->ring_fd, IORING_REGISTER_RING_FDS, &up, 1) == 1) ch->ring_index = (int)up.offset;

  step = "register sparse file table";
  if (ch->files) {
    struct io_uring_rsrc_register rr = { .nr = ch->files, .flags = IORING_RSRC_REGISTER_SPARSE };
    if ((r = sys_register(ch->ring_fd, IORING_REGISTER_FILES2, &rr, sizeof rr)) < 0) goto fail;
  }

  step = "provided buffer ring";
  ch->br_entries = 1; while (ch->br_entries < rcount) ch->br_entries <<= 1;   // rcount <= 32768: ends
  ch->br_mask = ch->br_entries - 1;
  ch->br_sz = page_round((size_t)ch->br_entries * sizeof(struct io_uring_buf));
  r = -ENOMEM;
  if (!(ch->br = map_anon(ch->br_sz))) goto fail;
  ch->rbuf_count = rcount; ch->rbuf_size = rsize;
  ch->rbuf_sz = page_round((size_t)rcount * rsize);
  if (!(ch->rbuf = map_anon(ch->rbuf_sz))) goto fail;
  ch->mem->r[0].p = ch->rbuf; ch->mem->r[0].sz = ch->rbuf_sz;
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)ch->br, .ring_entries = ch->br_entries, .bgid = 0 };
  if ((r = sys_register(ch->ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1)) < 0) goto fail;

  step = "send arena";
  r = -ENOMEM;
  ch->sbuf_sz = page_round(o[O_SSIZE]);
  if (!(ch->sbuf = map_anon(ch->sbuf_sz))) goto fail;
  ch->mem->r[1].p = ch->sbuf; ch->mem->r[1].sz = ch->sbuf_sz;

  step = "reference slots";
  if (ref_max) {
    ch->ref_ptr = calloc(ref_max, sizeof *ch->ref_ptr);
    ch->ref_len = calloc(ref_max, sizeof *ch->ref_len);
    if (!ch->ref_ptr || !ch->ref_len) goto fail;
    ch->ref_max = ref_max;
  }

  step = "control region";
  size_t off_hdr = 0;
  size_t off_req = off_hdr + MP_HDR_I32 * 4;
  size_t off_ev = off_req + (size_t)req_max * MP_ROW_I32 * 4;
  size_t off_stats = off_ev + (size_t)ev_max * MP_EV_I32 * 4;
  size_t off_rec = off_stats + MP_STATS_F64 * 8;
  size_t off_addr = off_rec + (size_t)rcount * 4;
  ch->ctl_sz = page_round(off_addr + addr_sz);
  if (!(ch->ctl = map_anon(ch->ctl_sz))) goto fail;
  ch->mem->r[2].p = ch->ctl; ch->mem->r[2].sz = ch->ctl_sz;
  ch->hdr = (int32_t *)(ch->ctl + off_hdr); ch->req = (int32_t *)(ch->ctl + off_req);
  ch->ev = (int32_t *)(ch->ctl + off_ev); ch->stats = (double *)(ch->ctl + off_stats);
  ch->recycle = (int32_t *)(ch->ctl + off_rec); ch->addr = ch->ctl + off_addr;

  // every receive buffer starts in the ring
  for (unsigned i = 0; i < rcount; i++) ch->recycle[i] = (int32_t)i;
  recycle_buffers(ch, rcount);

  step = "eventfd";
  if ((ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) { r = -errno; goto fail; }
  step = "register eventfd";
  if ((r = sys_register(ch->ring_fd, IORING_REGISTER_EVENTFD, &ch->efd, 1)) < 0) goto fail;

  step = "uv_poll";
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) { r = -EINVAL; goto fail; }
  if ((r = uv_poll_init(loop, &ch->poll, ch->efd)) < 0) goto fail;
  ch->poll.data = ch;
  uv_poll_start(&ch->poll, UV_READABLE, on_poll);
  uv_unref((uv_handle_t *)&ch->poll);   // JavaScript refs it while the channel has open handles
  ch->poll_started = 1;

  // From here the channel is whole: failures below close it (ch_close) instead of unwinding by hand.
  napi_create_reference(env, argv[1], 1, &ch->cb_ref);
  napi_create_reference(env, argv[2], 1, &ch->resource_ref);
  napi_value name; napi_create_string_utf8(env, "megapipe.channel", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, argv[2], name, &ch->async_ctx);
  napi_add_async_cleanup_hook(env, on_env_cleanup, ch, &ch->cleanup);

  napi_value out, ext, v_ctl, v_recv, v_send;
  napi_create_object(env, &out);
  if (napi_create_external(env, ch, finalize_channel, NULL, &ext) != napi_ok) {
    ch->refs--;   // no external holds it
    ch_close(ch);
    napi_throw_error(env, "MP_ERR_NAPI", "napi_create_external failed");
    return NULL;
  }
  napi_set_named_property(env, out, "channel", ext);
  v_ctl = wrap_region(env, ch->mem, ch->ctl, ch->ctl_sz);
  v_recv = wrap_region(env, ch->mem, ch->rbuf, ch->rbuf_sz);
  v_send = wrap_region(env, ch->mem, ch->sbuf, ch->sbuf_sz);
  if (!v_ctl || !v_recv || !v_send) {
    ch_close(ch);
    napi_throw_error(env, "MP_ERR_NAPI", "napi_create_external_arraybuffer failed");
    return NULL;
  }
  napi_set_named_property(env, out, "ctl", v_ctl);
  napi_set_named_property(env, out, "recv", v_recv);
  napi_set_named_property(env, out, "send", v_send);
  napi_value layout; napi_create_object(env, &layout);
  set_num(env, layout, "hdr", off_hdr); set_num(env, layout, "req", off_req); set_num(env, layout, "ev", off_ev);
  set_num(env, layout, "stats", off_stats); set_num(env, layout, "recycle", off_rec); set_num(env, layout, "addr", off_addr);
  set_num(env, layout, "requestRows", req_max); set_num(env, layout, "eventRows", ev_max);
  set_num(env, layout, "recvBuffers", rcount); set_num(env, layout, "recvBufferSize", rsize);
  set_num(env, layout, "sendArenaBytes", (double)ch->sbuf_sz); set_num(env, layout, "addressBytes", addr_sz);
  set_num(env, layout, "sqEntries", ch->sq.entries); set_num(env, layout, "cqEntries", ch->cq.entries);
  set_num(env, layout, "files", ch->files); set_num(env, layout, "refSlots", ch->ref_max);
  set_num(env, layout, "setupFlags", ch->setup_flags); set_num(env, layout, "features", ch->features);
  set_bool(env, layout, "deferTaskrun", ch->setup_flags & IORING_SETUP_DEFER_TASKRUN);
  set_bool(env, layout, "singleIssuer", ch->setup_flags & IORING_SETUP_SINGLE_ISSUER);
  set_bool(env, layout, "registeredRing", ch->ring_index >= 0);
  napi_set_named_property(env, out, "layout", layout);
  return out;

fail:;
  // Nothing was submitted yet, so the ring holds no request: the same teardown as close() releases what was set up.
  int err = r;
  if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; }
  ring_teardown(ch);
  ch->refs = 1;
  ch_release(ch);   // and with it the memory mapped so far (mem's last reference)
  return throw_errno(env, step, err);
}

// submit(channel): pushes staged rows and recycled buffers; one io_uring_enter. Returns 0, or the -errno that kept rows
// staged (hdr[0] of them, at the front of the request area) or SQEs in the SQ; -EBADF once the channel is closed.
// Called by JavaScript outside the event callback (threshold reached, explicit flush, microtask flush).
static napi_value ChannelSubmit(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  napi_value out;
  if (ch->closed) { napi_create_int32(env, -EBADF, &out); return out; }
  int r = flush_staged(ch, 0);   // rows it could not submit are back in hdr[0] (hdr[2]: why)
  // completions posted inline by this submit must not wait for an unrelated wake-up
  wake_if_posted(ch);
  napi_create_int32(env, r, &out);
  return out;
}

// channelIncomingCpu(channel, slot) -> SO_INCOMING_CPU of the lwsocket in direct-descriptor `slot`, or -errno
// (-EOPNOTSUPP before Linux 6.7, which added socket getsockopt as an io_uring command). A direct descriptor has no
// fd to call getsockopt on, so this submits one IORING_OP_URING_CMD (SOCKET_URING_OP_GETSOCKOPT) by itself. The
// command never blocks, so it completes inline and its CQE is in the CQ when io_uring_enter returns; it is read
// here and left in place with handle -1 in its user data, which the JavaScript drain skips.
static napi_value ChannelIncomingCpu(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  int32_t slot = -1; napi_get_value_int32(env, argv[1], &slot);
  int r;
  struct io_uring_sqe *sq;
  if (ch->closed) r = -EBADF;
  else if (slot < 0 || (unsigned)slot >= ch->files) r = -EINVAL;
  else if (!(sq = sqe_get(ch))) r = -EBUSY;
  else {
    uint64_t ud = UD_SYNC_CMD(++ch->sync_seq);
    ch->sync_val = -1;
    sq->opcode = IORING_OP_URING_CMD;
    sq->fd = slot;
    sq->flags = IOSQE_FIXED_FILE;
    sq->off = MP_SOCKET_URING_OP_GETSOCKOPT;                               // cmd_op
    sq->addr = (uint64_t)SOL_SOCKET | ((uint64_t)SO_INCOMING_CPU << 32);   // level, optname
    sq->file_index = sizeof ch->sync_val;                                  // optlen
    sq->addr3 = (uint64_t)(uintptr_t)&ch->sync_val;                        // optval
    sq->user_data = ud;
    sqe_commit(ch);
    r = submit_queued(ch, 0);   // with any SQE an earlier failed enter left in the SQ
    if (r >= 0) {
      r = -EAGAIN;
      unsigned head = *ch->cq.head, tail = atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire);
      for (unsigned i = head; i != tail; i++) {
        const struct io_uring_cqe *c = &ch->cq.cqes[i & ch->cq.mask];
        if (c->user_data == ud) { r = c->res < 0 ? c->res : ch->sync_val; break; }
      }
      // the CQE (and any other the enter posted) is drained by the next turn
      wake_if_posted(ch);
    }
  }
  napi_value out; napi_create_int32(env, r, &out);
  return out;
}

static napi_value ChannelRef(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  bool on = false; napi_get_value_bool(env, argv[1], &on);
  if (!ch->closed && ch->poll_started) { if (on) uv_ref((uv_handle_t *)&ch->poll); else uv_unref((uv_handle_t *)&ch->poll); }
  return NULL;
}

// channelRefSet(channel, slot, bytes: Uint8Array) -> 0 or -EINVAL: records where `bytes` is in memory for sends
// from reference slot `slot` (row flag MP_F_REF). The caller keeps `bytes` alive and unchanged while such a send is
// in flight; a Uint8Array's memory does not move while it is alive.
static napi_value ChannelRefSet(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  uint32_t slot = UINT32_MAX; napi_get_value_uint32(env, argv[1], &slot);
  napi_typedarray_type t; size_t len = 0; void *data = NULL;
  int r = 0;
  if (argc < 3 || slot >= ch->ref_max || napi_get_typedarray_info(env, argv[2], &t, &len, &data, NULL, NULL) != napi_ok ||
      t != napi_uint8_array || len > UINT32_MAX) {
    r = -EINVAL;
  } else {
    ch->ref_ptr[slot] = data; ch->ref_len[slot] = (uint32_t)len;
  }
  napi_value out; napi_create_int32(env, r, &out);
  return out;
}

// channelClose(channel) -> 0, or -ETIMEDOUT when the kernel still had requests after TEARDOWN_MS (the channel's memory
// then stays mapped for good, and JavaScript must keep alive the buffers that no-copy sends may still read).
static napi_value ChannelClose(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  napi_value out; napi_create_int32(env, ch_close(ch), &out);
  return out;
}

// ---- sockets (listeners and client sockets; not on the hot path) ----------------------------------------------
static int parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) { a4->sin_family = AF_INET; a4->sin_port = htons(port); *len = sizeof *a4; return AF_INET; }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) { a6->sin6_family = AF_INET6; a6->sin6_port = htons(port); *len = sizeof *a6; return AF_INET6; }
  return -EINVAL;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss; socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

// Attaches a classic-BPF program to a reuseport group: for the CPU that received the SYN, return the index
// (join order) of the member that owns that CPU; a CPU nobody owns returns an out-of-range index, which makes
// the kernel fall back to its hash (an even spread).
static int attach_cpu_bpf(int fd, const int32_t *cpu_to_member, unsigned ncpu) {
  if (ncpu > 1024) return -EINVAL;
  struct sock_filter *code = calloc(ncpu * 2 + 3, sizeof *code);
  if (!code) return -ENOMEM;
  unsigned k = 0;
  code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
  for (unsigned c = 0; c < ncpu; c++) {
    if (cpu_to_member[c] < 0) continue;
    code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c, 0, 1);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)cpu_to_member[c]);
  }
  code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  struct sock_fprog prog = { .len = (unsigned short)k, .filter = code };
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0 ? -errno : 0;
  free(code);
  return r;
}

// listenGroup(host, port, count, backlog, reusePort, cpuToMember: Int32Array | null, deferAcceptSecs) -> {fds: number[], port}
// Opens `count` listeners on one address, all joined to one reuseport group in index order (the cBPF result
// is an index in join order, so the group is built in one go and closed as a whole).
static napi_value ListenGroup(napi_env env, napi_callback_info info) {
  size_t argc = 7; napi_value argv[7];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[128]; size_t hl;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  uint32_t port = 0, count = 1, backlog = 511; bool reuse = true;
  napi_get_value_uint32(env, argv[1], &port);
  napi_get_value_uint32(env, argv[2], &count);
  napi_get_value_uint32(env, argv[3], &backlog);
  napi_get_value_bool(env, argv[4], &reuse);
  uint32_t defer = 0; napi_get_value_uint32(env, argv[6], &defer);   // absent: 0
  int32_t *map = NULL; size_t mapn = 0;
  napi_valuetype t; napi_typeof(env, argv[5], &t);
  if (t == napi_object) {
    napi_typedarray_type tt; void *data; napi_value ab; size_t off;
    if (napi_get_typedarray_info(env, argv[5], &tt, &mapn, &data, &ab, &off) == napi_ok && tt == napi_int32_array) map = data;
  }
  if (count < 1 || count > 256) { napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", "count must be in 1..256"); return NULL; }
  struct sockaddr_storage ss; socklen_t sl;
  int fam = parse_addr(host, port, &ss, &sl);
  if (fam < 0) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  int fds[256]; int n = 0, r = 0, bport = (int)port;
  const char *step = "socket";
  for (unsigned i = 0; i < count; i++) {
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { r = -errno; goto fail; }
    fds[n++] = fd;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse || count > 1) { step = "SO_REUSEPORT"; if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) { r = -errno; goto fail; } }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // inherited by accepted sockets
    if (defer) { step = "TCP_DEFER_ACCEPT"; if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer) < 0) { r = -errno; goto fail; } }
    if (fam == AF_INET6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bport);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bport);
    step = "bind";
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) { r = -errno; goto fail; }
    if (i == 0) bport = bound_port(fd);  // port 0: every member binds the port the first one got
    step = "listen";
    if (listen(fd, (int)backlog) < 0) { r = -errno; goto fail; }
  }
  if (map && mapn) { step = "SO_ATTACH_REUSEPORT_CBPF"; if ((r = attach_cpu_bpf(fds[0], map, (unsigned)mapn)) < 0) goto fail; }
  napi_value out, arr; napi_create_object(env, &out); napi_create_array(env, &arr);
  for (int i = 0; i < n; i++) { napi_value v; napi_create_int32(env, fds[i], &v); napi_set_element(env, arr, (uint32_t)i, v); }
  napi_set_named_property(env, out, "fds", arr);
  set_num(env, out, "port", bport);
  return out;
fail:
  for (int i = 0; i < n; i++) close(fds[i]);
  return throw_errno(env, step, r);
}

// socketFor(host) -> fd: a nonblocking TCP socket with TCP_NODELAY, for `connect` (the connect itself goes through the ring).
// writeSockaddr(view, host, port) -> length: encodes an address into the channel's address area.
static napi_value ClientSocket(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[128]; size_t hl;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  char src[128] = ""; napi_valuetype t; napi_typeof(env, argv[1], &t);
  if (argc > 1 && t == napi_string) napi_get_value_string_utf8(env, argv[1], src, sizeof src, &hl);
  struct sockaddr_storage ss; socklen_t sl;
  int fam = parse_addr(host, 0, &ss, &sl);
  if (fam < 0) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", -errno);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src[0]) {
    struct sockaddr_storage bs; socklen_t bl;
    if (parse_addr(src, 0, &bs, &bl) != fam) { close(fd); napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "localAddress must be an address literal of the same family"); return NULL; }
#ifdef IP_BIND_ADDRESS_NO_PORT
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    if (bind(fd, (struct sockaddr *)&bs, bl) < 0) { int e = -errno; close(fd); return throw_errno(env, "bind", e); }
  }
  napi_value out; napi_create_int32(env, fd, &out);
  return out;
}

static napi_value EncodeSockaddr(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  uint32_t off = 0, port = 0; char host[128]; size_t hl;
  napi_get_value_uint32(env, argv[1], &off);
  if (napi_get_value_string_utf8(env, argv[2], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  napi_get_value_uint32(env, argv[3], &port);
  struct sockaddr_storage ss; socklen_t sl;
  if (parse_addr(host, port, &ss, &sl) < 0) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  if ((uint64_t)off + sl > ch->addr_sz) { napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", "address slot out of range"); return NULL; }
  memcpy(ch->addr + off, &ss, sl);
  napi_value out; napi_create_uint32(env, sl, &out);
  return out;
}

// The small calls below take one integer (an fd or a CPU) and return an integer (a result or -errno).
static napi_value int_call(napi_env env, napi_callback_info info, int (*fn)(int32_t)) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t v = -1; napi_get_value_int32(env, argv[0], &v);
  napi_value out; napi_create_int32(env, fn(v), &out);
  return out;
}

static int close_fd(int32_t fd) { return fd >= 0 && close(fd) < 0 ? -errno : 0; }
// dupFd(fd) -> a new descriptor (close-on-exec) for the same open file, or -errno.
static int dup_fd(int32_t fd) { int r = fcntl(fd, F_DUPFD_CLOEXEC, 3); return r < 0 ? -errno : r; }
static napi_value DupFd(napi_env env, napi_callback_info info) { return int_call(env, info, dup_fd); }
static napi_value CloseFd(napi_env env, napi_callback_info info) { return int_call(env, info, close_fd); }

// incomingCpu(fd) -> the CPU that processed the socket's packets (SO_INCOMING_CPU), or -errno.
static int incoming_cpu(int32_t fd) {
  int cpu = -1; socklen_t l = sizeof cpu;
  return getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &l) < 0 ? -errno : cpu;
}
static napi_value IncomingCpu(napi_env env, napi_callback_info info) { return int_call(env, info, incoming_cpu); }

// acceptQueueLength(fd) -> connections waiting in a listening socket's accept queue (TCP_INFO's tcpi_unacked holds
// sk_ack_backlog for a socket in LISTEN state), or -errno. Used by the load balancer to see a backed-up partition.
static int accept_queue_length(int32_t fd) {
  struct tcp_info ti; socklen_t l = sizeof ti;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 ? -errno : (ti.tcpi_state == 10 /* TCP_LISTEN */ ? (int)ti.tcpi_unacked : -EINVAL);
}
static napi_value AcceptQueueLength(napi_env env, napi_callback_info info) { return int_call(env, info, accept_queue_length); }

// acceptNow(fd) -> a connection taken from a listening socket's queue without waiting (a regular fd,
// nonblocking, close-on-exec), or -EAGAIN when the queue is empty, or -errno.
static int accept_now(int32_t fd) { int r = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); return r < 0 ? -errno : r; }
static napi_value AcceptNow(napi_env env, napi_callback_info info) { return int_call(env, info, accept_now); }

// pinThread(cpu) -> 0 or -errno: pins the calling thread (the channel's event-loop thread) to one CPU.
static int pin_thread(int32_t cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
  cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}
static napi_value PinThread(napi_env env, napi_callback_info info) { return int_call(env, info, pin_thread); }

// pipeOpen(bytes) -> [readFd, writeFd, capacity] or -errno: a nonblocking pipe for spliced file sends, its capacity
// raised towards `bytes` (F_SETPIPE_SZ; what the system allows — /proc/sys/fs/pipe-max-size — when less).
static napi_value PipeOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t want = 0; napi_get_value_int32(env, argv[0], &want);
  int p[2];
  napi_value out;
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) { napi_create_int32(env, -errno, &out); return out; }
  if (want > 0 && fcntl(p[1], F_SETPIPE_SZ, want) < 0) {
    // over pipe-max-size (EPERM without CAP_SYS_RESOURCE) or short of pages: halve until the kernel agrees
    for (int32_t w = want / 2; w >= 65536; w /= 2) if (fcntl(p[1], F_SETPIPE_SZ, w) >= 0) break;
  }
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  napi_create_array_with_length(env, 3, &out);
  int32_t v[3] = { p[0], p[1], cap < 0 ? 65536 : cap };
  for (uint32_t i = 0; i < 3; i++) { napi_value x; napi_create_int32(env, v[i], &x); napi_set_element(env, out, i, x); }
  return out;
}

static napi_value CurrentCpu(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out; napi_create_int32(env, sched_getcpu(), &out);
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor d[] = {
    { "probe", NULL, Probe, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelCreate", NULL, ChannelCreate, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelSubmit", NULL, ChannelSubmit, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelRef", NULL, ChannelRef, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelClose", NULL, ChannelClose, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelRefSet", NULL, ChannelRefSet, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeSockaddr", NULL, EncodeSockaddr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "listenGroup", NULL, ListenGroup, NULL, NULL, NULL, napi_enumerable, NULL },
    { "clientSocket", NULL, ClientSocket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dupFd", NULL, DupFd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "incomingCpu", NULL, IncomingCpu, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelIncomingCpu", NULL, ChannelIncomingCpu, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pinThread", NULL, PinThread, NULL, NULL, NULL, napi_enumerable, NULL },
    { "acceptQueueLength", NULL, AcceptQueueLength, NULL, NULL, NULL, napi_enumerable, NULL },
    { "acceptNow", NULL, AcceptNow, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pipeOpen", NULL, PipeOpen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "currentCpu", NULL, CurrentCpu, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}
