// The addon's Node-API surface: JavaScript's calls into the native core (src/native.ts declares them), argument
// conversion and range checks, the channel's lifetime (a JavaScript external, a uv handle, an environment cleanup
// hook), and the memory regions wrapped as external ArrayBuffers exactly once. The work is done by ring.c, loop.c and
// sockets.c. Operating errors are thrown as Error(code MP_ERR_SYSCALL, errno, syscall) or returned as -errno, argument errors
// as TypeError/RangeError with MP_ERR_INVALID_ARG/MP_ERR_OUT_OF_RANGE.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "abi.h"
#include "channel.h"
#include "kernel.h"
#include "sockets.h"

#define NAPI_OK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "MP_ERR_NAPI", #call " failed"); return NULL; } } while (0)

// Error(code MP_ERR_SYSCALL, errno -N, syscall `what`): src/errors.ts (fromAddon) gives it node's shape.
static napi_value throw_errno(napi_env env, const char *what, int neg) {
  napi_value msg, code, err, errnum, sys;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(-neg));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "MP_ERR_SYSCALL", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &err);
  napi_create_int32(env, neg, &errnum);
  napi_set_named_property(env, err, "errno", errnum);
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, err, "syscall", sys);
  napi_throw(env, err);
  return NULL;
}

static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x; napi_create_double(env, v, &x); napi_set_named_property(env, obj, name, x);
}

static void set_bool(napi_env env, napi_value obj, const char *name, int v) {
  napi_value x; napi_get_boolean(env, v != 0, &x); napi_set_named_property(env, obj, name, x);
}

static channel_t *get_channel(napi_env env, napi_value v) {
  channel_t *ch = NULL;
  if (napi_get_value_external(env, v, (void **)&ch) != napi_ok || !ch) {
    napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "not a channel");
    return NULL;
  }
  return ch;
}

// The small calls take one integer (an fd or a CPU) and return an integer (a result or -errno).
static napi_value int_call(napi_env env, napi_callback_info info, int (*fn)(int32_t)) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t v = -1; napi_get_value_int32(env, argv[0], &v);
  napi_value out; napi_create_int32(env, fn(v), &out);
  return out;
}

// ---- the channel's lifetime -----------------------------------------------------------------------------------
// Two references keep a channel: the JavaScript external (finalize_channel) and the uv handle (channel_detached).
static void ch_release(channel_t *ch) {
  if (--ch->refs == 0) { ring_free(ch); free(ch); }
}

void channel_detached(channel_t *ch) {
  // an environment teardown waits for this (on_env_cleanup): it is complete now
  if (ch->env_closing) { napi_async_cleanup_hook_handle hk = ch->env_closing; ch->env_closing = NULL; napi_remove_async_cleanup_hook(hk); }
  ch_release(ch);
}

// Closes the channel: the ring is torn down (every request cancelled and completed, every lwsocket closed), the loop
// integration stopped, JavaScript's callback released. The memory regions stay mapped until their ArrayBuffers are
// collected (JavaScript may still hold views); the kernel no longer touches them. Returns 0 or -ETIMEDOUT (see
// ring_teardown).
static int ch_close(channel_t *ch) {
  if (ch->closed) return 0;
  ch->closed = 1;
  napi_env env = ch->env;
  if (ch->cleanup) { napi_remove_async_cleanup_hook(ch->cleanup); ch->cleanup = NULL; }
  int r = ring_teardown(ch);
  if (ch->cb_ref) { napi_delete_reference(env, ch->cb_ref); ch->cb_ref = NULL; }
  if (ch->resource_ref) { napi_delete_reference(env, ch->resource_ref); ch->resource_ref = NULL; }
  if (ch->async_ctx) { napi_async_destroy(env, ch->async_ctx); ch->async_ctx = NULL; }
  loop_detach(ch);
  return r;
}

