// @ts-check
/**
 * An outside domain: an importer written from protocol/SPEC.md alone, with
 * the `ws` and `msgpackr` packages and nothing of this project, to show that
 * the SPEC suffices to take part in a scenario run (README, "Outside
 * domains"; SPEC Appendix B). outside-importer.json runs it beside the
 * project's VMs:
 *
 *   hdmabuf run vm-sim/scenarios/examples/outside-importer.json
 *
 * What it implements:
 *   - the session (SPEC 5): HELLO offering version 1 only, no capability;
 *   - the importer side of the hyper_dmabuf layer (SPEC 10, 11.2, 11.4):
 *     DMABUF_PEER_HELLO, DMABUF_EXPORT, DMABUF_NOTIFY_UNEXPORT,
 *     DMABUF_MOVE_NOTIFY (lazy remap), DOMAIN_DIED of an exporter; both
 *     directory formats (10.3), read once into private memory and checked;
 *   - the commands of Appendix B.3 that an importer obeys: import, read,
 *     release, shutdown (export, unexport and waitReleased are refused: it
 *     exports nothing; the fence commands with ERR_UNSUPPORTED_LAYER);
 *   - every other routed request gets ERR_UNSUPPORTED_LAYER (SPEC 6,
 *     "Optional layers"), a request about a buffer it would have exported
 *     ERR_UNKNOWN_BUFFER.
 *
 * Mapping: GNTTAB_MAP_GRANT_REF answers the frame of each page in the
 * exporter's RAM file (SPEC 7.4, "The caller then maps frame[i] of ramPath
 * itself"). Node has no mmap without a native addon, so this domain reads
 * the pages with pread at those frames while it holds the mapping handles,
 * and unmaps (GNTTAB_UNMAP_GRANT_REF) before it sends the `release`
 * operation (11.2 rule 5). The bytes never travel in a message.
 *
 * The frames it receives come from the backend, which checks every frame it
 * routes (SPEC 6.1); this domain decodes them with msgpackr without records.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';

const PAGE = 4096;
/** GNTMAP_host_map (0x02) | GNTMAP_readonly (0x04): SPEC 7.4, "Map flags". */
const MAP_RO = 0x06;
const MAP_RW = 0x02;
const GNTST_OKAY = 0;
/** Limits stated in DMABUF_PEER_HELLO (SPEC 10.4, 10.5). */
const MAX_PRIV = 4096;
const MAX_PAGES = 65536;
/** Directory formats this domain reads, in its order of preference (SPEC 10.3). */
const FORMATS = ['multilevel', 'linked'];
const REQUEST_TIMEOUT_MS = 30_000;

/** @param {string} name */
function env(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`outside-importer: ${name} is not set (SPEC Appendix B.1)\n`);
    process.exit(2);
  }
  return v;
}
const url = env('HDMABUF_URL');
const domid = Number(env('HDMABUF_DOMID'));
const token = env('HDMABUF_TOKEN');

// Plain MessagePack (SPEC 3.3): no records, no extension types.
const packr = new Packr({ useRecords: false, moreTypes: false, structuredClone: false, bundleStrings: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** An error with a SPEC section 13 code. */
class CodedError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) { super(message); this.code = code; }
}

// ---------------------------------------------------------------- connection (SPEC 3-6)

const ws = new WebSocket(url, { perMessageDeflate: false });
ws.binaryType = 'nodebuffer';
// A socket error is followed by 'close', which ends this domain (below).
ws.on('error', (e) => process.stderr.write(`outside-importer: ${String(e)}\n`));
let version = 1;
let nextId = 1;
/** @type {Map<number, {type: string, dst: number | undefined, resolve: (b: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout}>} */
const pending = new Map();

/** @param {Record<string, unknown>} envelope */
function send(envelope) {
  ws.send(packr.pack(envelope));
}

/**
 * A request to the backend (no dst) or to a domain (routed, dst); resolves with the res body.
 * @param {string} type @param {Record<string, unknown>} body @param {number} [dst]
 * @returns {Promise<any>}
 */
function request(type, body, dst) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { pending.delete(id); reject(new CodedError('ERR_TIMEOUT', `${type}: no reply within ${REQUEST_TIMEOUT_MS} ms`)); }, REQUEST_TIMEOUT_MS);
    pending.set(id, { type, dst, resolve, reject, timer });
    // Envelope fields before body, so that a refusal can name the id (SPEC 4, "Readable id").
    send({ v: version, kind: 'req', type, id, ...(dst !== undefined ? { dst } : {}), body });
  });
}

