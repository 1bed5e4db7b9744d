/**
 * Cross-VM fence messages: a domain (the owner) shares a fence timeline with
 * a peer (an observer) once, and then exports fences on it.
 *
 * The signalled state never travels in a message. It lives in a timeline
 * page in the owner's RAM, granted read-only to every observer: the last
 * signalled seqno, and one error slot per exported pending point. The owner
 * rings an event channel after every advance that an observer cares about;
 * the observer re-reads the page on every event. SPEC.md section 11A gives
 * the page layout, the ordering rules and the state machines; the
 * declarations here are the field-level reference.
 */
import { defineEvent, defineRequest } from '../message.ts';
import { opt, req, t, U32 } from '../schema.ts';

/** Bytes of a timeline page. */
export const FENCE_PAGE_BYTES = 4096;
/** Bytes of the timeline page header, before the slots. */
export const FENCE_PAGE_HEADER_BYTES = 64;
/** Bytes of one error slot. */
export const FENCE_SLOT_BYTES = 16;
/** Error slots in one timeline page: (4096 - 64) / 16. */
export const FENCE_PAGE_SLOTS = (FENCE_PAGE_BYTES - FENCE_PAGE_HEADER_BYTES) / FENCE_SLOT_BYTES;
/** Largest seqno (2^53 - 1: the page holds a u64, the wire an exact integer). */
export const FENCE_MAX_SEQNO = Number.MAX_SAFE_INTEGER;
/** Most fence references in one FENCE_EXPORT (leaves of one sync_file). */
export const FENCE_MAX_REFS = 256;
/** Most slot indices in one FENCE_SLOTS_RELEASE. */
export const FENCE_MAX_RELEASE = 1024;
/** Longest timeline or sync_file name (sync_file names are char[32]). */
export const FENCE_MAX_NAME = 32;
/** Most negative status a fence can carry (-MAX_ERRNO). */
export const FENCE_MIN_STATUS = -4095;

const TL_ID = U32;
const SEQNO = t.uint(FENCE_MAX_SEQNO);
const PORT = t.uint(4095, 1);

/**
 * A reference to one leaf fence, as an exporter puts it in a message. The
 * owner is always the sending domain (the stamped `src`). The messages of
 * buffers carrying fences (DMABUF_RESV_*) embed this same struct.
 */
export const FENCE_REF = t.struct({
  tl: opt(TL_ID, 'The sender\'s timeline id, shared with the receiver by FENCE_TIMELINE_SHARE. Required with `slot`; absent for a detached, already signalled fence.'),
  seqno: opt(SEQNO, 'The point on that timeline. Required with `tl`.'),
  slot: opt(t.uint(FENCE_PAGE_SLOTS - 1), 'Pending fence: the error slot in the timeline page that the owner writes the point\'s status into before it publishes a seqno at or past it. The slot\'s seqno tag MUST equal `seqno`. Exactly one of `slot` and `status` is present.'),
  status: opt(t.int(FENCE_MIN_STATUS, 1), 'Fence already signalled when exported: 1 (no error) or a negative errno. Exactly one of `slot` and `status` is present.'),
});

/** Shares a timeline with a peer: a read-only grant of its page, and an event channel. */
export const FENCE_TIMELINE_SHARE = defineRequest({
  type: 'FENCE_TIMELINE_SHARE', route: 'peer', caller: 'guest', since: 1, layer: 'fence',
  doc: 'Owner → observer, once per timeline per observer, before the first FENCE_EXPORT that names the timeline. The owner has granted the timeline page read-only to the observer and allocated an unbound event-channel port for it. The observer maps the page read-only, checks its header (magic, version, slot count), binds the port, and only then answers. Errors: ERR_BAD_ARGUMENT (tl already shared by the sender), ERR_FENCE_SETUP_FAILED (the grant could not be mapped or the port bound; nothing is left mapped or bound), ERR_FENCE_BAD_PAGE (bad header; the page is unmapped again), ERR_LIMIT (too many shared timelines).',
  request: {
    tl: req(TL_ID, 'Owner-chosen timeline id, unique among the owner\'s live timelines; never reused while any observer may still hold it.'),
    name: req(t.str(FENCE_MAX_NAME), 'Timeline name, for sync_file info (obj_name) and logs.'),
    gref: req(U32, 'Grant reference of the timeline page, granted read-only to the receiver.'),
    port: req(PORT, 'The owner\'s unbound event-channel port, allocated for the receiver; the receiver binds to it.'),
  },
  response: {},
});

