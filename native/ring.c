// The ring: liburing's middle layer for one channel — setup and mapping, request rows turned into SQEs, submission,
// completions copied out in bounded batches, the provided-buffer ring, and the teardown that makes sure the kernel
// has let go of the channel's memory. No policy: which requests to make, when, and what a completion means is the
// TypeScript side's (src/uring/). Every error is -errno.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "channel.h"
#include "kernel.h"
#include "sockets.h"

// user_data of requests the ring makes for itself (low word MP_UD_NATIVE: the JavaScript drain skips them)
#define UD_NATIVE_CMD(seq) (0xffffffffULL | ((uint64_t)((seq) & MP_UD_GEN_MASK) << 32))
#define UD_NATIVE_TEARDOWN (0xffffffffULL | ((uint64_t)0xfffffe << 32))
// a tag with MP_TAG_FD_RESULT: bit 63 of the user_data
#define UD_FD_RESULT ((uint64_t)MP_TAG_FD_RESULT << (32 + MP_UD_TAG_SHIFT))

static void *map_anon(size_t sz) {
  void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n) { size_t pg = 4096; return (n + pg - 1) & ~(pg - 1); }

// ---- a scratch ring for the probes below: set up and mapped, two SQEs, nothing registered -------------------
typedef struct {
  int fd;
  struct io_uring_params p;
  void *rings, *sqes;
  size_t rsz, esz;
} scratch_t;

static void scratch_close(scratch_t *r) {
  if (r->rings != MAP_FAILED) munmap(r->rings, r->rsz);
  if (r->sqes != MAP_FAILED) munmap(r->sqes, r->esz);
  if (r->fd >= 0) close(r->fd);
  r->fd = -1; r->rings = r->sqes = MAP_FAILED;
}

// 0, or -errno with nothing left open.
static int scratch_open(scratch_t *r, unsigned flags) {
  memset(&r->p, 0, sizeof r->p);
  r->p.flags = flags;
  r->rings = r->sqes = MAP_FAILED;
  if ((r->fd = sys_setup(2, &r->p)) < 0) return r->fd;
  size_t sqsz = r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned), cqsz = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
  r->rsz = sqsz > cqsz ? sqsz : cqsz; r->esz = r->p.sq_entries * sizeof(struct io_uring_sqe);
  int res = 0;
  if (!(r->p.features & IORING_FEAT_SINGLE_MMAP)) res = -EOPNOTSUPP;
  else if ((r->rings = mmap(NULL, r->rsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING)) == MAP_FAILED) res = -errno;
  else if ((r->sqes = mmap(NULL, r->esz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES)) == MAP_FAILED) res = -errno;
  if (res < 0) scratch_close(r);
  return res;
}

// The next SQE, zeroed and already published at the tail: fill it in, then enter. At most sq_entries (2) per ring.
static struct io_uring_sqe *scratch_sqe(scratch_t *r) {
  unsigned *tail = (unsigned *)((char *)r->rings + r->p.sq_off.tail), *array = (unsigned *)((char *)r->rings + r->p.sq_off.array);
  unsigned mask = *(unsigned *)((char *)r->rings + r->p.sq_off.ring_mask), i = *tail & mask;
  struct io_uring_sqe *s = (struct io_uring_sqe *)r->sqes + i;
  memset(s, 0, sizeof *s);
  array[i] = i;
  atomic_store_explicit((_Atomic unsigned *)tail, *tail + 1, memory_order_release);
  return s;
}

// The oldest CQE, consumed: 1 with its result and flags, or 0 when the CQ is empty.
static int scratch_cqe(scratch_t *r, int32_t *res, uint32_t *flags) {
  unsigned *head = (unsigned *)((char *)r->rings + r->p.cq_off.head), *tail = (unsigned *)((char *)r->rings + r->p.cq_off.tail);
  unsigned mask = *(unsigned *)((char *)r->rings + r->p.cq_off.ring_mask), h = *head;
  if (h == atomic_load_explicit((_Atomic unsigned *)tail, memory_order_acquire)) return 0;
  const struct io_uring_cqe *c = (const struct io_uring_cqe *)((char *)r->rings + r->p.cq_off.cqes) + (h & mask);
  *res = c->res; *flags = c->flags;
  atomic_store_explicit((_Atomic unsigned *)head, h + 1, memory_order_release);
  return 1;
}

