// Sockets and process-side calls (sockets.c): plain C, every int result a value or -errno.
#ifndef MEGAPIPE_SOCKETS_H
#define MEGAPIPE_SOCKETS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

// An IPv4 or IPv6 address literal and a port into *ss (*len its size): the family, or -EINVAL.
int parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len);
int listen_group(const char *host, unsigned port, unsigned count, unsigned backlog, int reuse, const int32_t *map,
                 size_t mapn, unsigned defer, int v6only, int *fds, const char **step);
int client_socket(const char *host, const char *src, uint16_t sport, const char **step);
int pipe_open(int32_t want, int32_t out[3]);
// The local (peer 0) or remote (peer 1) address of socket `fd` as text and port: 4 or 6 (the family), or -errno.
int sock_name(int fd, int peer, char *host, size_t hostlen, int *port);
int close_fd(int32_t fd);
int dup_fd(int32_t fd);
// SO_INCOMING_CPU of a socket: the CPU that processed its packets.
int incoming_cpu(int32_t fd);
// An mp_sockopt (abi.h) as setsockopt's level and name, and the bytes of `value` to set (`*val` points to storage that
// outlives any request: static, or `*slot_val` when the value is not 0 or 1 — the caller then keeps it), or -EINVAL
// for an unknown option or a value out of its range.
int sockopt_spec(int which, int value, int *level, int *name, const void **val, unsigned *len, int32_t *slot_val);
// Sets / reads back an mp_sockopt on a regular socket fd (0 or the value read, or -errno).
int set_sock_opt(int32_t fd, int which, int value);
int get_sock_opt(int32_t fd, int which);
// Connections waiting in a listening socket's accept queue (TCP_INFO's tcpi_unacked holds sk_ack_backlog in LISTEN).
int accept_queue_length(int32_t fd);
// A connection taken from a listening socket's queue without waiting (nonblocking, close-on-exec), or -EAGAIN.
int accept_now(int32_t fd);
// sendfile(2) of up to `len` bytes of file `in` from `pos` to socket `out` (nonblocking: it moves what the send buffer
// takes now): bytes sent (0: the file ended), or -errno (-EAGAIN: no room).
int64_t send_file(int32_t out, int32_t in, int64_t pos, int64_t len);
// Whether every page of file `fd` in [pos, pos+len) is in the page cache (cachestat(2), Linux 6.5), so that a sendfile
// of the region does not wait for the disk: 1 yes (also for len <= 0), 0 no (a page past the end of the file never is;
// nor is any of a file with no page-cache data: procfs, devices), or -errno: -ENOSYS before 6.5, -EBADF, -EOPNOTSUPP on
// hugetlbfs, -EPERM (6.14+) for a file the process may neither write nor own. No fallback answers for such a file:
// mincore(2) applies the same rule and reports every page of it resident, evicted or not
// (bench/scripts/residency-probes.c).
int file_cached(int32_t fd, int64_t pos, int64_t len);
// Whether `fd` is in nonblocking mode (O_NONBLOCK): 1, 0, or -errno.
int fd_nonblocking(int32_t fd);
// Pins the calling thread (the channel's event-loop thread) to one CPU.
int pin_thread(int32_t cpu);

#endif