// The environment (a worker thread, or the main thread at exit) is going away with the channel still open: the same
// teardown as close(), without JavaScript; the hook is removed once the uv handle has closed (channel_detached).
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  channel_t *ch = arg;
  ch->cleanup = NULL;
  if (ch->closed) { napi_remove_async_cleanup_hook(handle); return; }
  ch->closed = 1;
  ring_teardown(ch);
  if (ch->poll_started) ch->env_closing = handle; else napi_remove_async_cleanup_hook(handle);
  loop_detach(ch);
}

static void finalize_region(napi_env env, void *data, void *hint) {
  (void)env; (void)data;
  mem_unref(hint);
}
static void finalize_channel(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  ch_release((channel_t *)data);
}

// An ArrayBuffer over channel memory `p` (which `owner` unmaps when the channel and every such ArrayBuffer are gone).
static napi_value wrap_region(napi_env env, mem_owner_t *owner, void *p, size_t sz) {
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, sz, finalize_region, owner, &ab) != napi_ok) return NULL;
  owner->refs++;
  return ab;
}

// ---- probe(): what this kernel offers, without keeping anything ----------------------------------------------
static napi_value Probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out; napi_create_object(env, &out);
  struct utsname u; uname(&u);
  napi_value rel; napi_create_string_utf8(env, u.release, NAPI_AUTO_LENGTH, &rel);
  napi_set_named_property(env, out, "kernel", rel);
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl);
  set_num(env, out, "nofileSoft", (double)rl.rlim_cur);
  set_num(env, out, "nofileHard", (double)rl.rlim_max);
  ring_probe_t p;
  ring_probe(&p);
  set_bool(env, out, "ok", p.err == 0);
  set_num(env, out, "errno", p.err);
  if (p.err) return out;
  set_num(env, out, "setupFlags", p.setup_flags);
  set_num(env, out, "features", p.features);
  set_bool(env, out, "singleIssuer", p.setup_flags & IORING_SETUP_SINGLE_ISSUER);
  set_bool(env, out, "deferTaskrun", p.setup_flags & IORING_SETUP_DEFER_TASKRUN);
  set_bool(env, out, "coopTaskrun", p.setup_flags & IORING_SETUP_COOP_TASKRUN);
  // whether a DEFER_TASKRUN ring would wake the loop at once (ring.c, defer_wake): absent when it could not be probed
  if (p.defer_wake >= 0) set_bool(env, out, "deferWakes", p.defer_wake == 1);
  // whether a multishot receive can be capped at a total of bytes per arming (ring.c, recv_total_cap): absent when it
  // could not be probed
  if (p.recv_cap >= 0) set_bool(env, out, "recvCap", p.recv_cap == 1);
  set_bool(env, out, "bundles", p.features & IORING_FEAT_RECVSEND_BUNDLE);
  set_bool(env, out, "nodrop", p.features & IORING_FEAT_NODROP);
  napi_value ops; napi_create_array(env, &ops);
  uint32_t k = 0;
  for (unsigned i = 0; i < 256; i++) if (p.ops[i]) { napi_value v; napi_create_uint32(env, i, &v); napi_set_element(env, ops, k++, v); }
  napi_set_named_property(env, out, "ops", ops);
  set_num(env, out, "lastOp", p.last_op);
  set_bool(env, out, "bufRing", p.buf_ring);
  set_bool(env, out, "sparseFiles", p.sparse_files);
  return out;
}