// ---- does a DEFER_TASKRUN ring wake the loop? -------------------------------------------------------------
// A channel waits in Node's loop on an eventfd registered with its ring (loop.c), so a completion must signal that
// eventfd when it happens. On a DEFER_TASKRUN ring a completion is first queued as deferred task work, and the kernel
// signals the eventfd as it queues the first of it — on most kernels. On 6.18.44 (a Firecracker guest, AMD EPYC) it
// does not: IORING_SQ_TASKRUN is set at once, but the eventfd is signalled 14–35 ms later, so a sleeping loop stays
// asleep with work waiting (an echo server's p99 at 256 connections: 15 ms instead of 3; BENCHMARKS.md "A wake-up
// that came 14–35 ms late"). The probe: a throw-away DEFER_TASKRUN ring with a registered eventfd, a POLL_ADD on an
// empty pipe, one byte written into the pipe. The write's wake-up queues the task work inside write(2), so on a kernel
// that signals at once the eventfd is readable when write returns; otherwise it is not. A "not readable" is the
// answer whatever the timing; a "readable" counts only if write and read took under DEFER_WAKE_TRIAL_NS together (a
// thread preempted in between could find a late signal arrived: then the trial is repeated, at most
// DEFER_WAKE_TRIALS times). Returns 1 (signalled at once), 0 (not: a DEFER_TASKRUN ring would leave the loop asleep),
// -EAGAIN (no trial conclusive), or another -errno (could not probe: DEFER_TASKRUN refused, out of fds…).
#define DEFER_WAKE_TRIAL_NS 1000000LL
#define DEFER_WAKE_TRIALS 5
static long long mono_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (long long)t.tv_sec * 1000000000LL + t.tv_nsec; }

