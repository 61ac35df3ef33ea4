/* ws-load: a WebSocket echo load generator (RFC 6455) for the legacy-server benchmark (bench/compat.ts). C
 * persistent connections, each opening with the HTTP/1.1 Upgrade handshake, then keeping D binary messages of S
 * bytes outstanding (masked frames, a different mask key per message, as a browser sends them) against a server
 * that echoes every message. One thread, edge-triggered epoll, nonblocking connect.
 *
 * Every byte is verified: the handshake must answer "101" with the Sec-WebSocket-Accept of the key sent, and each
 * echoed frame must be exactly FIN+binary, the length, no mask, and the payload of the message it answers — a slice
 * of a random table at an offset hashed from the connection's serial number and the message number, so a server
 * that mixes up, drops, duplicates or corrupts messages is caught, and so is any other frame (ping, close, text).
 * A mismatch is printed, counted, and makes the exit code 1.
 *
 * Flags, loop and output are rpc-load's (bench/c/epoll-load.h), so bench/lib/proc.ts runs it the same way: one JSON line
 * on stdout ("txns" = messages echoed in the measured window), phase marks on stderr. --txns must be 0 (persistent
 * connections only). */
#include "common.h"
#include "loadgen.h"
#include "epoll-load.h"

#include <strings.h>

#define TABLE_SPAN 65536u /* distinct message offsets */
#define READ_SIZE (256 * 1024)
#define SIZE_MAX_BYTES 65535u /* one frame with a 16-bit extended length */
#define HEAD_MAX 1024         /* the handshake's response head */
#define MISMATCH_REPORTS_MAX 5

/* RFC 6455 §1.3's example key and its accept value (SHA-1 of key + GUID, base64): every connection sends it. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char usage[] =
    "usage: ws-load [options]\n"
    "  --host H          server address (default 127.0.0.1)\n"
    "  --port P          server port (default 9000)\n"
    "  --conns C         concurrent WebSocket connections (default 256)\n"
    "  --txns 0          persistent connections (the only mode)\n"
    "  --size S          message payload bytes, 1..65535 (default 64)\n"
    "  --pipeline D      messages outstanding per connection (default 1)\n"
    "  --duration SEC    measured time (default 5)\n"
    "  --warmup SEC      unmeasured time before it (default 1)\n"
    "  --max-txns N      stop after N measured messages (default: no bound)\n"
    "  --src-ips K       bind sockets round-robin to 127.0.0.2 .. 127.0.0.(K+1) (default 0: kernel picks)\n"
    "Prints {\"txns\",\"seconds\",\"tps\",\"p50_us\",\"p99_us\",\"connects\",\"errors\",\"mismatches\",...}.\n"
    "Exit code 1 if any byte mismatched, 3 if nothing could be done, 0 otherwise.\n";

enum conn_state { IDLE, CONNECTING, HANDSHAKE, ACTIVE };

struct conn {
  int fd;
  enum conn_state state;
  uint64_t serial;
  uint64_t send_txn;    /* next message to put into `out` */
  uint64_t recv_txn;    /* message whose echo is being read */
  uint32_t recv_off;    /* bytes of recv_txn's echo frame already checked */
  unsigned char *out;   /* frames not yet written: [out_off, out_len) */
  uint32_t out_off, out_len;
  uint32_t head_len;    /* handshake response bytes so far */
  char *head;
  uint64_t connect_ns;
  uint64_t *start_ns; /* [pipeline]: when message t was queued, at t % pipeline */
};

static struct conn *conns;
static unsigned char *rbuf;
static char request[512];
static size_t request_len;
static uint32_t frame_len, echo_head_len, echo_len; /* a client frame's size; the echo's header and whole size */
static unsigned char echo_head[4];

static inline const unsigned char *payload(uint64_t serial, uint64_t txn) {
  return table + (mix64(serial * 0x9e3779b97f4a7c15ull + txn) & (TABLE_SPAN - 1));
}

static void conn_drop(int i, int failed) {
  conns[i].state = IDLE;
  load_drop(i, &conns[i].fd, failed);
}

static void conn_open(int i) {
  struct conn *c = &conns[i];
  c->send_txn = c->recv_txn = 0;
  c->recv_off = c->out_off = c->out_len = c->head_len = 0;
  c->serial = next_serial++;
  c->connect_ns = now;
  c->fd = load_connect(i);
  if (c->fd < 0) {
    conn_drop(i, 1);
    return;
  }
  c->state = CONNECTING;
}