// ---- channelCreate(options, callback, resource) -> {channel, ctl, recv, send, layout} -------------------------
// Every option is required and range-checked before any arithmetic on it: the addon keeps no defaults of its own
// (limits.ts owns them, checks them first and states how they relate; these checks keep the addon safe on its own).
// A missing option is a TypeError (MP_ERR_INVALID_ARG), one out of range a RangeError (MP_ERR_OUT_OF_RANGE), each
// naming the option.
typedef struct { const char *name; uint32_t lo, hi; } opt_spec_t;
enum { O_SQ, O_CQ, O_FILES, O_RCOUNT, O_RSIZE, O_SSIZE, O_REQ, O_EV, O_ADDR, O_REF, O_COUNT };
static const opt_spec_t opt_specs[O_COUNT] = {
  [O_SQ] = { "sqEntries", 2, 32768 },            [O_CQ] = { "cqEntries", 4, 1u << 20 },
  [O_FILES] = { "files", 0, 1u << 20 },          [O_RCOUNT] = { "recvBuffers", 1, 32768 },
  [O_RSIZE] = { "recvBufferSize", 64, 1u << 24 }, [O_SSIZE] = { "sendArenaBytes", 64, 0x7fffffffu },
  [O_REQ] = { "requestRows", 1, 65535 },         [O_EV] = { "eventRows", 1, 65535 },
  [O_ADDR] = { "addressBytes", 0, 1u << 24 },    [O_REF] = { "refSlots", 0, 1u << 24 },
};

// Reads option `i` of `o` into out[i]; false (an error thrown) when it is missing or not an integer in range.
static int get_opt(napi_env env, napi_value o, int i, uint32_t *out) {
  const opt_spec_t *sp = &opt_specs[i];
  napi_value v; bool has = false;
  char msg[160];
  if (napi_has_named_property(env, o, sp->name, &has) != napi_ok || !has) {
    snprintf(msg, sizeof msg, "channelCreate: option %s is required", sp->name);
    napi_throw_type_error(env, "MP_ERR_INVALID_ARG", msg);
    return 0;
  }
  napi_get_named_property(env, o, sp->name, &v);
  double d = -1;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int64_t)d || d < sp->lo || d > sp->hi) {
    snprintf(msg, sizeof msg, "%s must be an integer in %u..%u", sp->name, sp->lo, sp->hi);
    napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  out[i] = (uint32_t)d;
  return 1;
}

