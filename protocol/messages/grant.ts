/** Grant-table operations (GNTTABOP_*): batches, one round trip each. */
import { MAX_BATCH, MAX_DOMID, MAX_PATH } from '../limits.ts';
import { DIR_FORMATS, DMABUF_MAX_PAGES, LINKED_REFS_PER_PAGE } from './dmabuf.ts';
import { defineRequest } from '../message.ts';
import { req, t, U16, U32 } from '../schema.ts';

const GNTST_VALUE = t.int(-13, 0);
const PAGE_OFFSET = t.uint(4095);

/** Grows the caller's grant table (Xen's setup_table). */
export const GNTTAB_SETUP_TABLE = defineRequest({
  type: 'GNTTAB_SETUP_TABLE', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Grows the caller\'s grant table to at least nrFrames frames (it never shrinks). References at or beyond nrFrames*512 are invalid until then. Over the domain\'s maximum: ERR_LIMIT.',
  request: { nrFrames: req(t.uint(0xffff, 1), 'Frames wanted.') },
  response: {
    nrFrames: req(U16, 'Frames now in use.'),
    maxFrames: req(U16, 'The domain\'s limit.'),
  },
});

/** Reports the caller's grant-table size (Xen's query_size). */
export const GNTTAB_QUERY_SIZE = defineRequest({
  type: 'GNTTAB_QUERY_SIZE', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Current and maximum grant-table frames of the caller.',
  request: {},
  response: {
    nrFrames: req(U16, 'Frames in use.'),
    maxFrames: req(U16, 'The domain\'s limit.'),
  },
});

/** Maps a batch of grant references of one granting domain (Xen's map_grant_ref, batched). */
export const GNTTAB_MAP_GRANT_REF = defineRequest({
  type: 'GNTTAB_MAP_GRANT_REF', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Maps every reference in `refs` of domain `dom` with the same GNTMAP flags. Each entry gets its own status; entries that succeeded hold a handle that stays valid until unmapped, whatever happened to the others. The caller then maps frame[i] of ramPath itself.',
  request: {
    dom: req(t.uint(MAX_DOMID), 'Granting domain.'),
    flags: req(U32, 'GNTMAP_* flags (values in 7.4, Map flags): host_map (0x02) required; readonly (0x04) for a read-only mapping.'),
    refs: req(t.array(U32, MAX_BATCH), 'Grant references in dom\'s table.'),
  },
  response: {
    status: req(t.array(GNTST_VALUE, MAX_BATCH), 'GNTST_* per entry.'),
    handle: req(t.array(U32, MAX_BATCH), 'Mapping handle per entry (0xffffffff when status is not okay).'),
    frame: req(t.array(U32, MAX_BATCH), 'Page index in ramPath per entry (0 when status is not okay).'),
    ramPath: req(t.str(MAX_PATH), 'Shared-memory file of dom\'s guest RAM.'),
  },
});

/** Unmaps a batch of mapping handles (Xen's unmap_grant_ref, batched). */
export const GNTTAB_UNMAP_GRANT_REF = defineRequest({
  type: 'GNTTAB_UNMAP_GRANT_REF', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'Releases each handle. The caller must have unmapped the pages from its own address space first. A handle never issued, or already released, gets GNTST_bad_handle.',
  request: { handles: req(t.array(U32, MAX_BATCH), 'Handles from GNTTAB_MAP_GRANT_REF.') },
  response: { status: req(t.array(GNTST_VALUE, MAX_BATCH), 'GNTST_* per entry.') },
});

const COPY_SIDE = t.struct({
  ref: req(U32, 'Grant reference (when the side\'s GNTCOPY_*_gref flag is set) or a frame of the caller\'s own RAM.'),
  dom: req(t.uint(MAX_DOMID), 'Domain that owns ref; must be the caller for a frame.'),
  offset: req(PAGE_OFFSET, 'Byte offset in the page.'),
});