static int defer_wake_trial(void) {
  scratch_t r;
  int res = scratch_open(&r, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  if (res < 0) return res;
  int efd = -1, pf[2] = { -1, -1 };
  if ((efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 || pipe2(pf, O_NONBLOCK | O_CLOEXEC) < 0) { res = -errno; goto out; }
  if ((res = sys_register(r.fd, IORING_REGISTER_EVENTFD, &efd, 1)) < 0) goto out;
  struct io_uring_sqe *s = scratch_sqe(&r);
  s->opcode = IORING_OP_POLL_ADD; s->fd = pf[0]; s->poll32_events = POLLIN; s->user_data = 1;
  if ((res = sys_enter(r.fd, 1, 0, 0)) != 1) { res = res < 0 ? res : -EIO; goto out; }
  uint64_t v;
  if (read(efd, &v, sizeof v) == sizeof v) { res = -EAGAIN; goto out; }   // signalled before anything happened
  long long t0 = mono_ns();
  if (write(pf[1], "x", 1) != 1) { res = -errno; goto out; }
  res = read(efd, &v, sizeof v) == sizeof v;
  if (res == 1 && mono_ns() - t0 > DEFER_WAKE_TRIAL_NS) res = -EAGAIN;   // readable, but late enough to be the late signal
out:
  if (efd >= 0) close(efd);
  if (pf[0] >= 0) { close(pf[0]); close(pf[1]); }
  scratch_close(&r);   // cancels the poll if it is still armed
  return res;
}

// A probe's answer `r`, kept in `*cached` (2: none yet) once it is one: 0, 1, or a refusal that will not change (the
// feature or io_uring refused). A passing failure (out of fds or memory, a refused enter, no conclusive trial) is not
// kept: the next channel asks again. Worker threads may probe at once; the first answer stands.
static int keep_answer(_Atomic int *cached, int r) {
  if (r == 0 || r == 1 || r == -EINVAL || r == -EPERM || r == -ENOSYS || r == -EOPNOTSUPP || r == -EACCES) {
    int expect = 2;
    atomic_compare_exchange_strong_explicit(cached, &expect, r, memory_order_acq_rel, memory_order_acquire);
    return atomic_load_explicit(cached, memory_order_acquire);
  }
  return r;
}

// The answer, kept once it is one (keep_answer); without one, this channel goes without DEFER_TASKRUN.
int defer_wake(void) {
  static _Atomic int cached = 2;
  int r = atomic_load_explicit(&cached, memory_order_acquire);
  if (r != 2) return r;
  for (int i = 0; i < DEFER_WAKE_TRIALS; i++) if ((r = defer_wake_trial()) != -EAGAIN) break;
  return keep_answer(&cached, r);
}

// ---- does a multishot receive stop by itself after a number of bytes? ------------------------------------
// A multishot receive takes provided buffers until it is cancelled or the buffers run out. Since Linux 6.17 it can
// carry a total: after that many bytes (the completion that reaches it may go over by the rest of one buffer) it
// ends by itself, IORING_CQE_F_MORE clear, and is armed again only if JavaScript still wants bytes — a bound on the
// bytes (not the buffers: each completion takes a whole one) a connection takes between two of its handler's chances
// to pause it, on rings where completions are posted while JavaScript runs (src/uring/receive.ts: 'capped', asked for
// with MEGAPIPE_RECV=capped). The total goes in sqe->optlen, the word file_index shares; older kernels refuse a receive
// that sets it (-EINVAL). The probe: a socketpair holding two bytes, a one-buffer ring, a multishot receive with a
// total of one byte: it must complete with its bytes (both, or the one a kernel clamping to the total takes) and
// without F_MORE. Returns 1 (it does), 0 (it does not: refused, or the total ignored), or -errno (could not probe).
static int recv_total_cap_probe(void) {
  scratch_t r;
  int res = scratch_open(&r, 0), sv[2] = { -1, -1 };
  if (res < 0) return res;
  struct io_uring_buf_ring *br = map_anon(4096);
  static char buf[64];   // static: never a dead stack frame, whatever the kernel does after we return (never read)
  if (!br || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) { res = br ? -errno : -ENOMEM; goto out; }
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = 1, .bgid = 0 };
  if ((res = sys_register(r.fd, IORING_REGISTER_PBUF_RING, &reg, 1)) < 0) goto out;
  br->bufs[0].addr = (uint64_t)(uintptr_t)buf; br->bufs[0].len = sizeof buf; br->bufs[0].bid = 0;
  atomic_store_explicit((_Atomic uint16_t *)&br->tail, 1, memory_order_release);
  if (write(sv[1], "xy", 2) != 2) { res = -errno; goto out; }
  struct io_uring_sqe *s = scratch_sqe(&r);
  s->opcode = IORING_OP_RECV; s->fd = sv[0]; s->ioprio = IORING_RECV_MULTISHOT;
  s->flags = IOSQE_BUFFER_SELECT; s->buf_group = 0;
  s->file_index = 1;   // optlen: the total, one byte
  if ((res = sys_enter(r.fd, 1, 0, IORING_ENTER_GETEVENTS)) != 1) { res = res < 0 ? res : -EIO; goto out; }
  int32_t cr; uint32_t cf;
  // the bytes are there: the receive completes inline, within the enter
  if (!scratch_cqe(&r, &cr, &cf)) res = -EAGAIN;
  else res = cr >= 1 && cr <= 2 && (cf & IORING_CQE_F_BUFFER) && !(cf & IORING_CQE_F_MORE);   // 1: a kernel that clamps to the total
out:
  if (sv[0] >= 0) { close(sv[0]); close(sv[1]); }
  scratch_close(&r);   // cancels the receive if it is still armed, and drops the buffer ring
  if (br) munmap(br, 4096);
  return res;
}

// The answer, kept once it is one (keep_answer).
int recv_total_cap(void) {
  static _Atomic int cached = 2;
  int r = atomic_load_explicit(&cached, memory_order_acquire);
  return r != 2 ? r : keep_answer(&cached, recv_total_cap_probe());
}

// ---- ring setup and teardown -----------------------------------------------------------------------------
// Tries the best flag set first and steps down on EINVAL (older kernels). DEFER_TASKRUN (the first step) only where
// its completions wake the loop at once (defer_wake). Returns the ring fd or -errno.
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
  else if (defer_wake() != 1) first = 1;
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
  ch->stats[MP_ST_ENTERS] += 1;
  int r = sys_enter(fd, to_submit, min_complete, flags);
  if (r > 0) { ch->inflight += (unsigned)r; ch->stats[MP_ST_SQES] += r; }
  return r;
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

static inline uint64_t row_ud(const int32_t *row) { return (uint64_t)(uint32_t)row[MP_ROW_UD_LO] | ((uint64_t)(uint32_t)row[MP_ROW_UD_HI] << 32); }

// A file position in a row (MP_OP_READ, MP_OP_SPLICE): the low 32 bits in c, the rest in the flags from bit 8 up.
static inline uint64_t row_pos(uint32_t c, unsigned rf) { return (uint64_t)c | ((uint64_t)(rf >> MP_F_POS_SHIFT) << 32); }

// Converts one row to an SQE. Returns 0, or -EINVAL for a row that names an unknown op or points outside its region
// (a bug in the TypeScript side): the SQE is then not used, and the row completes with -EINVAL (refuse_row).
static int prep_row(channel_t *ch, struct io_uring_sqe *s, const int32_t *row) {
  unsigned op = (unsigned)row[MP_ROW_OP], rf = (unsigned)row[MP_ROW_FLAGS];
  int fd = row[MP_ROW_FD];
  uint32_t a = (uint32_t)row[MP_ROW_A], b = (uint32_t)row[MP_ROW_B], c = (uint32_t)row[MP_ROW_C];
  s->user_data = row_ud(row);
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
    if (!(c & 1)) {
      s->ioprio |= IORING_RECV_MULTISHOT;
      s->file_index = b;   // optlen (6.17; the same word): the total after which it ends (recv_total_cap)
    }
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
    // MSG_WAITALL only for a send linked to what follows (a close, a shutdown): the kernel then sends every byte or
    // fails before the link goes on. Otherwise a short send comes back (the send queue sends the rest): under
    // MSG_WAITALL io_uring retries a short send itself and, when the retry fails, reports the bytes sent and drops the
    // error — a peer's reset (ECONNRESET, read once from the socket) would then surface as EPIPE on the next send.
    s->msg_flags = MSG_NOSIGNAL | ((rf & (MP_F_LINK | MP_F_HARDLINK)) ? MSG_WAITALL : 0) | ((rf & MP_F_MORE) ? MSG_MORE : 0);
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
    if (bid >= ch->rbuf_count || ch->in_ring[bid]) { ch->stats[MP_ST_RECYCLE_REFUSED] += 1; continue; }
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
  if (sqf & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) { need_events = 1; ch->stats[MP_ST_OVERFLOW_FLUSH] += (sqf & IORING_SQ_CQ_OVERFLOW) ? 1 : 0; }
  if (need_events) flags |= IORING_ENTER_GETEVENTS;
  unsigned queued = sq_queued(ch);
  if (queued == 0 && !need_events) return 0;
  if (queued) ch->stats[MP_ST_FLUSHES] += 1;
  for (int intr = 0;;) {
    int r = ch_enter(ch, queued, 0, flags);
    if (r == -EINTR && ++intr < 3) continue;   // a signal: try again, a few times (then it is a transient refusal)
    if (r < 0) { if (!enter_transient(r)) withdraw_sq(ch, r); return r; }
    if ((unsigned)r >= queued) return 0;
    if (r == 0) return -EAGAIN;   // the kernel took none (out of request memory): the rest stays in the SQ
    queued -= (unsigned)r;        // SUBMIT_ALL makes this rare: retry the rest
  }
}

int ring_prep_row(channel_t *ch, const int32_t *row, struct io_uring_sqe *out) {
  memset(out, 0, sizeof *out);
  return prep_row(ch, out, row);
}

// Pushes what JavaScript staged (recycled buffers, request rows) and enters the kernel once. Every staged row either
// reaches the kernel, completes unsubmitted (refused: -EINVAL), or is kept: a row that found no room (the SQ still
// full after an enter, or the list of unsubmitted completions full) stays staged, moved with the rows after it to
// the front of the request area; hdr[0] says how many, hdr[2] why. JavaScript retries them (its policy). SQEs an
// enter refused stay in the SQ and go with the next enter. Returns 0 or the -errno that kept rows or SQEs back.
int flush_staged(channel_t *ch, int getevents) {
  unsigned nrec = (unsigned)ch->hdr[MP_HDR_RECYCLE];
  if (nrec) { recycle_buffers(ch, nrec); ch->hdr[MP_HDR_RECYCLE] = 0; }
  unsigned nreq = (unsigned)ch->hdr[MP_HDR_ROWS];
  if (nreq > ch->req_max) nreq = ch->req_max;
  int err = 0;
  unsigned i = 0;
  // completions of unsubmitted requests wait for a drain: without room for this flush's worth, keep everything staged
  if (ch->rej_max - ch->rej_n < ch->rej_flush) { i = 0; err = -EBUSY; goto keep; }
  struct io_uring_sqe *linked = NULL;   // the last SQE of this flush if it links to the next row
  int cancel_next = 0;                  // the row before was refused and linked to this one: cancel it too
  for (; i < nreq; i++) {
    const int32_t *row = ch->req + (size_t)i * MP_ROW_I32;
    unsigned rf = (unsigned)row[MP_ROW_FLAGS];
    if (cancel_next) {
      // a link chain whose earlier member never reached the kernel: the kernel would have cancelled this one
      if (!complete_unsubmitted(ch, row_ud(row), -ECANCELED)) { err = -EBUSY; break; }
      ch->stats[MP_ST_ROWS_REFUSED] += 1;
      cancel_next = (rf & MP_F_LINK) != 0;
      continue;
    }
    // a link chain goes to the kernel in one enter (the kernel ends a chain at the end of a submission: split, its
    // members would run unordered — a close before the send it follows): without room for the whole chain in the SQ
    // (SQEs a refused enter left behind), submit what is queued first
    if (!linked && (rf & (MP_F_LINK | MP_F_HARDLINK))) {
      unsigned len = 1;
      while (i + len < nreq && ((unsigned)ch->req[(size_t)(i + len - 1) * MP_ROW_I32 + MP_ROW_FLAGS] & (MP_F_LINK | MP_F_HARDLINK))) len++;
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
      ch->stats[MP_ST_ROWS_REFUSED] += 1;
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
  ch->hdr[MP_HDR_ROWS] = (int32_t)kept;
  int r = submit_queued(ch, getevents);
  if (!err) err = r;
  else if (r < 0 && enter_transient(err) && !enter_transient(r)) err = r;   // a lasting refusal says more
  if (err) ch->stats[MP_ST_SUBMIT_FAILED] += 1;
  ch->hdr[MP_HDR_ERR] = err;
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
unsigned drain_cq(channel_t *ch) {
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
  ch->stats[MP_ST_CQES] += k;
  ch->stats[MP_ST_INFLIGHT] = ch->inflight;
  return n + k;
}

int cq_nonempty(channel_t *ch) {
  return ch->rej_n != 0 || atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire) != *ch->cq.head;
}

int work_pending(channel_t *ch) {
  if (cq_nonempty(ch)) return 1;
  unsigned sqf = atomic_load_explicit((_Atomic unsigned *)ch->sq.flags, memory_order_acquire);
  return (sqf & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
}

// Reaps completions without delivering them (the channel is closing): only the in-flight count matters now.
// A completion that will never be delivered may carry a new regular fd (an accept without a direct descriptor, an fd
// install — JavaScript's, or ring_install_fd's that its caller gave up on: UD_FD_RESULT in its user_data): nobody else
// will close it.
static void reap_discard(channel_t *ch) {
  unsigned head = *ch->cq.head;
  unsigned tail = atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire);
  for (unsigned i = head; i != tail; i++) {
    const struct io_uring_cqe *c = &ch->cq.cqes[i & ch->cq.mask];
    cqe_seen(ch, c);
    if ((c->user_data & UD_FD_RESULT) && c->res >= 0) close(c->res);
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
  if (ch->hdr) ch->hdr[MP_HDR_ROWS] = 0;
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
      s->user_data = UD_NATIVE_TEARDOWN;
      sqe_commit(ch);
      n = 1;
    }
    int r = sys_enter_timeout(fd, n, 1, flags, 50);
    if (r > 0) ch->inflight += (unsigned)r;
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) break;   // the ring itself is unusable
    reap_discard(ch);
    if (ch->inflight < before + (unsigned)(r > 0 ? r : 0)) progress_at = now_ms();
  }
  if (ch->stats) ch->stats[MP_ST_INFLIGHT] = ch->inflight;
  return ch->inflight == 0 ? 0 : -ETIMEDOUT;
}

// Releases the ring and everything registered with it. Every direct descriptor (lwsocket) is closed here, so their
// peers read EOF (or a reset) now, and listener sockets are no longer held by an armed accept. The ring fd is
// unregistered from this thread's registered-ring table (16 slots per thread) and closed. Returns what ring_quiesce
// returned: on -ETIMEDOUT the channel's memory stays mapped for good (mem->pinned).
int ring_teardown(channel_t *ch) {
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

void mem_unref(mem_owner_t *m) {
  if (!m || --m->refs > 0) return;
  if (!m->pinned) for (int i = 0; i < 3; i++) if (m->r[i].p) munmap(m->r[i].p, m->r[i].sz);
  free(m);
}

// Sets up the ring and everything registered with it: the rings mapped, the ring fd registered (when the kernel lets
// us), the direct-descriptor table, the provided-buffer ring and receive pool, the send arena, reference slots, the
// control region; every receive buffer in the ring. On failure returns -errno with *step naming what failed; what was
// set up is released by ring_teardown and ring_free (each region is recorded in ch->mem as soon as it is mapped).
int ring_create(channel_t *ch, const ring_opts_t *o, const char **step) {
  unsigned rcount = o->recv_buffers, rsize = o->recv_buffer_size, req_max = o->request_rows, ev_max = o->event_rows, addr_sz = o->address_bytes, ref_max = o->ref_slots;
  ch->ring_fd = -1; ch->ring_index = -1;
  ch->req_max = req_max; ch->ev_max = ev_max; ch->recycle_max = rcount; ch->addr_sz = addr_sz; ch->files = o->files;
  *step = "allocate";
  int r = -ENOMEM;
  ch->mem = calloc(1, sizeof *ch->mem);
  ch->in_ring = calloc(rcount, 1);
  if (!ch->mem || !ch->in_ring) return r;
  ch->mem->refs = 1;   // the channel's own: each region is recorded in it as soon as it is mapped (unmapped with it)

  *step = "io_uring_setup";
  struct io_uring_params p;
  if ((r = ring_setup(o->sq_entries, o->cq_entries, &p)) < 0) return r;
  ch->ring_fd = r; ch->setup_flags = p.flags; ch->features = p.features;
  *step = "mmap ring";
  if ((r = ring_map(ch, &p)) < 0) return r;
  ch->ring_up = 1;
  // completions of requests that never reach the kernel: room for two flushes' worth (a flush's rows and a withdrawn
  // SQ), and a flush only starts with one flush's worth free (flush_staged), so a withdrawal always fits
  *step = "allocate";
  r = -ENOMEM;
  ch->rej_flush = req_max + ch->sq.entries;
  ch->rej_max = 2 * ch->rej_flush;
  ch->rej_ud = calloc(ch->rej_max, sizeof *ch->rej_ud);
  ch->rej_res = calloc(ch->rej_max, sizeof *ch->rej_res);
  ch->sq_ts = calloc(ch->sq.entries, sizeof *ch->sq_ts);
  if (!ch->rej_ud || !ch->rej_res || !ch->sq_ts) return r;

  *step = "register ring fd";   // optional: without it each enter looks the ring fd up in the fd table
  struct io_uring_rsrc_update up = { .offset = -1U, .data = (uint64_t)ch->ring_fd };
  if (sys_register(ch->ring_fd, IORING_REGISTER_RING_FDS, &up, 1) == 1) ch->ring_index = (int)up.offset;

  *step = "register sparse file table";
  if (ch->files) {
    struct io_uring_rsrc_register rr = { .nr = ch->files, .flags = IORING_RSRC_REGISTER_SPARSE };
    if ((r = sys_register(ch->ring_fd, IORING_REGISTER_FILES2, &rr, sizeof rr)) < 0) return r;
  }

  *step = "provided buffer ring";
  ch->br_entries = 1; while (ch->br_entries < rcount) ch->br_entries <<= 1;   // rcount <= 32768: ends
  ch->br_mask = ch->br_entries - 1;
  ch->br_sz = page_round((size_t)ch->br_entries * sizeof(struct io_uring_buf));
  r = -ENOMEM;
  if (!(ch->br = map_anon(ch->br_sz))) return r;
  ch->rbuf_count = rcount; ch->rbuf_size = rsize;
  ch->rbuf_sz = page_round((size_t)rcount * rsize);
  if (!(ch->rbuf = map_anon(ch->rbuf_sz))) return r;
  ch->mem->r[0].p = ch->rbuf; ch->mem->r[0].sz = ch->rbuf_sz;
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)ch->br, .ring_entries = ch->br_entries, .bgid = 0 };
  if ((r = sys_register(ch->ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1)) < 0) return r;

  *step = "send arena";
  r = -ENOMEM;
  ch->sbuf_sz = page_round(o->send_arena_bytes);
  if (!(ch->sbuf = map_anon(ch->sbuf_sz))) return r;
  ch->mem->r[1].p = ch->sbuf; ch->mem->r[1].sz = ch->sbuf_sz;

  *step = "reference slots";
  if (ref_max) {
    ch->ref_ptr = calloc(ref_max, sizeof *ch->ref_ptr);
    ch->ref_len = calloc(ref_max, sizeof *ch->ref_len);
    if (!ch->ref_ptr || !ch->ref_len) return r;
    ch->ref_max = ref_max;
  }

  *step = "control region";
  ch->off_hdr = 0;
  ch->off_req = ch->off_hdr + MP_HDR_I32 * 4;
  ch->off_ev = ch->off_req + (size_t)req_max * MP_ROW_I32 * 4;
  ch->off_stats = ch->off_ev + (size_t)ev_max * MP_EV_I32 * 4;
  ch->off_rec = ch->off_stats + MP_ST_F64 * 8;
  ch->off_addr = ch->off_rec + (size_t)rcount * 4;
  ch->ctl_sz = page_round(ch->off_addr + addr_sz);
  if (!(ch->ctl = map_anon(ch->ctl_sz))) return r;
  ch->mem->r[2].p = ch->ctl; ch->mem->r[2].sz = ch->ctl_sz;
  ch->hdr = (int32_t *)(ch->ctl + ch->off_hdr); ch->req = (int32_t *)(ch->ctl + ch->off_req);
  ch->ev = (int32_t *)(ch->ctl + ch->off_ev); ch->stats = (double *)(ch->ctl + ch->off_stats);
  ch->recycle = (int32_t *)(ch->ctl + ch->off_rec); ch->addr = ch->ctl + ch->off_addr;

  // every receive buffer starts in the ring
  for (unsigned i = 0; i < rcount; i++) ch->recycle[i] = (int32_t)i;
  recycle_buffers(ch, rcount);

  return 0;
}

