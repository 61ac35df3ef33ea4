/* mc-load: a pipelined, verifying memcached load generator (get/set mix over a fixed key space), text protocol or
 * (--protocol binary) memcached's binary protocol.
 * C persistent connections, each with D requests outstanding (D = 1: one request per segment, like memcaslap;
 * D > 1: requests written together, the way pipelining clients batch). One thread, edge-triggered epoll.
 *
 * Key space: --keys K keys "key:NNNNNNNN" (12 bytes). Before anything is measured every key is set (the
 * populate phase, pipelined over all connections), so every get must hit. Every operation then picks a key
 * uniformly at random and is a set with probability --set-ratio, else a get. The value of key k is always the
 * same --value-size bytes (a slice of a random table at an offset hashed from k), so the expected reply of
 * every request is known exactly and every reply byte is compared:
 *   get key:N            ->  "VALUE key:N 0 <V>\r\n" <value(N)> "\r\nEND\r\n"   (a miss is a mismatch)
 *   set key:N 0 0 <V>    ->  "STORED\r\n"
 * Binary (--protocol binary): GET and SET packets (opaque 0, no CAS); the replies are known except their CAS
 * field, which is skipped (header bytes 16..23); every other byte is compared:
 *   GET key:N            ->  81 00 0000 04 00 0000 <4+V> 00000000 <cas> 00000000 <value(N)>
 *   SET key:N flags 0    ->  81 01 0000 00 00 0000 00000000 00000000 <cas>
 * --protocol binary-quiet: as memjs pipelines, gets are GETQ (every key hits, so each still gets its reply, but the
 * server may hold the replies back) and every batch of requests ends with a NOOP, which flushes them (the NOOP takes
 * one of the --pipeline slots and is not counted as an operation; --pipeline must be at least 2).
 * A mismatch is printed (the first few), counted, drops the connection and makes the exit code 1.
 *
 * Phases: populate (unbounded by --warmup, at most --populate-timeout seconds), warm-up, measured window.
 * Phase marks on stderr ("mc-load: phase measure" / "mc-load: phase end") let a harness sample CPU counters
 * over exactly the measured window. Output: one JSON line on stdout. */
#include "common.h"
#include "loadgen.h"

#include <sys/epoll.h>

#define TABLE_SPAN 65536u
#define READ_SIZE (256 * 1024)
#define EVENTS_MAX 1024
#define KEY_LEN 12 /* "key:" + 8 digits */
#define VALUE_MAX 16384
#define MISMATCH_REPORTS_MAX 5

static const char usage[] =
    "usage: mc-load [options]\n"
    "  --host H              server address (default 127.0.0.1)\n"
    "  --port P              server port (default 11211)\n"
    "  --conns C             persistent connections (default 64)\n"
    "  --pipeline D          requests outstanding per connection (default 1)\n"
    "  --keys K              key space, all set before measuring (default 100000, at most 99999999)\n"
    "  --value-size V        value bytes (default 100, at most 16384)\n"
    "  --set-ratio R         fraction of operations that are sets (default 0.1)\n"
    "  --duration SEC        measured time (default 5)\n"
    "  --warmup SEC          unmeasured time after populating (default 1)\n"
    "  --populate-timeout S  give up if populating takes longer (default 60)\n"
    "  --seed N              random seed (default 1)\n"
    "  --protocol P          text (default), binary (GET/SET packets) or binary-quiet (GETQ/SET, NOOP per batch)\n"
    "Prints {\"ops\",\"seconds\",\"ops_per_s\",\"gets\",\"sets\",\"p50_us\",\"p99_us\",\"errors\",\"mismatches\",...}.\n"
    "Exit code 1 if any reply mismatched, 3 if nothing could be done (or populating failed), 0 otherwise.\n";

struct opts {
  const char *host;
  long port, conns, pipeline, keys, value_size, seed;
  double set_ratio, duration, warmup, populate_timeout;
  int binary; /* --protocol binary: 1, binary-quiet: 2 */
};

/* ---- keys and values ------------------------------------------------------------------------ */

static inline const unsigned char *value_of(uint64_t key) { return table + (mix64(key + 0x9e3779b97f4a7c15ull) & (TABLE_SPAN - 1)); }

/* Writes "key:NNNNNNNN" (KEY_LEN bytes). */
static inline void put_key(char *p, uint64_t k) {
  memcpy(p, "key:", 4);
  for (int i = KEY_LEN - 1; i >= 4; i--) {
    p[i] = (char)('0' + k % 10);
    k /= 10;
  }
}

static inline void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static inline uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* ---- connections ---------------------------------------------------------------------------- */