static napi_value ChannelCreate(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "channelCreate(options, callback, resource)"); return NULL; }
  uint32_t o[O_COUNT];
  for (int i = 0; i < O_COUNT; i++) if (!get_opt(env, argv[0], i, o)) return NULL;
  ring_opts_t ro = {
    .sq_entries = o[O_SQ], .cq_entries = o[O_CQ], .files = o[O_FILES], .recv_buffers = o[O_RCOUNT], .recv_buffer_size = o[O_RSIZE],
    .send_arena_bytes = o[O_SSIZE], .request_rows = o[O_REQ], .event_rows = o[O_EV], .address_bytes = o[O_ADDR], .ref_slots = o[O_REF],
  };
  channel_t *ch = calloc(1, sizeof *ch);
  if (!ch) return throw_errno(env, "calloc", -ENOMEM);
  ch->efd = -1; ch->env = env; ch->refs = 2;
  const char *step = "allocate";
  int r = ring_create(ch, &ro, &step);
  uv_loop_t *loop;
  if (r == 0) { step = "uv loop"; r = napi_get_uv_event_loop(env, &loop) == napi_ok ? 0 : -EINVAL; }
  if (r == 0) { step = "eventfd"; r = loop_attach(ch, loop); }
  if (r < 0) {
    // nothing was submitted yet, so the ring holds no request: the teardown releases what was set up
    ring_teardown(ch);
    ch->refs = 1;        // no external will hold it: the loop's reference only
    ch->closed = 1;
    loop_detach(ch);     // closes the eventfd; channel_detached frees the channel (when libuv has let go of the handle)
    return throw_errno(env, step, r);
  }

  // From here the channel is whole: failures below close it (ch_close) instead of unwinding by hand.
  napi_create_reference(env, argv[1], 1, &ch->cb_ref);
  napi_create_reference(env, argv[2], 1, &ch->resource_ref);
  napi_value name; napi_create_string_utf8(env, "megapipe.channel", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, argv[2], name, &ch->async_ctx);
  napi_add_async_cleanup_hook(env, on_env_cleanup, ch, &ch->cleanup);

  napi_value out, ext, v_ctl, v_recv, v_send;
  napi_create_object(env, &out);
  if (napi_create_external(env, ch, finalize_channel, NULL, &ext) != napi_ok) {
    ch->refs--;   // no external holds it
    ch_close(ch);
    napi_throw_error(env, "MP_ERR_NAPI", "napi_create_external failed");
    return NULL;
  }
  napi_set_named_property(env, out, "channel", ext);
  v_ctl = wrap_region(env, ch->mem, ch->ctl, ch->ctl_sz);
  v_recv = wrap_region(env, ch->mem, ch->rbuf, ch->rbuf_sz);
  v_send = wrap_region(env, ch->mem, ch->sbuf, ch->sbuf_sz);
  if (!v_ctl || !v_recv || !v_send) {
    ch_close(ch);
    napi_throw_error(env, "MP_ERR_NAPI", "napi_create_external_arraybuffer failed");
    return NULL;
  }
  napi_set_named_property(env, out, "ctl", v_ctl);
  napi_set_named_property(env, out, "recv", v_recv);
  napi_set_named_property(env, out, "send", v_send);
  napi_value layout; napi_create_object(env, &layout);
  set_num(env, layout, "hdr", ch->off_hdr); set_num(env, layout, "req", ch->off_req); set_num(env, layout, "ev", ch->off_ev);
  set_num(env, layout, "stats", ch->off_stats); set_num(env, layout, "recycle", ch->off_rec); set_num(env, layout, "addr", ch->off_addr);
  set_num(env, layout, "requestRows", ch->req_max); set_num(env, layout, "eventRows", ch->ev_max);
  set_num(env, layout, "recvBuffers", ch->rbuf_count); set_num(env, layout, "recvBufferSize", ch->rbuf_size);
  set_num(env, layout, "sendArenaBytes", (double)ch->sbuf_sz); set_num(env, layout, "addressBytes", ch->addr_sz);
  set_num(env, layout, "sqEntries", ch->sq.entries); set_num(env, layout, "cqEntries", ch->cq.entries);
  set_num(env, layout, "files", ch->files); set_num(env, layout, "refSlots", ch->ref_max);
  set_num(env, layout, "setupFlags", ch->setup_flags); set_num(env, layout, "features", ch->features);
  set_bool(env, layout, "deferTaskrun", ch->setup_flags & IORING_SETUP_DEFER_TASKRUN);
  set_bool(env, layout, "singleIssuer", ch->setup_flags & IORING_SETUP_SINGLE_ISSUER);
  set_bool(env, layout, "registeredRing", ch->ring_index >= 0);
  napi_set_named_property(env, out, "layout", layout);
  return out;

}

// submit(channel): pushes staged rows and recycled buffers; one io_uring_enter. Returns 0, or the -errno that kept rows
// staged (hdr[0] of them, at the front of the request area) or SQEs in the SQ; -EBADF once the channel is closed.
// Called by JavaScript outside the event callback (threshold reached, explicit flush, microtask flush).
static napi_value ChannelSubmit(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  napi_value out;
  if (ch->closed) { napi_create_int32(env, -EBADF, &out); return out; }
  int r = flush_staged(ch, 0);   // rows it could not submit are back in hdr[0] (hdr[2]: why)
  // completions posted inline by this submit must not wait for an unrelated wake-up
  wake_if_posted(ch);
  napi_create_int32(env, r, &out);
  return out;
}