// A native SQE for direct descriptor `slot` (fixed file, user_data a native command's: JavaScript skips its CQE), or
// NULL with *r set: -EBADF once closed, -EINVAL for a slot out of range, -EBUSY when the SQ is full (an earlier enter
// refused for now left it so) and entering again did not make room: nothing was queued (unlike sync_submit's -EAGAIN,
// which means the request is queued and runs later).
static struct io_uring_sqe *sync_sqe(channel_t *ch, int32_t slot, int *r) {
  struct io_uring_sqe *sq = NULL;
  if (ch->closed) *r = -EBADF;
  else if (slot < 0 || (unsigned)slot >= ch->files) *r = -EINVAL;
  else if (!(sq = sqe_get(ch)) && (submit_queued(ch, 0), !(sq = sqe_get(ch)))) *r = -EBUSY;
  else {
    sq->fd = slot;
    sq->flags = IOSQE_FIXED_FILE;
    sq->user_data = UD_NATIVE_CMD(++ch->sync_seq);
  }
  return sq;
}

// Submits `sq` (from sync_sqe, filled in) for a request that completes inline, and returns its result, read from the CQ
// right after the enter; the CQE stays in place for the next drain. -EAGAIN when the result is not there: the kernel
// did not take the request now (it stays in the SQ), or its CQE went to the overflow list (the CQ was full). The
// request still completes later, delivered to nobody; so a request whose result is a new fd carries UD_FD_RESULT in
// its user_data, and that fd is closed by whoever meets the CQE (JavaScript's drain; reap_discard at the teardown).
// Taken here, the fd is the caller's: the tag is cleared in the CQE so that the drain leaves it alone.
static int sync_submit(channel_t *ch, const struct io_uring_sqe *sq) {
  uint64_t ud = sq->user_data;
  sqe_commit(ch);
  int r = submit_queued(ch, 0);   // with any SQE an earlier failed enter left in the SQ
  if (r < 0) return enter_transient(r) ? -EAGAIN : r;
  r = -EAGAIN;
  unsigned head = *ch->cq.head, tail = atomic_load_explicit((_Atomic unsigned *)ch->cq.tail, memory_order_acquire);
  for (unsigned i = head; i != tail; i++) {
    struct io_uring_cqe *c = &ch->cq.cqes[i & ch->cq.mask];
    if (c->user_data == ud) { r = c->res; c->user_data &= ~UD_FD_RESULT; break; }
  }
  // the CQE (and any other the enter posted) is drained by the next turn
  wake_if_posted(ch);
  return r;
}

