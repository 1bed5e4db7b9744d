/*
 * The backend's per-entry grant loops (SPEC.md 7.4, 7.5, 7.7): the entries of
 * GNTTAB_MAP_GRANT_REF and GNTTAB_UNMAP_GRANT_REF, and the directory pages
 * of GNTTAB_MAP_DIRECTORY, over the backend's own typed arrays.
 *
 * The JS side (src/hv/grant-native.ts) owns every array: the granter's grant
 * table words (shared memory the granter writes concurrently), the active
 * entry shadow (src/hv/active-grants.ts), the mapping domain's maptrack
 * (src/hv/maptrack.ts, whose scalars live in a small Int32Array so that both
 * sides update them) and the per-entry outputs. Nothing is allocated here
 * and nothing is kept between calls; each call handles entries [start, end)
 * and returns the index it reached: `end`, or earlier when the maptrack needs
 * a bigger array (map) or the next handle names another granter (unmap), so
 * that JS grows the arrays or looks the granter up and calls again.
 *
 * Per map entry, the steps and statuses are exactly those of acquireGrant
 * (src/hv/grant-pin.ts, mapping variant) after the maptrack's limit check,
 * in the same order; per unmap entry those of Maptrack.lookup, releaseGrant
 * and Maptrack.free; per directory page a read-only acquire, a copy of the
 * page and a release. test/hv/grant-native.test.ts runs both on the same
 * inputs and compares every output, pin, maptrack slot and table word.
 * Shared memory is read as Xen's grant_table.c does (XSA-155): word 0 of an
 * entry is validated in a private copy and the busy bits are set by a
 * compare-exchange against that very copy; the frame is read once, after it.
 */
#define _GNU_SOURCE
#include "grant.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Xen's values (xen/include/public/grant_table.h); protocol/grant-abi.ts. */
#define GNTST_okay 0
#define GNTST_general_error (-1)
#define GNTST_bad_gntref (-3)
#define GNTST_bad_handle (-4)
#define GNTST_no_device_space (-7)
#define GNTST_permission_denied (-8)
#define GNTST_bad_page (-9)
#define GNTST_no_space (-13)
#define GTF_permit_access 1
#define GTF_type_mask 3
#define GTF_readonly (1 << 2)
#define GTF_reading (1 << 3)
#define GTF_writing (1 << 4)
#define GTF_sub_page (1 << 8)
#define MAP_TYPE_MASK (GTF_type_mask | GTF_sub_page)
#define BUSY (GTF_reading | GTF_writing)
#define NR_RESERVED_ENTRIES 1
#define MAX_PIN_COUNT 127
#define CAS_ATTEMPTS 5 /* grant-pin.ts CAS_ATTEMPTS (Xen: 5) */
#define INVALID_GRANT_HANDLE 0xffffffffu
#define PAGE_BYTES 4096u
#define WORDS_PER_PAGE (PAGE_BYTES / 4) /* a directory page: 1024 refs (SPEC.md 10.3) */

/* Maptrack (src/hv/maptrack.ts): handle = generation << 20 | slot. */
#define INDEX_BITS 20
#define INDEX_MASK ((1u << INDEX_BITS) - 1)
#define GEN_MAX 0xfff
#define MT_LIVE 1
#define MT_WRITABLE 2
/* Indexes of the maptrack's state Int32Array. */
enum { ST_FREE_HEAD, ST_USED, ST_LIVE, ST_LIMIT, ST_WORDS };

/* ---- argument helpers ---- */

static napi_value fail(napi_env env, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  bool pending = false;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_error(env, "ERR_BAD_ARG", msg);
  return NULL;
}

/* A typed array of exactly `type`: its data and element count. */
static int get_ta(napi_env env, napi_value v, napi_typedarray_type type,
                  const char *name, void **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type t;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) != napi_ok ||
      t != type) {
    fail(env, "%s: wrong typed array", name);
    return 0;
  }
  return 1;
}

/* A uint32 number argument (integer in [0, 2^32)). */
static int get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  double d;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, &d) != napi_ok || d != (double)(uint32_t)d) {
    fail(env, "%s must be an integer in [0, 2^32)", name);
    return 0;
  }
  *out = (uint32_t)d;
  return 1;
}

