/**
 * Typed wrapper of the project's N-API addon (native/mem.c, built by
 * `npm install` / node-gyp into build/Release/hdmabuf_mem.node).
 *
 * Views are ArrayBuffers over MAP_SHARED mappings of a guest-RAM file,
 * not counted by V8 as memory a collection could free (native/view.cc).
 * `unmap` is deterministic: the ArrayBuffer is detached (byteLength 0) and
 * its pages replaced by an inaccessible reservation (PROT_NONE, MAP_FIXED)
 * immediately; the address range itself is released only when the view is
 * garbage-collected, so a native write still in flight through the old
 * pointer (crypto.randomFill on a view) faults instead of landing in the
 * next mapping. A view that is never unmapped is unmapped when it is
 * garbage-collected. Read-only views are PROT_READ: a write through one
 * kills the process with SIGSEGV, so never write to a read-only view.
 */
import { createRequire } from 'node:module';
import { markAsUntransferable } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { useNativeRunCodec, type NativeRunCodec } from '../../protocol/packed.ts';

export const PAGE_SIZE = 4096;

/** Error thrown by the addon; `code` is one of the NativeErrorCode values. */
export type NativeErrorCode = 'ERR_MAP_LIMIT' | 'ERR_MMAP' | 'ERR_BAD_ARG' | 'ERR_NOT_MAPPED' | 'ERR_NAPI';

/** The addon's counters. */
export interface NativeMemStats {
  /** Views mapped now (liveMappings()). */
  live: number;
  /** Unmapped views whose address range is still reserved (PROT_NONE) until they are garbage-collected. */
  reserved: number;
  /** munmaps that failed in a finalizer, where no caller could be told (also written to stderr). */
  failures: number;
}

export interface NativeMem {
  /** Maps nPages pages of the file open as fd, from page firstPage, as one ArrayBuffer (one mmap call). */
  mapRange(fd: number, firstPage: number, nPages: number, writable: boolean): ArrayBuffer;
  /** Maps the listed file pages, in order, into ONE contiguous ArrayBuffer (a vmap). Consecutive page numbers are coalesced into runs; one mmap per run, MAP_FIXED into a PROT_NONE reservation. */
  mapPages(fd: number, pages: Uint32Array, writable: boolean): ArrayBuffer;
  /**
   * napi_detach_arraybuffer (byteLength becomes 0), then the pages are replaced by a PROT_NONE reservation of
   * the same range, munmapped when the view is collected. Returns false if it was not (or no longer) mapped by
   * this addon. Throws ERR_MMAP if detaching or the reservation failed (said in the message; nothing leaks: the
   * range is released at collection either way).
   */
  unmap(buf: ArrayBuffer): boolean;
  /** The addon's counters: live views, reserved ranges, failures nobody could be told of. */
  stats(): NativeMemStats;
  /** Number of views this process currently has mapped through the addon (for leak checks). */
  liveMappings(): number;
  /** Counts runs mapPages would need (pure helper, no mapping). */
  countRuns(pages: Uint32Array): number;
  /** vm.max_map_count as read from /proc/sys/vm/max_map_count. */
  maxMapCount(): number;
  /** Current number of VMAs of this process (lines of /proc/self/maps). */
  currentMapCount(): number;
  /**
   * The backend's map loop (native/grant.c): maps refs[start..end) of a granter for domain `me` into the outputs,
   * updating the active entries and the maptrack in place. Returns the index reached (end, or where the maptrack
   * must grow first). Called only through src/hv/grant-native.ts.
   */
  grantMap(
    words: Int32Array, nrEntries: number, pinR: Uint8Array, pinW: Uint8Array, frame: Uint32Array, domid: Uint16Array, memPages: number,
    mtGranter: Uint16Array, mtRef: Uint32Array, mtFlags: Uint8Array, mtGen: Uint16Array, mtNext: Int32Array, mtState: Int32Array,
    granterId: number, me: number, writable: boolean, refs: Uint32Array, start: number, end: number,
    status: Int16Array, handle: Uint32Array, outFrame: Uint32Array,
  ): number;
  /**
   * The backend's unmap loop (native/grant.c): unmaps handles[start..end) that belong to granter `granterId`.
   * Returns the index reached (end, or the first live handle of another granter). Called only through
   * src/hv/grant-native.ts.
   */
  grantUnmap(
    words: Int32Array, nrEntries: number, pinR: Uint8Array, pinW: Uint8Array,
    mtGranter: Uint16Array, mtRef: Uint32Array, mtFlags: Uint8Array, mtGen: Uint16Array, mtNext: Int32Array, mtState: Int32Array,
    granterId: number, handles: Uint32Array, start: number, end: number, status: Int16Array,
  ): number;
  /**
   * The backend's directory-page read (native/grant.c): per ref, a read-only pin as a map entry's, a copy of the
   * page from `ram` (the backend's mapping of the granter's RAM) into out (1024 little-endian u32 words per
   * page), the pin dropped; stops after the first failure. Returns the refs handled. Called only through
   * src/hv/grant-native.ts.
   */
  grantReadPages(
    words: Int32Array, nrEntries: number, pinR: Uint8Array, pinW: Uint8Array, frame: Uint32Array, domid: Uint16Array, memPages: number,
    me: number, refs: Uint32Array, ram: Uint8Array, out: Uint32Array, status: Int16Array,
  ): number;
  /**
   * The guest's grant publishing (native/grant-publish.c): entry refs[i] of `words` gets unusedHeader and
   * frames[i], then liveHeader by a release store. Called only through GrantTableView.publishMany.
   */
  grantPublish(words: Int32Array, refs: Uint32Array, frames: Uint32Array, unusedHeader: number, liveHeader: number): void;
  /** Run records of a packed array (native/runs.c): installed as the codec's native run codec below. */
  encodeRuns: NativeRunCodec['encodeRuns'];
  /** Expands checked run records (native/runs.c). */
  expandRuns: NativeRunCodec['expandRuns'];
}