// SO_INCOMING_CPU of the lwsocket in direct-descriptor `slot`, or -errno (-EOPNOTSUPP before Linux 6.7, which added
// socket getsockopt as an io_uring command; -EAGAIN as sync_submit says, or as sync_sqe's -EBUSY). A direct descriptor has no fd to call
// getsockopt on, so this submits one IORING_OP_URING_CMD (SOCKET_URING_OP_GETSOCKOPT), which never blocks.
static int getsockopt_int(channel_t *ch, int32_t slot, int level, int name) {
  int r;
  struct io_uring_sqe *sq = sync_sqe(ch, slot, &r);
  if (!sq) return r == -EBUSY ? -EAGAIN : r;
  ch->sync_val = -1;
  sq->opcode = IORING_OP_URING_CMD;
  sq->off = MP_SOCKET_URING_OP_GETSOCKOPT;                     // cmd_op
  sq->addr = (uint64_t)(uint32_t)level | ((uint64_t)(uint32_t)name << 32);   // level, optname
  sq->file_index = sizeof ch->sync_val;                        // optlen
  sq->addr3 = (uint64_t)(uintptr_t)&ch->sync_val;              // optval
  r = sync_submit(ch, sq);
  return r < 0 ? r : ch->sync_val;
}

int ring_incoming_cpu(channel_t *ch, int32_t slot) { return getsockopt_int(ch, slot, SOL_SOCKET, SO_INCOMING_CPU); }