/** Copies bytes between granted pages and the caller's own frames (Xen's copy). */
export const GNTTAB_COPY = defineRequest({
  type: 'GNTTAB_COPY', route: 'hv', caller: 'guest', since: 1, layer: 'hv',
  doc: 'The backend copies each op itself. A source grant may be read-only; a destination grant must be writable. offset + len past the page gives GNTST_bad_copy_arg.',
  request: {
    ops: req(t.array(t.struct({
      source: req(COPY_SIDE, 'Where to read.'),
      dest: req(COPY_SIDE, 'Where to write.'),
      len: req(t.uint(4096), 'Bytes to copy.'),
      flags: req(t.uint(7), 'GNTCOPY_* flags (values in 7.6): source_gref 0x01, dest_gref 0x02, can_fail 0x04.'),
    }), MAX_BATCH), 'Copy operations.'),
  },
  response: { status: req(t.array(GNTST_VALUE, MAX_BATCH), 'GNTST_* per op.') },
});

// ---------------------------------------------------------------------------
// Protocol v2 (SPEC.md 7.7): the same operations with their batches packed
// (little-endian binary arrays, SPEC.md 4.1), and the directory map. What the
// backend answers per entry travels as run records (SPEC.md 4.2): its
// statuses, handles and frames come in long runs, and the backend never
// decodes a run, so a small frame can never make it allocate a large array.

const PACKED_REFS = t.packed('u32', MAX_BATCH);
const PACKED_HANDLES = t.packed('u32', MAX_BATCH);
const STATUS_RUNS = t.runs('i16', MAX_BATCH, GNTST_VALUE.min, GNTST_VALUE.max);

/** GNTTAB_MAP_GRANT_REF in v2: the same rules as v1, the batches packed. */
export const GNTTAB_MAP_GRANT_REF_V2 = defineRequest({
  ...GNTTAB_MAP_GRANT_REF,
  since: 2,
  doc: `${GNTTAB_MAP_GRANT_REF.doc} v2: refs is a packed array (SPEC.md 4.1), status, handle and frame are run records (SPEC.md 4.2); their meaning and every rule of SPEC.md 7.4 are those of v1.`,
  request: {
    dom: GNTTAB_MAP_GRANT_REF.request.dom,
    flags: GNTTAB_MAP_GRANT_REF.request.flags,
    refs: req(PACKED_REFS, 'Grant references in dom\'s table, packed u32.'),
  },
  response: {
    status: req(STATUS_RUNS, 'GNTST_* per entry, runs of i16.'),
    handle: req(t.runs('u32', MAX_BATCH), 'Mapping handle per entry, runs of u32 (0xffffffff when status is not okay).'),
    frame: req(t.runs('u32', MAX_BATCH), 'Page index in ramPath per entry, runs of u32 (0 when status is not okay).'),
    ramPath: GNTTAB_MAP_GRANT_REF.response.ramPath,
  },
});

/** GNTTAB_UNMAP_GRANT_REF in v2: the same rules as v1, the batches packed. */
export const GNTTAB_UNMAP_GRANT_REF_V2 = defineRequest({
  ...GNTTAB_UNMAP_GRANT_REF,
  since: 2,
  doc: `${GNTTAB_UNMAP_GRANT_REF.doc} v2: handles is a packed array (SPEC.md 4.1), status run records (SPEC.md 4.2); their meaning and every rule of SPEC.md 7.5 are those of v1.`,
  request: { handles: req(PACKED_HANDLES, 'Handles from GNTTAB_MAP_GRANT_REF or GNTTAB_MAP_DIRECTORY, packed u32.') },
  response: { status: req(STATUS_RUNS, 'GNTST_* per entry, runs of i16.') },
});

/** GNTTAB_COPY in v2: the same ops as v1, the statuses packed. */
export const GNTTAB_COPY_V2 = defineRequest({
  ...GNTTAB_COPY,
  since: 2,
  doc: `${GNTTAB_COPY.doc} v2: status is run records (SPEC.md 4.2); ops and every rule of SPEC.md 7.6 are those of v1.`,
  response: { status: req(STATUS_RUNS, 'GNTST_* per op, runs of i16.') },
});

/** Most directory pages one directory may have (linked format at the protocol's page bound). */
export const MAX_DIRECTORY_PAGES = Math.ceil(DMABUF_MAX_PAGES / LINKED_REFS_PER_PAGE);

