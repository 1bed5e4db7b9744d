/**
 * hyper_dmabuf messages: buffer sharing between domains, routed by the
 * backend (which stamps `src`). SPEC.md sections 10–11 give the state
 * machines and layouts these messages drive; the declarations here are the field-level reference.
 *
 * Every message names a buffer by its id (`hid`): the exporter's domain, a
 * counter, and 128 random bits. A receiver compares counter AND key on every
 * lookup, so knowing a counter is not enough to touch a buffer.
 */
import { MAX_DOMID } from '../limits.ts';
import { defineEvent, defineRequest } from '../message.ts';
import { opt, req, t, U32 } from '../schema.ts';

/** Bytes of random key in a buffer id (128 bits; the original had 96). */
export const DMABUF_KEY_BYTES = 16;
/** Grant references per 4 KiB directory page (32-bit refs). */
export const DIR_REFS_PER_PAGE = 1024;
/** Data references per linked-directory page: the first word is the next-page link. */
export const LINKED_REFS_PER_PAGE = DIR_REFS_PER_PAGE - 1;
/** Largest buffer in pages that any directory format may describe: 1024 x 1024 pages = 4 GiB. */
export const DMABUF_MAX_PAGES = DIR_REFS_PER_PAGE * DIR_REFS_PER_PAGE;
/** Wire bound of private data. A driver's own limit (default DMABUF_DEFAULT_MAX_PRIV) is at most this. */
export const DMABUF_MAX_PRIV_WIRE = 64 * 1024;
/** Default private-data limit of a driver (the original silently truncated at 192 bytes). */
export const DMABUF_DEFAULT_MAX_PRIV = 4096;
/** Most open fds (EXPORT_FD grants) one importer may hold on one buffer at once. */
export const DMABUF_MAX_FDS_PER_BUFFER = 4096;

/** Directory formats, in this implementation's order of preference. */
export const DIR_FORMATS = ['multilevel', 'linked'] as const;
/** A gref directory format (SPEC.md section 10.3). */
export type DirFormat = (typeof DIR_FORMATS)[number];

/** Access modes of an export: what the importer may do to the pages. */
export const ACCESS_MODES = ['ro', 'rw'] as const;
/** An access mode. */
export type AccessMode = (typeof ACCESS_MODES)[number];

/**
 * Remote-sync operations an importer mirrors onto the exporter's buffer
 * (OPS_TO_SOURCE). Each "undo" op pops the most recent matching "do" op of
 * the same fd; release drops the fd and undoes whatever it still holds.
 * pin/unpin (dynamic sharing, SPEC.md 11.8) keep the buffer's pages where
 * they are: a move waits until the last pin is gone.
 */
export const SYNC_OPS = [
  'attach', 'detach', 'map', 'unmap', 'release',
  'begin_cpu_access', 'end_cpu_access', 'vmap', 'vunmap', 'kmap', 'kunmap',
  'pin', 'unpin',
] as const;
/** A remote-sync operation. */
export type SyncOp = (typeof SYNC_OPS)[number];

/** DMA directions of map and CPU-access operations (Linux's enum dma_data_direction). */
export const DMA_DIRECTIONS = ['bidirectional', 'to_device', 'from_device'] as const;
/** A DMA direction. */
export type DmaDirection = (typeof DMA_DIRECTIONS)[number];

/** A buffer id: exporter domain, counter, 128-bit key. */
export const HID = t.struct({
  dom: req(t.uint(MAX_DOMID), 'Exporting domain: the domain that made the id. In a message sent by the exporter it MUST be the sender (the receiver refuses another with ERR_ID_DOMAIN_MISMATCH); a message about the buffer sent to the exporter goes to this domain.'),
  cnt: req(U32, 'Counter, unique among the exporter\'s live exports; a counter is reused only after its export is fully released.'),
  key: req(t.bin(DMABUF_KEY_BYTES, DMABUF_KEY_BYTES), 'Random key drawn afresh for every id (a reused counter gets a new key). Compared on every lookup.'),
});

const DIR_FORMAT = t.enum(...DIR_FORMATS);

