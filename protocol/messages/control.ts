/** Control operations: the toolstack (domain 0) creates, destroys and inspects domains. */
import { DEFAULT_MAX_GRANT_FRAMES } from '../grant-abi.ts';
import { MAX_DOMID, MAX_MEM_PAGES, MAX_NAME, MAX_PATH } from '../limits.ts';
import { defineRequest } from '../message.ts';
import { opt, req, t, U16, U32 } from '../schema.ts';

const DOMAIN_STATE = t.enum('created', 'running', 'dying', 'dead');

/** Creates a domain: its guest RAM and grant table files, and its token. */
export const DOMAIN_CREATE = defineRequest({
  type: 'DOMAIN_CREATE', route: 'hv', caller: 'control', since: 1, layer: 'control',
  doc: 'Creates shared-memory files for the domain\'s RAM (memPages pages, zero-filled) and grant table, and a random token the domain presents in HELLO.',
  request: {
    name: req(t.str(MAX_NAME), 'Human-readable name.'),
    memPages: req(t.uint(MAX_MEM_PAGES, 1), 'Guest RAM size in pages.'),
    maxGrantFrames: opt(t.uint(0xffff, 1), `Grant-table limit in frames (default ${DEFAULT_MAX_GRANT_FRAMES}).`),
    domid: opt(t.uint(MAX_DOMID, 1), 'Wanted id; the next free one if absent.'),
  },
  response: {
    domid: req(t.uint(MAX_DOMID, 1), 'The new domain.'),
    token: req(t.str(128), 'Secret for HELLO.'),
    ramPath: req(t.str(MAX_PATH), 'Guest RAM file.'),
    grantTablePath: req(t.str(MAX_PATH), 'Grant-table file.'),
    maxGrantFrames: req(U16, 'Grant-table limit in frames.'),
  },
});

/** Destroys a domain as if its process had died. */
export const DOMAIN_DESTROY = defineRequest({
  type: 'DOMAIN_DESTROY', route: 'hv', caller: 'control', since: 1, layer: 'control',
  doc: 'Closes its connection and runs the domain-death cascade (see "Domain death").',
  request: { domid: req(t.uint(MAX_DOMID, 1), 'Domain to destroy.') },
  response: {},
});

const DOMAIN_STATS_V1_FIELDS = {
  domid: req(t.uint(MAX_DOMID), 'Domain id.'),
  name: req(t.str(MAX_NAME), 'Name.'),
  state: req(DOMAIN_STATE, 'Lifecycle state.'),
  connected: req(t.bool(), 'Has a live connection.'),
  grantsInUse: req(U32, 'Entries of its grant table with GTF_permit_access set.'),
  busyGrants: req(U32, 'Entries of its grant table with GTF_reading or GTF_writing set.'),
  mappings: req(U32, 'Live maptrack entries: grants of others that it maps.'),
  ports: req(U32, 'Open event-channel ports.'),
} as const;

/** A domain's entry of HV_STATS in version 1. */
const DOMAIN_STATS_V1 = t.struct(DOMAIN_STATS_V1_FIELDS);

/** A domain's entry of HV_STATS (v2): version 1's, and mappingsOfDead (before ports, the order of the vectors). */
const DOMAIN_STATS = t.struct({
  domid: DOMAIN_STATS_V1_FIELDS.domid,
  name: DOMAIN_STATS_V1_FIELDS.name,
  state: DOMAIN_STATS_V1_FIELDS.state,
  connected: DOMAIN_STATS_V1_FIELDS.connected,
  grantsInUse: DOMAIN_STATS_V1_FIELDS.grantsInUse,
  busyGrants: DOMAIN_STATS_V1_FIELDS.busyGrants,
  mappings: DOMAIN_STATS_V1_FIELDS.mappings,
  mappingsOfDead: req(U32, 'Those of its mappings whose granter is dying or dead: kept by design until it unmaps them (SPEC 11.4).'),
  ports: DOMAIN_STATS_V1_FIELDS.ports,
});

/** Byte counts that may exceed 2^32 in a long run: integers exact in a double. */
const COUNT = t.uint(Number.MAX_SAFE_INTEGER);

const DOMAIN_TRAFFIC = t.struct({
  domid: req(t.uint(MAX_DOMID), 'Domain id (0: the control domain).'),
  dataBytes: req(COUNT, 'Bytes the backend moved for it: routedBytes + grantCopyBytes.'),
  routedBytes: req(COUNT, 'Data bytes of the routed messages it sent: ECHO payloads (request and reply), SIM_FRAME_COPY bytes.'),
  grantCopyBytes: req(COUNT, 'Sum of `len` of its GNTTAB_COPY ops that succeeded (the bytes the backend copied).'),
  framesIn: req(COUNT, 'Frames the backend received from it.'),
  framesOut: req(COUNT, 'Frames the backend sent to it.'),
  bytesIn: req(COUNT, 'Encoded bytes of the frames received from it.'),
  bytesOut: req(COUNT, 'Encoded bytes of the frames sent to it.'),
  largestFrame: req(U32, 'Largest frame either way, in bytes.'),
});

/** Reports every domain's resources, for leak checks. */
export const HV_STATS = defineRequest({
  type: 'HV_STATS', route: 'hv', caller: 'control', since: 1, layer: 'control',
  doc: 'A snapshot of the backend: every domain not yet fully removed, and the shared-memory files it still owns.',
  request: {},
  response: {
    domains: req(t.array(DOMAIN_STATS_V1, MAX_DOMID), 'Per-domain counts.'),
    shmFiles: req(t.array(t.str(MAX_PATH), 2 * MAX_DOMID), 'Shared-memory files that exist.'),
    routedPending: req(U32, 'Routed requests awaiting their reply.'),
  },
});

/** HV_STATS in v2: version 1's answer, and the backend's error and traffic counters and each domain's mappings of dead granters. */
export const HV_STATS_V2 = defineRequest({
  ...HV_STATS,
  since: 2,
  doc: `${HV_STATS.doc} v2 adds mappingsOfDead to each domain entry, internalErrors and traffic; the fields of v1 keep their meaning (a v1 session gets v1's answer, without them).`,
  response: {
    domains: req(t.array(DOMAIN_STATS, MAX_DOMID), 'Per-domain counts.'),
    shmFiles: HV_STATS.response.shmFiles,
    routedPending: HV_STATS.response.routedPending,
    internalErrors: req(U32, 'Requests answered ERR_INTERNAL since the backend started: a handler failed unexpectedly or its reply failed its own declaration (SPEC 6.1 rule 9). Each is logged.'),
    traffic: req(t.array(DOMAIN_TRAFFIC, MAX_DOMID + 1), 'What the backend moved for every domain that ever had a session (removed domains included), by domain id.'),
  },
});
