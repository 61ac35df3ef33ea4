/* rpc-load: the paper's RPC microbenchmark client. C connections, each doing N request/response
 * transactions of S bytes (the server echoes) before it closes and reconnects (N = 0: persistent),
 * with D requests outstanding per connection. One thread, edge-triggered epoll, nonblocking connect.
 *
 * Every response byte is verified: request (serial, txn) is a slice of a random table at an offset
 * hashed from the connection's serial number and the transaction number, so a server that mixes up,
 * drops, duplicates or corrupts bytes is caught. A mismatch is printed, counted, and makes the exit
 * code 1. Latency per transaction (from the first write of the request, or from connect() for a
 * connection's first transaction) goes into a log-linear histogram. Stops by itself at --duration.
 *
 * Output: one JSON line on stdout. Phase marks on stderr ("rpc-load: phase measure" / "phase end")
 * let a harness sample CPU counters over exactly the measured window. */
#include "common.h"
#include "loadgen.h"

#include <netinet/ip.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define TABLE_SPAN 65536u /* distinct request offsets */
#define READ_SIZE (256 * 1024)
#define EVENTS_MAX 1024
#define IOV_MAX_PER_WRITE 64
#define SIZE_MAX_BYTES (1u << 20)
#define MISMATCH_REPORTS_MAX 5

static const char usage[] =
    "usage: rpc-load [options]\n"
    "  --host H          server address (default 127.0.0.1)\n"
    "  --port P          server port (default 9000)\n"
    "  --conns C         concurrent connections (default 256)\n"
    "  --txns N          transactions per connection, then reconnect; 0 = persistent (default 0)\n"
    "  --size S          request bytes; the response is the same bytes echoed (default 64)\n"
    "  --pipeline D      requests outstanding per connection (default 1)\n"
    "  --duration SEC    measured time (default 5)\n"
    "  --warmup SEC      unmeasured time before it (default 1)\n"
    "  --max-txns N      stop after N measured transactions (default: no bound)\n"
    "  --src-ips K       bind sockets round-robin to 127.0.0.2 .. 127.0.0.(K+1) (default 0: kernel picks)\n"
    "  --rst-close       close with SO_LINGER {1,0} (RST, no TIME_WAIT)\n"
    "Prints {\"txns\",\"seconds\",\"tps\",\"p50_us\",\"p99_us\",\"connects\",\"errors\",\"mismatches\",...}.\n"
    "Exit code 1 if any response byte mismatched, 3 if nothing could be done, 0 otherwise.\n";

struct opts {
  const char *host;
  long port, conns, txns, size, pipeline, src_ips;
  double duration, warmup;
  long long max_txns;
  int rst_close;
};

/* ---- request pattern ---------------------------------------------------------------------- */

static inline const unsigned char *request_bytes(uint64_t serial, uint64_t txn) {
  return table + (mix64(serial * 0x9e3779b97f4a7c15ull + txn) & (TABLE_SPAN - 1));
}

/* ---- connections ---------------------------------------------------------------------------- */

enum conn_state { IDLE, CONNECTING, ACTIVE };

struct conn {
  int fd;
  enum conn_state state;
  uint64_t serial;           /* global connection number: seeds this connection's patterns */
  uint64_t send_txn;         /* next transaction to (finish) writing */
  uint64_t recv_txn;         /* transaction whose response is being read */
  uint32_t send_off;         /* bytes of send_txn already written */
  uint32_t recv_off;         /* bytes of recv_txn's response already checked */
  const unsigned char *recv_expected; /* request_bytes(serial, recv_txn) */
  uint64_t connect_ns;
  uint64_t *start_ns;        /* [pipeline]: when transaction t started, at t % pipeline */
  int queued;                /* on the reconnect queue */
};

static struct opts o;
static struct conn *conns;
static int epfd;
static struct sockaddr_in server_addr;
static uint64_t next_serial, next_src;
static int *reconnect_queue;
static long reconnect_len;
static unsigned char *rbuf;

static int measuring, stopping;
static struct histogram hist;
static uint64_t all_txns, txns, connects, errors, mismatches, consecutive_failures, bytes_in;
static uint64_t now;

static void schedule_reconnect(int i) {
  if (!conns[i].queued) {
    conns[i].queued = 1;
    reconnect_queue[reconnect_len++] = i;
  }
}

static void conn_drop(int i, int failed) {
  struct conn *c = &conns[i];
  if (c->fd >= 0) close(c->fd); /* SO_LINGER {1,0} was set at creation with --rst-close */
  c->fd = -1;
  c->state = IDLE;
  if (failed) {
    if (measuring) errors++;
    consecutive_failures++;
  }
  schedule_reconnect(i);
}

