/*
 * hdmabuf_mem: the project's tiny N-API addon for mapping guest-RAM pages.
 *
 * Guest RAM is a tmpfs file; a domain maps pages of it (one range, or many
 * scattered pages as one contiguous "vmap") and gets an ArrayBuffer over the
 * mapping. unmap() is deterministic: the ArrayBuffer is detached (byteLength
 * 0) and the pages are gone at once, not at garbage collection.
 *
 * unmap() does NOT give the address range back, though: it replaces the
 * pages with an inaccessible reservation (PROT_NONE, MAP_FIXED over the same
 * range), and the range is munmapped only by the view's finalizer. Native
 * code may still hold the old pointer when unmap() runs (crypto.randomFill
 * on a view, a write on the thread pool): with the range munmapped at once,
 * the next mmap could reuse the address and that write would land in
 * another file's pages (in this simulator: another domain's granted pages).
 * With the reservation, it faults instead.
 *
 * Every view is an ArrayBuffer over the mapping (view.cc: not counted by
 * V8 as memory it could free, detachable by unmap() only) with an entry in
 * a registry. The entry is freed only by the view's finalizer (exactly
 * once), which
 * munmaps the range whatever it holds (the file's pages, or the
 * reservation): the range belongs to this view until then. unmap() moves
 * the entry from the live list to RESERVED.
 *
 * Failures are reported, never silently leaked: every N-API status is
 * checked; a failed mmap or munmap throws (ERR_MMAP) where there is a caller,
 * and where there is none (a finalizer) it is counted (stats().failures) and
 * written to stderr.
 *
 * Errors are JS Errors with a `code`: ERR_BAD_ARG, ERR_MMAP, ERR_MAP_LIMIT or
 * ERR_NAPI. (ERR_NOT_MAPPED belongs to the wrapper's vocabulary; unmap() of
 * something not mapped returns false instead of throwing.)
 */
#define _GNU_SOURCE
#include <node_api.h>

#include "grant.h"
#include "runs.h"
#include "grant-publish.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE_SIZE 4096u
#define MAX_PAGES 4294967296.0 /* page numbers/offsets stay within 2^32 pages */
#define MAP_COUNT_CHECK_RUNS 1024 /* above this many runs, consult /proc first */
#define MAP_COUNT_MARGIN 64       /* VMAs left for V8, libc, other mappings */

/* Lengths are n * PAGE_SIZE with n up to 2^32: needs a 64-bit size_t. */
_Static_assert(sizeof(size_t) >= 8 && sizeof(off_t) >= 8, "64-bit only");

/* ---- registry of mappings (process-wide; worker threads share it) ---- */

/* MAPPED: the file's pages, on the live list. RESERVED: unmap() replaced them
 * with PROT_NONE; the range waits for the finalizer. */
enum state { MAPPED, RESERVED };

