// The ring inside Node's event loop: each wake-up runs one turn: flush what JavaScript staged, drain completions in
// bounded batches, call JavaScript once per batch (never while the CQ is being read), and flush what the batch staged
// (flush rule ii). Two ways to be woken, chosen per channel at creation (loop_wake_ringfd):
// - eventfd: the ring signals an eventfd (IORING_REGISTER_EVENTFD) that libuv watches (uv_poll). The ring has
//   DEFER_TASKRUN, and on such a ring a completion is first queued as deferred work: queueing it wakes the eventfd but
//   not the ring fd's poll queue (only posting a CQE does, which needs our own GETEVENTS enter): measured on 6.18, an
//   epoll_wait on the ring fd, whether asleep when the completion was deferred or called after it, sees nothing for
//   200 ms while IORING_SQ_TASKRUN is set and the eventfd is readable. Per wake-up: epoll_wait, read(eventfd), an
//   enter to run the deferred work, and an enter to submit what JavaScript staged.
// - ring fd: the ring has no DEFER_TASKRUN, and libuv watches the ring fd itself. Measured on 6.18
//   (bench/c/wake-probe.c): a completion arriving while the thread sleeps in epoll_wait interrupts it (EINTR: task work
//   is announced like a signal), the task work runs on the way out and posts the CQE, and libuv's next epoll_wait
//   reports the ring fd at once; while the thread runs (COOP_TASKRUN: no interrupt) the work waits, with
//   IORING_SQ_TASKRUN set, until its next system call or tick, and an epoll_wait entered with it pending returns EINTR
//   at once. CQEs posted inline by our own enters make the ring fd readable too, and it stays readable while the CQ
//   holds a CQE (level-triggered). So a turn needs no enter to see completions (only to submit, and with GETEVENTS only
//   when IORING_SQ_TASKRUN says work waits), and nothing needs muting. An eventfd remains, not registered with the ring:
//   it wakes the loop for completions the CQ does not hold (rows that never reached the kernel).
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "abi.h"
#include "channel.h"
#include "kernel.h"

// Makes the next loop iteration run a turn: completions are waiting that no kernel signal will announce.
static void wake_self(channel_t *ch) { uint64_t one = 1; ssize_t w = write(ch->efd, &one, sizeof one); (void)w; }

// Work that no kernel signal will announce to the wake-up in use. eventfd: whatever is left (the eventfd was muted
// during the turn, and completions posted inline by our own enters do not signal it then). Ring fd: the kernel
// announces what is in the CQ or waits as task work (readable ring fd; EINTR), and an overflow makes the ring fd
// readable too, but completions of rows that never reached the kernel are ours alone.
static int needs_self_wake(channel_t *ch) {
  if (!ch->wake_ringfd) return work_pending(ch);
  return ch->rej_n != 0;
}

// After an enter made outside a turn (JavaScript's own flush, a side request): completions it posted inline must
// not wait for an unrelated wake-up. Inside a turn the drain loop picks them up.
void wake_if_posted(channel_t *ch) { if (!ch->in_callback && !ch->closed && needs_self_wake(ch)) wake_self(ch); }

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
  if (!ch->cq.flags || ch->wake_ringfd) return;
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
  // while the eventfd was muted) that nothing else will announce: wake ourselves again
  if (needs_self_wake(ch)) wake_self(ch);
}

// The eventfd: the ring's signal (eventfd wake-up), or a self-wake (ring-fd wake-up).
static void on_eventfd(uv_poll_t *h, int status, int events) {
  (void)status; (void)events;
  channel_t *ch = h->data;
  if (ch->closed) return;
  uint64_t v; ssize_t rd = read(ch->efd, &v, sizeof v); (void)rd;
  ch->stats[MP_ST_WAKEUPS] += 1;
  run_turn(ch);
}

// The ring fd is readable: CQEs are in the CQ (the task work that posted them ran on the way out of epoll_wait).
static void on_ring_fd(uv_poll_t *h, int status, int events) {
  (void)status; (void)events;
  channel_t *ch = h->data;
  if (ch->closed) return;
  ch->stats[MP_ST_WAKEUPS] += 1;
  run_turn(ch);
}

// The wake-up a new channel asks for: MEGAPIPE_WAKE=ringfd or =eventfd, else the default (eventfd); ring fd only
// where the kernel makes a ring fd readable on a completion (ring_fd_pollable, probed once per process). 1 = ring fd.
// ring_create sets up a ring without DEFER_TASKRUN for it.
int loop_wake_ringfd(void) {
  const char *w = getenv("MEGAPIPE_WAKE");
  int want = 0;
  if (w && !strcmp(w, "ringfd")) want = 1;
  else if (w && !strcmp(w, "eventfd")) want = 0;
  return want && ring_fd_pollable();
}

static int poll_open(channel_t *ch, uv_loop_t *loop, uv_poll_t *p, int fd, uv_poll_cb cb, int *open) {
  int r = uv_poll_init(loop, p, fd);
  if (r < 0) return r;
  *open = 1;
  p->data = ch;
  uv_poll_start(p, UV_READABLE, cb);
  uv_unref((uv_handle_t *)p);
  return 0;
}

// Starts the wake-up ch->wake_ringfd names (eventfd if the ring has DEFER_TASKRUN after all) on `loop`: creates the
// eventfd, registers it with the ring (eventfd wake-up) and watches it, or watches the ring fd and the eventfd (ring-fd
// wake-up). Every handle starts unreferenced: JavaScript refs ch->poll while the channel has open handles. Returns 0 or
// -errno (what was opened is closed by loop_detach).
int loop_attach(channel_t *ch, uv_loop_t *loop) {
  int r;
  if (ch->setup_flags & IORING_SETUP_DEFER_TASKRUN) ch->wake_ringfd = 0;
  if ((ch->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) return -errno;
  if (ch->wake_ringfd) {
    if ((r = poll_open(ch, loop, &ch->poll, ch->ring_fd, on_ring_fd, &ch->poll_open)) < 0) return r;
    return poll_open(ch, loop, &ch->self_poll, ch->efd, on_eventfd, &ch->self_open);
  }
  if ((r = sys_register(ch->ring_fd, IORING_REGISTER_EVENTFD, &ch->efd, 1)) < 0) return r;
  return poll_open(ch, loop, &ch->poll, ch->efd, on_eventfd, &ch->poll_open);
}

// Stops watching (at once: libuv removes the fd from its epoll set now). Called before the ring fd is closed, so that
// no epoll registration outlives it (its number may be reused at once).
void loop_stop(channel_t *ch) {
  if (ch->poll_open) uv_poll_stop(&ch->poll);
  if (ch->self_open) uv_poll_stop(&ch->self_poll);
}

static void on_poll_closed(uv_handle_t *h) {
  channel_t *ch = h->data;
  if (ch->poll_open + ch->self_open > 1) { if (h == (uv_handle_t *)&ch->poll) ch->poll_open = 0; else ch->self_open = 0; return; }
  ch->poll_open = ch->self_open = 0;
  if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; }
  channel_detached(ch);
}

// Stops watching and closes the handles; channel_detached(ch) runs once libuv has let go of the last of them (at once
// if none was opened). The eventfd is closed then.
void loop_detach(channel_t *ch) {
  if (!ch->poll_open && !ch->self_open) { if (ch->efd >= 0) { close(ch->efd); ch->efd = -1; } channel_detached(ch); return; }
  loop_stop(ch);
  if (ch->poll_open) uv_close((uv_handle_t *)&ch->poll, on_poll_closed);
  if (ch->self_open) uv_close((uv_handle_t *)&ch->self_poll, on_poll_closed);
}