/** @param {Record<string, any>} m */
function onReply(m) {
  const p = pending.get(m.id);
  // SPEC 6: accept a reply only from where the request went (the backend, or the routed dst; an err without src is the backend's).
  if (!p || (p.dst === undefined ? m.src !== undefined : m.src !== p.dst && !(m.kind === 'err' && m.src === undefined))) return;
  pending.delete(m.id);
  clearTimeout(p.timer);
  if (m.kind === 'res') p.resolve(m.body);
  else p.reject(new CodedError(m.body.code, `${p.type}: ${m.body.message}`));
}

/** @type {Record<string, (body: any, src: number) => Promise<Record<string, unknown>> | Record<string, unknown>>} */
const handlers = {};

/** @param {Record<string, any>} m */
async function onRequest(m) {
  const h = handlers[m.type];
  /** @type {Record<string, unknown>} */
  let reply;
  try {
    if (typeof m.src !== 'number') throw new CodedError('ERR_NOT_PERMITTED', `${m.type} is not a request this domain serves`);
    // SPEC 6, "Optional layers": a declared routed request of a layer this domain lacks.
    if (!h) throw new CodedError('ERR_UNSUPPORTED_LAYER', `this domain does not implement the layer of ${m.type}`);
    reply = { v: version, kind: 'res', type: m.type, id: m.id, dst: m.src, body: await h(m.body, m.src) };
  } catch (e) {
    const err = /** @type {CodedError} */ (e);
    reply = { v: version, kind: 'err', type: m.type, id: m.id, ...(m.src !== undefined ? { dst: m.src } : {}), body: { code: err.code ?? 'ERR_INTERNAL', message: String(err.message).slice(0, 1024) } };
  }
  if (ws.readyState === WebSocket.OPEN) send(reply);
}

/** @param {Record<string, any>} m */
function onEvent(m) {
  if (m.type === 'DOMAIN_DIED' && m.src === undefined) exporterDied(m.body.domid);
  else if (m.type === 'PROTOCOL_ERROR') process.stderr.write(`outside-importer: PROTOCOL_ERROR ${JSON.stringify(m.body)}\n`);
  // Routed events of a layer it lacks (DMABUF_OPS_TO_SOURCE_ASYNC, FENCE_*) are dropped (SPEC 6).
}

ws.on('message', (data) => {
  /** @type {Record<string, any>} */
  let m;
  try {
    m = unpackr.unpack(/** @type {Buffer} */ (data));
  } catch (e) {
    process.stderr.write(`outside-importer: undecodable frame: ${String(e)}\n`);
    return;
  }
  if (m.kind === 'res' || m.kind === 'err') onReply(m);
  else if (m.kind === 'req') void onRequest(m);
  else if (m.kind === 'evt') onEvent(m);
});
ws.on('close', () => {
  for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new CodedError('ERR_CLOSED', `${p.type}: the connection closed`)); }
  pending.clear();
});

// ---------------------------------------------------------------- imports (SPEC 10, 11.2)

/**
 * @typedef {{dom: number, cnt: number, key: Uint8Array}} Hid
 * @typedef {{hid: Hid, text: string, exporter: number, nents: number, firstOffset: number, lastLength: number,
 *   dirRef: number, dirFormat: string, access: string, priv: Uint8Array, generation: number,
 *   invalid: boolean, exporterDead: boolean, fdId: number | undefined,
 *   mapping: {handles: number[], frames: number[], ramPath: string} | undefined}} Import
 */

/** Imports by the text form of their id (SPEC 10.1: dom:cnt:keyhex). @type {Map<string, Import>} */
const imports = new Map();
/** NEW_IMPORT events not yet taken by an `import` command (SPEC 11.6), by text id. @type {Map<string, Uint8Array>} */
const events = new Map();
/** @type {Set<() => void>} */
const eventWaiters = new Set();
let nextFdId = 1;

/** @param {Hid} hid */
const textOf = (hid) => `${hid.dom}:${hid.cnt}:${Buffer.from(hid.key).toString('hex')}`;
/** @param {number} nents @param {number} firstOffset @param {number} lastLength */
const sizeOf = (nents, firstOffset, lastLength) => (nents - 1) * PAGE + lastLength - firstOffset;