struct mapping {
  void *addr;
  size_t len;
  enum state state;
  struct mapping *prev, *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapping *reg_head; /* list of the MAPPED entries, newest first */
static uint32_t live_count;      /* length of that list */
static uint32_t reserved_count;  /* RESERVED entries not yet finalized */
static uint32_t failure_count;   /* munmaps that failed where no caller could be told */

/* Call with reg_lock held: add m at the head as MAPPED. */
static void reg_insert(struct mapping *m) {
  m->prev = NULL;
  m->next = reg_head;
  if (reg_head) reg_head->prev = m;
  reg_head = m;
  m->state = MAPPED;
  live_count++;
}

/* Call with reg_lock held: MAPPED -> RESERVED, off the live list (not freed). */
static void reg_remove(struct mapping *m) {
  if (m->prev) m->prev->next = m->next; else reg_head = m->next;
  if (m->next) m->next->prev = m->prev;
  m->prev = m->next = NULL;
  m->state = RESERVED;
  live_count--;
  reserved_count++;
}

/* Finalizer of a view: the range is this view's until now, whether it holds
 * the file's pages or unmap()'s reservation: munmap it and free the entry
 * (the only place an entry that reached JS is freed). No JS caller to tell
 * of a failure: count it and say it on stderr. */
static void finalize_view(napi_env env, void *data, void *hint) {
  struct mapping *m = hint;
  (void)env;
  (void)data;
  pthread_mutex_lock(&reg_lock);
  if (m->state == MAPPED) reg_remove(m);
  reserved_count--;
  if (munmap(m->addr, m->len) != 0) {
    failure_count++;
    fprintf(stderr, "hdmabuf_mem: munmap of %zu bytes at %p in a finalizer: %s\n",
            m->len, m->addr, strerror(errno));
  }
  pthread_mutex_unlock(&reg_lock);
  free(m);
}

/* ---- small helpers ---- */

/* Every N-API call whose failure would leave us with garbage: throw ERR_NAPI
 * (unless an exception is already pending) and return NULL from the caller. */
#define NAPI_OK(env, call)                                                    \
  do {                                                                        \
    if ((call) != napi_ok) return napi_fail((env), #call);                   \
  } while (0)

static napi_value napi_fail(napi_env env, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_error(env, "ERR_NAPI", what);
  return NULL;
}

/* Throws Error(msg) with .code = code; returns NULL for `return throw_(...)`. */
__attribute__((format(printf, 3, 4)))
static napi_value throw_(napi_env env, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  napi_throw_error(env, code, msg);
  return NULL;
}

/* Reads an integer-valued JS number in [min, max]; false (and throws) if not. */
static int get_int(napi_env env, napi_value v, const char *name, double min,
                   double max, double *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, out) != napi_ok || *out != floor(*out) ||
      *out < min || *out > max) {
    throw_(env, "ERR_BAD_ARG", "%s must be an integer in [%.0f, %.0f]", name,
           min, max);
    return 0;
  }
  return 1;
}

static int get_bool(napi_env env, napi_value v, const char *name, int *out) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) {
    throw_(env, "ERR_BAD_ARG", "%s must be a boolean", name);
    return 0;
  }
  *out = b;
  return 1;
}

/* Checks fd is open and, for a regular file, that `end_page` pages fit in it
 * (a page past EOF would map but SIGBUS on first access). */
static int check_fd(napi_env env, int fd, double end_page) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    throw_(env, "ERR_BAD_ARG", "fd %d: %s", fd, strerror(errno));
    return 0;
  }
  if (S_ISREG(st.st_mode) && end_page * PAGE_SIZE > (double)st.st_size) {
    throw_(env, "ERR_BAD_ARG",
           "page %.0f is beyond the end of fd %d (%lld pages)", end_page - 1,
           fd, (long long)(st.st_size / PAGE_SIZE));
    return 0;
  }
  return 1;
}

/* Reads a whole small /proc file; returns bytes read or -1. Counts newlines
 * into *lines when lines != NULL (the file may be larger than buf). */
static long read_proc(const char *path, char *buf, size_t cap, long *lines) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  long total = 0;
  ssize_t n;
  if (fd < 0) return -1;
  if (lines) *lines = 0;
  while ((n = read(fd, buf, cap)) > 0 || (n < 0 && errno == EINTR)) {
    if (n < 0) continue;
    if (lines)
      for (ssize_t i = 0; i < n; i++) *lines += buf[i] == '\n';
    total += n;
    if (!lines) break; /* single small value: first read is enough */
  }
  close(fd);
  return n < 0 ? -1 : total;
}