/** Resolves a gref directory granted to the caller and maps every data page it names (v2). */
export const GNTTAB_MAP_DIRECTORY = defineRequest({
  type: 'GNTTAB_MAP_DIRECTORY', route: 'hv', caller: 'guest', since: 2, layer: 'hv',
  doc: 'Reads the gref directory (SPEC.md 10.3) headed by dirRef of domain dom, and maps every data page it names with flags, in one round trip (SPEC.md 7.7). Each directory page is pinned read-only with every check of a GNTTAB_MAP_GRANT_REF entry, copied once into the backend\'s private memory while pinned, and unpinned before the next level is read; only the copy is decoded. Then the data refs are mapped as one GNTTAB_MAP_GRANT_REF batch would map them. A directory page whose map fails stops the walk: dirStatus ends with its status and nothing is mapped. Errors: ERR_BAD_DIRECTORY (the copy breaks a rule of SPEC.md 10.3: reference 0 where a reference is required, a non-zero unused slot, a page read twice, a linked list of the wrong length), ERR_BUFFER_TOO_LARGE (nents over the format\'s limit); nothing stays pinned or mapped after an error.',
  request: {
    dom: req(t.uint(MAX_DOMID), 'Granting domain (the exporter).'),
    flags: req(U32, 'GNTMAP_* flags of the data pages: host_map required; readonly for a read-only mapping. Directory pages are always read read-only.'),
    format: req(t.enum(...DIR_FORMATS), 'Directory layout (SPEC.md 10.3).'),
    dirRef: req(t.uint(0xffffffff, 1), 'Grant reference of the top (multilevel) or first (linked) directory page.'),
    nents: req(t.uint(DMABUF_MAX_PAGES, 1), 'Data pages the directory describes (the EXPORT\'s nents).'),
  },
  response: {
    dirRefs: req(t.runs('u32', MAX_DIRECTORY_PAGES), 'Directory pages read, in the order they were read, runs of u32.'),
    dirStatus: req(t.runs('i16', MAX_DIRECTORY_PAGES, GNTST_VALUE.min, GNTST_VALUE.max), 'GNTST_* of each directory page\'s read-only map, same order, runs of i16. Only the last may be not okay; if it is, status, handle and frame are empty.'),
    status: req(t.runs('i16', DMABUF_MAX_PAGES, GNTST_VALUE.min, GNTST_VALUE.max), 'GNTST_* per data page in buffer order, runs of i16 (nents entries, or none).'),
    handle: req(t.runs('u32', DMABUF_MAX_PAGES), 'Mapping handle per data page, runs of u32 (0xffffffff when status is not okay); released with GNTTAB_UNMAP_GRANT_REF.'),
    frame: req(t.runs('u32', DMABUF_MAX_PAGES), 'Page index in ramPath per data page, runs of u32 (0 when status is not okay).'),
    ramPath: req(t.str(MAX_PATH), 'Shared-memory file of dom\'s guest RAM.'),
  },
});

const COUNT = t.uint(Number.MAX_SAFE_INTEGER);

/** The backend's own measure of its grant batch work (v2). */
export const HV_GRANT_STATS = defineRequest({
  type: 'HV_GRANT_STATS', route: 'hv', caller: 'control', since: 2, layer: 'control',
  doc: 'Counters of the grant map and unmap work the backend did since it started, measured in the backend process around its per-entry loops (decoding and sending excluded): entries and nanoseconds, so ns per entry = ns / entries. For benchmarks.',
  request: {},
  response: {
    mapEntries: req(COUNT, 'Entries processed by GNTTAB_MAP_GRANT_REF and GNTTAB_MAP_DIRECTORY (data pages), any status.'),
    mapNs: req(COUNT, 'Nanoseconds spent in those per-entry loops.'),
    unmapEntries: req(COUNT, 'Entries processed by GNTTAB_UNMAP_GRANT_REF, any status.'),
    unmapNs: req(COUNT, 'Nanoseconds spent in that per-entry loop.'),
    dirPages: req(COUNT, 'Directory pages read by GNTTAB_MAP_DIRECTORY.'),
    dirNs: req(COUNT, 'Nanoseconds spent pinning, copying, unpinning and decoding them.'),
    batches: req(COUNT, 'Map, unmap and directory requests served.'),
    slices: req(COUNT, 'Event-loop turns those requests took (a long batch yields between slices).'),
  },
});
