/* uring-echo: "what one core can do at best" — a single-threaded io_uring echo server on raw
 * syscalls (no liburing), using every mechanism megapipe maps MegaPipe onto:
 *   - ring flags SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN|SUBMIT_ALL, stepped down on EINVAL;
 *   - connections are direct descriptors (lwsockets) in a sparse fixed-file table, accepted by one
 *     multishot accept with IORING_FILE_INDEX_ALLOC;
 *   - one multishot recv per connection over a provided-buffer ring; re-armed after -ENOBUFS;
 *   - one send in flight per connection; what arrives meanwhile is coalesced behind it; partial sends
 *     resend the remainder;
 *   - direct descriptors closed by IORING_OP_CLOSE (file_index = slot + 1, no IOSQE_FIXED_FILE), only
 *     after the final completion of every request on the connection;
 *   - one io_uring_enter(submit + GETEVENTS, min_complete = 1) per loop iteration.
 *
 *   uring-echo --port P --host H
 * Prints "listening on H:P"; on SIGTERM/SIGINT prints {"accepted":N,"bytes":N,"enters":N}, exits 0. */
#include "common.h"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define SQ_ENTRIES 4096
#define CQ_ENTRIES 16384
#define CQE_BATCH_MAX 1024 /* completions copied out per drain step */
#define FILES_MAX 16384    /* direct-descriptor table size (bounded by RLIMIT_NOFILE too) */
#ifndef BUF_RING_ENTRIES /* e.g. -DBUF_RING_ENTRIES=8 runs the ring dry all the time: tests the -ENOBUFS re-arm */
#define BUF_RING_ENTRIES 4096
#endif
#define BUF_SIZE 16384 /* as megapipe's default recvBufferSize: one receive carries a whole 16 KiB message */
#define BUF_GROUP 0
#define PENDING_MAX (4u << 20) /* a peer that never reads gets closed past this much queued echo */

/* Each CQE handler queues at most 3 SQEs; a full batch must fit in the SQ without a flush. */
_Static_assert(CQE_BATCH_MAX * 3 <= SQ_ENTRIES, "SQ too small for one CQE batch");
_Static_assert((BUF_RING_ENTRIES & (BUF_RING_ENTRIES - 1)) == 0, "buffer ring must be a power of 2");
_Static_assert(BUF_RING_ENTRIES <= 32768, "buffer ids are 16-bit, the ring holds at most 32768");

static const char usage[] =
    "usage: uring-echo [--port P] [--host H]\n"
    "Single-threaded io_uring echo server (direct descriptors, multishot accept/recv, buffer ring).\n"
    "Prints 'listening on H:P'; on SIGTERM prints {\"accepted\":N,\"bytes\":N,\"enters\":N} and exits 0.\n";

/* ---- raw syscalls --------------------------------------------------------------------------- */