enum conn_state { IDLE, CONNECTING, ACTIVE };

struct slot {            /* one outstanding request */
  uint64_t start_ns;
  uint32_t exp_len;
  unsigned char is_set, counted, is_noop;
  unsigned char *exp;    /* expected reply bytes */
};

struct conn {
  int fd;
  enum conn_state state;
  uint64_t rng;
  uint64_t sent, recvd;  /* requests generated / replies completed on this connection (since connect) */
  uint32_t recv_off;     /* bytes of the current reply already checked */
  char *sbuf;            /* requests generated but not yet written: sbuf[soff..slen) */
  uint32_t soff, slen;
  struct slot *slots;    /* [pipeline], request n at n % pipeline */
  int queued;
};

static struct opts o;
static struct conn *conns;
static int epfd;
static struct sockaddr_in server_addr;
static int *reconnect_queue;
static long reconnect_len;
static unsigned char *rbuf;
static uint32_t req_max, exp_max, set_threshold; /* set if (rng >> 32) < set_threshold */

static int populating = 1, measuring, stopping;
static uint64_t next_populate, populated;
static struct histogram hist;
static uint64_t all_ops, ops, gets, sets, errors, mismatches, consecutive_failures, bytes_in, connects;
static uint64_t now;

static void schedule_reconnect(int i) {
  if (!conns[i].queued) {
    conns[i].queued = 1;
    reconnect_queue[reconnect_len++] = i;
  }
}

static void conn_drop(int i, int failed) {
  struct conn *c = &conns[i];
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->state = IDLE;
  /* Populate sets lost with the connection are issued again (a set is idempotent here). */
  if (populating) {
    for (uint64_t n = c->recvd; n < c->sent; n++) {
      struct slot *s = &c->slots[n % (uint64_t)o.pipeline];
      if (s->counted) next_populate = populated = 0; /* rare: populate again from the first key */
    }
  }
  if (failed) {
    if (measuring) errors++;
    consecutive_failures++;
  }
  schedule_reconnect(i);
}

static void conn_open(int i) {
  struct conn *c = &conns[i];
  c->sent = c->recvd = 0;
  c->recv_off = 0;
  c->soff = c->slen = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    conn_drop(i, 1);
    return;
  }
  c->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = (uint32_t)i};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0 && errno != EINPROGRESS) {
    conn_drop(i, 1);
    return;
  }
  c->state = CONNECTING;
}

/* Generates one request into c->sbuf and its expected reply into its slot; returns 0 if there is nothing to
 * send (populating and every key has been issued). */
static int gen_request(struct conn *c) {
  uint64_t key;
  int is_set, counted = 0;
  if (populating) {
    if (next_populate >= (uint64_t)o.keys) return 0;
    key = next_populate++;
    is_set = 1;
    counted = 1; /* counts towards `populated` */
  } else {
    uint64_t r = xorshift(&c->rng);
    is_set = (uint32_t)(r >> 32) < set_threshold;
    key = (r & 0xffffffffu) % (uint64_t)o.keys;
  }
  struct slot *s = &c->slots[c->sent % (uint64_t)o.pipeline];
  char *p = c->sbuf + c->slen;
  const unsigned char *val = value_of(key);
  const uint32_t V = (uint32_t)o.value_size;
  if (o.binary) {
    unsigned char *h = (unsigned char *)p, *e = s->exp;
    memset(h, 0, 24);
    h[0] = 0x80;
    h[1] = is_set ? 0x01 : o.binary == 2 ? 0x09 : 0x00;
    h[3] = KEY_LEN;
    memset(e, 0, 24);
    e[0] = 0x81;
    e[1] = h[1];
    if (is_set) {
      h[4] = 8;
      put_be32(h + 8, 8 + KEY_LEN + V);
      memset(h + 24, 0, 8); /* flags 0, exptime 0 */
      put_key(p + 32, key);
      memcpy(p + 32 + KEY_LEN, val, V);
      c->slen += 32 + KEY_LEN + V;
      s->exp_len = 24;
    } else {
      put_be32(h + 8, KEY_LEN);
      put_key(p + 24, key);
      c->slen += 24 + KEY_LEN;
      e[4] = 4;
      put_be32(e + 8, 4 + V);
      memset(e + 24, 0, 4); /* flags */
      memcpy(e + 28, val, V);
      s->exp_len = 28 + V;
    }
  } else if (is_set) {
    memcpy(p, "set ", 4);
    put_key(p + 4, key);
    int n = 4 + KEY_LEN;
    n += sprintf(p + n, " 0 0 %u\r\n", V);
    memcpy(p + n, val, V);
    n += (int)V;
    memcpy(p + n, "\r\n", 2);
    c->slen += (uint32_t)n + 2;
    memcpy(s->exp, "STORED\r\n", 8);
    s->exp_len = 8;
  } else {
    memcpy(p, "get ", 4);
    put_key(p + 4, key);
    memcpy(p + 4 + KEY_LEN, "\r\n", 2);
    c->slen += 4 + KEY_LEN + 2;
    unsigned char *e = s->exp;
    memcpy(e, "VALUE ", 6);
    put_key((char *)e + 6, key);
    int n = 6 + KEY_LEN;
    n += sprintf((char *)e + n, " 0 %u\r\n", V);
    memcpy(e + n, val, V);
    n += (int)V;
    memcpy(e + n, "\r\nEND\r\n", 7);
    s->exp_len = (uint32_t)n + 7;
  }
  s->is_set = (unsigned char)is_set;
  s->counted = (unsigned char)counted;
  s->is_noop = 0;
  s->start_ns = now;
  c->sent++;
  return 1;
}

