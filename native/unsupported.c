// Non-Linux builds: the addon loads and reports that io_uring is unavailable, so the portable backend is chosen.
#include <node_api.h>
static napi_value Probe(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out, f, e;
  napi_create_object(env, &out);
  napi_get_boolean(env, false, &f);
  napi_create_int32(env, -38 /* ENOSYS */, &e);
  napi_set_named_property(env, out, "ok", f);
  napi_set_named_property(env, out, "errno", e);
  return out;
}
NAPI_MODULE_INIT() {
  napi_property_descriptor d[] = { { "probe", NULL, Probe, NULL, NULL, NULL, napi_enumerable, NULL } };
  napi_define_properties(env, exports, 1, d);
  return exports;
}
