/**
 * The exporter side of reservation objects across VMs: DMABUF_RESV_ADD and
 * DMABUF_RESV_GET from importers (SPEC.md 11A.8).
 *
 * Every request is checked completely before anything changes: the buffer
 * is a live export of this domain (counter and key), made to the sender, not
 * being revoked, and the fd it names is open; for an add, every reference is
 * checked by the fence layer (FenceHost.importRefs checks all before it
 * imports any) and the sender's bound is checked. Then the add is one
 * synchronous step, as under the dma_resv lock.
 */
import { ProtocolError } from '../../../protocol/errors.ts';
import type { RequestOf, ResponseOf } from '../../../protocol/message.ts';
import { DMABUF_RESV_ADD, DMABUF_RESV_GET, RESV_MAX_REFS } from '../../../protocol/messages/dmabuf-sync.ts';
import type { DmaFence } from '../../fence/dma-fence.ts';
import { FenceRemoteError } from '../../guest/errors.ts';
import { FenceHost } from '../../fence-remote/fence-host.ts';
import type { HyperDmabuf } from '../driver.ts';
import { ExportState } from '../../../protocol/machines/export.ts';
import type { ExportedBuffer } from '../export-entry.ts';
import { copyHid, formatHid, type Hid } from '../hid.ts';
import { AggregateFence } from './aggregate-fence.ts';
import type { ResvRegistry } from './resv-registry.ts';
import { usageOf, usageToWire } from './usage.ts';

// The fence layer's local errors that have a wire code of the same name (ERR_STATE has none).
function toWire(e: unknown): unknown {
  if (!(e instanceof FenceRemoteError)) return e;
  const code = e.code === 'ERR_STATE' ? 'ERR_INTERNAL' : e.code;
  return new ProtocolError(code, `referencing the pending fences: ${e.message}`);
}

/** Counters of the exporter side. */
export interface ResvServerStats {
  adds: number;
  gets: number;
  /** GET answers that collapsed more than 256 pending fences into one. */
  collapsed: number;
  /** Refused requests, by error code. */
  refused: Record<string, number>;
}

/** Handles importers' requests on this domain's exports. */
export class ResvServer {
  readonly #driver: HyperDmabuf;
  readonly #fences: FenceHost;
  readonly #registry: ResvRegistry;
  readonly #stats: ResvServerStats = { adds: 0, gets: 0, collapsed: 0, refused: {} };

  constructor(driver: HyperDmabuf, fences: FenceHost, registry: ResvRegistry) {
    this.#driver = driver;
    this.#fences = fences;
    this.#registry = registry;
  }

  /** Registers the handlers on the driver's connection; returns a function that removes them. */
  register(): () => void {
    const hv = this.#driver.host.hv;
    const offs = [
      hv.handlePeerRequest(DMABUF_RESV_ADD, (body, src) => this.#counted(() => this.handleAdd(body, src))),
      hv.handlePeerRequest(DMABUF_RESV_GET, (body, src) => this.#counted(() => this.handleGet(body, src))),
    ];
    return () => { for (const off of offs) off(); };
  }

  /** Counters. */
  stats(): ResvServerStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  /** DMABUF_RESV_ADD from `src`: every reference imported, then each fence added with the request's usage. */
  handleAdd(body: RequestOf<typeof DMABUF_RESV_ADD>, src: number): ResponseOf<typeof DMABUF_RESV_ADD> {
    const entry = this.#lookup(body.hid, body.fdId, src);
    if (body.fences.length === 0) throw new ProtocolError('ERR_BAD_ARGUMENT', 'no fences', 'body.fences');
    const usage = usageOf(body.usage);
    const resv = this.#registry.for(entry.buf);
    resv.checkPeerRoom(src, body.fences.length);
    // Checks every reference before importing any: a refusal holds no slot count.
    const leaves = this.#fences.importRefs(src, body.fences);
    this.#stats.adds++;
    return resv.add(leaves, usage, src);
  }

  /** DMABUF_RESV_GET from `src`: the pending fences at `usage` or stronger, referenced for the sender. */
  async handleGet(body: RequestOf<typeof DMABUF_RESV_GET>, src: number): Promise<ResponseOf<typeof DMABUF_RESV_GET>> {
    const entry = this.#lookup(body.hid, body.fdId, src);
    const usage = usageOf(body.usage);
    const pending = this.#registry.get(entry.buf)?.pending(usage) ?? [];
    this.#stats.gets++;
    if (pending.length === 0) return { fences: [], usages: [], collapsed: false };
    let what: DmaFence;
    let usages: ResponseOf<typeof DMABUF_RESV_GET>['usages'];
    const collapsed = pending.length > RESV_MAX_REFS;
    if (collapsed) {
      // One message references at most 256 fences; one fence for "all of them" keeps the answer exact.
      what = new AggregateFence(pending.map((p) => p.fence));
      usages = [usageToWire(usage)];
      this.#stats.collapsed++;
    } else {
      what = FenceHost.combine(pending.map((p) => p.fence));
      usages = pending.map((p) => usageToWire(p.usage));
    }
    // Shares the timelines involved (bridging foreign fences) and holds a slot count per pending leaf.
    let prepared;
    try {
      prepared = await this.#fences.prepareExport(src, what);
    } catch (e) {
      throw toWire(e);
    }
    return { fences: prepared.refs, usages, collapsed };
  }

  // The export a request names, checked: ours, made to the sender, not being revoked, fd open.
  #lookup(hid: Hid, fdId: number, src: number): ExportedBuffer {
    const entry = this.#driver.exporter.find(hid);
    if (!entry) throw new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${this.#driver.domid} has no export ${formatHid(copyHid(hid))} (unknown counter or wrong key)`, 'body.hid');
    if (entry.target !== src) throw new ProtocolError('ERR_NOT_IMPORTER', `${formatHid(entry.hid)} was exported to dom${entry.target}, not dom${src}`, 'body.hid');
    if (entry.state === ExportState.Revoking || entry.state === ExportState.Freed) {
      throw new ProtocolError('ERR_UNEXPORTED', `${formatHid(entry.hid)} is ${entry.state}`, 'body.hid');
    }
    if (!entry.fds.has(fdId)) throw new ProtocolError('ERR_BAD_ARGUMENT', `fd ${fdId} is not open on ${formatHid(entry.hid)}`, 'body.fdId');
    return entry;
  }

  async #counted<T>(fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      const k = typeof code === 'string' ? code : 'ERR_INTERNAL';
      this.#stats.refused[k] = (this.#stats.refused[k] ?? 0) + 1;
      throw e;
    }
  }
}
