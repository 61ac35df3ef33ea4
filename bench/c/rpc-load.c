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
#include "epoll-load.h"

#include <sys/uio.h>

#define TABLE_SPAN 65536u /* distinct request offsets */
#define READ_SIZE (256 * 1024)
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
};

static struct conn *conns;
static unsigned char *rbuf;

static void conn_drop(int i, int failed) {
  conns[i].state = IDLE;
  load_drop(i, &conns[i].fd, failed);
}

static void conn_open(int i) {
  struct conn *c = &conns[i];
  c->send_txn = c->recv_txn = 0;
  c->send_off = c->recv_off = 0;
  c->serial = next_serial++;
  c->recv_expected = request_bytes(c->serial, 0);
  c->connect_ns = now;
  c->fd = load_connect(i);
  if (c->fd < 0) {
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

int main(int argc, char **argv) {
  parse_load_opts(argc, argv, usage, (struct load_limits){SIZE_MAX_BYTES, 1L << 40, 1});
  load_init("rpc-load");
  table_fill(TABLE_SPAN + (size_t)o.size);
  rbuf = malloc(READ_SIZE);
  conns = calloc((size_t)o.conns, sizeof *conns);
  uint64_t *starts = calloc((size_t)(o.conns * o.pipeline), sizeof *starts);
  if (rbuf == NULL || conns == NULL || starts == NULL) die("out of memory");
  for (long i = 0; i < o.conns; i++) {
    conns[i].fd = -1;
    conns[i].start_ns = starts + i * o.pipeline;
  }
  return load_run(conn_open, on_event);
}