static long max_map_count(void) {
  char buf[64];
  long n = read_proc("/proc/sys/vm/max_map_count", buf, sizeof buf - 1, NULL);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

static long current_map_count(void) {
  char buf[16384];
  long lines;
  return read_proc("/proc/self/maps", buf, sizeof buf, &lines) < 0 ? -1 : lines;
}

/* view.cc: the ArrayBuffer of a view, and its detach (each 0 on success). */
int view_new(napi_env env, void *data, size_t len, napi_value *out);
int view_detach(napi_env env, napi_value view);

/* Registers [addr, addr+len) and wraps it in an ArrayBuffer (view.cc) whose
 * collection runs finalize_view. On failure munmaps it and throws. */
static napi_value make_view(napi_env env, void *addr, size_t len) {
  napi_value ab;
  struct mapping *m = calloc(1, sizeof *m);
  const char *why = NULL;
  if (!m) why = "out of memory";
  else {
    m->addr = addr;
    m->len = len;
    /* Registered before the ArrayBuffer exists: its finalizer finds it. */
    pthread_mutex_lock(&reg_lock);
    reg_insert(m);
    pthread_mutex_unlock(&reg_lock);
    if (view_new(env, addr, len, &ab) == 0) {
      if (napi_add_finalizer(env, ab, m, finalize_view, m, NULL) == napi_ok)
        return ab;
      /* Never returned, but it exists: no access through it once detached. */
      why = view_detach(env, ab) == 0 ? "napi_add_finalizer failed"
                                      : "napi_add_finalizer failed (view not detached)";
    } else {
      why = "creating the view's ArrayBuffer failed";
    }
    pthread_mutex_lock(&reg_lock);
    reg_remove(m);
    reserved_count--;
    pthread_mutex_unlock(&reg_lock);
    free(m);
  }
  /* Never reached JS: give the range back now, and say if even that failed. */
  if (munmap(addr, len) != 0)
    return throw_(env, "ERR_MMAP", "%s; and munmap of the new mapping failed: %s",
                  why, strerror(errno));
  return throw_(env, "ERR_MMAP", "%s", why);
}

/* ---- exported functions ---- */

/* mapRange(fd, firstPage, nPages, writable): one mmap of a page range. */
static napi_value map_range(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  double fd, first, n;
  int writable;
  void *addr;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); /* missing: undefined */
  if (!get_int(env, argv[0], "fd", 0, INT32_MAX, &fd) ||
      !get_int(env, argv[1], "firstPage", 0, MAX_PAGES - 1, &first) ||
      !get_int(env, argv[2], "nPages", 1, MAX_PAGES, &n) ||
      !get_bool(env, argv[3], "writable", &writable))
    return NULL;
  if (first + n > MAX_PAGES)
    return throw_(env, "ERR_BAD_ARG", "range ends beyond 2^32 pages");
  if (!check_fd(env, (int)fd, first + n)) return NULL;
  addr = mmap(NULL, (size_t)n * PAGE_SIZE,
              writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
              (int)fd, (off_t)first * PAGE_SIZE);
  if (addr == MAP_FAILED)
    return throw_(env, "ERR_MMAP", "mmap of %.0f pages at page %.0f: %s", n,
                  first, strerror(errno));
  return make_view(env, addr, (size_t)n * PAGE_SIZE);
}

/* Number of runs of ascending consecutive page numbers. */
static size_t count_runs(const uint32_t *p, size_t n) {
  size_t runs = n ? 1 : 0;
  for (size_t i = 1; i < n; i++) runs += p[i] != p[i - 1] + 1u || p[i] == 0;
  return runs;
}

/* Gets a non-empty Uint32Array argument. */
static int get_pages(napi_env env, napi_value v, uint32_t **pages, size_t *n) {
  bool is_ta;
  napi_typedarray_type type;
  void *data;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, n, &data, NULL, NULL) != napi_ok ||
      type != napi_uint32_array) {
    throw_(env, "ERR_BAD_ARG", "pages must be a Uint32Array");
    return 0;
  }
  if (*n == 0) {
    throw_(env, "ERR_BAD_ARG", "pages must not be empty");
    return 0;
  }
  *pages = data;
  return 1;
}

