/*
 * The guest's side of granting (SPEC.md 7.2; Xen's gnttab_grant_foreign_access_ref
 * in drivers/xen/grant-table.c): each entry is introduced in Xen's order,
 * domid and frame first, then a write barrier, then the flags. A 4K buffer
 * grants 8,100 entries at once; in JS each flags store is an Atomics call.
 *
 * grantPublish(words, refs, frames, unusedHeader, liveHeader): for every i,
 * entry refs[i] of the table `words` (two 32-bit words per entry) gets word
 * 0 = unusedHeader (the domid with flags 0, so no reader acts on it yet) and
 * word 1 = frames[i] by plain stores, then word 0 = liveHeader by a release
 * store: a reader that sees the flags (an atomic load, as the backend's)
 * also sees the frame and domid written before them. The caller
 * (src/memory/grant-table-view.ts) has checked every ref and frame.
 */
#include "grant-publish.h"

#include <stdint.h>

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_BAD_ARG", msg);
  return NULL;
}

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *n) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, n, data, NULL, NULL) == napi_ok && type == want;
}

static napi_value grant_publish(napi_env env, napi_callback_info info) {
  size_t argc = 5, nwords, nrefs, nframes;
  napi_value argv[5];
  void *w, *r, *f;
  int32_t unused, live;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) return fail(env, "grantPublish(words, refs, frames, unusedHeader, liveHeader)");
  if (!typed(env, argv[0], napi_int32_array, &w, &nwords)) return fail(env, "grantPublish: words must be an Int32Array");
  if (!typed(env, argv[1], napi_uint32_array, &r, &nrefs) || !typed(env, argv[2], napi_uint32_array, &f, &nframes) || nrefs != nframes) {
    return fail(env, "grantPublish: refs and frames must be Uint32Arrays of one length");
  }
  if (napi_get_value_int32(env, argv[3], &unused) != napi_ok || napi_get_value_int32(env, argv[4], &live) != napi_ok) {
    return fail(env, "grantPublish: headers must be numbers");
  }
  int32_t *words = w;
  const uint32_t *refs = r, *frames = f;
  for (size_t i = 0; i < nrefs; i++) {
    if ((size_t)refs[i] * 2 + 1 >= nwords) return fail(env, "grantPublish: ref beyond the table");
  }
  for (size_t i = 0; i < nrefs; i++) {
    int32_t *entry = words + (size_t)refs[i] * 2;
    entry[0] = unused;
    entry[1] = (int32_t)frames[i];
    __atomic_store_n(&entry[0], live, __ATOMIC_RELEASE);
  }
  return NULL;
}

napi_status grant_publish_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"grantPublish", NULL, grant_publish, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