/** @param {Hid} hid @param {number} src */
function checkIdDomain(hid, src) {
  if (hid.dom !== src) throw new CodedError('ERR_ID_DOMAIN_MISMATCH', `the id's dom ${hid.dom} is not the sender ${src} (SPEC 10.1)`);
}

/** @param {string} text @param {Uint8Array} priv */
function queueEvent(text, priv) {
  events.set(text, Uint8Array.from(priv));
  for (const w of [...eventWaiters]) w();
}

handlers.DMABUF_PEER_HELLO = (body) => {
  /** @type {string[]} */
  const offered = body.formats;
  const format = FORMATS.find((f) => offered.includes(f));
  if (!format) throw new CodedError('ERR_NO_COMMON_FORMAT', `none of ${JSON.stringify(offered)} is read here`);
  return { format, formats: FORMATS.filter((f) => offered.includes(f)), maxPriv: MAX_PRIV, maxPages: MAX_PAGES, layers: ['dmabuf'] };
};

// SPEC 11.2 rule 1: checked completely, registered, event queued, then answered.
handlers.DMABUF_EXPORT = (b, src) => {
  checkIdDomain(b.hid, src);
  const text = textOf(b.hid);
  const known = imports.get(text);
  if (b.nents === 0) {
    if (!known) throw new CodedError('ERR_UNKNOWN_BUFFER', `no import ${text}`);
    if (known.invalid) throw new CodedError('ERR_UNEXPORTED', `${text} was unexported`);
    if (b.priv.length > MAX_PRIV) throw new CodedError('ERR_PRIV_TOO_LARGE', `${b.priv.length} bytes of private data (at most ${MAX_PRIV})`);
    known.priv = Uint8Array.from(b.priv);
    queueEvent(text, known.priv);
    return {};
  }
  if (b.priv.length > MAX_PRIV) throw new CodedError('ERR_PRIV_TOO_LARGE', `${b.priv.length} bytes of private data (at most ${MAX_PRIV})`);
  if (b.nents > MAX_PAGES) throw new CodedError('ERR_BUFFER_TOO_LARGE', `${b.nents} pages (at most ${MAX_PAGES})`);
  if (!FORMATS.includes(b.dirFormat)) throw new CodedError('ERR_BAD_DIRECTORY', `format ${b.dirFormat} is not read here`);
  if (b.lastLength < 1 || sizeOf(b.nents, b.firstOffset, b.lastLength) < 1) throw new CodedError('ERR_BAD_ARGUMENT', 'inconsistent geometry (SPEC 10.2)');
  if (b.dirRef === 0) throw new CodedError('ERR_BAD_ARGUMENT', 'dirRef 0');
  if (known) throw new CodedError('ERR_BAD_ARGUMENT', `${text} is already registered`);
  imports.set(text, {
    hid: { dom: b.hid.dom, cnt: b.hid.cnt, key: Uint8Array.from(b.hid.key) }, text, exporter: src,
    nents: b.nents, firstOffset: b.firstOffset, lastLength: b.lastLength, dirRef: b.dirRef, dirFormat: b.dirFormat,
    access: b.access, priv: Uint8Array.from(b.priv), generation: 0, invalid: false, exporterDead: false, fdId: undefined, mapping: undefined,
  });
  queueEvent(text, b.priv);
  return {};
};

handlers.DMABUF_NOTIFY_UNEXPORT = (b, src) => {
  checkIdDomain(b.hid, src);
  const imp = imports.get(textOf(b.hid));
  if (!imp) throw new CodedError('ERR_UNKNOWN_BUFFER', `no import ${textOf(b.hid)}`);
  imp.invalid = true;
  events.delete(imp.text);
  if (imp.fdId === undefined) imports.delete(imp.text);
  return { openFds: imp.fdId === undefined ? 0 : 1 };
};

// SPEC 11.8: adopt the new location, unmap the old pages, answer; the next read maps the new ones.
handlers.DMABUF_MOVE_NOTIFY = async (b, src) => {
  checkIdDomain(b.hid, src);
  const imp = imports.get(textOf(b.hid));
  if (!imp) throw new CodedError('ERR_UNKNOWN_BUFFER', `no import ${textOf(b.hid)}`);
  if (b.generation <= imp.generation) throw new CodedError('ERR_BAD_ARGUMENT', `generation ${b.generation} is not newer than ${imp.generation}`);
  if (b.nents !== imp.nents || b.firstOffset !== imp.firstOffset || b.lastLength !== imp.lastLength) throw new CodedError('ERR_BAD_ARGUMENT', 'geometry differs from the EXPORT\'s');
  if (!FORMATS.includes(b.dirFormat)) throw new CodedError('ERR_BAD_DIRECTORY', `format ${b.dirFormat} is not read here`);
  Object.assign(imp, { dirRef: b.dirRef, dirFormat: b.dirFormat, generation: b.generation });
  if (imp.mapping) {
    const old = imp.mapping;
    imp.mapping = undefined;
    await unmap(old.handles);
  }
  return { remapped: false };
};

