// The kernel interface, as liburing's lowest layer: raw io_uring system calls (no C library to install) returning
// -errno, and the constants newer than the 6.1 uapi headers installed here (values from the current uapi header;
// each is probed for at run time before it is relied on).
#ifndef MEGAPIPE_KERNEL_H
#define MEGAPIPE_KERNEL_H
#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MP_SOCKET_URING_OP_GETSOCKOPT 2   // enum io_uring_socket_op (Linux 6.7)
#define MP_SOCKET_URING_OP_SETSOCKOPT 3
#ifndef IORING_OP_FIXED_FD_INSTALL
#define IORING_OP_FIXED_FD_INSTALL 54
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#ifndef IORING_FILE_INDEX_ALLOC
#define IORING_FILE_INDEX_ALLOC (~0U)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_ASYNC_CANCEL_FD_FIXED
#define IORING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#endif
#ifndef SO_INCOMING_CPU
#define SO_INCOMING_CPU 49
#endif
#ifndef SKF_AD_CPU
#define SKF_AD_CPU 36
#endif

static inline int sys_setup(unsigned entries, struct io_uring_params *p) {
  int r = (int)syscall(__NR_io_uring_setup, entries, p);
  return r < 0 ? -errno : r;
}
static inline int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  int r = (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
  return r < 0 ? -errno : r;
}
// io_uring_enter waiting at most `ms` for `min_complete` completions (IORING_ENTER_EXT_ARG, 5.11).
static inline int sys_enter_timeout(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, unsigned ms) {
  struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long long)(ms % 1000) * 1000000 };
  struct io_uring_getevents_arg arg = { .sigmask = 0, .sigmask_sz = _NSIG / 8, .ts = (uint64_t)(uintptr_t)&ts };
  int r = (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
  return r < 0 ? -errno : r;
}
static inline int sys_register(int fd, unsigned op, const void *arg, unsigned nr) {
  int r = (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
  return r < 0 ? -errno : r;
}

#endif