/* Appends message t's frame to `out`: FIN+binary, MASK + length, the mask key, the masked payload. */
static void put_frame(struct conn *c, uint64_t t) {
  unsigned char *f = c->out + c->out_len;
  uint32_t h = 0;
  f[h++] = 0x82;
  if (o.size <= 125) f[h++] = (unsigned char)(0x80 | o.size);
  else {
    f[h++] = 0x80 | 126;
    f[h++] = (unsigned char)(o.size >> 8);
    f[h++] = (unsigned char)(o.size & 0xff);
  }
  uint32_t key = (uint32_t)mix64(c->serial ^ (t << 20) ^ 0x5bd1e995u) | 0x01010101u; /* never a zero byte */
  unsigned char m[4] = {(unsigned char)(key >> 24), (unsigned char)(key >> 16), (unsigned char)(key >> 8), (unsigned char)key};
  memcpy(f + h, m, 4);
  h += 4;
  const unsigned char *p = payload(c->serial, t);
  for (long k = 0; k < o.size; k++) f[h + k] = p[k] ^ m[k & 3];
  c->out_len += frame_len;
}

/* Queues messages until `pipeline` are outstanding, then writes what is queued. */
static void pump_send(int i) {
  struct conn *c = &conns[i];
  if (stopping) return;
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  while (c->send_txn < c->recv_txn + (uint64_t)o.pipeline) {
    if (c->out_off > 0) { /* compact: the buffer holds `pipeline` frames */
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    c->start_ns[c->send_txn % (uint64_t)o.pipeline] = now;
    put_frame(c, c->send_txn++);
  }
  while (c->out_off < c->out_len) {
    ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) {
      if (errno != EAGAIN) conn_drop(i, 1);
      return; /* EAGAIN: the edge-triggered EPOLLOUT brings us back */
    }
    c->out_off += (uint32_t)w;
  }
}

static void mismatch(const struct conn *c, const char *what, uint32_t at, unsigned expected, unsigned got) {
  if (++mismatches > MISMATCH_REPORTS_MAX) return;
  fprintf(stderr, "ws-load: MISMATCH connection serial %llu message %llu: %s at byte %u: expected 0x%02x got 0x%02x\n",
          (unsigned long long)c->serial, (unsigned long long)c->recv_txn, what, at, expected, got);
}

/* Checks n echoed bytes; returns 0, or -1 if the connection must be dropped. */
static int consume(int i, const unsigned char *p, size_t n) {
  struct conn *c = &conns[i];
  /* messages whose frame was written completely: nothing beyond may be echoed yet */
  uint32_t unwritten = c->out_len - c->out_off;
  uint64_t sent = c->send_txn - (unwritten + frame_len - 1) / frame_len;
  while (n > 0) {
    if (c->recv_txn >= sent) {
      if (++mismatches <= MISMATCH_REPORTS_MAX)
        fprintf(stderr, "ws-load: MISMATCH connection serial %llu: %zu bytes nobody asked for (first 0x%02x)\n",
                (unsigned long long)c->serial, n, p[0]);
      return -1;
    }
    while (c->recv_off < echo_head_len && n > 0) {
      if (*p != echo_head[c->recv_off]) {
        mismatch(c, "frame header", c->recv_off, echo_head[c->recv_off], *p);
        return -1;
      }
      c->recv_off++;
      p++;
      n--;
    }
    if (n == 0) break;
    uint32_t at = c->recv_off - echo_head_len;
    uint32_t take = echo_len - c->recv_off;
    if (take > n) take = (uint32_t)n;
    const unsigned char *want = payload(c->serial, c->recv_txn) + at;
    if (memcmp(p, want, take) != 0) {
      uint32_t k = 0;
      while (p[k] == want[k]) k++;
      mismatch(c, "payload", echo_head_len + at + k, want[k], p[k]);
      return -1;
    }
    c->recv_off += take;
    p += take;
    n -= take;
    if (c->recv_off == echo_len) {
      all_txns++;
      consecutive_failures = 0;
      if (measuring) {
        txns++;
        hist_record(&hist, now - c->start_ns[c->recv_txn % (uint64_t)o.pipeline]);
      }
      c->recv_txn++;
      c->recv_off = 0;
    }
  }
  return 0;
}

/* The handshake's response head: "HTTP/1.1 101", then the accept value of our key. Returns the bytes of `p` it
 * used (the rest is frame data), or -1 on a wrong or oversized response. */
