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
    res: { status: [0, 0, -3], handle: [0, 1, 0xffffffff], frame: [256, 257, 0], ramPath: '/dev/shm/hdmabuf-1-d1-ram' },
  },
  GNTTAB_UNMAP_GRANT_REF: { req: { handles: [0, 1, 99] }, res: { status: [0, 0, -4] } },
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
};
