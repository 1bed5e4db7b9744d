/**
 * Reservation objects on shared buffers (Linux's dma_resv, across VMs).
 *
 * Every buffer has ONE authoritative reservation object, kept by its
 * exporter: the exporter's own drivers add and read fences locally, and an
 * importer adds fences (DMABUF_RESV_ADD) and reads a snapshot of them
 * (DMABUF_RESV_GET) through these two requests, each naming the buffer and
 * an fd the importer holds on it. Fences travel as FENCE_REF lists (the
 * fence layer's references, protocol/messages/fence.ts), so the exporter
 * observes an importer's fences through the importer's timeline pages, and
 * the other way round. SPEC.md section 11A gives the replacement rule, the
 * sync_file bridge, implicit synchronisation and poll readiness built on
 * them; the declarations here are the field-level reference.
 */
import { defineRequest } from '../message.ts';
import { req, t, U32 } from '../schema.ts';
import { HID } from './dmabuf.ts';
import { FENCE_MAX_REFS, FENCE_REF } from './fence.ts';

/** Usage classes, strongest first (enum dma_resv_usage): a query for one class returns the stronger ones too. */
export const RESV_USAGES = ['kernel', 'write', 'read', 'bookkeep'] as const;
/** A usage class on the wire. */
export type ResvUsageName = (typeof RESV_USAGES)[number];

/**
 * Usage classes an importer may add. KERNEL is the exporter's own memory
 * management (moves, clears), which every user must wait for: a peer adding
 * one could hold off the exporter's moves at will, so only the exporter adds them.
 */
export const RESV_PEER_USAGES = ['write', 'read', 'bookkeep'] as const;
/** A usage class an importer may add. */
export type ResvPeerUsageName = (typeof RESV_PEER_USAGES)[number];

/** Most fence references in one DMABUF_RESV_ADD or one DMABUF_RESV_GET answer (those of one FENCE_EXPORT). */
export const RESV_MAX_REFS = FENCE_MAX_REFS;
/**
 * Most unsignalled fences one importer may have in one buffer's reservation
 * object. An add that could exceed it (pending fences of the sender already
 * stored, plus every reference of the add) is refused whole (ERR_LIMIT).
 */
export const RESV_MAX_PEER_FENCES = 256;

const FD_ID = req(U32, 'An fd (EXPORT_FD fdId) the sender holds open on the buffer: like the ioctls, these act through an open dma-buf. ERR_BAD_ARGUMENT if it is not open.');

/** An importer adds fences to a buffer's reservation object (dma_resv_add_fence for each, DMA_BUF_IOCTL_IMPORT_SYNC_FILE across VMs). */
export const DMABUF_RESV_ADD = defineRequest({
  type: 'DMABUF_RESV_ADD', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf-sync',
  doc: 'Importer → exporter (hid.dom). Adds every referenced fence, one by one and in order, to the buffer\'s reservation object with `usage`, by the add rule of SPEC.md 11A.7: an entry is replaced only if it has signalled, or if it is a fence of the same timeline, not later than the new one, stored with an equal or weaker usage; otherwise the fence is appended. So an importer can never remove or hide an unsignalled fence: not the exporter\'s, not another importer\'s, not an earlier or later one of its own. The references are the leaves of one sync_file (never a container), each a fence of the sender (FENCE_REF: the receiver observes it through the sender\'s timeline page). Checks, all before anything is added (a refusal adds nothing and holds no slot count): ERR_UNKNOWN_BUFFER (no live export with this counter and key), ERR_NOT_IMPORTER (the buffer was not exported to the sender), ERR_UNEXPORTED (the export is being revoked), ERR_BAD_ARGUMENT (fdId not open; a malformed reference, see FENCE_EXPORT), ERR_FENCE_UNKNOWN_TIMELINE (a reference names a timeline the sender has not shared with the receiver), ERR_LIMIT (the sender could have more than 256 unsignalled fences in this reservation object).',
  request: {
    hid: req(HID, 'The buffer id.'),
    fdId: FD_ID,
    usage: req(t.enum(...RESV_PEER_USAGES), 'Usage of every added fence: write (import of a WRITE sync_file: every later implicit access waits), read (a READ sync_file: later implicit writes wait), bookkeep (no implicit sync). kernel is the exporter\'s own.'),
    fences: req(t.array(FENCE_REF, RESV_MAX_REFS), 'The fences, 1..256, leaves of one sync_file in its order.'),
  },
  response: {
    replaced: req(t.uint(RESV_MAX_REFS), 'References that replaced an entry (a signalled one, or an earlier-or-same fence of their own timeline with an equal or weaker usage: a promotion).'),
    appended: req(t.uint(RESV_MAX_REFS), 'References stored as new entries.'),
  },
});

/** An importer reads the fences a new access must wait for (dma_resv_get_fences; DMA_BUF_IOCTL_EXPORT_SYNC_FILE and poll across VMs). */
export const DMABUF_RESV_GET = defineRequest({
  type: 'DMABUF_RESV_GET', route: 'peer', caller: 'guest', since: 1, layer: 'dmabuf-sync',
  doc: 'Importer → exporter (hid.dom). Answers a snapshot of the unsignalled fences of the buffer\'s reservation object stored with `usage` or a stronger one (kernel < write < read < bookkeep): write for what a read must wait for, read for what a write must wait for. Fences added afterwards are not included. Each reference holds a slot count until the importer returns it (FENCE_SLOTS_RELEASE), exactly as a FENCE_EXPORT reference; a fence that is not on one of the exporter\'s shared timelines (an importer\'s, the buffer\'s other importers\', a local engine\'s) is bridged. An empty list means nothing is pending: a sync_file exported from it holds the signalled stub, poll reports ready. With more than 256 pending fences the answer carries one fence that signals when all of them have (`collapsed`). Errors: ERR_UNKNOWN_BUFFER, ERR_NOT_IMPORTER, ERR_UNEXPORTED, ERR_BAD_ARGUMENT (fdId not open), ERR_LIMIT (no free slot to reference a pending fence).',
  request: {
    hid: req(HID, 'The buffer id.'),
    fdId: FD_ID,
    usage: req(t.enum(...RESV_USAGES), 'Weakest usage class to include.'),
  },
  response: {
    fences: req(t.array(FENCE_REF, RESV_MAX_REFS), 'The pending fences, 0..256, as references of the exporter (FENCE_REF).'),
    usages: req(t.array(t.enum(...RESV_USAGES), RESV_MAX_REFS), 'The usage each fence is stored with, same order and length as `fences` (the collapsed fence gets `usage`).'),
    collapsed: req(t.bool(), 'True if more than 256 fences were pending and `fences` holds the single fence standing for all of them.'),
  },
});