static long handshake(int i, const unsigned char *p, size_t n) {
  struct conn *c = &conns[i];
  size_t take = n;
  if (take > HEAD_MAX - 1 - c->head_len) take = HEAD_MAX - 1 - c->head_len;
  memcpy(c->head + c->head_len, p, take);
  uint32_t before = c->head_len;
  c->head_len += (uint32_t)take;
  c->head[c->head_len] = '\0';
  char *end = strstr(c->head, "\r\n\r\n");
  if (end == NULL) {
    if (c->head_len >= HEAD_MAX - 1) goto bad;
    return (long)n;
  }
  end[2] = '\0'; /* keep the last header's CRLF for the search below */
  if (strncmp(c->head, "HTTP/1.1 101 ", 13) != 0) goto bad;
  int accepted = 0;
  for (char *line = strstr(c->head, "\r\n"); line != NULL && line[2] != '\0'; line = strstr(line + 2, "\r\n")) {
    if (strncasecmp(line + 2, "sec-websocket-accept:", 21) == 0) {
      const char *v = line + 23;
      while (*v == ' ') v++;
      accepted = strncmp(v, WS_ACCEPT "\r\n", sizeof WS_ACCEPT + 1) == 0;
    }
  }
  if (!accepted) goto bad;
  c->state = ACTIVE;
  if (measuring) connects++;
  return (long)((size_t)(end + 4 - c->head) - before);
bad:
  if (++mismatches <= MISMATCH_REPORTS_MAX) {
    char *nl = strstr(c->head, "\r\n");
    if (nl != NULL) *nl = '\0';
    fprintf(stderr, "ws-load: MISMATCH connection serial %llu: handshake refused or malformed: \"%.80s\"\n",
            (unsigned long long)c->serial, c->head);
  }
  return -1;
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
    if (n == 0) { /* the server closed: it never should */
      conn_drop(i, 1);
      return;
    }
    if (measuring) bytes_in += (uint64_t)n;
    const unsigned char *p = rbuf;
    size_t left = (size_t)n;
    if (c->state == HANDSHAKE) {
      long used = handshake(i, p, left);
      if (used < 0) {
        conn_drop(i, 0);
        return;
      }
      p += used;
      left -= (size_t)used;
    }
    if (c->state == ACTIVE && left > 0 && consume(i, p, left) != 0) {
      conn_drop(i, 0);
      return;
    }
    if (n < READ_SIZE) break;
  }
  if (c->state == ACTIVE) pump_send(i);
}

static void on_event(int i, uint32_t events) {
  struct conn *c = &conns[i];
  if (c->state == IDLE) return;
  if (c->state == CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      conn_drop(i, 1);
      return;
    }
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    /* the request head is a few hundred bytes: one write on a fresh socket takes all of it */
    if (write(c->fd, request, request_len) != (ssize_t)request_len) {
      conn_drop(i, 1);
      return;
    }
    c->state = HANDSHAKE;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
    on_readable(i);
    if (c->state == IDLE || events & EPOLLIN) return;
  }
  if (events & EPOLLOUT && c->state == ACTIVE) pump_send(i);
}

int main(int argc, char **argv) {
  parse_load_opts(argc, argv, usage, (struct load_limits){SIZE_MAX_BYTES, 0, 0});
  load_init("ws-load");
  table_fill(TABLE_SPAN + (size_t)o.size);
  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET / HTTP/1.1\r\nHost: %s:%ld\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                 o.host, o.port);
  frame_len = (uint32_t)(o.size <= 125 ? 2 : 4) + 4 + (uint32_t)o.size;
  echo_head[0] = 0x82;
  if (o.size <= 125) {
    echo_head[1] = (unsigned char)o.size;
    echo_head_len = 2;
  } else {
    echo_head[1] = 126;
    echo_head[2] = (unsigned char)(o.size >> 8);
    echo_head[3] = (unsigned char)(o.size & 0xff);
    echo_head_len = 4;
  }
  echo_len = echo_head_len + (uint32_t)o.size;
  rbuf = malloc(READ_SIZE);
  conns = calloc((size_t)o.conns, sizeof *conns);
  uint64_t *starts = calloc((size_t)(o.conns * o.pipeline), sizeof *starts);
  unsigned char *outs = malloc((size_t)o.conns * (size_t)o.pipeline * frame_len);
  char *heads = malloc((size_t)o.conns * HEAD_MAX);
  if (rbuf == NULL || conns == NULL || starts == NULL || outs == NULL || heads == NULL) die("out of memory");
  for (long i = 0; i < o.conns; i++) {
    conns[i].fd = -1;
    conns[i].start_ns = starts + i * o.pipeline;
    conns[i].out = outs + (size_t)i * (size_t)o.pipeline * frame_len;
    conns[i].head = heads + (size_t)i * HEAD_MAX;
  }
  return load_run(conn_open, on_event);
}