// This domain exports nothing: a request about a buffer of its own names no live export (SPEC 11.1 rule 3).
handlers.DMABUF_EXPORT_FD = (b) => { throw new CodedError('ERR_UNKNOWN_BUFFER', `no export ${textOf(b.hid)}`); };
handlers.DMABUF_OPS_TO_SOURCE = (b) => { throw new CodedError('ERR_UNKNOWN_BUFFER', `no export ${textOf(b.hid)}`); };

/** SPEC 11.4: every import from the dead exporter becomes invalid; those with no fd are forgotten. @param {number} dead */
function exporterDied(dead) {
  for (const imp of [...imports.values()]) {
    if (imp.exporter !== dead) continue;
    imp.invalid = true;
    imp.exporterDead = true;
    events.delete(imp.text);
    if (imp.fdId === undefined) imports.delete(imp.text);
  }
}

/** @param {number[]} handles */
async function unmap(handles) {
  if (handles.length === 0) return;
  const r = await request('GNTTAB_UNMAP_GRANT_REF', { handles });
  const bad = r.status.findIndex((/** @type {number} */ s) => s !== GNTST_OKAY);
  if (bad >= 0) throw new CodedError('ERR_INTERNAL', `GNTTAB_UNMAP_GRANT_REF: handle ${handles[bad]} got status ${r.status[bad]}`);
}

/**
 * Maps `refs` of `dom` in one batch (SPEC 7.4); on any failed entry unmaps the others and throws.
 * @param {number} dom @param {number[]} refs @param {number} flags @param {string} code
 * @returns {Promise<{handles: number[], frames: number[], ramPath: string}>}
 */
async function mapBatch(dom, refs, flags, code) {
  const r = await request('GNTTAB_MAP_GRANT_REF', { dom, flags, refs });
  const handles = r.handle.filter((/** @type {number} */ _h, /** @type {number} */ i) => r.status[i] === GNTST_OKAY);
  const bad = r.status.findIndex((/** @type {number} */ s) => s !== GNTST_OKAY);
  if (bad >= 0) {
    await unmap(handles);
    throw new CodedError(code, `GNTTAB_MAP_GRANT_REF of ref ${refs[bad]} of domain ${dom}: status ${r.status[bad]}`);
  }
  return { handles, frames: r.frame, ramPath: r.ramPath };
}

