// Can mincore(2) stand in for cachestat(2) as sendFile's residency probe when cachestat refuses the file (Linux 6.14+:
// EPERM for a file the process may neither write nor own)? And what does each probe cost? Run as root:
//   cc -O2 -o /tmp/residency-probes bench/scripts/residency-probes.c && /tmp/residency-probes [dir]
// It writes a 2 MiB and a 64 KiB file (root's, mode 0644) in `dir` (default /tmp; must be one uid 65534 can enter),
// then, as root (the owner) and in a child as uid 65534 (a reader who may not write them):
//   1. what each probe answers after the file is written, evicted (fsync + POSIX_FADV_DONTNEED), and read again —
//      cachestat of the whole file, and mincore of a shared read-only mapping of it, never touched;
//   2. the median ns of 20,000 calls of each probe, interleaved, on the resident files.
// mincore here is what a fallback would do: mmap(PROT_READ, MAP_SHARED) + mincore + munmap.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cs_range { uint64_t off, len; };
struct cs_stat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

enum { CALLS = 20000, PAGE = 4096 };
static unsigned char vec[(2 << 20) / PAGE];

// pages of [0, len) cachestat counts as cached, or -errno
static long cachestat_pages(int fd, size_t len) {
  struct cs_range r = { 0, len };
  struct cs_stat s = { 0 };
  return syscall(__NR_cachestat, fd, &r, &s, 0) < 0 ? -errno : (long)s.nr_cache;
}

// pages of [0, len) mincore reports resident in a fresh mapping, or -errno
static long mincore_pages(int fd, size_t len) {
  void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -errno;
  long n = 0;
  if (mincore(m, len, vec) < 0) n = -errno;
  else for (size_t i = 0; i < (len + PAGE - 1) / PAGE; i++) n += vec[i] & 1;
  munmap(m, len);
  return n;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t samples[2][CALLS];

// median ns per call of cachestat and of mincore (mmap + mincore + munmap) on [0, len), interleaved
static void timing(const char *who, const char *name, int fd, size_t len) {
  for (int i = 0; i < CALLS; i++) {
    uint64_t t0 = now_ns();
    cachestat_pages(fd, len);
    uint64_t t1 = now_ns();
    mincore_pages(fd, len);
    samples[0][i] = t1 - t0;
    samples[1][i] = now_ns() - t1;
  }
  qsort(samples[0], CALLS, sizeof samples[0][0], by_value);
  qsort(samples[1], CALLS, sizeof samples[1][0], by_value);
  long c = cachestat_pages(fd, len);
  printf("  %-6s %-6s  cachestat %5llu ns (%-7s)  mmap+mincore+munmap %5llu ns\n", who, name,
         (unsigned long long)samples[0][CALLS / 2], c == -EPERM ? "EPERM" : c < 0 ? strerror((int)-c) : "answers", (unsigned long long)samples[1][CALLS / 2]);
}

static void answers(const char *who, int fd, size_t len) {
  long c = cachestat_pages(fd, len), m = mincore_pages(fd, len);
  char cs[64];
  if (c < 0) snprintf(cs, sizeof cs, "%s", strerror((int)-c));
  else snprintf(cs, sizeof cs, "%ld of %zu pages", c, (len + PAGE - 1) / PAGE);
  printf("  %-6s cachestat %-24s  mincore %ld of %zu pages\n", who, cs, m, (len + PAGE - 1) / PAGE);
}

// runs `f` as root here and as uid 65534 in a child (the file reopened there read-only)
static void both(const char *path, size_t len, void (*f)(const char *, int, size_t)) {
  int fd = open(path, O_RDONLY);
  f("root", fd, len);
  close(fd);
  fflush(stdout);
  pid_t p = fork();
  if (p == 0) {
    if (setgid(65534) < 0 || setuid(65534) < 0) { perror("setuid"); _exit(1); }
    fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); _exit(1); }
    f("nobody", fd, len);
    fflush(stdout);
    _exit(0);
  }
  waitpid(p, NULL, 0);
}

static void timing2m(const char *who, int fd, size_t len) { timing(who, "2 MiB", fd, len); }
static void timing64k(const char *who, int fd, size_t len) { timing(who, "64 KiB", fd, len); }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (geteuid() != 0) { fprintf(stderr, "run as root (it compares root with uid 65534)\n"); return 2; }
  const char *dir = argc > 1 ? argv[1] : "/tmp";
  char big[4096], small[4096];
  snprintf(big, sizeof big, "%s/residency-probes-2m", dir);
  snprintf(small, sizeof small, "%s/residency-probes-64k", dir);
  size_t sizes[2] = { 2 << 20, 64 << 10 };
  const char *paths[2] = { big, small };
  static char buf[2 << 20];
  memset(buf, 'x', sizeof buf);
  for (int i = 0; i < 2; i++) {
    int fd = open(paths[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, sizes[i]) != (ssize_t)sizes[i] || fsync(fd) < 0) { perror(paths[i]); return 1; }
    close(fd);
  }
  printf("What each probe answers (2 MiB file, root's, 0644):\n");
  printf(" written:\n");
  both(big, sizes[0], answers);
  int fd = open(big, O_RDONLY);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  printf(" evicted (POSIX_FADV_DONTNEED):\n");
  both(big, sizes[0], answers);
  if (pread(fd, buf, sizes[0], 0) != (ssize_t)sizes[0]) { perror("pread"); return 1; }
  close(fd);
  printf(" read again:\n");
  both(big, sizes[0], answers);
  printf("Median ns per call, %d calls each, interleaved (files resident):\n", CALLS);
  both(big, sizes[0], timing2m);
  both(small, sizes[1], timing64k);
  unlink(big);
  unlink(small);
  return 0;
}