// As set_sock_opt, through IORING_OP_URING_CMD (SOCKET_URING_OP_SETSOCKOPT, Linux 6.7), which never blocks. The value
// is read by the kernel when the request runs, which may be after this call (the request left in the SQ): so it lives
// in static storage, or in this slot's entry of slot_val (a later value for the same slot may replace it: the last
// one set wins). -EBUSY: not queued at all (the SQ full, see sync_sqe): the option is not set.
int ring_setsockopt(channel_t *ch, int32_t slot, int which, int value) {
  if (!ch->slot_val && !(ch->slot_val = calloc(ch->files ? ch->files : 1, sizeof *ch->slot_val))) return -ENOMEM;
  if (slot < 0 || (unsigned)slot >= ch->files) return -EINVAL;
  int level, name, r; const void *val; unsigned len;
  if ((r = sockopt_spec(which, value, &level, &name, &val, &len, &ch->slot_val[slot])) < 0) return r;
  struct io_uring_sqe *sq = sync_sqe(ch, slot, &r);
  if (!sq) return r;
  sq->opcode = IORING_OP_URING_CMD;
  sq->off = MP_SOCKET_URING_OP_SETSOCKOPT;
  sq->addr = (uint64_t)(uint32_t)level | ((uint64_t)(uint32_t)name << 32);
  sq->file_index = len;
  sq->addr3 = (uint64_t)(uintptr_t)val;
  return sync_submit(ch, sq);
}


