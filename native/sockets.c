// Sockets and the rest of the process's side that is not the ring: the partitioned listener (a reuseport group
// steered by a classic-BPF program on the receiving CPU), client sockets, pipes for splicing, small fd calls, CPU
// pinning. Not on the hot path. Every int result is a value or -errno.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi.h"
#include "kernel.h"
#include "sockets.h"

// ---- sockets (listeners and client sockets; not on the hot path) ----------------------------------------------
int parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) { a4->sin_family = AF_INET; a4->sin_port = htons(port); *len = sizeof *a4; return AF_INET; }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) { a6->sin6_family = AF_INET6; a6->sin6_port = htons(port); *len = sizeof *a6; return AF_INET6; }
  return -EINVAL;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss; socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

// Attaches a classic-BPF program to a reuseport group: for the CPU that received the SYN, return the index
// (join order) of the member that owns that CPU; a CPU nobody owns returns an out-of-range index, which makes
// the kernel fall back to its hash (an even spread).
static int attach_cpu_bpf(int fd, const int32_t *cpu_to_member, unsigned ncpu) {
  if (ncpu > 1024) return -EINVAL;
  struct sock_filter *code = calloc(ncpu * 2 + 3, sizeof *code);
  if (!code) return -ENOMEM;
  unsigned k = 0;
  code[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_CPU));
  for (unsigned c = 0; c < ncpu; c++) {
    if (cpu_to_member[c] < 0) continue;
    code[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c, 0, 1);
    code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)cpu_to_member[c]);
  }
  code[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  struct sock_fprog prog = { .len = (unsigned short)k, .filter = code };
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0 ? -errno : 0;
  free(code);
  return r;
}

// Opens `count` (1..256) listeners on `host`:`port` (an address literal; port 0: the kernel picks one, and every
// member binds the port the first one got), all joined to one reuseport group in index order: the cBPF result is an
// index in join order, so the group is built in one go and closed as a whole. `cpu_to_member` (`ncpu` entries, -1: no
// member) steers each CPU's SYNs to its member. SO_REUSEPORT is set when `reuse` (other sockets may join) or count > 1;
// without `reuse` a port already listened on fails with EADDRINUSE whatever the count. TCP_NODELAY is set (accepted sockets inherit it); `defer` seconds of
// TCP_DEFER_ACCEPT when non-zero; `v6only`: IPV6_V6ONLY on an IPv6 address (else the system's default, dual-stack).
// Fills fds[0..count) and returns the bound port, or -errno with *step naming the call that failed (nothing left open).
int listen_group(const char *host, unsigned port, unsigned count, unsigned backlog, int reuse, const int32_t *map,
                 size_t mapn, unsigned defer, int v6only, int *fds, const char **step) {
  struct sockaddr_storage ss; socklen_t sl;
  int fam = parse_addr(host, port, &ss, &sl);
  if (fam < 0) { *step = "address"; return fam; }
  int n = 0, r = 0, bport = (int)port;
  int one = 1;
  *step = "socket";
  if (count > 1 && !reuse && port != 0) {
    // several members share the port through SO_REUSEPORT, which would also join them to a group already listening
    // there (another listener of several members, one with reusePort): unless asked to share, the port must be free,
    // as a lone socket's bind says (EADDRINUSE). (Port 0: the kernel picks a port no group holds.)
    int p = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p < 0) return -errno;
    setsockopt(p, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6only && fam == AF_INET6) setsockopt(p, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (fam == AF_INET6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
    *step = "bind";
    r = bind(p, (struct sockaddr *)&ss, sl) < 0 ? -errno : 0;
    close(p);
    if (r < 0) return r;
    *step = "socket";
  }
  for (unsigned i = 0; i < count; i++) {
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { r = -errno; goto fail; }
    fds[n++] = fd;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse || count > 1) { *step = "SO_REUSEPORT"; if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) { r = -errno; goto fail; } }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // inherited by accepted sockets
    if (v6only && fam == AF_INET6) { *step = "IPV6_V6ONLY"; if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) { r = -errno; goto fail; } }
    if (defer) { *step = "TCP_DEFER_ACCEPT"; if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer) < 0) { r = -errno; goto fail; } }
    if (fam == AF_INET6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)bport);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)bport);
    *step = "bind";
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) { r = -errno; goto fail; }
    if (i == 0) bport = bound_port(fd);  // port 0: every member binds the port the first one got
    *step = "listen";
    if (listen(fd, (int)backlog) < 0) { r = -errno; goto fail; }
  }
  if (map && mapn) { *step = "SO_ATTACH_REUSEPORT_CBPF"; if ((r = attach_cpu_bpf(fds[0], map, (unsigned)mapn)) < 0) goto fail; }
  return bport;