static void conn_open(int i) {
  struct conn *c = &conns[i];
  c->send_txn = c->recv_txn = 0;
  c->send_off = c->recv_off = 0;
  c->serial = next_serial++;
  c->recv_expected = request_bytes(c->serial, 0);
  c->connect_ns = now;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    conn_drop(i, 1);
    return;
  }
  c->fd = fd;
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
      conn_drop(i, 1);
      return;
    }
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = (uint32_t)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 && errno != EINPROGRESS) {
    conn_drop(i, 1);
    return;
  }
  c->state = CONNECTING; /* the first EPOLLOUT says it is up (or EPOLLERR that it failed) */
}

/* Writes requests until `pipeline` are outstanding or the connection's quota is written. */
static void pump_send(int i) {
  struct conn *c = &conns[i];
  uint64_t quota = o.txns > 0 ? (uint64_t)o.txns : UINT64_MAX;
  while (!stopping) {
    struct iovec iov[IOV_MAX_PER_WRITE];
    int n = 0;
    uint64_t t = c->send_txn;
    while (n < IOV_MAX_PER_WRITE && t < quota && t < c->recv_txn + (uint64_t)o.pipeline) {
      uint32_t off = t == c->send_txn ? c->send_off : 0;
      if (off == 0) c->start_ns[t % (uint64_t)o.pipeline] = t == 0 ? c->connect_ns : now;
      iov[n].iov_base = (void *)(request_bytes(c->serial, t) + off);
      iov[n].iov_len = (size_t)o.size - off;
      n++;
      t++;
    }
    if (n == 0) return;
    ssize_t w = writev(c->fd, iov, n);
    if (w < 0) {
      if (errno != EAGAIN) conn_drop(i, 1);
      return; /* EAGAIN: the edge-triggered EPOLLOUT brings us back */
    }
    size_t left = (size_t)w;
    for (int k = 0; k < n && left > 0; k++) {
      if (left >= iov[k].iov_len) {
        left -= iov[k].iov_len;
        c->send_txn++;
        c->send_off = 0;
      } else {
        c->send_off += (uint32_t)left;
        return; /* short write: socket buffer full */
      }
    }
  }
}

static void report_mismatch(const struct conn *c, const unsigned char *got, uint32_t n) {
  if (++mismatches > MISMATCH_REPORTS_MAX) return;
  uint32_t at = 0;
  while (at < n && got[at] == c->recv_expected[c->recv_off + at]) at++;
  fprintf(stderr,
          "rpc-load: MISMATCH connection serial %llu txn %llu byte %u: expected 0x%02x got 0x%02x\n",
          (unsigned long long)c->serial, (unsigned long long)c->recv_txn, c->recv_off + at,
          at < n ? c->recv_expected[c->recv_off + at] : 0, at < n ? got[at] : 0);
}

/* Checks n response bytes; returns 0, or -1 if the connection must be dropped. */
static int consume(int i, const unsigned char *p, size_t n) {
  struct conn *c = &conns[i];
  while (n > 0) {
    /* Bytes of recv_txn's request written so far: a response can't be longer than that. */
    uint32_t written = c->recv_txn < c->send_txn ? (uint32_t)o.size : c->send_off;
    if (c->recv_txn > c->send_txn || written <= c->recv_off) {
      if (++mismatches <= MISMATCH_REPORTS_MAX)
        fprintf(stderr, "rpc-load: MISMATCH connection serial %llu: %zu bytes nobody asked for\n",
                (unsigned long long)c->serial, n);
      return -1;
    }
    uint32_t take = written - c->recv_off;
    if (take > n) take = (uint32_t)n;
    if (memcmp(p, c->recv_expected + c->recv_off, take) != 0) {
      report_mismatch(c, p, take);
      return -1;
    }
    c->recv_off += take;
    p += take;
    n -= take;
    if (c->recv_off == (uint32_t)o.size) {
      all_txns++;
      consecutive_failures = 0;
      if (measuring) {
        txns++;
        hist_record(&hist, now - c->start_ns[c->recv_txn % (uint64_t)o.pipeline]);
      }
      c->recv_txn++;
      c->recv_off = 0;
      c->recv_expected = request_bytes(c->serial, c->recv_txn);
    }
  }
  return 0;
}

static void on_readable(int i) {
  struct conn *c = &conns[i];
  for (;;) {
    ssize_t n = read(c->fd, rbuf, READ_SIZE);
    if (n < 0) {
      if (errno == EAGAIN) break;
      conn_drop(i, 1);
      return;
    }
    if (n == 0) { /* the server closed: we always close first, so this is a failure */
      conn_drop(i, 1);
      return;
    }
    if (measuring) bytes_in += (uint64_t)n;
    if (consume(i, rbuf, (size_t)n) != 0) {
      conn_drop(i, 0);
      return;
    }
    if (n < READ_SIZE) break; /* a short read drained the socket; the next arrival re-arms the edge */
  }
  if (o.txns > 0 && c->recv_txn == (uint64_t)o.txns) {
    conn_drop(i, 0);
    return;
  }
  pump_send(i);
}

