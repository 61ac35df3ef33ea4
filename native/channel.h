// A channel, as the native core sees it: one io_uring (ring.c), living in Node's event loop (loop.c), reached from
// JavaScript through Node-API (addon.c). This header is private to the addon; what JavaScript sees is in abi.h.
#ifndef MEGAPIPE_CHANNEL_H
#define MEGAPIPE_CHANNEL_H
#include <stddef.h>
#include <stdint.h>
#include <linux/io_uring.h>
#include <node_api.h>
#include <uv.h>

#define TEARDOWN_MS 2000   // close() gives up waiting for the kernel when no request has completed for this long

typedef struct {
  unsigned *head, *tail, *flags, *array, mask, entries;
  struct io_uring_sqe *sqes;
  void *ring_ptr; size_t ring_sz; void *sqes_ptr; size_t sqes_sz;
} sq_t;
typedef struct {
  unsigned *head, *tail, *flags, mask, entries;
  struct io_uring_cqe *cqes;
  void *ring_ptr; size_t ring_sz;
} cq_t;

// The memory regions JavaScript sees (control region, receive pool, send arena) are used by three parties: C (the
// control region, until the channel is freed), the kernel (until the ring is torn down, which happens before the
// channel is freed) and JavaScript (while an ArrayBuffer over it is reachable). They are unmapped when the last of
// them lets go: the channel and each ArrayBuffer hold a reference. `pinned`: the teardown could not make sure the
// kernel had let go (a request still pending after TEARDOWN_MS without progress); the memory then stays mapped for
// the life of the process rather than risk the kernel writing into memory reused for something else.
typedef struct mem_owner {
  int refs, pinned;
  struct { void *p; size_t sz; } r[3];
} mem_owner_t;
void mem_unref(mem_owner_t *m);

// What a channel is created with (each already range-checked by addon.c).
typedef struct {
  unsigned sq_entries, cq_entries, files, recv_buffers, recv_buffer_size, send_arena_bytes, request_rows, event_rows,
    address_bytes, ref_slots;
} ring_opts_t;

typedef struct channel {
  // ---- the ring (ring.c)
  int ring_fd, ring_index;   // ring_index >= 0 when the ring fd is registered (IORING_ENTER_REGISTERED_RING)
  unsigned setup_flags, features;
  sq_t sq; cq_t cq;
  struct __kernel_timespec *sq_ts;   // per SQ entry: the timespec of an MP_OP_TIMEOUT row
  int ring_up;                       // set up and mapped (the teardown has work to do)
  int closed;
  // control region: header, request rows, event rows, counters, recycle list, address area
  uint8_t *ctl; size_t ctl_sz;
  int32_t *hdr, *req, *ev, *recycle; double *stats; uint8_t *addr;
  unsigned req_max, ev_max, recycle_max, addr_sz;
  size_t off_hdr, off_req, off_ev, off_stats, off_rec, off_addr;
  // requests the kernel has taken whose final completion (no IORING_CQE_F_MORE) has not been drained yet
  unsigned inflight;
  // completions of requests that never reached the kernel (refused rows, a withdrawn SQ): delivered by the next drain,
  // ahead of the CQ. A flush starts only with rej_flush free (its rows and a withdrawn SQ always fit)
  uint64_t *rej_ud; int32_t *rej_res; unsigned rej_n, rej_max, rej_flush;
  // provided-buffer ring; in_ring[bid]: the buffer is in the ring (recycling it again would publish it twice)
  struct io_uring_buf_ring *br; size_t br_sz; unsigned br_entries, br_mask; uint16_t br_tail;
  uint8_t *rbuf; size_t rbuf_sz; unsigned rbuf_count, rbuf_size;
  uint8_t *in_ring;
  mem_owner_t *mem;
  uint8_t *sbuf; size_t sbuf_sz;   // send arena
  // reference slots: memory of JavaScript buffers sent without a copy (channelRefSet). JavaScript keeps each buffer
  // alive, unchanged, while a send from its slot is in flight; rows are checked against the recorded length.
  const uint8_t **ref_ptr; uint32_t *ref_len; unsigned ref_max;
  unsigned files;
  int32_t sync_val;   // optval of ring_incoming_cpu's getsockopt command
  int32_t *slot_val;  // per slot: a setsockopt value other than 0 or 1 (TCP_KEEPIDLE), kept until the request runs
  uint32_t sync_seq;
  // ---- Node's loop (loop.c)
  int efd;                 // the eventfd the ring signals, watched by uv_poll
  uv_poll_t poll;
  int poll_started, in_callback;
  // ---- the JavaScript side (addon.c)
  int refs;                // the JS external + the uv handle: freed when both are gone
  napi_env env;
  napi_ref cb_ref, resource_ref;
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup, env_closing;
} channel_t;

