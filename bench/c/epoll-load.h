/* The skeleton of the epoll load generators (rpc-load, ws-load): their common flags, the run's counters, the queue of
 * connections to (re)open, the nonblocking connect, the loop with its warm-up and measured window, and the one JSON
 * line bench/lib/proc.ts reads. A program brings its connection state and two functions — open connection i, handle
 * epoll events on connection i — and counts its transactions into the counters below.
 *
 * Phase marks on stderr ("rpc-load: phase measure" / "rpc-load: phase end", whatever the program: proc.ts matches
 * them) let a harness sample CPU counters over exactly the measured window. Include after common.h and loadgen.h. */
#pragma once
#include <netinet/ip.h>
#include <sys/epoll.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define EVENTS_MAX 1024

/* ---- flags ---------------------------------------------------------------------------------------------------- */

struct load_opts {
  const char *host;
  long port, conns, txns, size, pipeline, src_ips;
  double duration, warmup;
  long long max_txns;
  int rst_close;
};

/* What a program accepts beyond the common flags' shape: the largest --size and --txns, and --rst-close or not. */
struct load_limits {
  long size_max, txns_max;
  int rst_close;
};

static struct load_opts o;

/* Parses the flags into `o`; --help prints `usage`; anything wrong dies naming the flag. */
static void parse_load_opts(int argc, char **argv, const char *usage, struct load_limits lim) {
  struct load_opts r = {"127.0.0.1", 9000, 256, 0, 64, 1, 0, 5.0, 1.0, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("%s", usage);
      exit(0);
    }
    if (lim.rst_close && strcmp(a, "--rst-close") == 0) {
      r.rst_close = 1;
      continue;
    }
    if (i + 1 >= argc) die("%s: missing value (try --help)", a);
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0) r.host = v;
    else if (strcmp(a, "--port") == 0) r.port = parse_long(a, v, 1, 65535);
    else if (strcmp(a, "--conns") == 0) r.conns = parse_long(a, v, 1, 100000);
    else if (strcmp(a, "--txns") == 0) r.txns = parse_long(a, v, 0, lim.txns_max);
    else if (strcmp(a, "--size") == 0) r.size = parse_long(a, v, 1, lim.size_max);
    else if (strcmp(a, "--pipeline") == 0) r.pipeline = parse_long(a, v, 1, 1024);
    else if (strcmp(a, "--src-ips") == 0) r.src_ips = parse_long(a, v, 0, 254);
    else if (strcmp(a, "--duration") == 0) r.duration = parse_double(a, v, 0.001, 3600);
    else if (strcmp(a, "--warmup") == 0) r.warmup = parse_double(a, v, 0, 3600);
    else if (strcmp(a, "--max-txns") == 0) r.max_txns = parse_long(a, v, 1, 1L << 62);
    else die("unknown flag %s (try --help)", a);
  }
  o = r;
}

/* ---- the run's state and counters ---------------------------------------------------------------------------- */

static const char *load_name;             /* the program, in messages */
static int epfd;
static struct sockaddr_in server_addr;
static uint64_t next_serial, next_src;    /* connections opened; source addresses handed out */
static int *reconnect_queue;              /* connections to open at the top of the next loop round */
static unsigned char *reconnect_queued;   /* [conns]: on that queue */
static long reconnect_len;

static int measuring, stopping;
static struct histogram hist;             /* latency of the measured transactions */
static uint64_t all_txns, txns, connects, errors, mismatches, consecutive_failures, bytes_in;
static uint64_t now;                      /* now_ns() at the event being handled */

/* Opens connection i at the top of the next loop round (once, however often it is asked). */
static void schedule_reconnect(int i) {
  if (!reconnect_queued[i]) {
    reconnect_queued[i] = 1;
    reconnect_queue[reconnect_len++] = i;
  }
}

/* Closes connection i's socket (*fd = -1), counts a failure when `failed`, and queues the connection to reopen. */
static void load_drop(int i, int *fd, int failed) {
  if (*fd >= 0) close(*fd); /* SO_LINGER {1,0} was set at creation with --rst-close */
  *fd = -1;
  if (failed) {
    if (measuring) errors++;
    consecutive_failures++;
  }
  schedule_reconnect(i);
}

/* A nonblocking TCP connect to the server for connection i (TCP_NODELAY; SO_LINGER {1,0} with --rst-close; a source
 * address 127.0.0.2 … with --src-ips), registered edge-triggered with epoll; returns the socket, or -1 when any step
 * failed (nothing left open). The first EPOLLOUT says it is up, EPOLLERR that it failed. */