/** Reads pages of a RAM file at the given frames (pread). @param {string} ramPath @param {number[]} frames */
function readFrames(ramPath, frames) {
  const out = Buffer.alloc(frames.length * PAGE);
  const fd = openSync(ramPath, 'r');
  try {
    frames.forEach((f, i) => {
      const n = readSync(fd, out, i * PAGE, PAGE, f * PAGE);
      if (n !== PAGE) throw new CodedError('ERR_MAP_FAILED', `short read of frame ${f} of ${ramPath}`);
    });
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Directory pages, mapped read-only in one batch, copied into private memory, unmapped (SPEC 10.3 rules 5, 6).
 * @param {number} dom @param {number[]} refs @returns {Promise<Uint32Array[]>}
 */
async function readDirPages(dom, refs) {
  const m = await mapBatch(dom, refs, MAP_RO, 'ERR_BAD_DIRECTORY');
  try {
    const bytes = readFrames(m.ramPath, m.frames);
    return refs.map((_r, i) => {
      const page = new Uint32Array(1024);
      for (let w = 0; w < 1024; w++) page[w] = bytes.readUInt32LE(i * PAGE + 4 * w);
      return page;
    });
  } finally {
    await unmap(m.handles);
  }
}

/** @param {string} what */
const badDir = (what) => new CodedError('ERR_BAD_DIRECTORY', what);

/** The nents data references of an import, by its directory (SPEC 10.3). @param {Import} imp @returns {Promise<number[]>} */
async function dataRefs(imp) {
  const seen = new Set([imp.dirRef]);
  /** @param {number} ref */
  const once = (ref) => { if (seen.has(ref)) throw badDir(`directory page ref ${ref} met twice (a loop)`); seen.add(ref); };
  if (imp.dirFormat === 'multilevel') {
    const levels = Math.ceil(imp.nents / 1024);
    const [top] = await readDirPages(imp.exporter, [imp.dirRef]);
    if (top === undefined) throw badDir('no top page');
    for (let w = levels; w < 1024; w++) if (top[w] !== 0) throw badDir(`top page: unused word ${w} is not 0`);
    const second = Array.from(top.subarray(0, levels));
    if (second.includes(0)) throw badDir('top page: a level-2 reference is 0');
    second.forEach(once);
    const pages = await readDirPages(imp.exporter, second);
    return pages.flatMap((p, k) => {
      const count = k < levels - 1 ? 1024 : imp.nents - 1024 * (levels - 1);
      for (let w = 0; w < 1024; w++) if ((w < count) !== (p[w] !== 0)) throw badDir(`level-2 page ${k}: word ${w} ${w < count ? 'is 0' : 'is not 0'}`);
      return Array.from(p.subarray(0, count));
    });
  }
  const count = Math.ceil(imp.nents / 1023);
  /** @type {number[]} */
  const refs = [];
  let ref = imp.dirRef;
  for (let d = 0; d < count; d++) {
    const [p] = await readDirPages(imp.exporter, [ref]);
    if (p === undefined) throw badDir(`no page ${d}`);
    const n = d < count - 1 ? 1023 : imp.nents - 1023 * (count - 1);
    for (let w = 1; w < 1024; w++) if ((w <= n) !== (p[w] !== 0)) throw badDir(`linked page ${d}: word ${w} ${w <= n ? 'is 0' : 'is not 0'}`);
    refs.push(...p.subarray(1, 1 + n));
    const next = p[0] ?? 0;
    if ((d < count - 1) !== (next !== 0)) throw badDir(`linked page ${d}: link ${next} disagrees with nents ${imp.nents}`);
    if (next !== 0) once(next);
    ref = next;
  }
  return refs;
}

/** Maps the data pages of an import in one batch (SPEC 11.2 rule 3). @param {Import} imp */
async function mapData(imp) {
  const refs = await dataRefs(imp);
  imp.mapping = await mapBatch(imp.exporter, refs, imp.access === 'ro' ? MAP_RO : MAP_RW, 'ERR_MAP_FAILED');
}

/** The buffer's bytes through the mapping (10.2: size bytes from firstOffset). @param {Import} imp */
async function readImport(imp) {
  if (!imp.mapping) await mapData(imp); // after a move: map the new pages (lazy remap, 11.8)
  const m = /** @type {NonNullable<Import['mapping']>} */ (imp.mapping);
  return readFrames(m.ramPath, m.frames).subarray(imp.firstOffset, imp.firstOffset + sizeOf(imp.nents, imp.firstOffset, imp.lastLength));
}

/** @param {string} text @param {number} timeoutMs @returns {Promise<Uint8Array>} */
function takeEvent(text, timeoutMs) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const priv = events.get(text);
      if (priv === undefined) return false;
      events.delete(text);
      done();
      resolve(priv);
      return true;
    };
    const timer = setTimeout(() => { done(); reject(new CodedError('ERR_TIMEOUT', `no NEW_IMPORT of ${text} within ${timeoutMs} ms`)); }, timeoutMs);
    const done = () => { clearTimeout(timer); eventWaiters.delete(check); };
    if (!check()) eventWaiters.add(check);
  });
}

/** @param {Uint8Array} b */
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** @param {string} text */
function openImport(text) {
  const imp = imports.get(text);
  if (!imp || imp.fdId === undefined) throw new CodedError('ERR_BAD_ARGUMENT', `no fd open on ${text}`);
  return imp;
}

/** Closes the fd: unmap first, then the `release` operation unless the exporter is dead (SPEC 11.2 rule 5, 11.4). @param {Import} imp */
async function release(imp) {
  const fdId = /** @type {number} */ (imp.fdId);
  const m = imp.mapping;
  imp.mapping = undefined;
  if (m) await unmap(m.handles);
  imp.fdId = undefined;
  if (imp.invalid) imports.delete(imp.text);
  if (!imp.exporterDead) await request('DMABUF_OPS_TO_SOURCE', { hid: imp.hid, fdId, op: 'release' }, imp.exporter);
}