static void on_event(int i, uint32_t events) {
  struct conn *c = &conns[i];
  if (c->state == IDLE) return; /* dropped earlier in this batch */
  if (c->state == CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      conn_drop(i, 1);
      return;
    }
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    c->state = ACTIVE;
    if (measuring) connects++;
    pump_send(i);
    if (c->state != ACTIVE) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
    on_readable(i);
    if (c->state != ACTIVE || events & EPOLLIN) return;
  }
  if (events & EPOLLOUT) pump_send(i);
}

static struct opts parse_opts(int argc, char **argv) {
  struct opts r = {"127.0.0.1", 9000, 256, 0, 64, 1, 0, 5.0, 1.0, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("%s", usage);
      exit(0);
    }
    if (strcmp(a, "--rst-close") == 0) {
      r.rst_close = 1;
      continue;
    }
    if (i + 1 >= argc) die("%s: missing value (try --help)", a);
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0) r.host = v;
    else if (strcmp(a, "--port") == 0) r.port = parse_long(a, v, 1, 65535);
    else if (strcmp(a, "--conns") == 0) r.conns = parse_long(a, v, 1, 100000);
    else if (strcmp(a, "--txns") == 0) r.txns = parse_long(a, v, 0, 1L << 40);
    else if (strcmp(a, "--size") == 0) r.size = parse_long(a, v, 1, SIZE_MAX_BYTES);
    else if (strcmp(a, "--pipeline") == 0) r.pipeline = parse_long(a, v, 1, 1024);
    else if (strcmp(a, "--src-ips") == 0) r.src_ips = parse_long(a, v, 0, 254);
    else if (strcmp(a, "--duration") == 0) r.duration = parse_double(a, v, 0.001, 3600);
    else if (strcmp(a, "--warmup") == 0) r.warmup = parse_double(a, v, 0, 3600);
    else if (strcmp(a, "--max-txns") == 0) r.max_txns = parse_long(a, v, 1, 1L << 62);
    else die("unknown flag %s (try --help)", a);
  }
  return r;
}

int main(int argc, char **argv) {
  o = parse_opts(argc, argv);
  install_stop_signals();
  long nofile = raise_nofile_limit();
  if (o.conns > nofile - 16) die("--conns %ld exceeds the open-file limit %ld (minus 16)", o.conns, nofile);
  server_addr = make_addr(o.host, o.port);
  table_fill(TABLE_SPAN + (size_t)o.size);
  rbuf = malloc(READ_SIZE);
  conns = calloc((size_t)o.conns, sizeof *conns);
  reconnect_queue = calloc((size_t)o.conns, sizeof *reconnect_queue);
  uint64_t *starts = calloc((size_t)(o.conns * o.pipeline), sizeof *starts);
  if (rbuf == NULL || conns == NULL || reconnect_queue == NULL || starts == NULL) die("out of memory");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));

  now = now_ns();
  const uint64_t t0 = now;
  const uint64_t measure_at = t0 + (uint64_t)(o.warmup * 1e9);
  const uint64_t end_at = measure_at + (uint64_t)(o.duration * 1e9);
  const uint64_t failures_max = (uint64_t)o.conns * 20 + 1000;
  uint64_t measure_started = 0;
  if (o.warmup == 0) {
    measuring = 1;
    measure_started = now;
    fprintf(stderr, "rpc-load: phase measure\n");
  }
  for (long i = 0; i < o.conns; i++) {
    conns[i].fd = -1;
    conns[i].start_ns = starts + i * o.pipeline;
    schedule_reconnect((int)i);
  }

  static struct epoll_event events[EVENTS_MAX];
  int exit_code = 0;
  while (!stop_requested) {
    /* Reconnect what was dropped; entries that fail again go back on the queue. */
    long pending = reconnect_len;
    reconnect_len = 0;
    for (long k = 0; k < pending; k++) {
      int i = reconnect_queue[k];
      conns[i].queued = 0;
      conn_open(i);
    }
    if (consecutive_failures > failures_max) {
      fprintf(stderr, "rpc-load: %llu connection failures in a row (is the server up at %s:%ld?)\n",
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
    if (!measuring && now >= measure_at) {
      measuring = 1;
      measure_started = now;
      fprintf(stderr, "rpc-load: phase measure\n");
    }
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