fail:
  for (int i = 0; i < n; i++) close(fds[i]);
  return r;
}


// A nonblocking TCP socket for `connect` (the connect itself goes through the ring), TCP_NODELAY set, bound to `src`
// when it is not empty (an address literal of the same family as `host`) and to local port `sport` when it is not 0
// (with SO_REUSEADDR, as libuv binds; on the family's wildcard address when `src` is empty). Bound to an address
// alone, IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect. Returns the fd or -errno; *step names what failed
// ("address" for an unusable literal).
int client_socket(const char *host, const char *src, uint16_t sport, const char **step) {
  struct sockaddr_storage ss; socklen_t sl;
  int fam = parse_addr(host, 0, &ss, &sl);
  if (fam < 0) { *step = "address"; return fam; }
  *step = "socket";
  int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src[0] || sport) {
    struct sockaddr_storage bs; socklen_t bl;
    const char *any = fam == AF_INET6 ? "::" : "0.0.0.0";
    if (parse_addr(src[0] ? src : any, sport, &bs, &bl) != fam) { close(fd); *step = "localAddress"; return -EINVAL; }
    if (sport) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef IP_BIND_ADDRESS_NO_PORT
    else setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
#endif
    *step = "bind";
    if (bind(fd, (struct sockaddr *)&bs, bl) < 0) { int e = -errno; close(fd); return e; }
  }
  return fd;
}

// A nonblocking pipe for spliced file sends, its capacity raised towards `want` (F_SETPIPE_SZ; what the system allows
// — /proc/sys/fs/pipe-max-size — when less): out = {read fd, write fd, capacity}. Returns 0 or -errno.
int pipe_open(int32_t want, int32_t out[3]) {
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -errno;
  if (want > 0 && fcntl(p[1], F_SETPIPE_SZ, want) < 0) {
    // over pipe-max-size (EPERM without CAP_SYS_RESOURCE) or short of pages: halve until the kernel agrees
    for (int32_t w = want / 2; w >= 65536; w /= 2) if (fcntl(p[1], F_SETPIPE_SZ, w) >= 0) break;
  }
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  out[0] = p[0]; out[1] = p[1]; out[2] = cap < 0 ? 65536 : cap;
  return 0;
}

// The local (peer = 0) or remote (peer = 1) address of socket `fd`: the text form into host[hostlen], the port into
// *port. Returns 4 or 6 (the family), or -errno (-ENOTCONN for a peer that is gone).
int sock_name(int fd, int peer, char *host, size_t hostlen, int *port) {
  struct sockaddr_storage ss; socklen_t len = sizeof ss;
  if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len)) < 0) return -errno;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    if (!inet_ntop(AF_INET, &a->sin_addr, host, (socklen_t)hostlen)) return -errno;
    *port = ntohs(a->sin_port);
    return 4;
  }
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    if (!inet_ntop(AF_INET6, &a->sin6_addr, host, (socklen_t)hostlen)) return -errno;
    *port = ntohs(a->sin6_port);
    return 6;
  }
  return -EAFNOSUPPORT;
}

int close_fd(int32_t fd) { return fd >= 0 && close(fd) < 0 ? -errno : 0; }
int dup_fd(int32_t fd) { int r = fcntl(fd, F_DUPFD_CLOEXEC, 3); return r < 0 ? -errno : r; }

// incomingCpu(fd) -> the CPU that processed the socket's packets (SO_INCOMING_CPU), or -errno.
static const int k_off = 0, k_on = 1;
static const struct linger k_linger0 = { 1, 0 };