// channelPrepRow(channel, row: Int32Array of MP_ROW_I32) → the SQE the row becomes, not submitted (for tests of the
// row → SQE mapping), or -EINVAL where prep_row refuses it (-EBADF once the channel is closed, as channelSubmit).
static napi_value ChannelPrepRow(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  napi_typedarray_type t; size_t len; void *data;
  if (argc < 2 || napi_get_typedarray_info(env, argv[1], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_int32_array || len < MP_ROW_I32) {
    napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "row must be an Int32Array of MP_ROW_I32 entries");
    return NULL;
  }
  struct io_uring_sqe s;
  napi_value out;
  int r = ch->closed ? -EBADF : ring_prep_row(ch, (const int32_t *)data, &s);
  if (r < 0) { napi_create_int32(env, r, &out); return out; }
  napi_create_object(env, &out);
  set_num(env, out, "opcode", s.opcode);
  set_num(env, out, "flags", s.flags);
  set_num(env, out, "ioprio", s.ioprio);
  set_num(env, out, "fd", s.fd);
  set_num(env, out, "len", s.len);
  set_num(env, out, "opFlags", s.rw_flags);          // msg_flags, accept_flags, cancel_flags… (one word)
  set_num(env, out, "bufGroup", s.buf_group);
  set_num(env, out, "fileIndex", s.file_index);
  set_num(env, out, "off", (double)s.off);
  set_num(env, out, "userDataLo", (double)(uint32_t)s.user_data);
  set_num(env, out, "userDataHi", (double)(uint32_t)(s.user_data >> 32));
  return out;
}

static napi_value ChannelRef(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  bool on = false; napi_get_value_bool(env, argv[1], &on);
  if (!ch->closed && ch->poll_started) { if (on) uv_ref((uv_handle_t *)&ch->poll); else uv_unref((uv_handle_t *)&ch->poll); }
  return NULL;
}

// channelRefSet(channel, slot, bytes: Uint8Array) -> 0 or -EINVAL: records where `bytes` is in memory for sends
// from reference slot `slot` (row flag MP_F_REF). The caller keeps `bytes` alive and unchanged while such a send is
// in flight; a Uint8Array's memory does not move while it is alive.
static napi_value ChannelRefSet(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  uint32_t slot = UINT32_MAX; napi_get_value_uint32(env, argv[1], &slot);
  napi_typedarray_type t; size_t len = 0; void *data = NULL;
  int r = 0;
  if (argc < 3 || slot >= ch->ref_max || napi_get_typedarray_info(env, argv[2], &t, &len, &data, NULL, NULL) != napi_ok ||
      t != napi_uint8_array || len > UINT32_MAX) {
    r = -EINVAL;
  } else {
    ch->ref_ptr[slot] = data; ch->ref_len[slot] = (uint32_t)len;
  }
  napi_value out; napi_create_int32(env, r, &out);
  return out;
}

// channelClose(channel) -> 0, or -ETIMEDOUT when the kernel still had requests after TEARDOWN_MS (the channel's memory
// then stays mapped for good, and JavaScript must keep alive the buffers that no-copy sends may still read).
static napi_value ChannelClose(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  napi_value out; napi_create_int32(env, ch_close(ch), &out);
  return out;
}

// channelIncomingCpu(channel, slot) -> SO_INCOMING_CPU of the lwsocket in direct-descriptor `slot`, or -errno (see
// ring_incoming_cpu).
// (channel, slot) -> fn(channel, slot) as an int32, -EBADF on a closed channel: a synchronous ring command on one
// direct descriptor. The command's CQE (and any other its enter posted) is drained next turn.
static napi_value slot_command(napi_env env, napi_callback_info info, int (*fn)(channel_t *, int32_t)) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  int32_t slot = -1; napi_get_value_int32(env, argv[1], &slot);
  int r = ch->closed ? -EBADF : fn(ch, slot);
  if (!ch->closed) wake_if_posted(ch);
  napi_value out; napi_create_int32(env, r, &out);
  return out;
}

static napi_value ChannelIncomingCpu(napi_env env, napi_callback_info info) {
  return slot_command(env, info, ring_incoming_cpu);
}