/** The package root: this file is src/memory/native.ts, or dist/src/memory/native.js when compiled for the package. */
const packageRoot = fileURLToPath(new URL(import.meta.url.includes('/dist/src/') ? '../../../' : '../../', import.meta.url));
const addonPath = join(packageRoot, 'build', 'Release', 'hdmabuf_mem.node');

function load(): NativeMem {
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as NativeMem;
  } catch (e) {
    const err = new Error(
      `cannot load native addon ${addonPath} (build it with \`npm install\` or \`npx node-gyp rebuild\`): ${String(e)}`,
      { cause: e },
    );
    throw err;
  }
}

/**
 * Every view is marked untransferable (worker_threads.markAsUntransferable):
 * a transfer list naming one copies it instead of moving its memory. Its
 * range is released when the ArrayBuffer object is collected
 * (native/view.cc), so the memory must stay with that object; the addon
 * refuses every detach but unmap()'s, and Node would abort on a refused
 * transfer.
 */
function untransferableViews(mem: NativeMem): NativeMem {
  const mark = (view: ArrayBuffer): ArrayBuffer => { markAsUntransferable(view); return view; };
  return {
    ...mem,
    mapRange: (fd, firstPage, nPages, writable) => mark(mem.mapRange(fd, firstPage, nPages, writable)),
    mapPages: (fd, pages, writable) => mark(mem.mapPages(fd, pages, writable)),
  };
}

export const nativeMem: NativeMem = untransferableViews(load());

// Every process with the addon encodes and expands run records (SPEC.md 4.2) in C: a 4K map answer's
// three arrays of 8,100 elements cost about 100 us in JS on a 2-core machine, a few in C.
useNativeRunCodec({ encodeRuns: nativeMem.encodeRuns, expandRuns: nativeMem.expandRuns });
