// wake-probe: how a ring set up like native/ring.c's wakes an epoll set that watches the ring fd itself (issue 19).
// Usage: wake-probe coop|defer|plain[-evfd]   — coop: SINGLE_ISSUER|SUBMIT_ALL|COOP_TASKRUN|TASKRUN_FLAG (no DEFER_TASKRUN);
// defer: the same plus DEFER_TASKRUN (megapipe's ring); plain: SINGLE_ISSUER|SUBMIT_ALL|TASKRUN_FLAG (task work
// announced by a signal-like notification, with IPIs). A child process on CPU 1 connects and writes on command; the
// server on CPU 0 arms a multishot accept (direct descriptors) and a multishot receive (provided buffers), and for each
// event waits in epoll_wait on the ring fd, either asleep when the event happens ("asleep") or after spinning in user
// space without a system call while it happens ("busy"). Each epoll_wait is printed: its result, its time, the CQEs
// ready and IORING_SQ_TASKRUN before and after. With "-evfd" (coop-evfd, defer-evfd: megapipe's own wake-up) the epoll
// set watches an eventfd registered with the ring (IORING_REGISTER_EVENTFD) instead of the ring fd, and the probe adds
// 20 receives while asleep, each timed from the command to the client (write 64 bytes) to the eventfd's report; the
// eventfd is counted as "ring fd READY" in the per-call lines. libc only.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_FILE_INDEX_ALLOC
#define IORING_FILE_INDEX_ALLOC (~0U)
#endif

static int ring_fd, evfd = -1;
static unsigned *sq_tail, *sq_flags, *sq_array, sq_mask, *cq_head, *cq_tail, cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static int enter(unsigned n, unsigned minc, unsigned flags) {
  int r = (int)syscall(__NR_io_uring_enter, ring_fd, n, minc, flags, NULL, 0);
  return r < 0 ? -errno : r;
}
static struct io_uring_sqe *sqe(void) {
  struct io_uring_sqe *s = &sqes[*sq_tail & sq_mask];
  memset(s, 0, sizeof *s);
  sq_array[*sq_tail & sq_mask] = *sq_tail & sq_mask;
  atomic_store_explicit((_Atomic unsigned *)sq_tail, *sq_tail + 1, memory_order_release);
  return s;
}
static unsigned cq_ready(void) { return atomic_load_explicit((_Atomic unsigned *)cq_tail, memory_order_acquire) - *cq_head; }
static int taskrun(void) { return (atomic_load_explicit((_Atomic unsigned *)sq_flags, memory_order_acquire) & IORING_SQ_TASKRUN) != 0; }
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
static void spin_us(double us) { double end = now_us() + us; while (now_us() < end) { } }

// Waits on the epoll set (at most 3 calls of 300 ms) until the ring fd is reported; prints each call. Returns the CQEs
// then ready.
static unsigned wait_ring(int ep, const char *what) {
  for (int i = 0; i < 3; i++) {
    unsigned c0 = cq_ready(); int t0 = taskrun();
    struct epoll_event ev;
    double s = now_us();
    int r = epoll_wait(ep, &ev, 1, 300);
    int e = errno;
    double d = now_us() - s;
    printf("  %-22s epoll_wait #%d: %s after %8.0f us; before: cq=%u taskrun=%d; after: cq=%u taskrun=%d\n", what, i + 1,
           r > 0 ? "ring fd READY" : r == 0 ? "timeout" : e == EINTR ? "EINTR" : strerror(e), d, c0, t0, cq_ready(), taskrun());
    if (r > 0) {
      if (evfd >= 0) { uint64_t v; if (read(evfd, &v, sizeof v) < 0) { } if (taskrun() || !cq_ready()) enter(0, 0, IORING_ENTER_GETEVENTS); }
      return cq_ready();
    }
  }
  return cq_ready();
}

// Takes every CQE off the CQ; returns the res of the last one whose user_data is `ud` (or -1).
static int reap(uint64_t ud) {
  int res = -1;
  while (cq_ready()) {
    struct io_uring_cqe *c = &cqes[*cq_head & cq_mask];
    if (c->user_data == ud) res = c->res;
    printf("    cqe ud=%llu res=%d flags=0x%x\n", (unsigned long long)c->user_data, c->res, c->flags);
    atomic_store_explicit((_Atomic unsigned *)cq_head, *cq_head + 1, memory_order_release);
  }
  return res;
}

static void pin(int cpu) { cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s); sched_setaffinity(0, sizeof s, &s); }