// channelSetSockOpt(channel, slot, which, value) -> 0 | -errno; channelGetSockOpt(channel, slot, which) -> value | -errno:
// an mp_sockopt on an lwsocket (ring_setsockopt; read back through an fd installed for the call, as channelSockName). setSockOpt(fd, which, value), getSockOpt(fd, which):
// the same on a regular socket fd.
static napi_value ChannelSockOpt(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  int32_t slot = -1, which = 0, value = 0;
  napi_get_value_int32(env, argv[1], &slot);
  napi_get_value_int32(env, argv[2], &which);
  int set = argc >= 4 && napi_get_value_int32(env, argv[3], &value) == napi_ok;
  int r;
  if (ch->closed) r = -EBADF;
  else if (set) r = ring_setsockopt(ch, slot, which, value);
  else {
    // read back through a regular fd for the socket (the socket command getsockopt takes SOL_SOCKET only)
    int fd = ring_install_fd(ch, slot);
    r = fd < 0 ? fd : get_sock_opt(fd, which);
    if (fd >= 0) close(fd);
  }
  if (!ch->closed) wake_if_posted(ch);
  napi_value out; napi_create_int32(env, r, &out);
  return out;
}
static napi_value FdSockOpt(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1, which = 0, value = 0;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_int32(env, argv[1], &which);
  int set = argc >= 3 && napi_get_value_int32(env, argv[2], &value) == napi_ok;
  napi_value out; napi_create_int32(env, set ? set_sock_opt(fd, which, value) : get_sock_opt(fd, which), &out);
  return out;
}

// ---- sockets (listeners and client sockets; not on the hot path) ----------------------------------------------
// listenGroup(host, port, count, backlog, reusePort, cpuToMember: Int32Array | null, deferAcceptSecs, ipv6Only) -> {fds, port}
// (see listen_group).
static napi_value ListenGroup(napi_env env, napi_callback_info info) {
  size_t argc = 8; napi_value argv[8];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[128]; size_t hl;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  uint32_t port = 0, count = 1, backlog = 511; bool reuse = true, v6only = false;
  napi_get_value_uint32(env, argv[1], &port);
  napi_get_value_uint32(env, argv[2], &count);
  napi_get_value_uint32(env, argv[3], &backlog);
  napi_get_value_bool(env, argv[4], &reuse);
  uint32_t defer = 0; napi_get_value_uint32(env, argv[6], &defer);   // absent: 0
  napi_get_value_bool(env, argv[7], &v6only);                         // absent: false
  int32_t *map = NULL; size_t mapn = 0;
  napi_valuetype t; napi_typeof(env, argv[5], &t);
  if (t == napi_object) {
    napi_typedarray_type tt; void *data; napi_value ab; size_t off;
    if (napi_get_typedarray_info(env, argv[5], &tt, &mapn, &data, &ab, &off) == napi_ok && tt == napi_int32_array) map = data;
  }
  if (count < 1 || count > MP_BOUND_LISTEN_MEMBERS) { napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", "count must be in 1..256"); return NULL; }
  int fds[MP_BOUND_LISTEN_MEMBERS];
  const char *step = "socket";
  int r = listen_group(host, port, count, backlog, reuse, map, mapn, defer, v6only, fds, &step);
  if (r == -EINVAL && !strcmp(step, "address")) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  if (r < 0) return throw_errno(env, step, r);
  napi_value out, arr; napi_create_object(env, &out); napi_create_array(env, &arr);
  for (unsigned i = 0; i < count; i++) { napi_value v; napi_create_int32(env, fds[i], &v); napi_set_element(env, arr, i, v); }
  napi_set_named_property(env, out, "fds", arr);
  set_num(env, out, "port", r);
  return out;
}

// clientSocket(host, localAddress?, localPort?) -> fd: a nonblocking TCP socket for connect (see client_socket).
static napi_value ClientSocket(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[128]; size_t hl;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  char src[128] = ""; napi_valuetype t; napi_typeof(env, argv[1], &t);
  if (argc > 1 && t == napi_string) napi_get_value_string_utf8(env, argv[1], src, sizeof src, &hl);
  uint32_t sport = 0;
  if (argc > 2) { napi_typeof(env, argv[2], &t); if (t == napi_number) napi_get_value_uint32(env, argv[2], &sport); }
  if (sport > 65535) { napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", "localPort must be in 0..65535"); return NULL; }
  const char *step = "socket";
  int fd = client_socket(host, src, (uint16_t)sport, &step);
  if (fd == -EINVAL && !strcmp(step, "address")) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  if (fd == -EINVAL && !strcmp(step, "localAddress")) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "localAddress must be an address literal of the same family"); return NULL; }
  if (fd < 0) return throw_errno(env, step, fd);
  napi_value out; napi_create_int32(env, fd, &out);
  return out;
}