// SQEs committed and not yet taken by the kernel.
static inline unsigned sq_queued(channel_t *ch) {
  return *ch->sq.tail - __atomic_load_n(ch->sq.head, __ATOMIC_ACQUIRE);
}

// ring.c: the ring — setup, rows to SQEs, submission, completions, teardown. Every int result is 0 (or a count) or -errno.
int ring_create(channel_t *ch, const ring_opts_t *o, const char **step);
int flush_staged(channel_t *ch, int getevents);
// The SQE one request row becomes (into *out, zeroed first), without submitting it: 0, or -EINVAL for a row prep_row
// refuses. Lets tests pin the row → SQE mapping (addon: channelPrepRow).
int ring_prep_row(channel_t *ch, const int32_t *row, struct io_uring_sqe *out);
unsigned drain_cq(channel_t *ch);
int cq_nonempty(channel_t *ch);
int work_pending(channel_t *ch);
int ring_incoming_cpu(channel_t *ch, int32_t slot);
// Sets an mp_sockopt on the lwsocket in `slot`: 0, or -errno (-EAGAIN when the command's completion did not arrive
// within the call: the option is then set when the request runs; -EBUSY when the command could not be queued at all,
// the SQ full and the kernel refusing submissions for now: the option is not set). (Reading one back needs an fd: the
// socket command getsockopt takes SOL_SOCKET only.)
int ring_setsockopt(channel_t *ch, int32_t slot, int which, int value);
// A temporary regular fd for the lwsocket in `slot` (the caller closes it), or -errno.
int ring_install_fd(channel_t *ch, int32_t slot);
int ring_teardown(channel_t *ch);
void ring_free(channel_t *ch);

typedef struct {
  int err;                  // 0, or io_uring_setup's -errno
  unsigned setup_flags, features;
  int last_op;
  uint8_t ops[256];         // 1: the opcode is supported
  int buf_ring, sparse_files;
  int defer_wake;           // defer_wake()
  int recv_cap;             // recv_total_cap()
} ring_probe_t;
void ring_probe(ring_probe_t *out);
// 1: a DEFER_TASKRUN ring signals its eventfd as a completion is queued; 0: it does not (channels then set up without
// DEFER_TASKRUN); -errno: could not be probed (then without it too). Cached once answered (ring.c).
int defer_wake(void);
// 1: a multishot receive takes a total byte cap (sqe->optlen, Linux 6.17), after which it ends by itself; 0: it does
// not; -errno: could not be probed. Cached once answered (ring.c).
int recv_total_cap(void);

// loop.c: the ring inside Node's event loop — an eventfd watched by uv_poll; one turn per wake-up; JavaScript called
// once per drained batch.
int loop_attach(channel_t *ch, uv_loop_t *loop);
void loop_detach(channel_t *ch);
void wake_if_posted(channel_t *ch);
void call_js(channel_t *ch, unsigned n);

// addon.c: the loop has let go of the channel's uv handle (its reference to the channel is dropped).
void channel_detached(channel_t *ch);

#endif