/* mapPages(fd, pages, writable): the listed pages, in order, as one view.
 * Reserve the whole span PROT_NONE, then MAP_FIXED one mmap per run into it. */
static napi_value map_pages(napi_env env, napi_callback_info info) {
  size_t argc = 3, n, runs, len, i, j;
  napi_value argv[3];
  double fd;
  int writable, prot;
  uint32_t *pages, maxp = 0;
  char *base;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_int(env, argv[0], "fd", 0, INT32_MAX, &fd) ||
      !get_pages(env, argv[1], &pages, &n) ||
      !get_bool(env, argv[2], "writable", &writable))
    return NULL;
  for (i = 0; i < n; i++) maxp = pages[i] > maxp ? pages[i] : maxp;
  if (!check_fd(env, (int)fd, (double)maxp + 1)) return NULL;

  runs = count_runs(pages, n);
  if (runs > MAP_COUNT_CHECK_RUNS) {
    long max = max_map_count(), cur = current_map_count();
    if (max < 0 || cur < 0)
      return throw_(env, "ERR_MMAP", "cannot read /proc VMA counts");
    if ((long)runs + cur + MAP_COUNT_MARGIN > max)
      return throw_(env, "ERR_MAP_LIMIT",
                    "vmap of %zu pages needs %zu mappings; this process has "
                    "%ld of max %ld (vm.max_map_count)",
                    n, runs, cur, max);
  }

  len = n * PAGE_SIZE;
  prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
              -1, 0);
  if (base == MAP_FAILED)
    return throw_(env, "ERR_MMAP", "reserving %zu pages: %s", n, strerror(errno));
  for (i = 0; i < n; i = j) {
    for (j = i + 1; j < n && pages[j] == pages[j - 1] + 1u && pages[j] != 0; j++)
      ;
    void *want = base + i * PAGE_SIZE;
    void *got = mmap(want, (j - i) * PAGE_SIZE, prot, MAP_SHARED | MAP_FIXED,
                     (int)fd, (off_t)pages[i] * PAGE_SIZE);
    if (got != want) {
      int err = got == MAP_FAILED ? errno : EFAULT;
      /* Never leave a half-mapped view: drop the whole reservation. munmap of
       * whole VMAs needs no split, so it succeeds even at vm.max_map_count. */
      int undo = munmap(base, len) == 0 ? 0 : errno;
      return throw_(env, "ERR_MMAP",
                    "mmap of page %u (+%zu pages) for vmap of %zu pages in %zu "
                    "runs: %s%s%s",
                    pages[i], j - i - 1, n, runs, strerror(err),
                    undo ? "; and munmap of the reservation failed: " : "",
                    undo ? strerror(undo) : "");
    }
  }
  return make_view(env, base, len);
}

/* unmap(buf): true if buf was a live view of this addon; it is then detached
 * (byteLength 0) and its pages replaced by an inaccessible reservation, kept
 * until the view's finalizer munmaps it (see the top of this file). */
static napi_value unmap(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1], result;
  bool is_ab;
  void *data, *got;
  struct mapping *m;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_is_arraybuffer(env, argv[0], &is_ab) != napi_ok || !is_ab)
    return throw_(env, "ERR_BAD_ARG", "unmap needs an ArrayBuffer");
  NAPI_OK(env, napi_get_arraybuffer_info(env, argv[0], &data, &len));

  pthread_mutex_lock(&reg_lock);
  for (m = data ? reg_head : NULL; m; m = m->next) /* detached: data NULL */
    if (m->addr == data && m->len == len) break;
  pthread_mutex_unlock(&reg_lock);
  if (!m) {
    NAPI_OK(env, napi_get_boolean(env, false, &result));
    return result;
  }

  /* Detach first: no JS code may reach the range once it is PROT_NONE (that
   * would fault). If detaching fails nothing has changed. The entry cannot be
   * finalized meanwhile: the view is alive (argv[0]). */
  if (view_detach(env, argv[0]) != 0)
    return throw_(env, "ERR_MMAP", "detaching the view failed; still mapped");
  pthread_mutex_lock(&reg_lock);
  reg_remove(m);
  pthread_mutex_unlock(&reg_lock);
  /* The same range, now inaccessible and backed by nothing: a stale native
   * pointer faults here, and no later mmap can be given these addresses. */
  got = mmap(data, len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  if (got != data)
    /* The file's pages stay mapped (unreachable from JS) until the finalizer
     * munmaps the range: reported now, released then. */
    return throw_(env, "ERR_MMAP",
                  "unmap: replacing %zu bytes with a reservation failed: %s "
                  "(detached; the pages are released when the view is "
                  "collected)",
                  len, got == MAP_FAILED ? strerror(errno) : "wrong address");
  NAPI_OK(env, napi_get_boolean(env, true, &result));
  return result;
}