// A regular fd (close-on-exec) for the lwsocket in direct-descriptor `slot`, installed by IORING_OP_FIXED_FD_INSTALL
// (Linux 6.8; -EINVAL before), which completes inline; or -errno: -EAGAIN when its completion did not arrive within
// the call (sync_submit: the fd it brings later is closed by the drain, never leaked). The slot stays; the caller
// closes the fd.
int ring_install_fd(channel_t *ch, int32_t slot) {
  int r;
  struct io_uring_sqe *sq = sync_sqe(ch, slot, &r);
  if (!sq) return r == -EBUSY ? -EAGAIN : r;
  sq->user_data |= UD_FD_RESULT;
  sq->opcode = IORING_OP_FIXED_FD_INSTALL;
  sq->rw_flags = 0;  // install_fd_flags: O_CLOEXEC on the new fd
  return sync_submit(ch, sq);
}

// Frees what ring_create allocated (after ring_teardown), and drops the channel's reference to its memory.
void ring_free(channel_t *ch) {
  mem_unref(ch->mem);
  ch->mem = NULL;
  free(ch->slot_val); ch->slot_val = NULL;
  free(ch->ref_ptr); free(ch->ref_len); free(ch->rej_ud); free(ch->rej_res); free(ch->in_ring); free(ch->sq_ts);
  ch->ref_ptr = NULL; ch->ref_len = NULL; ch->rej_ud = NULL; ch->rej_res = NULL; ch->in_ring = NULL; ch->sq_ts = NULL;
}