static int sys_io_uring_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}
static int sys_io_uring_register(int fd, unsigned op, void *arg, unsigned nr) {
  return (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
}

/* ---- the ring ------------------------------------------------------------------------------- */

struct ring {
  int fd;
  int enter_fd;         /* registered ring index when enter_flags has REGISTERED_RING, else fd */
  unsigned enter_flags; /* extra io_uring_enter flags */
  unsigned setup_flags;
  unsigned *sq_head, *sq_tail, *sq_array;
  unsigned sq_mask, sq_entries, sq_local_tail;
  struct io_uring_sqe *sqes;
  unsigned *cq_head, *cq_tail;
  unsigned cq_mask;
  struct io_uring_cqe *cqes;
};

static struct ring ring;
static uint64_t enters;

static void ring_setup(void) {
  static const unsigned tries[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_SUBMIT_ALL,
      0,
  };
  struct io_uring_params p;
  int fd = -1;
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
    memset(&p, 0, sizeof p);
    p.flags = tries[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    fd = sys_io_uring_setup(SQ_ENTRIES, &p);
    if (fd >= 0) {
      ring.setup_flags = tries[i];
      if (i > 0) fprintf(stderr, "uring-echo: stepped ring flags down to 0x%x\n", tries[i]);
      break;
    }
    if (errno != EINVAL) die("io_uring_setup: %s", strerror(errno));
  }
  if (fd < 0) die("io_uring_setup: %s", strerror(errno));
  if (!(p.features & IORING_FEAT_SINGLE_MMAP)) die("io_uring: kernel lacks IORING_FEAT_SINGLE_MMAP");
  ring.fd = ring.enter_fd = fd;

  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t size = sq_size > cq_size ? sq_size : cq_size;
  char *rings = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) die("mmap rings: %s", strerror(errno));
  ring.sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (ring.sqes == MAP_FAILED) die("mmap sqes: %s", strerror(errno));

  ring.sq_head = (unsigned *)(rings + p.sq_off.head);
  ring.sq_tail = (unsigned *)(rings + p.sq_off.tail);
  ring.sq_array = (unsigned *)(rings + p.sq_off.array);
  ring.sq_mask = *(unsigned *)(rings + p.sq_off.ring_mask);
  ring.sq_entries = p.sq_entries;
  ring.sq_local_tail = *ring.sq_tail;
  for (unsigned i = 0; i < p.sq_entries; i++) ring.sq_array[i] = i; /* identity: sqes[i] is slot i */
  ring.cq_head = (unsigned *)(rings + p.cq_off.head);
  ring.cq_tail = (unsigned *)(rings + p.cq_off.tail);
  ring.cq_mask = *(unsigned *)(rings + p.cq_off.ring_mask);
  ring.cqes = (struct io_uring_cqe *)(rings + p.cq_off.cqes);

  /* Registering the ring fd spares io_uring_enter an fd-table lookup; optional (5.18+). */
  struct io_uring_rsrc_update up = {.offset = -1U, .data = (uint64_t)fd};
  if (sys_io_uring_register(fd, IORING_REGISTER_RING_FDS, &up, 1) == 1) {
    ring.enter_fd = (int)up.offset;
    ring.enter_flags = IORING_ENTER_REGISTERED_RING;
  }
}

/* Submits what is queued; waits for min_complete completions. Returns the kernel's result. */
static int ring_enter(unsigned min_complete) {
  unsigned to_submit = ring.sq_local_tail - __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
  __atomic_store_n(ring.sq_tail, ring.sq_local_tail, __ATOMIC_RELEASE);
  unsigned flags = ring.enter_flags;
  if (min_complete > 0 || (ring.setup_flags & IORING_SETUP_DEFER_TASKRUN)) flags |= IORING_ENTER_GETEVENTS;
  enters++;
  return sys_io_uring_enter(ring.enter_fd, to_submit, min_complete, flags);
}

/* Returns a zeroed SQE; flushes the SQ to the kernel if it is full. */
static struct io_uring_sqe *sqe_get(void) {
  for (int attempt = 0; attempt < 2; attempt++) {
    unsigned head = __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
    if (ring.sq_local_tail - head < ring.sq_entries) {
      struct io_uring_sqe *sqe = &ring.sqes[ring.sq_local_tail & ring.sq_mask];
      ring.sq_local_tail++;
      memset(sqe, 0, sizeof *sqe);
      return sqe;
    }
    if (ring_enter(0) < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
      die("io_uring_enter: %s", strerror(errno));
  }
  die("io_uring: submission queue stuck full");
}

/* ---- provided buffers ----------------------------------------------------------------------- */

static struct io_uring_buf_ring *buf_ring;
static char *buf_base;
static uint16_t buf_ring_local_tail;

static void buf_recycle(unsigned bid) {
  struct io_uring_buf *b = &buf_ring->bufs[buf_ring_local_tail & (BUF_RING_ENTRIES - 1)];
  b->addr = (uint64_t)(uintptr_t)(buf_base + (size_t)bid * BUF_SIZE);
  b->len = BUF_SIZE;
  b->bid = (uint16_t)bid;
  buf_ring_local_tail++;
}

static void buf_publish(void) {
  __atomic_store_n(&buf_ring->tail, buf_ring_local_tail, __ATOMIC_RELEASE);
}

static void buf_ring_setup(void) {
  size_t ring_bytes = BUF_RING_ENTRIES * sizeof(struct io_uring_buf);
  buf_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buf_base = mmap(NULL, (size_t)BUF_RING_ENTRIES * BUF_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf_ring == MAP_FAILED || buf_base == MAP_FAILED) die("mmap buffers: %s", strerror(errno));
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)buf_ring,
                                 .ring_entries = BUF_RING_ENTRIES,
                                 .bgid = BUF_GROUP};
  if (sys_io_uring_register(ring.fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0)
    die("IORING_REGISTER_PBUF_RING: %s", strerror(errno));
  for (unsigned i = 0; i < BUF_RING_ENTRIES; i++) buf_recycle(i);
  buf_publish();
}

