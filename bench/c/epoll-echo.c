/* epoll-echo: the paper's "baseline Linux" server. One thread, level-triggered epoll, nonblocking
 * accept4, and one read() + write() per readable event. A partial write parks the remainder in a
 * per-connection buffer and switches the interest to EPOLLOUT (no reading until it drains), so memory
 * per connection stays bounded by one read.
 *
 *   epoll-echo --port P --host H
 * Prints "listening on H:P" when ready; on SIGTERM/SIGINT prints {"accepted":N,"bytes":N}, exits 0. */
#include "common.h"

#include <fcntl.h>
#include <sys/epoll.h>

#define READ_SIZE (64 * 1024)
#define EVENTS_MAX 512
#define ACCEPTS_PER_EVENT_MAX 64

static const char usage[] =
    "usage: epoll-echo [--port P] [--host H]\n"
    "Single-threaded epoll echo server (baseline Linux). Prints 'listening on H:P';\n"
    "on SIGTERM prints {\"accepted\":N,\"bytes\":N} and exits 0.\n";

struct conn {
  char *pending; /* unsent tail of the last read, owned by this connection */
  uint32_t pending_len;
  uint32_t pending_off;
};

static struct conn *conns;
static long conns_max;
static int epfd;
static uint64_t accepted, bytes_echoed, accept_errors;

static void conn_close(int fd) {
  struct conn *c = &conns[fd];
  free(c->pending);
  c->pending = NULL;
  c->pending_len = c->pending_off = 0;
  close(fd); /* also removes it from the epoll set */
}

static void set_interest(int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0) conn_close(fd);
}

/* Writes what is parked; returns 1 when drained, 0 when more is left, -1 when the connection died. */
static int flush_pending(int fd) {
  struct conn *c = &conns[fd];
  while (c->pending_off < c->pending_len) {
    ssize_t w = write(fd, c->pending + c->pending_off, c->pending_len - c->pending_off);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    c->pending_off += (uint32_t)w;
  }
  free(c->pending);
  c->pending = NULL;
  c->pending_len = c->pending_off = 0;
  return 1;
}

static void on_listener(int lfd) {
  for (int i = 0; i < ACCEPTS_PER_EVENT_MAX; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == ECONNABORTED) continue;
      accept_errors++; /* EMFILE/ENFILE/ENOBUFS: leave it queued, level-triggered epoll retries */
      return;
    }
    if (fd >= conns_max) {
      close(fd);
      accept_errors++;
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      accept_errors++;
      continue;
    }
    accepted++;
  }
}

static void on_conn(int fd, uint32_t events, char *buf) {
  struct conn *c = &conns[fd];
  if (c->pending != NULL) {
    int r = flush_pending(fd);
    if (r < 0) conn_close(fd);
    else if (r > 0) set_interest(fd, EPOLLIN);
    return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  ssize_t n = read(fd, buf, READ_SIZE);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    conn_close(fd); /* EOF or reset */
    return;
  }
  bytes_echoed += (uint64_t)n;
  ssize_t w = write(fd, buf, (size_t)n);
  if (w < 0) {
    if (errno != EAGAIN) {
      conn_close(fd);
      return;
    }
    w = 0;
  }
  if (w < n) {
    c->pending_len = (uint32_t)(n - w);
    c->pending_off = 0;
    c->pending = malloc(c->pending_len);
    if (c->pending == NULL) die("out of memory");
    memcpy(c->pending, buf + w, c->pending_len);
    set_interest(fd, EPOLLOUT);
  }
}

int main(int argc, char **argv) {
  struct server_opts o = parse_server_opts(argc, argv, usage);
  install_stop_signals();
  conns_max = raise_nofile_limit();
  conns = calloc((size_t)conns_max, sizeof *conns);
  static char buf[READ_SIZE];
  if (conns == NULL) die("out of memory");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  int lfd = open_listener(&o, SOCK_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));

  struct epoll_event events[EVENTS_MAX];
  while (!stop_requested) {
    int n = epoll_wait(epfd, events, EVENTS_MAX, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) on_listener(lfd);
      else on_conn(fd, events[i].events, buf);
    }
  }
  printf("{\"accepted\":%llu,\"bytes\":%llu,\"accept_errors\":%llu}\n", (unsigned long long)accepted,
         (unsigned long long)bytes_echoed, (unsigned long long)accept_errors);
  fflush(stdout);
  return 0;
}
