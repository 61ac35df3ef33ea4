/* Shared helpers for the benchmark programs: flag parsing, the listening socket, stop signals.
 * Header-only so each program stays one translation unit; libc only. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static volatile sig_atomic_t stop_requested;

static inline void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

/* Installs SIGTERM/SIGINT handlers without SA_RESTART, so a blocking epoll_wait or io_uring_enter
 * returns EINTR and the loop sees stop_requested; SIGPIPE is ignored (peers reset all the time). */
static inline void install_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

/* Raises the soft open-file limit to the hard one; returns the new soft limit. */
static inline long raise_nofile_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  return (long)rl.rlim_cur;
}

static inline long parse_long(const char *flag, const char *s, long lo, long hi) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    die("%s: expected an integer in [%ld, %ld], got '%s'", flag, lo, hi, s);
  return v;
}

static inline double parse_double(const char *flag, const char *s, double lo, double hi) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
    die("%s: expected a number in [%g, %g], got '%s'", flag, lo, hi, s);
  return v;
}

static inline struct sockaddr_in make_addr(const char *host, long port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("--host: not an IPv4 address: '%s'", host);
  return a;
}

/* Server flags: --port P --host H (defaults 127.0.0.1:9000; port 0 picks a free one). */
struct server_opts {
  const char *host;
  long port;
};

static inline struct server_opts parse_server_opts(int argc, char **argv, const char *usage) {
  struct server_opts o = {"127.0.0.1", 9000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("%s", usage);
      exit(0);
    }
    if (i + 1 >= argc) die("%s: missing value (try --help)", a);
    if (strcmp(a, "--port") == 0) o.port = parse_long(a, argv[++i], 0, 65535);
    else if (strcmp(a, "--host") == 0) o.host = argv[++i];
    else die("unknown flag %s (try --help)", a);
  }
  return o;
}

/* Opens a TCP listener with TCP_NODELAY set on it (accepted sockets inherit it, so neither server
 * pays a setsockopt per connection), and prints "listening on H:P" once it accepts connections. */
static inline int open_listener(const struct server_opts *o, int sock_flags) {
  struct sockaddr_in a = make_addr(o->host, o->port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind %s:%ld: %s", o->host, o->port, strerror(errno));
  if (listen(fd, LISTEN_BACKLOG) != 0) die("listen: %s", strerror(errno));
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  printf("listening on %s:%u\n", o->host, ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