/* ---- connections ---------------------------------------------------------------------------- */

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_CANCEL };

static inline uint64_t user_data(enum op op, unsigned slot) { return (uint64_t)op << 32 | slot; }

struct bytes {
  char *data;
  uint32_t len, off, cap;
};

struct conn {
  uint8_t in_use, recv_armed, send_inflight, closing, cancel_sent, close_sent;
  struct bytes inflight; /* the send the kernel owns; never reallocated while send_inflight */
  struct bytes pending;  /* what arrived while a send was in flight */
};

static struct conn *conns;
static unsigned files_max;
static int listen_fd;
static uint64_t accepted, bytes_echoed, accept_errors, overflow_closes, recv_rearms;

static void arm_accept(void) {
  struct io_uring_sqe *sqe = sqe_get();
  sqe->opcode = IORING_OP_ACCEPT;
  sqe->fd = listen_fd;
  sqe->ioprio = IORING_ACCEPT_MULTISHOT;
  sqe->file_index = IORING_FILE_INDEX_ALLOC;
  sqe->user_data = user_data(OP_ACCEPT, 0);
}

static void arm_recv(unsigned slot) {
  struct io_uring_sqe *sqe = sqe_get();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = (int)slot;
  sqe->flags = IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->buf_group = BUF_GROUP;
  sqe->user_data = user_data(OP_RECV, slot);
  conns[slot].recv_armed = 1;
}

static void submit_send(unsigned slot) {
  struct conn *c = &conns[slot];
  struct io_uring_sqe *sqe = sqe_get();
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = (int)slot;
  sqe->flags = IOSQE_FIXED_FILE;
  sqe->addr = (uint64_t)(uintptr_t)(c->inflight.data + c->inflight.off);
  sqe->len = c->inflight.len - c->inflight.off;
  sqe->msg_flags = MSG_NOSIGNAL;
  sqe->user_data = user_data(OP_SEND, slot);
  c->send_inflight = 1;
}

/* Closes the slot once nothing is in flight on it; its state is freed on the close completion. */
static void maybe_close(unsigned slot) {
  struct conn *c = &conns[slot];
  if (!c->closing || c->recv_armed || c->send_inflight || c->close_sent) return;
  struct io_uring_sqe *sqe = sqe_get();
  sqe->opcode = IORING_OP_CLOSE;
  sqe->file_index = slot + 1;
  sqe->user_data = user_data(OP_CLOSE, slot);
  c->close_sent = 1;
}

static void start_close(unsigned slot) {
  struct conn *c = &conns[slot];
  c->closing = 1;
  if (c->recv_armed && !c->cancel_sent) {
    struct io_uring_sqe *sqe = sqe_get();
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->addr = user_data(OP_RECV, slot);
    sqe->user_data = user_data(OP_CANCEL, slot);
    c->cancel_sent = 1;
  }
  maybe_close(slot);
}

/* Starts a send of everything pending if no send is in flight (swapping the two buffers). */
static void kick_send(unsigned slot) {
  struct conn *c = &conns[slot];
  if (c->send_inflight || c->pending.len == 0) return;
  struct bytes t = c->inflight;
  c->inflight = c->pending;
  c->pending = t;
  c->pending.len = c->pending.off = 0;
  submit_send(slot);
}

static void bytes_append(struct bytes *b, const char *p, uint32_t n) {
  if (b->len + n > b->cap) {
    uint32_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n) cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL) die("out of memory");
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void on_accept(const struct io_uring_cqe *cqe) {
  if (cqe->res >= 0) {
    unsigned slot = (unsigned)cqe->res;
    struct conn *c = &conns[slot];
    if (slot >= files_max || c->in_use) die("accept returned slot %u still in use", slot);
    c->in_use = 1;
    c->recv_armed = c->send_inflight = c->closing = c->cancel_sent = c->close_sent = 0;
    c->inflight.len = c->inflight.off = c->pending.len = c->pending.off = 0;
    accepted++;
    arm_recv(slot);
  } else {
    accept_errors++;
  }
  if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept();
}