/* binary-quiet: a NOOP ending a batch (its reply flushes the GETQ replies held back before it). */
static void gen_noop(struct conn *c) {
  struct slot *s = &c->slots[c->sent % (uint64_t)o.pipeline];
  unsigned char *h = (unsigned char *)c->sbuf + c->slen;
  memset(h, 0, 24);
  h[0] = 0x80;
  h[1] = 0x0a;
  c->slen += 24;
  memset(s->exp, 0, 24);
  s->exp[0] = 0x81;
  s->exp[1] = 0x0a;
  s->exp_len = 24;
  s->is_set = 0;
  s->counted = 0;
  s->is_noop = 1;
  s->start_ns = now;
  c->sent++;
}

/* Writes pending requests, then generates and writes new ones until `pipeline` are outstanding. */
static void pump_send(int i) {
  struct conn *c = &conns[i];
  while (!stopping) {
    if (c->soff == c->slen) {
      c->soff = c->slen = 0;
      if (o.binary == 2) {
        /* a batch of GETQ/SET and its NOOP */
        int n = 0;
        while (c->sent - c->recvd < (uint64_t)o.pipeline - 1 && gen_request(c)) n++;
        if (n > 0) gen_noop(c);
      } else {
        while (c->sent - c->recvd < (uint64_t)o.pipeline && gen_request(c)) {}
      }
      if (c->slen == 0) return;
    }
    ssize_t w = write(c->fd, c->sbuf + c->soff, c->slen - c->soff);
    if (w < 0) {
      if (errno != EAGAIN) conn_drop(i, 1);
      return; /* EAGAIN: the edge-triggered EPOLLOUT brings us back */
    }
    c->soff += (uint32_t)w;
    if (c->soff < c->slen) return; /* short write: socket buffer full */
  }
}

static void report_mismatch(const struct conn *c, const struct slot *s, const unsigned char *got, uint32_t n) {
  if (++mismatches > MISMATCH_REPORTS_MAX) return;
  uint32_t at = 0;
  while (at < n && got[at] == s->exp[c->recv_off + at]) at++;
  char want[80], have[80];
  uint32_t from = c->recv_off + at;
  uint32_t wl = s->exp_len - from < 40 ? s->exp_len - from : 40, hl = n - at < 40 ? n - at : 40;
  for (uint32_t k = 0; k < wl; k++) want[k] = (char)(s->exp[from + k] >= 32 && s->exp[from + k] < 127 ? s->exp[from + k] : '.');
  for (uint32_t k = 0; k < hl; k++) have[k] = (char)(got[at + k] >= 32 && got[at + k] < 127 ? got[at + k] : '.');
  want[wl] = have[hl] = 0;
  fprintf(stderr, "mc-load: MISMATCH in the reply to a %s at byte %u: expected \"%s\" got \"%s\"\n", s->is_set ? "set" : "get",
          from, want, have);
}

/* Compares reply bytes with the expected ones from offset `off` of the reply; in binary mode the CAS field (header
 * bytes 16..23), which the client cannot know, is not compared. */
static int reply_differs(const unsigned char *got, const unsigned char *exp, uint32_t off, uint32_t n) {
  if (!o.binary || off >= 24 || off + n <= 16) return memcmp(got, exp + off, n) != 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t at = off + k;
    if ((at < 16 || at >= 24) && got[k] != exp[at]) return 1;
  }
  return 0;
}

