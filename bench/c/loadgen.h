/* Shared by the load generators: a log-linear latency histogram, a 64-bit mixer (splitmix64's finaliser), and the
 * table of pseudo-random bytes that requests and values are cut from (the same bytes in every run). */
#pragma once
#include <stdint.h>
#include <stdlib.h>

/* ---- log-linear histogram: 32 sub-buckets per power of two of nanoseconds (~3% resolution) ---- */

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct histogram {
  uint64_t count, sum_ns, max_ns;
  uint64_t buckets[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v) {
  if (v < HIST_SUB) return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
  unsigned sub = (unsigned)(v >> (k - HIST_SUB_BITS)) & (HIST_SUB - 1);
  return (k - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

/* Midpoint of a bucket, in nanoseconds. */
static inline double hist_value(unsigned idx) {
  if (idx < HIST_SUB) return idx;
  unsigned k = idx / HIST_SUB + HIST_SUB_BITS - 1;
  unsigned sub = idx % HIST_SUB;
  double width = (double)(1ull << (k - HIST_SUB_BITS));
  return (double)(HIST_SUB + sub) * width + width / 2;
}

static inline void hist_record(struct histogram *h, uint64_t ns) {
  h->count++;
  h->sum_ns += ns;
  if (ns > h->max_ns) h->max_ns = ns;
  h->buckets[hist_index(ns)]++;
}

static inline double hist_percentile_us(const struct histogram *h, double p) {
  if (h->count == 0) return 0;
  uint64_t rank = (uint64_t)(p * (double)h->count);
  if (rank >= h->count) rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen > rank) return hist_value(i) / 1000.0;
  }
  return (double)h->max_ns / 1000.0;
}

/* A bijective 64-bit mix: request bytes and key values derived from a counter. */
static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* Pseudo-random bytes (xorshift64), filled once by table_fill. */
static unsigned char *table;

static inline void table_fill(size_t len) {
  table = malloc(len);
  if (table == NULL) die("out of memory");
  uint64_t s = 0x243f6a8885a308d3ull;
  for (size_t i = 0; i < len; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    table[i] = (unsigned char)(s >> 24);
  }
}