/** The optional layers of routed messages (SPEC 6, "Optional layers"), as DMABUF_PEER_HELLO announces them. */
export const PEER_LAYERS = ['session', 'dmabuf', 'fence', 'dmabuf-sync', 'sim'] as const;
const PEER_LAYER_LIST = t.array(t.enum(...PEER_LAYERS), PEER_LAYERS.length);
const FD_ID = req(U32, 'Importer-chosen id of one EXPORT_FD grant (one local dma-buf), unique per buffer among the importer\'s open ones; names it in EXPORT_FD_FAILED and OPS_TO_SOURCE so every undo is exact.');

/** Per-peer negotiation, sent once by an exporter before its first EXPORT to that peer. */
export const DMABUF_PEER_HELLO = defineRequest({
  type: 'DMABUF_PEER_HELLO', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: 'Sent by a domain before its first EXPORT to `dst` (each direction negotiates separately). The receiver, as future importer, picks the first format of its own preference order that the sender offers (ERR_NO_COMMON_FORMAT if none) and states its own limits; the exporter then uses that format for its EXPORTs to this peer (or another format the answer lists as readable) and refuses, before sending, an export over the importer\'s limits. Sending it again renegotiates; existing imports are unaffected.',
  request: {
    formats: req(t.array(DIR_FORMAT, 8), 'Directory formats the exporter can write, in its order of preference.'),
    maxPriv: req(t.uint(DMABUF_MAX_PRIV_WIRE), 'Largest private data the exporter will send.'),
    maxPages: req(t.uint(DMABUF_MAX_PAGES), 'Largest buffer, in pages, the exporter will export.'),
    layers: opt(PEER_LAYER_LIST, 'The optional layers whose routed requests the sender answers (SPEC 6, "Optional layers"; `session` = ECHO). Absent: not said.'),
  },
  response: {
    format: req(DIR_FORMAT, 'The format chosen for EXPORTs from the requester to the responder: the first of the responder\'s preferences that the requester offered.'),
    formats: req(t.array(DIR_FORMAT, 8), 'Every offered format the responder can read; an exporter MAY use any of them for a given EXPORT (the default is `format`).'),
    maxPriv: req(t.uint(DMABUF_MAX_PRIV_WIRE), 'Largest private data the importer accepts (ERR_PRIV_TOO_LARGE above it).'),
    maxPages: req(t.uint(DMABUF_MAX_PAGES), 'Largest buffer, in pages, the importer accepts (ERR_BUFFER_TOO_LARGE above it).'),
    layers: opt(PEER_LAYER_LIST, 'The optional layers whose routed requests the responder answers. Absent: not said.'),
  },
});

/** Announces a buffer (or new private data for one) to its importer. */
export const DMABUF_EXPORT = defineRequest({
  type: 'DMABUF_EXPORT', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: 'Exporter → importer. With nents > 0: a new buffer; the importer validates every field, registers the import (state registered) and raises a NEW_IMPORT event, and only then answers. No page is mapped yet (mapping is lazy, on the first EXPORT_FD). With nents = 0: new private data for an import the receiver already holds (same counter and key); firstOffset, lastLength and dirRef MUST be 0 and dirFormat and access are ignored; a NEW_IMPORT event is raised again. Errors: ERR_ID_DOMAIN_MISMATCH (hid.dom ≠ src), ERR_PRIV_TOO_LARGE, ERR_BUFFER_TOO_LARGE (over the importer\'s limits), ERR_BAD_DIRECTORY (format not supported), ERR_BAD_ARGUMENT (inconsistent geometry, dirRef 0, id already registered), ERR_UNKNOWN_BUFFER / ERR_UNEXPORTED (nents = 0 for an unknown or unexported import), ERR_LIMIT (import table full).',
  request: {
    hid: req(HID, 'The buffer id.'),
    nents: req(t.uint(DMABUF_MAX_PAGES), 'Pages in the buffer; 0 = private-data update of an existing import.'),
    firstOffset: req(t.uint(4095), 'Byte offset of the data in the first page.'),
    lastLength: req(t.uint(4096), 'End of the data in the last page, in bytes from that page\'s start (1..4096 when nents > 0). Size = (nents-1)*4096 + lastLength - firstOffset, which MUST be ≥ 1.'),
    dirRef: req(U32, 'Grant reference of the top (multilevel) or first (linked) directory page, granted read-only to the importer; 0 when nents = 0.'),
    dirFormat: req(DIR_FORMAT, 'Layout of the directory (SPEC.md 10.3): the format negotiated by DMABUF_PEER_HELLO.'),
    access: req(t.enum(...ACCESS_MODES), 'ro: data pages granted read-only (an importer write faults); rw: granted writable.'),
    priv: req(t.bin(DMABUF_MAX_PRIV_WIRE), 'Private data (opaque to the driver), copied whole or refused, never truncated.'),
  },
  response: {},
});