// encodeSockaddr(channel, offset, host, port) -> length: encodes an address into the channel's address area.
static napi_value EncodeSockaddr(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  uint32_t off = 0, port = 0; char host[128]; size_t hl;
  napi_get_value_uint32(env, argv[1], &off);
  if (napi_get_value_string_utf8(env, argv[2], host, sizeof host, &hl) != napi_ok) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be a string"); return NULL; }
  napi_get_value_uint32(env, argv[3], &port);
  struct sockaddr_storage ss; socklen_t sl;
  if (parse_addr(host, port, &ss, &sl) < 0) { napi_throw_type_error(env, "MP_ERR_INVALID_ARG", "host must be an IPv4 or IPv6 address literal"); return NULL; }
  if ((uint64_t)off + sl > ch->addr_sz) { napi_throw_range_error(env, "MP_ERR_OUT_OF_RANGE", "address slot out of range"); return NULL; }
  memcpy(ch->addr + off, &ss, sl);
  napi_value out; napi_create_uint32(env, sl, &out);
  return out;
}

// pipeOpen(bytes) -> [readFd, writeFd, capacity] or -errno (see pipe_open).
static napi_value PipeOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t want = 0; napi_get_value_int32(env, argv[0], &want);
  int32_t v[3];
  napi_value out;
  int r = pipe_open(want, v);
  if (r < 0) { napi_create_int32(env, r, &out); return out; }
  napi_create_array_with_length(env, 3, &out);
  for (uint32_t i = 0; i < 3; i++) { napi_value x; napi_create_int32(env, v[i], &x); napi_set_element(env, out, i, x); }
  return out;
}

// sendFileTo(socketFd, fileFd, position, length) -> bytes sent now | -errno (see send_file): a resident file region
// straight to a nonblocking socket, page-cache pages without a copy and without an io-wq worker.
static napi_value SendFileTo(napi_env env, napi_callback_info info) {
  size_t argc = 4; napi_value argv[4];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t out = -1, in = -1; int64_t pos = 0, len = 0;
  napi_get_value_int32(env, argv[0], &out);
  napi_get_value_int32(env, argv[1], &in);
  napi_get_value_int64(env, argv[2], &pos);
  napi_get_value_int64(env, argv[3], &len);
  napi_value r;
  napi_create_double(env, (double)(pos < 0 || len < 0 ? -EINVAL : send_file(out, in, pos, len)), &r);
  return r;
}

// fileCached(fd, position, length) -> 1 | 0 | -errno (see file_cached).
static napi_value FileCached(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1; int64_t pos = 0, len = 0;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_int64(env, argv[1], &pos);
  napi_get_value_int64(env, argv[2], &len);
  napi_value r;
  napi_create_int32(env, pos < 0 ? -EINVAL : file_cached(fd, pos, len), &r);
  return r;
}

// channelInstallFd(channel, slot) -> a regular fd (close-on-exec) for the lwsocket in direct-descriptor `slot`, which
// the caller closes, or -errno (see ring_install_fd).
static napi_value ChannelInstallFd(napi_env env, napi_callback_info info) {
  return slot_command(env, info, ring_install_fd);
}

// The {address, port, family} object of sock_name's result, or its -errno as a number.
static napi_value name_result(napi_env env, int fam, const char *host, int port) {
  napi_value out;
  if (fam < 0) { napi_create_int32(env, fam, &out); return out; }
  napi_value a; napi_create_object(env, &out);
  napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &a); napi_set_named_property(env, out, "address", a);
  set_num(env, out, "port", port);
  set_num(env, out, "family", fam);
  return out;
}