/* Checks n reply bytes; returns 0, or -1 if the connection must be dropped. */
static int consume(int i, const unsigned char *p, size_t n) {
  struct conn *c = &conns[i];
  while (n > 0) {
    if (c->recvd >= c->sent) {
      if (++mismatches <= MISMATCH_REPORTS_MAX) fprintf(stderr, "mc-load: MISMATCH: %zu reply bytes nobody asked for\n", n);
      return -1;
    }
    struct slot *s = &c->slots[c->recvd % (uint64_t)o.pipeline];
    uint32_t take = s->exp_len - c->recv_off;
    if (take > n) take = (uint32_t)n;
    if (reply_differs(p, s->exp, c->recv_off, take)) {
      report_mismatch(c, s, p, take);
      return -1;
    }
    c->recv_off += take;
    p += take;
    n -= take;
    if (c->recv_off == s->exp_len) {
      consecutive_failures = 0;
      if (s->counted) populated++;
      else if (!s->is_noop) {
        all_ops++;
        if (measuring) {
          ops++;
          if (s->is_set) sets++;
          else gets++;
          hist_record(&hist, now - s->start_ns);
        }
      }
      c->recvd++;
      c->recv_off = 0;
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
    if (n == 0) {
      conn_drop(i, 1);
      return;
    }
    if (measuring) bytes_in += (uint64_t)n;
    if (consume(i, rbuf, (size_t)n) != 0) {
      conn_drop(i, 0);
      return;
    }
    if (n < READ_SIZE) break;
  }
  pump_send(i);
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
    c->state = ACTIVE;
    connects++;
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
  struct opts r = {"127.0.0.1", 11211, 64, 1, 100000, 100, 1, 0.1, 5.0, 1.0, 60.0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("%s", usage);
      exit(0);
    }
    if (i + 1 >= argc) die("%s: missing value (try --help)", a);
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0) r.host = v;
    else if (strcmp(a, "--port") == 0) r.port = parse_long(a, v, 1, 65535);
    else if (strcmp(a, "--conns") == 0) r.conns = parse_long(a, v, 1, 100000);
    else if (strcmp(a, "--pipeline") == 0) r.pipeline = parse_long(a, v, 1, 1024);
    else if (strcmp(a, "--keys") == 0) r.keys = parse_long(a, v, 1, 99999999);
    else if (strcmp(a, "--value-size") == 0) r.value_size = parse_long(a, v, 1, VALUE_MAX);
    else if (strcmp(a, "--set-ratio") == 0) r.set_ratio = parse_double(a, v, 0, 1);
    else if (strcmp(a, "--duration") == 0) r.duration = parse_double(a, v, 0.001, 3600);
    else if (strcmp(a, "--warmup") == 0) r.warmup = parse_double(a, v, 0, 3600);
    else if (strcmp(a, "--populate-timeout") == 0) r.populate_timeout = parse_double(a, v, 0.1, 3600);
    else if (strcmp(a, "--seed") == 0) r.seed = parse_long(a, v, 0, 1L << 62);
    else if (strcmp(a, "--protocol") == 0) {
      if (strcmp(v, "binary") == 0) r.binary = 1;
      else if (strcmp(v, "binary-quiet") == 0) r.binary = 2;
      else if (strcmp(v, "text") == 0) r.binary = 0;
      else die("--protocol: text, binary or binary-quiet (got %s)", v);
    }
    else die("unknown flag %s (try --help)", a);
  }
  return r;
}