/** An importer asks to create a local dma-buf (an fd) for an import. */
export const DMABUF_EXPORT_FD = defineRequest({
  type: 'DMABUF_EXPORT_FD', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: 'Importer → exporter (hid.dom). The exporter counts fdId as active on the buffer, so the buffer cannot be released under it. Errors, each of which the importer MUST honour (it creates no fd, or revokes a version-2 early first fd: SPEC.md 11.2 rule 2): ERR_UNKNOWN_BUFFER (no live export with this counter and key), ERR_NOT_IMPORTER (src is not the domain the buffer was exported to), ERR_UNEXPORTED (the export was unexported), ERR_BAD_ARGUMENT (fdId already active), ERR_LIMIT (more than 4096 fds).',
  request: { hid: req(HID, 'The buffer id.'), fdId: FD_ID },
  response: {},
});

/** Undoes an EXPORT_FD whose fd the importer could not create. */
export const DMABUF_EXPORT_FD_FAILED = defineEvent({
  type: 'DMABUF_EXPORT_FD_FAILED', from: 'peer', since: 1, layer: 'dmabuf',
  doc: 'Importer → exporter, when an EXPORT_FD was answered ok (or got no answer) but the importer could not map the pages or create the fd. The exporter removes fdId from the buffer\'s active set if it is there, and otherwise ignores the event: the undo is exact and idempotent (the original decremented a counter, even after a refusal). It MUST NOT be sent after an err reply to the EXPORT_FD.',
  body: {
    hid: req(HID, 'The buffer id.'),
    fdId: req(U32, 'The fdId of the EXPORT_FD to undo.'),
    reason: opt(t.str(256), 'Why, for logs.'),
  },
});

/** Tells the importer that the exporter unexported a buffer. */
export const DMABUF_NOTIFY_UNEXPORT = defineRequest({
  type: 'DMABUF_NOTIFY_UNEXPORT', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: 'Exporter → importer, when an unexport takes effect (after its delay). The importer refuses new fds from then on. If it holds no fd it forgets the import at once; otherwise the import becomes invalid and is forgotten when its last fd is released (its mapping stays usable until then). Errors: ERR_ID_DOMAIN_MISMATCH, ERR_UNKNOWN_BUFFER.',
  request: { hid: req(HID, 'The buffer id.') },
  response: { openFds: req(t.uint(DMABUF_MAX_FDS_PER_BUFFER), 'fds the importer still holds; the exporter frees the buffer after as many releases.') },
});

const SYNC_BODY = {
  hid: req(HID, 'The buffer id.'),
  fdId: req(U32, 'The fd (from EXPORT_FD) the operation was done on.'),
  op: req(t.enum(...SYNC_OPS), 'The operation.'),
  dir: opt(t.enum(...DMA_DIRECTIONS), 'map, unmap, begin_cpu_access, end_cpu_access: the DMA direction (default bidirectional).'),
  page: opt(t.uint(DMABUF_MAX_PAGES - 1), 'kmap, kunmap: page index within the buffer (default 0).'),
} as const;