/* ---- the granter's side: table words and active entries ---- */

struct granter {
  int32_t *words; /* word 2r = flags | domid << 16, word 2r+1 = frame */
  uint8_t *pin_r, *pin_w;
  uint32_t *frame;
  uint16_t *domid;
  uint32_t nr_entries, mem_pages;
};

/* Reads words, nrEntries, pinR, pinW from argv[0..3] (and frame, domid,
 * memPages from argv[4..6] when full): every array covers nrEntries. */
static int get_granter(napi_env env, napi_value *argv, int full, struct granter *g) {
  size_t nw, nr, nwr, nf, nd;
  if (!get_ta(env, argv[0], napi_int32_array, "words", (void **)&g->words, &nw) ||
      !get_u32(env, argv[1], "nrEntries", &g->nr_entries) ||
      !get_ta(env, argv[2], napi_uint8_array, "pinR", (void **)&g->pin_r, &nr) ||
      !get_ta(env, argv[3], napi_uint8_array, "pinW", (void **)&g->pin_w, &nwr))
    return 0;
  if (nw / 2 < g->nr_entries || nr < g->nr_entries || nwr < g->nr_entries) {
    fail(env, "granter arrays shorter than nrEntries %u", g->nr_entries);
    return 0;
  }
  if (!full) return 1;
  if (!get_ta(env, argv[4], napi_uint32_array, "frame", (void **)&g->frame, &nf) ||
      !get_ta(env, argv[5], napi_uint16_array, "domid", (void **)&g->domid, &nd) ||
      !get_u32(env, argv[6], "memPages", &g->mem_pages))
    return 0;
  if (nf < g->nr_entries || nd < g->nr_entries) {
    fail(env, "active arrays shorter than nrEntries %u", g->nr_entries);
    return 0;
  }
  return 1;
}

/* setBusy of grant-pin.ts: sets `bits` in word 0 of entry `ref` by
 * compare-exchange against a copy validated first (type, grantee, readonly). */