// sockName(fd, peer) -> {address, port, family: 4 | 6} of a socket's local (peer false) or remote end, or -errno.
static napi_value SockName(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1; napi_get_value_int32(env, argv[0], &fd);
  bool peer = false; napi_get_value_bool(env, argv[1], &peer);
  char host[64] = ""; int port = 0;
  int fam = fd < 0 ? -EBADF : sock_name(fd, peer, host, sizeof host, &port);
  return name_result(env, fam, host, port);
}

// channelSockName(channel, slot, peer) -> sockName of the lwsocket in direct-descriptor `slot` (through a temporary
// fd: ring_install_fd, Linux 6.8), or -errno.
static napi_value ChannelSockName(napi_env env, napi_callback_info info) {
  size_t argc = 3; napi_value argv[3];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel_t *ch = get_channel(env, argv[0]);
  if (!ch) return NULL;
  int32_t slot = -1; napi_get_value_int32(env, argv[1], &slot);
  bool peer = false; napi_get_value_bool(env, argv[2], &peer);
  char host[64] = ""; int port = 0;
  int fd = ring_install_fd(ch, slot);
  int fam = fd < 0 ? fd : sock_name(fd, peer, host, sizeof host, &port);
  if (fd >= 0) close(fd);
  return name_result(env, fam, host, port);
}

static napi_value CloseFd(napi_env env, napi_callback_info info) { return int_call(env, info, close_fd); }
static napi_value DupFd(napi_env env, napi_callback_info info) { return int_call(env, info, dup_fd); }
static napi_value FdNonblocking(napi_env env, napi_callback_info info) { return int_call(env, info, fd_nonblocking); }
static napi_value IncomingCpu(napi_env env, napi_callback_info info) { return int_call(env, info, incoming_cpu); }
static napi_value AcceptQueueLength(napi_env env, napi_callback_info info) { return int_call(env, info, accept_queue_length); }
static napi_value AcceptNow(napi_env env, napi_callback_info info) { return int_call(env, info, accept_now); }
static napi_value PinThread(napi_env env, napi_callback_info info) { return int_call(env, info, pin_thread); }
static napi_value CurrentCpu(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out; napi_create_int32(env, sched_getcpu(), &out);
  return out;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor d[] = {
    { "probe", NULL, Probe, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelCreate", NULL, ChannelCreate, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelSubmit", NULL, ChannelSubmit, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelRef", NULL, ChannelRef, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelPrepRow", NULL, ChannelPrepRow, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelClose", NULL, ChannelClose, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelRefSet", NULL, ChannelRefSet, NULL, NULL, NULL, napi_enumerable, NULL },
    { "encodeSockaddr", NULL, EncodeSockaddr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "listenGroup", NULL, ListenGroup, NULL, NULL, NULL, napi_enumerable, NULL },
    { "clientSocket", NULL, ClientSocket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sockName", NULL, SockName, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelSockName", NULL, ChannelSockName, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dupFd", NULL, DupFd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "incomingCpu", NULL, IncomingCpu, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelIncomingCpu", NULL, ChannelIncomingCpu, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelSetSockOpt", NULL, ChannelSockOpt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelGetSockOpt", NULL, ChannelSockOpt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setSockOpt", NULL, FdSockOpt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getSockOpt", NULL, FdSockOpt, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pinThread", NULL, PinThread, NULL, NULL, NULL, napi_enumerable, NULL },
    { "acceptQueueLength", NULL, AcceptQueueLength, NULL, NULL, NULL, napi_enumerable, NULL },
    { "acceptNow", NULL, AcceptNow, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pipeOpen", NULL, PipeOpen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "currentCpu", NULL, CurrentCpu, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sendFileTo", NULL, SendFileTo, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fdNonblocking", NULL, FdNonblocking, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fileCached", NULL, FileCached, NULL, NULL, NULL, napi_enumerable, NULL },
    { "channelInstallFd", NULL, ChannelInstallFd, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}