static void on_recv(unsigned slot, const struct io_uring_cqe *cqe) {
  struct conn *c = &conns[slot];
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    if (cqe->res > 0 && !c->closing) {
      bytes_append(&c->pending, buf_base + (size_t)bid * BUF_SIZE, (uint32_t)cqe->res);
      bytes_echoed += (uint64_t)cqe->res;
    }
    buf_recycle(bid);
  }
  if (!(cqe->flags & IORING_CQE_F_MORE)) {
    c->recv_armed = 0;
    /* -ENOBUFS (buffer ring ran dry) or a multishot that ended with data: the rest is still in the
     * socket, so re-arm. EOF, reset or cancellation: close after the last send. */
    if (!c->closing && (cqe->res == -ENOBUFS || cqe->res > 0)) {
      recv_rearms++;
      arm_recv(slot);
    } else {
      c->closing = 1;
    }
  }
  if (c->pending.len > PENDING_MAX) {
    overflow_closes++;
    c->pending.len = 0;
    start_close(slot);
    return;
  }
  kick_send(slot);
  maybe_close(slot);
}

static void on_send(unsigned slot, const struct io_uring_cqe *cqe) {
  struct conn *c = &conns[slot];
  c->send_inflight = 0;
  if (cqe->res < 0) {
    c->pending.len = 0;
    start_close(slot);
    return;
  }
  c->inflight.off += (uint32_t)cqe->res;
  if (c->inflight.off < c->inflight.len) {
    submit_send(slot); /* partial send: resend the remainder, order is kept */
    return;
  }
  c->inflight.len = c->inflight.off = 0;
  kick_send(slot);
  maybe_close(slot);
}

static void on_close(unsigned slot) {
  struct conn *c = &conns[slot];
  c->in_use = 0;
  /* Keep small buffers for the next connection in this slot; give back big ones. */
  if (c->inflight.cap > 65536) { free(c->inflight.data); c->inflight = (struct bytes){0}; }
  if (c->pending.cap > 65536) { free(c->pending.data); c->pending = (struct bytes){0}; }
}

static void on_cqe(const struct io_uring_cqe *cqe) {
  unsigned slot = (unsigned)(cqe->user_data & 0xffffffffu);
  switch ((enum op)(cqe->user_data >> 32)) {
  case OP_ACCEPT: on_accept(cqe); break;
  case OP_RECV: on_recv(slot, cqe); break;
  case OP_SEND: on_send(slot, cqe); break;
  case OP_CLOSE: on_close(slot); break;
  case OP_CANCEL: break;
  }
}

/* Copies completions out in bounded batches, releases them to the kernel, then handles them. */
static void drain_cq(void) {
  static struct io_uring_cqe batch[CQE_BATCH_MAX];
  for (;;) {
    unsigned head = *ring.cq_head;
    unsigned tail = __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE);
    unsigned n = tail - head;
    if (n == 0) return;
    if (n > CQE_BATCH_MAX) n = CQE_BATCH_MAX;
    for (unsigned i = 0; i < n; i++) batch[i] = ring.cqes[(head + i) & ring.cq_mask];
    __atomic_store_n(ring.cq_head, head + n, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < n; i++) on_cqe(&batch[i]);
  }
}

int main(int argc, char **argv) {
  struct server_opts o = parse_server_opts(argc, argv, usage);
  install_stop_signals();
  long nofile = raise_nofile_limit();
  files_max = nofile - 64 < FILES_MAX ? (unsigned)(nofile - 64) : FILES_MAX;
  conns = calloc(files_max, sizeof *conns);
  if (conns == NULL) die("out of memory");

  ring_setup();
  struct io_uring_rsrc_register files = {.nr = files_max, .flags = IORING_RSRC_REGISTER_SPARSE};
  if (sys_io_uring_register(ring.fd, IORING_REGISTER_FILES2, &files, sizeof files) != 0)
    die("register sparse files (%u): %s", files_max, strerror(errno));
  buf_ring_setup();

  listen_fd = open_listener(&o, 0);
  arm_accept();
  while (!stop_requested) {
    buf_publish();
    if (ring_enter(1) < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY && errno != ETIME)
      die("io_uring_enter: %s", strerror(errno));
    drain_cq();
  }
  printf("{\"accepted\":%llu,\"bytes\":%llu,\"enters\":%llu,\"accept_errors\":%llu,\"overflow_closes\":%llu,"
         "\"recv_rearms\":%llu,\"ring_flags\":%u}\n",
         (unsigned long long)accepted, (unsigned long long)bytes_echoed, (unsigned long long)enters,
         (unsigned long long)accept_errors, (unsigned long long)overflow_closes, (unsigned long long)recv_rearms,
         ring.setup_flags);
  fflush(stdout);
  return 0;
}