static int set_busy(int32_t *words, uint32_t ref, uint32_t domid, int32_t bits, int writable) {
  int32_t *at = &words[(size_t)ref * 2];
  int32_t word = __atomic_load_n(at, __ATOMIC_RELAXED);
  for (int attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    if ((word & MAP_TYPE_MASK) != GTF_permit_access || ((uint32_t)word >> 16) != domid)
      return GNTST_permission_denied;
    if (writable && (word & GTF_readonly) != 0) return GNTST_permission_denied;
    /* On failure `word` becomes the value seen, validated again next round. */
    if (__atomic_compare_exchange_n(at, &word, word | bits, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      return GNTST_okay;
  }
  return GNTST_general_error;
}

static void clear_flags(int32_t *words, uint32_t ref, int32_t bits) {
  __atomic_fetch_and(&words[(size_t)ref * 2], ~(bits & 0xffff), __ATOMIC_SEQ_CST);
}

/* acquireGrant of grant-pin.ts for a mapping: the frame (>= 0) or a GNTST. */
static int64_t acquire(const struct granter *g, uint32_t ref, uint32_t domid, int writable) {
  if (ref < NR_RESERVED_ENTRIES || ref >= g->nr_entries) return GNTST_bad_gntref;
  uint8_t pin_r = g->pin_r[ref], pin_w = g->pin_w[ref];
  if ((pin_r | pin_w) != 0) {
    if (g->domid[ref] != domid) return GNTST_permission_denied;
    if (writable) {
      if (pin_w >= MAX_PIN_COUNT) return GNTST_no_space;
      if (pin_w == 0) {
        int st = set_busy(g->words, ref, domid, BUSY, 1);
        if (st != GNTST_okay) return st;
      }
      g->pin_w[ref] = pin_w + 1;
    } else {
      if (pin_r >= MAX_PIN_COUNT) return GNTST_no_space;
      g->pin_r[ref] = pin_r + 1;
    }
    return g->frame[ref];
  }
  int32_t bits = writable ? BUSY : GTF_reading;
  int st = set_busy(g->words, ref, domid, bits, writable);
  if (st != GNTST_okay) return st;
  /* Read once, after the compare-exchange (a full barrier): SPEC.md 7.2. */
  uint32_t frame = (uint32_t)__atomic_load_n(&g->words[(size_t)ref * 2 + 1], __ATOMIC_RELAXED);
  if (frame >= g->mem_pages) {
    clear_flags(g->words, ref, bits);
    return GNTST_bad_page;
  }
  g->frame[ref] = frame;
  g->domid[ref] = (uint16_t)domid;
  if (writable) g->pin_w[ref] = 1;
  else g->pin_r[ref] = 1;
  return frame;
}

/* releaseGrant of grant-pin.ts (XSA-230: busy bits go with the last pin of their kind). */
static void release(const struct granter *g, uint32_t ref, int writable) {
  uint8_t pin_r = g->pin_r[ref], pin_w = g->pin_w[ref];
  if (writable) {
    if (pin_w == 0) return;
    g->pin_w[ref] = --pin_w;
  } else {
    if (pin_r == 0) return;
    g->pin_r[ref] = --pin_r;
  }
  if ((pin_r | pin_w) == 0) clear_flags(g->words, ref, BUSY);
  else if (writable && pin_w == 0) clear_flags(g->words, ref, GTF_writing);
}

/* ---- the mapping domain's maptrack ---- */

struct maptrack {
  uint16_t *granter;
  uint32_t *ref;
  uint8_t *flags;
  uint16_t *gen;
  int32_t *next;
  int32_t *state;
  size_t cap;
};

/* Reads granter, ref, flags, gen, next, state from argv[0..5]. */
static int get_maptrack(napi_env env, napi_value *argv, struct maptrack *m) {
  size_t n[5], ns;
  if (!get_ta(env, argv[0], napi_uint16_array, "mt.granter", (void **)&m->granter, &n[0]) ||
      !get_ta(env, argv[1], napi_uint32_array, "mt.ref", (void **)&m->ref, &n[1]) ||
      !get_ta(env, argv[2], napi_uint8_array, "mt.flags", (void **)&m->flags, &n[2]) ||
      !get_ta(env, argv[3], napi_uint16_array, "mt.gen", (void **)&m->gen, &n[3]) ||
      !get_ta(env, argv[4], napi_int32_array, "mt.next", (void **)&m->next, &n[4]) ||
      !get_ta(env, argv[5], napi_int32_array, "mt.state", (void **)&m->state, &ns))
    return 0;
  m->cap = n[0];
  for (int i = 1; i < 5; i++)
    if (n[i] != m->cap) { fail(env, "maptrack arrays differ in length"); return 0; }
  int32_t head = m->state[ST_FREE_HEAD], used = m->state[ST_USED];
  if (ns != ST_WORDS || used < 0 || (size_t)used > m->cap || head < -1 || head >= used ||
      m->state[ST_LIVE] < 0 || m->state[ST_LIVE] > used || m->state[ST_LIMIT] < 0)
    { fail(env, "maptrack state out of range"); return 0; }
  return 1;
}

/* ---- exported functions ---- */

/*
 * grantMap(words, nrEntries, pinR, pinW, frame, domid, memPages,
 *          mtGranter, mtRef, mtFlags, mtGen, mtNext, mtState,
 *          granterId, me, writable, refs, start, end, outStatus, outHandle, outFrame)
 * Maps refs[start..end) as the loop of grant-map.ts mapInto: per entry the
 * maptrack limit (GNTST_no_device_space), then acquire, then a handle.
 * Returns the index reached: end, or the first entry that needs a fresh
 * maptrack slot beyond the arrays' length (grow them and call again).
 */
static napi_value grant_map(napi_env env, napi_callback_info info) {
  size_t argc = 22, nrefs, ns, nh, nf;
  napi_value argv[22], result;
  struct granter g;
  struct maptrack m;
  uint32_t granter_id, me, start, end, *refs, *out_handle, *out_frame;
  int16_t *out_status;
  bool writable;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 22)
    return fail(env, "grantMap takes 22 arguments");
  if (!get_granter(env, argv, 1, &g) || !get_maptrack(env, argv + 7, &m) ||
      !get_u32(env, argv[13], "granterId", &granter_id) || !get_u32(env, argv[14], "me", &me) ||
      napi_get_value_bool(env, argv[15], &writable) != napi_ok ||
      !get_ta(env, argv[16], napi_uint32_array, "refs", (void **)&refs, &nrefs) ||
      !get_u32(env, argv[17], "start", &start) || !get_u32(env, argv[18], "end", &end) ||
      !get_ta(env, argv[19], napi_int16_array, "status", (void **)&out_status, &ns) ||
      !get_ta(env, argv[20], napi_uint32_array, "handle", (void **)&out_handle, &nh) ||
      !get_ta(env, argv[21], napi_uint32_array, "frame", (void **)&out_frame, &nf))
    return fail(env, "grantMap: bad arguments");
  if (start > end || end > nrefs || end > ns || end > nh || end > nf || granter_id > 0xffff)
    return fail(env, "grantMap: range [%u, %u) outside the arrays", start, end);

  int32_t *st = m.state;
  uint32_t i;
  for (i = start; i < end; i++) {
    uint32_t ref = refs[i];
    int64_t r;
    if (st[ST_LIVE] >= st[ST_LIMIT]) {
      r = GNTST_no_device_space;
    } else {
      if (st[ST_FREE_HEAD] < 0 && (size_t)st[ST_USED] == m.cap) break; /* grow first */
      r = acquire(&g, ref, me, writable);
    }
    if (r < 0) {
      out_status[i] = (int16_t)r;
      out_handle[i] = INVALID_GRANT_HANDLE;
      out_frame[i] = 0;
      continue;
    }
    /* Maptrack.alloc: the free list first, then a never-used slot. */
    int32_t slot = st[ST_FREE_HEAD];
    if (slot >= 0) {
      int32_t next = m.next[slot];
      if (next < -1 || next >= st[ST_USED]) return fail(env, "maptrack free list corrupt at slot %d", slot);
      st[ST_FREE_HEAD] = next;
    } else {
      slot = st[ST_USED]++;
    }
    m.granter[slot] = (uint16_t)granter_id;
    m.ref[slot] = ref;
    m.flags[slot] = writable ? MT_LIVE | MT_WRITABLE : MT_LIVE;
    st[ST_LIVE]++;
    out_status[i] = GNTST_okay;
    out_handle[i] = ((uint32_t)m.gen[slot] << INDEX_BITS) | (uint32_t)slot;
    out_frame[i] = (uint32_t)r;
  }
  if (napi_create_uint32(env, i, &result) != napi_ok) return fail(env, "napi_create_uint32");
  return result;
}

/*
 * grantUnmap(words, nrEntries, pinR, pinW,
 *            mtGranter, mtRef, mtFlags, mtGen, mtNext, mtState,
 *            granterId, handles, start, end, outStatus)
 * Unmaps handles[start..end) as the loop of grant-map.ts unmapInto: a
 * handle that is not live is GNTST_bad_handle; a live one of granterId is
 * released with the flags recorded at map time (XSA-234) and freed. Returns
 * the index reached: end, or the first live handle of another granter.
 */
static napi_value grant_unmap(napi_env env, napi_callback_info info) {
  size_t argc = 15, nh, ns;
  napi_value argv[15], result;
  struct granter g;
  struct maptrack m;
  uint32_t granter_id, start, end, *handles;
  int16_t *out_status;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 15)
    return fail(env, "grantUnmap takes 15 arguments");
  if (!get_granter(env, argv, 0, &g) || !get_maptrack(env, argv + 4, &m) ||
      !get_u32(env, argv[10], "granterId", &granter_id) ||
      !get_ta(env, argv[11], napi_uint32_array, "handles", (void **)&handles, &nh) ||
      !get_u32(env, argv[12], "start", &start) || !get_u32(env, argv[13], "end", &end) ||
      !get_ta(env, argv[14], napi_int16_array, "status", (void **)&out_status, &ns))
    return fail(env, "grantUnmap: bad arguments");
  if (start > end || end > nh || end > ns)
    return fail(env, "grantUnmap: range [%u, %u) outside the arrays", start, end);

  int32_t *st = m.state;
  uint32_t i;
  for (i = start; i < end; i++) {
    uint32_t h = handles[i], slot = h & INDEX_MASK;
    /* Maptrack.lookup: issued, live, and of this generation. */
    if (slot >= (uint32_t)st[ST_USED] || (m.flags[slot] & MT_LIVE) == 0 ||
        m.gen[slot] != h >> INDEX_BITS) {
      out_status[i] = GNTST_bad_handle;
      continue;
    }
    if (m.granter[slot] != granter_id) break; /* JS finds that granter */
    uint32_t ref = m.ref[slot];
    if (ref >= g.nr_entries) return fail(env, "maptrack slot %u names ref %u beyond the table", slot, ref);
    release(&g, ref, (m.flags[slot] & MT_WRITABLE) != 0);
    /* Maptrack.free: the handle goes stale. */
    m.flags[slot] = 0;
    m.gen[slot] = m.gen[slot] >= GEN_MAX ? 1 : m.gen[slot] + 1;
    m.next[slot] = st[ST_FREE_HEAD];
    st[ST_FREE_HEAD] = (int32_t)slot;
    st[ST_LIVE]--;
    out_status[i] = GNTST_okay;
  }
  if (napi_create_uint32(env, i, &result) != napi_ok) return fail(env, "napi_create_uint32");
  return result;
}