// What this kernel offers, without keeping anything: a throw-away ring (set up the way a channel's is), its opcodes,
// whether it takes a provided-buffer ring and a sparse file table (both 5.19, both required).
void ring_probe(ring_probe_t *out) {
  memset(out, 0, sizeof *out);
  out->last_op = -1;
  struct io_uring_params p;
  int fd = ring_setup(8, 16, &p);
  if (fd < 0) { out->err = fd; return; }
  out->setup_flags = p.flags; out->features = p.features;
  out->defer_wake = defer_wake();
  out->recv_cap = recv_total_cap();
  size_t psz = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
  struct io_uring_probe *pr = calloc(1, psz);
  if (pr && sys_register(fd, IORING_REGISTER_PROBE, pr, 256) >= 0) {
    out->last_op = pr->last_op;
    for (unsigned i = 0; i < pr->ops_len && i < 256; i++) if (pr->ops[i].flags & IO_URING_OP_SUPPORTED) out->ops[pr->ops[i].op] = 1;
  }
  free(pr);
  struct io_uring_buf_ring *br = map_anon(4096);
  if (br) {
    struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = 8, .bgid = 0 };
    if (sys_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1) >= 0) {
      out->buf_ring = 1;
      struct io_uring_buf_reg ur = { .bgid = 0 };
      sys_register(fd, IORING_UNREGISTER_PBUF_RING, &ur, 1);
    }
  }
  struct io_uring_rsrc_register rr = { .nr = 4, .flags = IORING_RSRC_REGISTER_SPARSE };
  out->sparse_files = sys_register(fd, IORING_REGISTER_FILES2, &rr, sizeof rr) >= 0;
  close(fd);
  if (br) munmap(br, 4096);
}