// ---------------------------------------------------------------- commands (Appendix B.3)

/** @type {Record<string, (args: any) => Promise<Record<string, unknown>>>} */
const commands = {
  async import({ hid, timeoutMs }) {
    const priv = await takeEvent(hid, timeoutMs);
    const imp = imports.get(hid);
    if (!imp || imp.invalid) throw new CodedError('ERR_UNEXPORTED', `${hid} was unexported`);
    if (imp.fdId !== undefined) throw new CodedError('ERR_BAD_ARGUMENT', `an fd is already open on ${hid}`);
    const fdId = nextFdId++;
    // SPEC 11.2 rule 2: no fd unless the exporter answered res.
    await request('DMABUF_EXPORT_FD', { hid: imp.hid, fdId }, imp.exporter);
    imp.fdId = fdId;
    try {
      const bytes = await readImport(imp);
      return { sha256: sha256(bytes), size: bytes.length, priv: Buffer.from(priv).toString('hex') };
    } catch (e) {
      // SPEC 11.2 rule 4: the exporter counted the fd; undo exactly that one.
      imp.fdId = undefined;
      if (imp.mapping) { await unmap(imp.mapping.handles).catch((u) => process.stderr.write(`outside-importer: unmap after a failed open of ${imp.text} failed: ${String(u)}\n`)); imp.mapping = undefined; }
      send({ v: version, kind: 'evt', type: 'DMABUF_EXPORT_FD_FAILED', id: 0, dst: imp.exporter, body: { hid: imp.hid, fdId, reason: String(/** @type {Error} */ (e).message).slice(0, 256) } });
      throw e;
    }
  },
  async read({ hid }) {
    return { sha256: sha256(await readImport(openImport(hid))) };
  },
  async release({ hid }) {
    await release(openImport(hid));
    return {};
  },
  async shutdown() {
    return {};
  },
};
for (const cmd of ['export', 'unexport', 'waitReleased']) commands[cmd] = async () => { throw new CodedError('ERR_BAD_ARGUMENT', `${cmd}: this domain only imports`); };
for (const cmd of ['fenceWait', 'fenceExport', 'fenceSignal']) commands[cmd] = async () => { throw new CodedError('ERR_UNSUPPORTED_LAYER', `${cmd}: this domain has no fence layer`); };

let stopping = false;

/** Releases every open fd, closes the connection, exits 0 (Appendix B.3). */
async function shutdown() {
  stopping = true;
  for (const imp of [...imports.values()]) {
    if (imp.fdId !== undefined) await release(imp).catch((e) => process.stderr.write(`outside-importer: release of ${imp.text} at shutdown failed: ${String(e)}\n`));
  }
  if (ws.readyState === WebSocket.OPEN) {
    await new Promise((resolve) => { ws.once('close', resolve); ws.close(1000); });
  }
  process.exit(0);
}

/** @param {Record<string, unknown>} reply */
const answer = (reply) => process.stdout.write(`${JSON.stringify(reply)}\n`);

// ---------------------------------------------------------------- start

await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('close', () => reject(new Error(`cannot connect to ${url}`))); });
const hello = await request('HELLO', { minVersion: 1, maxVersion: 1, domid, token, caps: [] });
version = hello.version;

let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  chain = chain.then(async () => {
    /** @type {{id: number, cmd: string, args: Record<string, unknown>}} */
    let req;
    try {
      req = JSON.parse(line);
    } catch {
      answer({ id: -1, ok: false, error: { code: 'ERR_BAD_ARGUMENT', message: `not JSON: ${line.slice(0, 80)}` } });
      return;
    }
    const run = commands[req.cmd];
    try {
      if (!run) throw new CodedError('ERR_BAD_ARGUMENT', `unknown command ${req.cmd}`);
      answer({ id: req.id, ok: true, result: await run(req.args ?? {}) });
      if (req.cmd === 'shutdown') await shutdown();
    } catch (e) {
      const err = /** @type {CodedError} */ (e);
      answer({ id: req.id, ok: false, error: { code: err.code ?? 'ERR_INTERNAL', message: String(err.message) } });
    }
  });
});
// stdin closed (the launcher is gone): leave as on shutdown.
lines.on('close', () => { chain = chain.then(shutdown); });
// The backend closed the connection (it stopped or died): nothing more can be done.
ws.on('close', () => { if (!stopping) process.exit(1); });
answer({ ready: true, domid: hello.domid });