/* stats(): { live, reserved, failures }: views mapped now; unmapped views
 * whose range is still reserved (until collected); munmaps that failed in a
 * finalizer. */
static napi_value stats_js(napi_env env, napi_callback_info info) {
  napi_value r, live, reserved, failures;
  uint32_t l, rs, f;
  (void)info;
  pthread_mutex_lock(&reg_lock);
  l = live_count;
  rs = reserved_count;
  f = failure_count;
  pthread_mutex_unlock(&reg_lock);
  NAPI_OK(env, napi_create_object(env, &r));
  NAPI_OK(env, napi_create_uint32(env, l, &live));
  NAPI_OK(env, napi_create_uint32(env, rs, &reserved));
  NAPI_OK(env, napi_create_uint32(env, f, &failures));
  NAPI_OK(env, napi_set_named_property(env, r, "live", live));
  NAPI_OK(env, napi_set_named_property(env, r, "reserved", reserved));
  NAPI_OK(env, napi_set_named_property(env, r, "failures", failures));
  return r;
}

static napi_value live_mappings(napi_env env, napi_callback_info info) {
  napi_value r;
  uint32_t n;
  (void)info;
  pthread_mutex_lock(&reg_lock);
  n = live_count;
  pthread_mutex_unlock(&reg_lock);
  NAPI_OK(env, napi_create_uint32(env, n, &r));
  return r;
}

static napi_value count_runs_js(napi_env env, napi_callback_info info) {
  size_t argc = 1, n;
  napi_value argv[1], r;
  uint32_t *pages;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!get_pages(env, argv[0], &pages, &n)) return NULL;
  NAPI_OK(env, napi_create_double(env, (double)count_runs(pages, n), &r));
  return r;
}

static napi_value max_map_count_js(napi_env env, napi_callback_info info) {
  napi_value r;
  long v = max_map_count();
  (void)info;
  if (v < 0) return throw_(env, "ERR_MMAP", "cannot read vm.max_map_count");
  NAPI_OK(env, napi_create_double(env, (double)v, &r));
  return r;
}

static napi_value current_map_count_js(napi_env env, napi_callback_info info) {
  napi_value r;
  long v = current_map_count();
  (void)info;
  if (v < 0) return throw_(env, "ERR_MMAP", "cannot read /proc/self/maps");
  NAPI_OK(env, napi_create_double(env, (double)v, &r));
  return r;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mapRange", NULL, map_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mapPages", NULL, map_pages, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmap", NULL, unmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"liveMappings", NULL, live_mappings, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, stats_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"countRuns", NULL, count_runs_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"maxMapCount", NULL, max_map_count_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"currentMapCount", NULL, current_map_count_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_OK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  NAPI_OK(env, grant_init(env, exports)); /* the backend's grant loops: grant.c */
  NAPI_OK(env, runs_init(env, exports));  /* run records of packed arrays: runs.c */
  NAPI_OK(env, grant_publish_init(env, exports)); /* the guest's grant publishing: grant-publish.c */
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
