// The ring inside Node's event loop: the ring signals an eventfd (IORING_REGISTER_EVENTFD), libuv watches it
// (uv_poll), and each wake-up runs one turn: flush what JavaScript staged, drain completions in bounded batches, call
// JavaScript once per batch (never while the CQ is being read), and flush what the batch staged (flush rule ii).
// Why an eventfd and not the ring fd itself (which is pollable): on a DEFER_TASKRUN ring a completion is first queued
// as deferred work, and queueing it wakes the eventfd but not the ring fd's poll queue (only posting a CQE does, which
// needs our own GETEVENTS enter): measured on 6.18, an epoll_wait on the ring fd, whether asleep when the completion
// was deferred or called after it, sees nothing for 200 ms while IORING_SQ_TASKRUN is set and the eventfd is readable.
// Without DEFER_TASKRUN the ring fd does wake the loop (bench/c/wake-probe.c, 6.18): a completion interrupts
// epoll_wait (EINTR: task work is announced like a signal), the task work posts the CQE on the way out, and the next
// epoll_wait reports the ring fd — two epoll_waits and no eventfd read or GETEVENTS enter per wake-up. Built and
// measured side by side (branch wake, 09564c7; BENCHMARKS.md "Fewer io_uring_enter calls per wake-up"): 45% fewer
// enters and 20% fewer system calls per transaction at 1 txn/conn, but no less CPU (1.04× the base's at 1 txn/conn,
// 1.05× persistent: a ring without DEFER_TASKRUN runs its task work in smaller batches), so this stays the wake-up.
// The eventfd needs a kernel that signals it as it queues the deferred work: where one does not (ring.c, defer_wake),
// the ring is set up without DEFER_TASKRUN and the eventfd is signalled as each CQE is posted (then completions are also
// posted while JavaScript runs, at any kernel entry of this thread: src/uring/receive.ts arms single-shot receives).
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "abi.h"
#include "channel.h"
#include "kernel.h"

// Makes the next loop iteration run a turn: completions are waiting that no kernel signal will announce.
static void wake_self(channel_t *ch) { uint64_t one = 1; ssize_t w = write(ch->efd, &one, sizeof one); (void)w; }

// After an enter made outside a turn (JavaScript's own flush, a side request): completions it posted inline must
// not wait for an unrelated wake-up. Inside a turn the drain loop picks them up.
void wake_if_posted(channel_t *ch) { if (!ch->in_callback && !ch->closed && cq_nonempty(ch)) wake_self(ch); }

void call_js(channel_t *ch, unsigned n) {
  napi_env env = ch->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, resource, argv[1], result;
  napi_get_reference_value(env, ch->cb_ref, &cb);
  napi_get_reference_value(env, ch->resource_ref, &resource);
  napi_create_uint32(env, n, &argv[0]);
  ch->stats[MP_ST_JS_CALLS] += 1;
  ch->in_callback = 1;
  napi_status st = napi_make_callback(env, ch->async_ctx, resource, cb, 1, argv, &result);
  ch->in_callback = 0;
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

// While a turn runs, the ring's eventfd is muted (IORING_CQ_EVENTFD_DISABLED): the turn's own GETEVENTS enters
// post completions and would otherwise signal it, waking the next loop iteration for nothing (about a third of
// all wake-ups under short connections). Unmuting is followed by a full fence and a look at the CQ and at
// IORING_SQ_TASKRUN, so work that arrived while muted is never left without a wake-up.
static inline void evfd_mute(channel_t *ch, int on) {
  if (!ch->cq.flags) return;
  unsigned f = atomic_load_explicit((_Atomic unsigned *)ch->cq.flags, memory_order_relaxed);
  f = on ? (f | IORING_CQ_EVENTFD_DISABLED) : (f & ~IORING_CQ_EVENTFD_DISABLED);
  atomic_store_explicit((_Atomic unsigned *)ch->cq.flags, f, memory_order_release);
  if (!on) atomic_thread_fence(memory_order_seq_cst);
}

static void run_turn(channel_t *ch) {
  int delivered = 0;
  evfd_mute(ch, 1);
  for (int i = 0; i < MP_BOUND_DRAIN_ROUNDS && !ch->closed; i++) {
    flush_staged(ch, 1);   // rows it could not submit stay staged (hdr[0]); JavaScript sees them when it stages next
    unsigned n = drain_cq(ch);
    if (n == 0) break;
    delivered = 1;
    ch->stats[MP_ST_BATCHES] += 1;
    call_js(ch, n);
  }
  if (ch->closed) return;
  // the last batch's rows (handed off by JavaScript), and SQEs a refused enter left in the SQ: if the kernel refuses
  // them now, JavaScript is told at once (a call with no events) so that its retry policy runs — nothing is ever left
  // staged with nothing to submit it
  if ((ch->hdr[0] || ch->hdr[1] || sq_queued(ch)) && flush_staged(ch, 0) < 0 && !ch->closed) call_js(ch, 0);
  if (ch->closed) return;
  if (!delivered) ch->stats[MP_ST_EMPTY_WAKEUPS] += 1;
  evfd_mute(ch, 0);
  // completions left over (MP_BOUND_DRAIN_ROUNDS reached, posted inline by the last submit, or deferred work that arrived
  // while the eventfd was muted): wake ourselves again
  if (work_pending(ch)) wake_self(ch);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status; (void)events;
  channel_t *ch = h->data;
  if (ch->closed) return;
  uint64_t v; ssize_t rd = read(ch->efd, &v, sizeof v); (void)rd;
  ch->stats[MP_ST_WAKEUPS] += 1;
  run_turn(ch);
}

// Creates the eventfd, registers it with the ring and starts watching it on `loop` (unreferenced: JavaScript refs the
// handle while the channel has open handles). Returns 0 or -errno.
int loop_attach(channel_t *ch, uv_loop_t *loop) {
  int r;
  if ((ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) return -errno;
  if ((r = sys_register(ch->ring_fd, IORING_REGISTER_EVENTFD, &ch->efd, 1)) < 0) return r;
  if ((r = uv_poll_init(loop, &ch->poll, ch->efd)) < 0) return r;
  ch->poll.data = ch;
  uv_poll_start(&ch->poll, UV_READABLE, on_poll);
  uv_unref((uv_handle_t *)&ch->poll);
  ch->poll_started = 1;
  return 0;
}

static void on_poll_closed(uv_handle_t *h) {
  channel_t *ch = h->data;
  if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; }
  channel_detached(ch);
}

// Stops watching the eventfd; channel_detached(ch) runs once libuv has let go of the handle (at once if it never
// started).
void loop_detach(channel_t *ch) {
  if (ch->poll_started) { uv_poll_stop(&ch->poll); uv_close((uv_handle_t *)&ch->poll, on_poll_closed); }
  else { if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; } channel_detached(ch); }
}