int sockopt_spec(int which, int value, int *level, int *name, const void **val, unsigned *len, int32_t *slot_val) {
  *len = sizeof(int);
  switch (which) {
  case MP_SOCKOPT_NODELAY: *level = IPPROTO_TCP; *name = TCP_NODELAY; break;
  case MP_SOCKOPT_KEEPALIVE: *level = SOL_SOCKET; *name = SO_KEEPALIVE; break;
  case MP_SOCKOPT_KEEPIDLE:
    if (value < 1 || value > 32767) return -EINVAL;
    *level = IPPROTO_TCP; *name = TCP_KEEPIDLE;
    *slot_val = value; *val = slot_val;
    return 0;
  case MP_SOCKOPT_LINGER0: *level = SOL_SOCKET; *name = SO_LINGER; *val = &k_linger0; *len = sizeof k_linger0; return 0;
  default: return -EINVAL;
  }
  if (value != 0 && value != 1) return -EINVAL;
  *val = value ? &k_on : &k_off;
  return 0;
}

int set_sock_opt(int32_t fd, int which, int value) {
  int level, name; const void *val; unsigned len; int32_t v;
  int r = sockopt_spec(which, value, &level, &name, &val, &len, &v);
  if (r < 0) return r;
  return setsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
}

int get_sock_opt(int32_t fd, int which) {
  int level, name; const void *val; unsigned len; int32_t v;
  if (which == MP_SOCKOPT_LINGER0) return -EINVAL;
  int r = sockopt_spec(which, which == MP_SOCKOPT_KEEPIDLE ? 1 : 0, &level, &name, &val, &len, &v);
  if (r < 0) return r;
  int out = 0; socklen_t ol = sizeof out;
  return getsockopt(fd, level, name, &out, &ol) < 0 ? -errno : out;
}

int incoming_cpu(int32_t fd) {
  int cpu = -1; socklen_t l = sizeof cpu;
  return getsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &l) < 0 ? -errno : cpu;
}

// acceptQueueLength(fd) -> connections waiting in a listening socket's accept queue (TCP_INFO's tcpi_unacked holds
// sk_ack_backlog for a socket in LISTEN state), or -errno. Used by the load balancer to see a backed-up partition.
int accept_queue_length(int32_t fd) {
  struct tcp_info ti; socklen_t l = sizeof ti;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 ? -errno : (ti.tcpi_state == 10 /* TCP_LISTEN */ ? (int)ti.tcpi_unacked : -EINVAL);
}

// acceptNow(fd) -> a connection taken from a listening socket's queue without waiting (a regular fd,
// nonblocking, close-on-exec), or -EAGAIN when the queue is empty, or -errno.
int accept_now(int32_t fd) { int r = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); return r < 0 ? -errno : r; }

// pinThread(cpu) -> 0 or -errno: pins the calling thread (the channel's event-loop thread) to one CPU.
int pin_thread(int32_t cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
  cpu_set_t set; CPU_ZERO(&set); CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}

int64_t send_file(int32_t out, int32_t in, int64_t pos, int64_t len) {
  off_t off = (off_t)pos;
  ssize_t n = sendfile(out, in, &off, (size_t)len);
  return n < 0 ? -errno : (int64_t)n;
}

// cachestat(2) (Linux 6.5): the 6.1 headers define neither the number nor the structures.
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct mp_cachestat_range { uint64_t off, len; };
struct mp_cachestat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

int file_cached(int32_t fd, int64_t pos, int64_t len) {
  if (len <= 0) return 1;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) page = 4096;
  struct mp_cachestat_range r = { (uint64_t)pos, (uint64_t)len };
  struct mp_cachestat cs = { 0 };
  if (syscall(__NR_cachestat, fd, &r, &cs, 0) < 0) return -errno;
  uint64_t first = (uint64_t)pos / (uint64_t)page, last = ((uint64_t)pos + (uint64_t)len - 1) / (uint64_t)page;
  return cs.nr_cache >= last - first + 1 ? 1 : 0;
}

int fd_nonblocking(int32_t fd) {
  int f = fcntl(fd, F_GETFL);
  return f < 0 ? -errno : (f & O_NONBLOCK) != 0;
}