/** Ends a share: the owner closed the timeline or stops sharing it with this peer. */
export const FENCE_TIMELINE_UNSHARE = defineRequest({
  type: 'FENCE_TIMELINE_UNSHARE', route: 'peer', caller: 'guest', since: 1, layer: 'fence',
  doc: 'Owner → observer. reason closed: before sending it the owner has written the final status (-ENOENT) into the slot of every pending exported point and set the page state to closed. The observer checks the page one last time, signals every fence it still holds on the timeline (with its slot\'s final status; with -ENOENT, or -ECANCELED for unshared, when the slot has none), unmaps the page, closes its port, and only then answers, so the owner can end access to the grant at once. The owner drops the observer\'s slot counts itself. Errors: ERR_FENCE_UNKNOWN_TIMELINE.',
  request: {
    tl: req(TL_ID, 'The timeline.'),
    reason: req(t.enum('closed', 'unshared'), 'closed: the owner destroyed the timeline; unshared: the owner stops sharing it with this observer.'),
  },
  response: {
    errored: req(U32, 'Fences the observer still held pending and signalled with an error because of this.'),
  },
});

/** Sends fences (the leaves of one sync_file) to a peer. */
export const FENCE_EXPORT = defineRequest({
  type: 'FENCE_EXPORT', route: 'peer', caller: 'guest', since: 1, layer: 'fence',
  doc: 'Owner → observer: the leaf fences of one sync_file. Each pending reference holds one count on its slot until the receiver returns it with FENCE_SLOTS_RELEASE. The receiver builds one fence per reference (the same fence object for a pending point it already holds), then a sync_file of the single leaf or of an array of all leaves, files it under (src, cookie) for its application, and answers. Errors: ERR_FENCE_UNKNOWN_TIMELINE (a pending reference names a timeline the sender has not shared with the receiver), ERR_BAD_ARGUMENT (no fences, a duplicate cookie, both or neither of slot and status, tl without seqno, a slot whose tag is not the seqno), ERR_LIMIT (too many imports not yet taken by the application). On an error nothing is imported and no slot count is held.',
  request: {
    cookie: req(U32, 'Exporter-chosen handle under which the receiving application finds the sync_file, unique among the sender\'s exports to this receiver that were not yet taken.'),
    name: opt(t.str(FENCE_MAX_NAME), 'sync_file name (SYNC_IOC_FILE_INFO name); derived from the fence when absent.'),
    fences: req(t.array(FENCE_REF, FENCE_MAX_REFS), 'The leaf fences, 1..256, in sync_file order.'),
  },
  response: {},
});

/** Returns slot counts: the observer has read the statuses it needed. */
export const FENCE_SLOTS_RELEASE = defineEvent({
  type: 'FENCE_SLOTS_RELEASE', from: 'peer', since: 1, layer: 'fence',
  doc: 'Observer → owner, after it has read the final status of the points behind these slots (or dropped them). Each entry returns one count that a FENCE_EXPORT reference gave; an index may repeat. The owner frees a slot once its point has signalled and no observer holds a count on it, and only then may reuse it. Entries for counts the sender does not hold are ignored (and counted).',
  body: {
    tl: req(TL_ID, 'The timeline.'),
    slots: req(t.array(t.uint(FENCE_PAGE_SLOTS - 1), FENCE_MAX_RELEASE), 'Slot indices, one per count returned.'),
  },
});

/** The observer ended an import on its own. */
export const FENCE_TIMELINE_DETACHED = defineEvent({
  type: 'FENCE_TIMELINE_DETACHED', from: 'peer', since: 1, layer: 'fence',
  doc: 'Observer → owner, when the observer ends an import on its own (its fence layer shuts down while the domain lives on). It has already completed the fences it held on the timeline with -ECANCELED, unmapped the page and closed its port. The owner closes the share as on the observer\'s death: drops its slot counts, closes its port, ends access to the grant. Ignored for a timeline the owner does not share with the sender.',
  body: {
    tl: req(TL_ID, 'The timeline.'),
  },
});