static int load_connect(int i) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o.rst_close) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  if (o.src_ips > 0) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(next_src++ % (uint64_t)o.src_ips));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
      close(fd);
      return -1;
    }
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = (uint32_t)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Signals, the open-file limit (--conns must fit), the server address, epoll and the reconnect queue. */
static void load_init(const char *name) {
  load_name = name;
  install_stop_signals();
  long nofile = raise_nofile_limit();
  if (o.conns > nofile - 16) die("--conns %ld exceeds the open-file limit %ld (minus 16)", o.conns, nofile);
  server_addr = make_addr(o.host, o.port);
  reconnect_queue = calloc((size_t)o.conns, sizeof *reconnect_queue);
  reconnect_queued = calloc((size_t)o.conns, 1);
  if (reconnect_queue == NULL || reconnect_queued == NULL) die("out of memory");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
}

static void start_measuring(uint64_t *measure_started) {
  measuring = 1;
  *measure_started = now;
  fprintf(stderr, "rpc-load: phase measure\n");
}

/* Runs the load: opens every connection, then loops — reopen what was dropped, wait for events, hand each to
 * `on_event` — through --warmup and --duration (or --max-txns measured transactions, or a stop signal); then prints
 * the JSON line. Returns the exit code: 1 if any byte mismatched, 3 if the server cannot be reached (too many
 * connection failures in a row) or nothing was done, else 0. */
static int load_run(void (*open_conn)(int i), void (*on_event)(int i, uint32_t events)) {
  now = now_ns();
  const uint64_t measure_at = now + (uint64_t)(o.warmup * 1e9);
  const uint64_t end_at = measure_at + (uint64_t)(o.duration * 1e9);
  const uint64_t failures_max = (uint64_t)o.conns * 20 + 1000;
  uint64_t measure_started = 0;
  if (o.warmup == 0) start_measuring(&measure_started);
  for (long i = 0; i < o.conns; i++) schedule_reconnect((int)i);

  static struct epoll_event events[EVENTS_MAX];
  int exit_code = 0;
  while (!stop_requested) {
    /* Reconnect what was dropped; entries that fail again go back on the queue. */
    long pending = reconnect_len;
    reconnect_len = 0;
    for (long k = 0; k < pending; k++) {
      int i = reconnect_queue[k];
      reconnect_queued[i] = 0;
      open_conn(i);
    }
    if (consecutive_failures > failures_max) {
      fprintf(stderr, "%s: %llu connection failures in a row (is the server up at %s:%ld?)\n", load_name,
              (unsigned long long)consecutive_failures, o.host, o.port);
      exit_code = 3;
      break;
    }
    uint64_t deadline = measuring ? end_at : measure_at;
    int timeout_ms = deadline > now ? (int)((deadline - now) / 1000000u) + 1 : 0;
    if (reconnect_len > 0) timeout_ms = 1; /* don't spin on synchronous connect failures */
    int n = epoll_wait(epfd, events, EVENTS_MAX, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int k = 0; k < n; k++) {
      now = now_ns();
      on_event((int)events[k].data.u32, events[k].events);
    }
    now = now_ns();
    if (!measuring && now >= measure_at) start_measuring(&measure_started);
    if (measuring && (now >= end_at || (o.max_txns > 0 && txns >= (uint64_t)o.max_txns))) break;
  }
  stopping = 1;
  fprintf(stderr, "rpc-load: phase end\n");
  double seconds = measuring ? (double)(now - measure_started) / 1e9 : 0;
  printf("{\"txns\":%llu,\"seconds\":%.6f,\"tps\":%.1f,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,"
         "\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,\"connects\":%llu,\"errors\":%llu,"
         "\"mismatches\":%llu,\"all_txns\":%llu,\"bytes_in\":%llu,\"conns\":%ld,\"size\":%ld,"
         "\"txns_per_conn\":%ld,\"pipeline\":%ld}\n",
         (unsigned long long)txns, seconds, seconds > 0 ? (double)txns / seconds : 0,
         hist_percentile_us(&hist, 0.50), hist_percentile_us(&hist, 0.90), hist_percentile_us(&hist, 0.99),
         hist_percentile_us(&hist, 0.999), (double)hist.max_ns / 1000.0,
         hist.count ? (double)hist.sum_ns / (double)hist.count / 1000.0 : 0, (unsigned long long)connects,
         (unsigned long long)errors, (unsigned long long)mismatches, (unsigned long long)all_txns,
         (unsigned long long)bytes_in, o.conns, o.size, o.txns, o.pipeline);
  fflush(stdout);
  if (mismatches > 0) return 1;
  if (exit_code == 0 && all_txns == 0) exit_code = 3;
  return exit_code;
}