// The client: reads commands from `cmd`: 'c' connect, 'w' write 64 bytes, 'q' quit.
static void client(int cmd, int port) {
  pin(1);
  int fd = -1; char c, buf[64];
  memset(buf, 'x', sizeof buf);
  while (read(cmd, &c, 1) == 1) {
    if (c == 'c') {
      fd = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
      if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) perror("connect");
    } else if (c == 'w') { if (write(fd, buf, sizeof buf) < 0) perror("write"); }
    else break;
  }
  _exit(0);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "coop";
  int use_evfd = strstr(mode, "-evfd") != NULL;
  unsigned flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_TASKRUN_FLAG;
  if (strncmp(mode, "plain", 5) != 0) flags |= IORING_SETUP_COOP_TASKRUN;
  else flags &= ~IORING_SETUP_TASKRUN_FLAG;   // TASKRUN_FLAG needs COOP_TASKRUN
  if (strncmp(mode, "defer", 5) == 0) flags |= IORING_SETUP_DEFER_TASKRUN;
  pin(0);
  struct io_uring_params p = { .flags = flags };
  ring_fd = (int)syscall(__NR_io_uring_setup, 64, &p);
  if (ring_fd < 0) { perror("io_uring_setup"); return 1; }
  printf("mode %s: setup flags 0x%x\n", mode, p.flags);
  size_t sz = p.sq_off.array + p.sq_entries * 4;
  size_t csz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  if (csz > sz) sz = csz;
  uint8_t *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  if (m == MAP_FAILED || sqes == MAP_FAILED) { perror("mmap"); return 1; }
  sq_tail = (unsigned *)(m + p.sq_off.tail); sq_flags = (unsigned *)(m + p.sq_off.flags);
  sq_array = (unsigned *)(m + p.sq_off.array); sq_mask = *(unsigned *)(m + p.sq_off.ring_mask);
  cq_head = (unsigned *)(m + p.cq_off.head); cq_tail = (unsigned *)(m + p.cq_off.tail);
  cq_mask = *(unsigned *)(m + p.cq_off.ring_mask); cqes = (struct io_uring_cqe *)(m + p.cq_off.cqes);

  struct io_uring_rsrc_register rr = { .nr = 16, .flags = IORING_RSRC_REGISTER_SPARSE };
  if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_FILES2, &rr, sizeof rr) < 0) { perror("files"); return 1; }
  struct io_uring_buf_ring *br = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static char pool[16][4096];
  struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = 16, .bgid = 0 };
  if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) { perror("pbuf"); return 1; }
  for (int i = 0; i < 16; i++) { br->bufs[i].addr = (uint64_t)(uintptr_t)pool[i]; br->bufs[i].len = 4096; br->bufs[i].bid = (uint16_t)i; }
  atomic_store_explicit((_Atomic uint16_t *)&br->tail, 16, memory_order_release);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t al = sizeof a;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&a, &al) < 0) { perror("listen"); return 1; }

  int cmd[2];
  if (pipe(cmd) < 0) return 1;
  pid_t kid = fork();
  if (kid == 0) { close(cmd[1]); client(cmd[0], ntohs(a.sin_port)); }
  close(cmd[0]);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ee = { .events = EPOLLIN };
  if (use_evfd) {
    evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (evfd < 0 || syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_EVENTFD, &evfd, 1) < 0) { perror("eventfd"); return 1; }
  }
  if (epoll_ctl(ep, EPOLL_CTL_ADD, use_evfd ? evfd : ring_fd, &ee) < 0) { perror("epoll_ctl"); return 1; }

  struct io_uring_sqe *s = sqe();
  s->opcode = IORING_OP_ACCEPT; s->fd = lfd; s->ioprio = IORING_ACCEPT_MULTISHOT; s->file_index = IORING_FILE_INDEX_ALLOC; s->user_data = 1;
  printf("  submit accept: enter=%d\n", enter(1, 0, 0));

  // 1. accept, asleep in epoll_wait
  printf("accept, asleep:\n");
  if (write(cmd[1], "c", 1) != 1) return 1;
  wait_ring(ep, "accept/asleep");
  int slot = reap(1);
  if (slot < 0) { printf("no accept completion: slot %d\n", slot); return 1; }

  // 2. accept, busy in user space (200 ms spin, no system call) while it happens
  printf("accept, busy:\n");
  if (write(cmd[1], "c", 1) != 1) return 1;
  spin_us(2000);
  printf("  after a 2 ms spin: cq=%u taskrun=%d\n", cq_ready(), taskrun());
  spin_us(200000);
  printf("  after a 200 ms spin: cq=%u taskrun=%d\n", cq_ready(), taskrun());
  wait_ring(ep, "accept/busy");
  slot = reap(1);   // the client's connection now (its first one is left idle)

  s = sqe();
  s->opcode = IORING_OP_RECV; s->fd = slot; s->flags = IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT; s->ioprio = IORING_RECV_MULTISHOT;
  s->buf_group = 0; s->user_data = 2;
  printf("  submit recv on slot %d: enter=%d\n", slot, enter(1, 0, 0));
  reap(2);   // nothing yet

  // 3. receive, asleep
  printf("recv, asleep:\n");
  for (int k = 0; k < 3; k++) {
    if (write(cmd[1], "w", 1) != 1) return 1;
    wait_ring(ep, "recv/asleep");
    reap(2);
  }
  // 3b. (eventfd modes) 20 receives while asleep, each timed from the client's write to the eventfd's report
  if (use_evfd) {
    printf("recv, asleep, 20 times: write -> eventfd reported, us:");
    double worst = 0, sum = 0;
    for (int k = 0; k < 20; k++) {
      double t0 = now_us();
      if (write(cmd[1], "w", 1) != 1) return 1;
      struct epoll_event ev;
      int r = epoll_wait(ep, &ev, 1, 300);
      double d = now_us() - t0;
      printf(" %.0f%s", d, r > 0 ? "" : "(timeout)");
      if (d > worst) worst = d;
      sum += d;
      uint64_t v; if (read(evfd, &v, sizeof v) < 0) { }
      enter(0, 0, IORING_ENTER_GETEVENTS);
      while (cq_ready()) atomic_store_explicit((_Atomic unsigned *)cq_head, *cq_head + 1, memory_order_release);
      spin_us(1000);
    }
    printf("\n  mean %.0f us, worst %.0f us\n", sum / 20, worst);
  }
  // 4. receive, busy (short spin: like JavaScript running a turn)
  printf("recv, busy 2 ms:\n");
  if (write(cmd[1], "w", 1) != 1) return 1;
  spin_us(2000);
  printf("  after the spin: cq=%u taskrun=%d\n", cq_ready(), taskrun());
  wait_ring(ep, "recv/busy");
  reap(2);
  // 5. receive, busy, then an unrelated system call (getppid) before sleeping
  printf("recv, busy 2 ms, then getppid():\n");
  if (write(cmd[1], "w", 1) != 1) return 1;
  spin_us(2000);
  unsigned c0 = cq_ready(); int t0 = taskrun();
  (void)syscall(SYS_getppid);
  printf("  after the spin: cq=%u taskrun=%d; after getppid: cq=%u taskrun=%d\n", c0, t0, cq_ready(), taskrun());
  wait_ring(ep, "recv/busy+syscall");
  reap(2);
  // 6. receive, busy, then an enter(GETEVENTS) when TASKRUN says so
  printf("recv, busy 2 ms, then enter(GETEVENTS) if taskrun:\n");
  if (write(cmd[1], "w", 1) != 1) return 1;
  spin_us(2000);
  c0 = cq_ready(); t0 = taskrun();
  int er = t0 ? enter(0, 0, IORING_ENTER_GETEVENTS) : 0;
  printf("  after the spin: cq=%u taskrun=%d; enter=%d; then cq=%u taskrun=%d\n", c0, t0, er, cq_ready(), taskrun());
  wait_ring(ep, "recv/busy+enter");
  reap(2);

  // 7. any system call runs the task work on its way out (a 100 us spin rarely meets a tick): 5 tries
  printf("recv, busy 100 us, then getppid(), 5 times:\n");
  for (int k = 0; k < 5; k++) {
    if (write(cmd[1], "w", 1) != 1) return 1;
    spin_us(100);
    c0 = cq_ready(); t0 = taskrun();
    (void)syscall(SYS_getppid);
    printf("  after the spin: cq=%u taskrun=%d; after getppid: cq=%u taskrun=%d\n", c0, t0, cq_ready(), taskrun());
    wait_ring(ep, "recv/busy+getppid");
    reap(2);
  }
  // 8. a completion posted inline by our own enter (a NOP): is the ring fd reported without any other wake-up?
  printf("NOP posted inline by the submitting enter:\n");
  s = sqe(); s->opcode = IORING_OP_NOP; s->user_data = 3;
  er = enter(1, 0, 0);
  printf("  enter=%d: cq=%u taskrun=%d\n", er, cq_ready(), taskrun());
  wait_ring(ep, "nop/inline");
  // 9. level-triggered: the CQE left in the CQ (not reaped), epoll_wait again
  wait_ring(ep, "nop/left in CQ");
  reap(3);
  // 10. and once the CQ is empty, the ring fd is no longer reported
  {
    struct epoll_event ev;
    int r = epoll_wait(ep, &ev, 1, 0);
    printf("  CQ emptied: epoll_wait(0) = %d\n", r);
  }

  if (write(cmd[1], "q", 1) != 1) return 1;
  waitpid(kid, NULL, 0);
  return 0;
}
