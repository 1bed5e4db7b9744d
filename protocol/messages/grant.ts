/** Grant-table operations (GNTTABOP_*): batches, one round trip each. */
import { MAX_BATCH, MAX_DOMID, MAX_PATH } from '../limits.ts';
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
    flags: req(U32, 'GNTMAP_* flags: host_map required; readonly for a read-only mapping.'),
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
      flags: req(t.uint(7), 'GNTCOPY_* flags.'),
    }), MAX_BATCH), 'Copy operations.'),
  },
  response: { status: req(t.array(GNTST_VALUE, MAX_BATCH), 'GNTST_* per op.') },
});
