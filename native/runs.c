/*
 * Run records (SPEC.md 4.2): the encoder and the expansion of
 * protocol/packed.ts's toRuns and fromRuns, in C, because on a small
 * machine the JS loops cost several nanoseconds per element and a 4K
 * buffer's map answer has three arrays of 8,100 elements.
 *
 * encodeRuns(arr) returns the records the greedy split of toRuns gives, the
 * same bytes (test/protocol/runs.test.ts compares them on random arrays).
 * expandRuns(records, out) writes the elements of records that fromRuns has
 * already checked (whole records, counts >= 1 summing to out.length, every
 * element in range) into `out`; it checks only what keeps it in bounds.
 * Both accept Int16, Uint16, Int32 and Uint32 arrays.
 */
#include "runs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RUN_BYTES 12

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_BAD_ARG", msg);
  return NULL;
}

static int supported(napi_typedarray_type type) {
  return type == napi_int16_array || type == napi_uint16_array || type == napi_int32_array || type == napi_uint32_array;
}

static void put32(uint8_t *at, uint32_t v) {
  at[0] = (uint8_t)v;
  at[1] = (uint8_t)(v >> 8);
  at[2] = (uint8_t)(v >> 16);
  at[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *at) {
  return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

/*
 * The greedy split of n elements of type T into `out` (room for n records):
 * returns the number of runs. One function per element type, so that the
 * inner loop is a plain load and compare; a run is extended eight elements
 * at a time while all eight keep the step (no early exit inside a block,
 * so the compiler can evaluate them together), then one at a time.
 */
#define SPLIT(NAME, T)                                                          \
  static size_t NAME(const T *data, size_t n, uint8_t *out) {                   \
    size_t runs = 0;                                                            \
    for (size_t i = 0; i < n; runs++) {                                         \
      int64_t first = data[i];                                                  \
      int64_t step = i + 1 < n ? (int64_t)data[i + 1] - first : 0;              \
      if (step > INT32_MAX || step < INT32_MIN) step = 0;                       \
      size_t j = i + 1;                                                         \
      while (j + 8 <= n) {                                                      \
        int same = 1;                                                           \
        for (size_t k = 0; k < 8; k++)                                          \
          same &= (int64_t)data[j + k] - (int64_t)data[j + k - 1] == step;      \
        if (!same) break;                                                       \
        j += 8;                                                                 \
      }                                                                         \
      while (j < n && (int64_t)data[j] - (int64_t)data[j - 1] == step) j++;     \
      uint8_t *at = out + runs * RUN_BYTES;                                     \
      put32(at, (uint32_t)first);                                               \
      put32(at + 4, (uint32_t)(j - i));                                         \
      put32(at + 8, (uint32_t)(int32_t)(j - i > 1 ? step : 0));                 \
      i = j;                                                                    \
    }                                                                           \
    return runs;                                                                \
  }
SPLIT(split_i16, int16_t)
SPLIT(split_u16, uint16_t)
SPLIT(split_i32, int32_t)
SPLIT(split_u32, uint32_t)

static size_t split(napi_typedarray_type type, const void *data, size_t n, uint8_t *out) {
  switch (type) {
    case napi_int16_array: return split_i16(data, n, out);
    case napi_uint16_array: return split_u16(data, n, out);
    case napi_int32_array: return split_i32(data, n, out);
    default: return split_u32(data, n, out);
  }
}

/* Records are written here first (one pass), then copied out at their real
 * size; per thread, since worker threads may load the addon too. */
static _Thread_local uint8_t *scratch;
static _Thread_local size_t scratch_bytes;

static napi_value encode_runs(napi_env env, napi_callback_info info) {
  size_t argc = 1, n;
  napi_value argv[1], ab, result;
  napi_typedarray_type type;
  void *data, *out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return fail(env, "encodeRuns(arr)");
  if (napi_get_typedarray_info(env, argv[0], &type, &n, &data, NULL, NULL) != napi_ok || !supported(type)) {
    return fail(env, "encodeRuns: expected an Int16, Uint16, Int32 or Uint32 array");
  }
  if (n * RUN_BYTES > scratch_bytes) {
    uint8_t *grown = realloc(scratch, n * RUN_BYTES);
    if (!grown) return fail(env, "encodeRuns: allocation failed");
    scratch = grown;
    scratch_bytes = n * RUN_BYTES;
  }
  size_t runs = split(type, data, n, scratch);
  if (napi_create_arraybuffer(env, runs * RUN_BYTES, &out, &ab) != napi_ok) return fail(env, "encodeRuns: allocation failed");
  if (runs > 0) memcpy(out, scratch, runs * RUN_BYTES);
  if (napi_create_typedarray(env, napi_uint8_array, runs * RUN_BYTES, ab, 0, &result) != napi_ok) return fail(env, "encodeRuns: napi_create_typedarray");
  return result;
}

static napi_value expand_runs(napi_env env, napi_callback_info info) {
  size_t argc = 2, nbytes, n;
  napi_value argv[2];
  napi_typedarray_type rtype, type;
  void *rdata, *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return fail(env, "expandRuns(records, out)");
  if (napi_get_typedarray_info(env, argv[0], &rtype, &nbytes, &rdata, NULL, NULL) != napi_ok || rtype != napi_uint8_array || nbytes % RUN_BYTES != 0) {
    return fail(env, "expandRuns: records must be a Uint8Array of whole 12-byte records");
  }
  if (napi_get_typedarray_info(env, argv[1], &type, &n, &data, NULL, NULL) != napi_ok || !supported(type)) {
    return fail(env, "expandRuns: expected an Int16, Uint16, Int32 or Uint32 array");
  }
  const uint8_t *rec = rdata;
  size_t i = 0;
  for (size_t r = 0; r < nbytes / RUN_BYTES; r++, rec += RUN_BYTES) {
    uint32_t first = get32(rec);
    size_t count = get32(rec + 4);
    int32_t step = (int32_t)get32(rec + 8);
    if (count > n - i) return fail(env, "expandRuns: the records hold more elements than out");
    /* Unsigned arithmetic wraps to the same low bits as the exact values, which fromRuns checked. */
    uint32_t v = first;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array:
        for (size_t k = 0; k < count; k++, v += (uint32_t)step) ((uint16_t *)data)[i + k] = (uint16_t)v;
        break;
      default:
        for (size_t k = 0; k < count; k++, v += (uint32_t)step) ((uint32_t *)data)[i + k] = v;
        break;
    }
    i += count;
  }
  if (i != n) return fail(env, "expandRuns: the records hold fewer elements than out");
  return NULL;
}

napi_status runs_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"encodeRuns", NULL, encode_runs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"expandRuns", NULL, expand_runs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