const SYNC_DOC = 'The exporter mirrors the op on its own buffer in a shadow stack per (importer, fdId): attach/map/begin_cpu_access/vmap/kmap/pin push, detach/unmap/end_cpu_access/vunmap/kunmap/unpin pop the most recent entry of their kind, release drops the fd, undoes everything still on its stacks and removes fdId from the active set (the buffer is freed when it was the last fd of an unexported buffer). A pin, a begin_cpu_access and a map that arrive while the buffer is moving take effect (and are answered) only after the move completed, so their answer comes after the importer acknowledged DMABUF_MOVE_NOTIFY (SPEC.md 11.8). Errors: ERR_UNKNOWN_BUFFER, ERR_NOT_IMPORTER, ERR_BAD_ARGUMENT (fdId not active, or an undo with nothing to undo), ERR_BUSY (detach while the attachment is still mapped).';

/** Mirrors an importer's dma-buf operation on the exporter, acknowledged. */
export const DMABUF_OPS_TO_SOURCE = defineRequest({
  type: 'DMABUF_OPS_TO_SOURCE', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: `Importer → exporter, acknowledged: the importer waits for the exporter's answer (the original only had a fire-and-forget form). ${SYNC_DOC}`,
  request: SYNC_BODY,
  response: { busy: req(t.bool(), 'The buffer\'s BUSY query after the op: the importer still holds an fd on it.') },
});

/** Mirrors an importer's dma-buf operation on the exporter, fire-and-forget. */
export const DMABUF_OPS_TO_SOURCE_ASYNC = defineEvent({
  type: 'DMABUF_OPS_TO_SOURCE_ASYNC', from: 'peer', since: 1, layer: 'dmabuf',
  doc: `Importer → exporter, not acknowledged: the same effect as DMABUF_OPS_TO_SOURCE, applied in order with the requests; an op the exporter refuses is dropped and counted in the exporter's statistics. ${SYNC_DOC}`,
  body: SYNC_BODY,
});

/** Tells an importer that the exporter moved the buffer's pages (Linux's move_notify, across VMs). */
export const DMABUF_MOVE_NOTIFY = defineRequest({
  type: 'DMABUF_MOVE_NOTIFY', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf',
  doc: 'Exporter → importer (move_notify): the buffer\'s data now lives in other pages, granted afresh and described by a new directory. The importer adopts the new location at once (every later mapping uses it), detaches every view of its old mapping and unmaps it (handles released at the backend), optionally maps the new pages, and only then answers: the answer means that the importer maps no old page any more, and only after it (or the importer\'s death) does the exporter end access to the old grants and scrub and free the old pages (SPEC.md 11.8). Sent for every move while the importer may still hold the import, including after NOTIFY_UNEXPORT while fds are open. Errors: ERR_ID_DOMAIN_MISMATCH (hid.dom ≠ src), ERR_UNKNOWN_BUFFER (the importer does not hold the buffer, so it maps nothing of it), ERR_BAD_ARGUMENT (generation not newer than the import\'s, geometry different from the EXPORT\'s, dirRef 0), ERR_BAD_DIRECTORY (format not read).',
  request: {
    hid: req(HID, 'The buffer id.'),
    generation: req(t.uint(0xffffffff, 1), 'Moves of this export so far, this one included (the first move is 1; the EXPORT was generation 0). MUST be greater than the importer\'s current generation of the import; this implementation sends exactly one more.'),
    nents: req(t.uint(DMABUF_MAX_PAGES, 1), 'Pages in the buffer: MUST equal the EXPORT\'s (a move never changes the size or layout; repeated so that the directory can be walked and checked from this message alone).'),
    firstOffset: req(t.uint(4095), 'Byte offset of the data in the first page: MUST equal the EXPORT\'s.'),
    lastLength: req(t.uint(4096, 1), 'End of the data in the last page: MUST equal the EXPORT\'s.'),
    dirRef: req(t.uint(0xffffffff, 1), 'Grant reference of the top (multilevel) or first (linked) page of the NEW directory, granted read-only to the importer, over newly granted data pages.'),
    dirFormat: req(DIR_FORMAT, 'Layout of the new directory: a format the importer reads (normally the EXPORT\'s).'),
  },
  response: {
    remapped: req(t.bool(), 'True if the importer already mapped the new pages before answering (eager remap); false if it will map them at its next access (lazy remap) or holds no fd.'),
  },
});
