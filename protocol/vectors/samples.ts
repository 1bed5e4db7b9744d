/**
 * One sample body per message and kind, from which the golden vectors are
 * built. Every declared message must appear here (a test checks it): adding a
 * message means adding its sample, which then pins its exact bytes.
 */

/** Sample bodies for one message type. Requests give req and res; events give evt. */
export interface Sample {
  req?: Record<string, unknown>;
  res?: Record<string, unknown>;
  evt?: Record<string, unknown>;
  /** Routing fields for the sample envelope (peer messages). */
  src?: number;
  dst?: number;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/** A buffer id of domain 1 with a fixed (not random) key, for the dmabuf samples. */
const SAMPLE_HID = { dom: 1, cnt: 7, key: bytes(0x5a, 0x1f, 0x93, 0x0c, 0xe2, 0x47, 0xb8, 0x6d, 0x01, 0xfe, 0x3a, 0x94, 0x77, 0x28, 0xc5, 0x60) };

/** Samples by message type. */
export const samples: Record<string, Sample> = {
  HELLO: {
    req: { minVersion: 1, maxVersion: 1, domid: 1, token: '9f2c4e1ab07d', caps: ['gnttab.v1'] },
    res: { version: 1, domid: 1, caps: ['gnttab.v1'], maxFrameBytes: 16777216, maxBatch: 65536 },
  },
  PING: { req: { nonce: 7 }, res: { nonce: 7 } },
  ECHO: { req: { payload: bytes(1, 2, 3, 4) }, res: { payload: bytes(1, 2, 3, 4) }, dst: 2 },
  PROTOCOL_ERROR: { evt: { code: 'ERR_MALFORMED', message: 'malformed frame: truncated value' } },
  DOMAIN_DIED: { evt: { domid: 2, reason: 'disconnected', mappingsReleased: 3 } },
  DOMAIN_UP: { evt: { domid: 2, name: 'compositor' } },
  GNTTAB_SETUP_TABLE: { req: { nrFrames: 8 }, res: { nrFrames: 8, maxFrames: 64 } },
  GNTTAB_QUERY_SIZE: { req: {}, res: { nrFrames: 4, maxFrames: 64 } },
  GNTTAB_MAP_GRANT_REF: {
    req: { dom: 1, flags: 6, refs: [8, 9, 70000] },
    // Handles are opaque, and never 0 or 0xffffffff for a mapping that succeeded (SPEC 7.4, Maptrack rule 2).
    res: { status: [0, 0, -3], handle: [1, 2, 0xffffffff], frame: [256, 257, 0], ramPath: '/dev/shm/hdmabuf-1-d1-ram' },
  },
  GNTTAB_UNMAP_GRANT_REF: { req: { handles: [1, 2, 99] }, res: { status: [0, 0, -4] } },
  GNTTAB_COPY: {
    req: { ops: [{ source: { ref: 8, dom: 1, offset: 0 }, dest: { ref: 300, dom: 2, offset: 128 }, len: 64, flags: 1 }] },
    res: { status: [0] },
  },
  EVTCHN_ALLOC_UNBOUND: { req: { remoteDom: 2 }, res: { port: 1 } },
  EVTCHN_BIND_INTERDOMAIN: { req: { remoteDom: 1, remotePort: 1 }, res: { localPort: 3 } },
  EVTCHN_SEND: { req: { port: 3 }, res: {} },
  EVTCHN_CLOSE: { req: { port: 3 }, res: {} },
  EVTCHN_STATUS: { req: { port: 1 }, res: { state: 'interdomain', remoteDom: 2, remotePort: 3 } },
  EVTCHN_EVENT: { evt: { port: 1, count: 1 } },
  DOMAIN_CREATE: {
    req: { name: 'render', memPages: 65536 },
    res: { domid: 1, token: '9f2c4e1ab07d', ramPath: '/dev/shm/hdmabuf-1-d1-ram', grantTablePath: '/dev/shm/hdmabuf-1-d1-gnttab', maxGrantFrames: 64 },
  },
  DOMAIN_DESTROY: { req: { domid: 2 }, res: {} },
  HV_STATS: {
    req: {},
    res: {
      domains: [{ domid: 1, name: 'render', state: 'running', connected: true, grantsInUse: 0, busyGrants: 0, mappings: 0, ports: 0 }],
      shmFiles: ['/dev/shm/hdmabuf-1-d1-ram', '/dev/shm/hdmabuf-1-d1-gnttab'],
      routedPending: 0,
    },
  },
  DMABUF_PEER_HELLO: {
    req: { formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 1048576 },
    res: { format: 'multilevel', formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 1048576 },
    src: 1, dst: 2,
  },
  DMABUF_EXPORT: {
    req: {
      hid: SAMPLE_HID, nents: 2025, firstOffset: 0, lastLength: 4096, dirRef: 40,
      dirFormat: 'multilevel', access: 'ro', priv: bytes(0x6e, 0x76, 0x31, 0x32),
    },
    res: {},
    src: 1, dst: 2,
  },
  DMABUF_EXPORT_FD: { req: { hid: SAMPLE_HID, fdId: 1 }, res: {}, src: 2, dst: 1 },
  DMABUF_EXPORT_FD_FAILED: { evt: { hid: SAMPLE_HID, fdId: 1, reason: 'ERR_MAP_FAILED' }, src: 2, dst: 1 },
  DMABUF_NOTIFY_UNEXPORT: { req: { hid: SAMPLE_HID }, res: { openFds: 1 }, src: 1, dst: 2 },
  DMABUF_OPS_TO_SOURCE: { req: { hid: SAMPLE_HID, fdId: 1, op: 'begin_cpu_access', dir: 'from_device' }, res: { busy: true }, src: 2, dst: 1 },
  DMABUF_OPS_TO_SOURCE_ASYNC: { evt: { hid: SAMPLE_HID, fdId: 1, op: 'kmap', page: 3 }, src: 2, dst: 1 },
  DMABUF_MOVE_NOTIFY: {
    req: { hid: SAMPLE_HID, generation: 3, nents: 2025, firstOffset: 0, lastLength: 4096, dirRef: 4150, dirFormat: 'multilevel' },
    res: { remapped: false },
    src: 1, dst: 2,
  },
  FENCE_TIMELINE_SHARE: { req: { tl: 3, name: 'render-ring', gref: 41, port: 5 }, res: {}, src: 1, dst: 2 },
  FENCE_TIMELINE_UNSHARE: { req: { tl: 3, reason: 'closed' }, res: { errored: 1 }, src: 1, dst: 2 },
  FENCE_EXPORT: {
    req: { cookie: 17, name: 'frame-17', fences: [{ tl: 3, seqno: 18, slot: 4 }, { tl: 3, seqno: 16, status: -5 }, { status: 1 }] },
    res: {},
    src: 1, dst: 2,
  },
  FENCE_SLOTS_RELEASE: { evt: { tl: 3, slots: [4, 4, 9] }, src: 2, dst: 1 },
  FENCE_TIMELINE_DETACHED: { evt: { tl: 3 }, src: 2, dst: 1 },
  DMABUF_RESV_ADD: {
    req: { hid: SAMPLE_HID, fdId: 1, usage: 'read', fences: [{ tl: 2, seqno: 31, slot: 0 }, { status: 1 }] },
    res: { replaced: 1, appended: 1 },
    src: 2, dst: 1,
  },
  DMABUF_RESV_GET: {
    req: { hid: SAMPLE_HID, fdId: 1, usage: 'write' },
    res: { fences: [{ tl: 3, seqno: 18, slot: 4 }], usages: ['write'], collapsed: false },
    src: 2, dst: 1,
  },
  SIM_FRAME_HANDOFF: { req: { hid: SAMPLE_HID, frame: 42, check: 'stamp' }, res: { ok: true, checkedBytes: 12, checkUs: 3 }, src: 1, dst: 2 },
  SIM_FRAME_COPY: { req: { frame: 42, offset: 4096, bytes: bytes(1, 2, 3, 4) }, res: { received: 4 }, src: 1, dst: 2 },
};

/**
 * Samples of protocol v2 where they differ from v1: HELLO offering v2, the
 * packed grant batches (SPEC.md 4.1, 7.8) and the messages v2 added.
 */
export const samplesV2: Record<string, Sample> = {
  HELLO: {
    req: { minVersion: 1, maxVersion: 2, domid: 1, token: '9f2c4e1ab07d', caps: ['gnttab.v1'] },
    res: { version: 2, domid: 1, caps: ['gnttab.v1'], maxFrameBytes: 16777216, maxBatch: 65536 },
  },
  GNTTAB_MAP_GRANT_REF: {
    req: { dom: 1, flags: 6, refs: Uint32Array.of(8, 9, 70000) },
    res: {
      status: Int16Array.of(0, 0, -3), handle: Uint32Array.of(1, 2, 0xffffffff), frame: Uint32Array.of(256, 257, 0),
      ramPath: '/dev/shm/hdmabuf-1-d1-ram',
    },
  },
  GNTTAB_UNMAP_GRANT_REF: { req: { handles: Uint32Array.of(1, 2, 99) }, res: { status: Int16Array.of(0, 0, -4) } },
  GNTTAB_COPY: {
    req: { ops: [{ source: { ref: 8, dom: 1, offset: 0 }, dest: { ref: 300, dom: 2, offset: 128 }, len: 64, flags: 1 }] },
    res: { status: Int16Array.of(0) },
  },
  // A one-level-deep multilevel directory: top page ref 40 names leaf ref 41, which names data refs 8 and 9.
  GNTTAB_MAP_DIRECTORY: {
    req: { dom: 1, flags: 5, format: 'multilevel', dirRef: 40, nents: 2 },
    res: {
      dirRefs: Uint32Array.of(40, 41), dirStatus: Int16Array.of(0, 0),
      status: Int16Array.of(0, 0), handle: Uint32Array.of(1, 2), frame: Uint32Array.of(256, 257),
      ramPath: '/dev/shm/hdmabuf-1-d1-ram',
    },
  },
  HV_STATS: {
    req: {},
    res: {
      domains: [{ domid: 1, name: 'render', state: 'running', connected: true, grantsInUse: 0, busyGrants: 0, mappings: 0, mappingsOfDead: 0, ports: 0 }],
      shmFiles: ['/dev/shm/hdmabuf-1-d1-ram', '/dev/shm/hdmabuf-1-d1-gnttab'],
      routedPending: 0,
      internalErrors: 0,
      traffic: [{ domid: 1, dataBytes: 4096, routedBytes: 0, grantCopyBytes: 4096, framesIn: 12, framesOut: 11, bytesIn: 1420, bytesOut: 980, largestFrame: 310 }],
    },
  },
  HV_GRANT_STATS: {
    req: {},
    res: { mapEntries: 8100, mapNs: 405000, unmapEntries: 8100, unmapNs: 243000, dirPages: 9, dirNs: 27000, batches: 2, slices: 2 },
  },
};

/** The samples of protocol version `version`. */
export function samplesFor(version: number): Record<string, Sample> {
  return version >= 2 ? { ...samples, ...samplesV2 } : samples;
}