int main(int argc, char **argv) {
  o = parse_opts(argc, argv);
  if (o.binary == 2 && o.pipeline < 2) die("--protocol binary-quiet needs --pipeline 2 or more (one slot is the NOOP)");
  install_stop_signals();
  long nofile = raise_nofile_limit();
  if (o.conns > nofile - 16) die("--conns %ld exceeds the open-file limit %ld (minus 16)", o.conns, nofile);
  server_addr = make_addr(o.host, o.port);
  table_fill(TABLE_SPAN + (size_t)o.value_size);
  req_max = 4 + KEY_LEN + 32 + (uint32_t)o.value_size + 2;
  exp_max = 6 + KEY_LEN + 32 + (uint32_t)o.value_size + 7;
  set_threshold = o.set_ratio >= 1 ? UINT32_MAX : (uint32_t)(o.set_ratio * 4294967296.0);
  rbuf = malloc(READ_SIZE);
  conns = calloc((size_t)o.conns, sizeof *conns);
  reconnect_queue = calloc((size_t)o.conns, sizeof *reconnect_queue);
  if (rbuf == NULL || conns == NULL || reconnect_queue == NULL) die("out of memory");
  for (long i = 0; i < o.conns; i++) {
    struct conn *c = &conns[i];
    c->fd = -1;
    c->rng = mix64((uint64_t)o.seed * 1000003u + (uint64_t)i + 1) | 1;
    c->sbuf = malloc((size_t)o.pipeline * req_max);
    c->slots = calloc((size_t)o.pipeline, sizeof *c->slots);
    unsigned char *exp = malloc((size_t)o.pipeline * exp_max);
    if (c->sbuf == NULL || c->slots == NULL || exp == NULL) die("out of memory");
    for (long k = 0; k < o.pipeline; k++) c->slots[k].exp = exp + (size_t)k * exp_max;
    schedule_reconnect((int)i);
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));

  now = now_ns();
  const uint64_t populate_deadline = now + (uint64_t)(o.populate_timeout * 1e9);
  uint64_t measure_at = UINT64_MAX, end_at = UINT64_MAX, measure_started = 0;
  const uint64_t failures_max = (uint64_t)o.conns * 20 + 1000;
  static struct epoll_event events[EVENTS_MAX];
  int exit_code = 0;
  while (!stop_requested) {
    long pending = reconnect_len;
    reconnect_len = 0;
    for (long k = 0; k < pending; k++) {
      int i = reconnect_queue[k];
      conns[i].queued = 0;
      conn_open(i);
    }
    if (consecutive_failures > failures_max) {
      fprintf(stderr, "mc-load: %llu connection failures in a row (is the server up at %s:%ld?)\n",
              (unsigned long long)consecutive_failures, o.host, o.port);
      exit_code = 3;
      break;
    }
    uint64_t deadline = populating ? populate_deadline : measuring ? end_at : measure_at;
    int timeout_ms = deadline > now ? (int)((deadline - now) / 1000000u) + 1 : 0;
    if (timeout_ms > 1000) timeout_ms = 1000;
    if (reconnect_len > 0) timeout_ms = 1;
    int n = epoll_wait(epfd, events, EVENTS_MAX, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int k = 0; k < n; k++) {
      now = now_ns();
      on_event((int)events[k].data.u32, events[k].events);
    }
    now = now_ns();
    if (populating) {
      if (populated >= (uint64_t)o.keys) {
        populating = 0;
        measure_at = now + (uint64_t)(o.warmup * 1e9);
        end_at = measure_at + (uint64_t)(o.duration * 1e9);
        fprintf(stderr, "mc-load: populated %ld keys\n", o.keys);
        /* Start the mix on every connection (they were idle once populating ran out of keys). */
        for (long i = 0; i < o.conns; i++)
          if (conns[i].state == ACTIVE) pump_send((int)i);
      } else if (now >= populate_deadline) {
        fprintf(stderr, "mc-load: populating %ld keys did not finish within %.0f s (%llu done)\n", o.keys,
                o.populate_timeout, (unsigned long long)populated);
        exit_code = 3;
        break;
      }
    }
    if (!populating && !measuring && now >= measure_at) {
      measuring = 1;
      measure_started = now;
      fprintf(stderr, "mc-load: phase measure\n");
    }
    if (measuring && now >= end_at) break;
  }
  stopping = 1;
  if (measuring) fprintf(stderr, "mc-load: phase end\n");
  double seconds = measuring ? (double)(now - measure_started) / 1e9 : 0;
  printf("{\"ops\":%llu,\"seconds\":%.6f,\"ops_per_s\":%.1f,\"gets\":%llu,\"sets\":%llu,\"p50_us\":%.2f,"
         "\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,\"connects\":%llu,"
         "\"errors\":%llu,\"mismatches\":%llu,\"all_ops\":%llu,\"populated\":%llu,\"bytes_in\":%llu,\"conns\":%ld,"
         "\"pipeline\":%ld,\"keys\":%ld,\"value_size\":%ld,\"set_ratio\":%.4f}\n",
         (unsigned long long)ops, seconds, seconds > 0 ? (double)ops / seconds : 0, (unsigned long long)gets,
         (unsigned long long)sets, hist_percentile_us(&hist, 0.50), hist_percentile_us(&hist, 0.90),
         hist_percentile_us(&hist, 0.99), hist_percentile_us(&hist, 0.999), (double)hist.max_ns / 1000.0,
         hist.count ? (double)hist.sum_ns / (double)hist.count / 1000.0 : 0, (unsigned long long)connects,
         (unsigned long long)errors, (unsigned long long)mismatches, (unsigned long long)all_ops,
         (unsigned long long)populated, (unsigned long long)bytes_in, o.conns, o.pipeline, o.keys, o.value_size,
         o.set_ratio);
  fflush(stdout);
  if (mismatches > 0) return 1;
  if (exit_code == 0 && all_ops == 0) exit_code = 3;
  return exit_code;
}