/*
 * grantReadPages(words, nrEntries, pinR, pinW, frame, domid, memPages, me,
 *                refs, ram, out, status)
 * The directory pages of GNTTAB_MAP_DIRECTORY (SPEC.md 7.7): per ref, in
 * order, a read-only pin exactly as a map entry's (acquire), a copy of the
 * page from `ram` (the backend's mapping of the granter's RAM) into
 * out[k * 1024 ...] as little-endian u32 words (SPEC.md 10.3), and the pin
 * dropped (release). status[k] is GNTST_okay or the pin's failure; the
 * first failure stops the walk. Returns how many refs were handled (the
 * failed one included).
 */
static napi_value grant_read_pages(napi_env env, napi_callback_info info) {
  size_t argc = 12, nrefs, nram, nout, ns;
  napi_value argv[12], result;
  struct granter g;
  uint32_t me, *refs, *out;
  uint8_t *ram;
  int16_t *status;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 12)
    return fail(env, "grantReadPages takes 12 arguments");
  if (!get_granter(env, argv, 1, &g) || !get_u32(env, argv[7], "me", &me) ||
      !get_ta(env, argv[8], napi_uint32_array, "refs", (void **)&refs, &nrefs) ||
      !get_ta(env, argv[9], napi_uint8_array, "ram", (void **)&ram, &nram) ||
      !get_ta(env, argv[10], napi_uint32_array, "out", (void **)&out, &nout) ||
      !get_ta(env, argv[11], napi_int16_array, "status", (void **)&status, &ns))
    return fail(env, "grantReadPages: bad arguments");
  if (nout / WORDS_PER_PAGE < nrefs || ns < nrefs || nram / PAGE_BYTES < g.mem_pages)
    return fail(env, "grantReadPages: arrays too short for %zu pages of %u", nrefs, g.mem_pages);

  size_t k;
  for (k = 0; k < nrefs; k++) {
    int64_t r = acquire(&g, refs[k], me, 0);
    if (r < 0) {
      status[k++] = (int16_t)r;
      break;
    }
    /* The private copy, taken while the pin holds (XSA-155: only it is decoded). */
    uint32_t *words = out + k * WORDS_PER_PAGE;
    memcpy(words, ram + (size_t)r * PAGE_BYTES, PAGE_BYTES);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t w = 0; w < WORDS_PER_PAGE; w++) words[w] = __builtin_bswap32(words[w]);
#endif
    release(&g, refs[k], 0);
    status[k] = GNTST_okay;
  }
  if (napi_create_uint32(env, (uint32_t)k, &result) != napi_ok) return fail(env, "napi_create_uint32");
  return result;
}

napi_status grant_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"grantMap", NULL, grant_map, NULL, NULL, NULL, napi_enumerable, NULL},
      {"grantUnmap", NULL, grant_unmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"grantReadPages", NULL, grant_read_pages, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
