/**
 * What the backend moved, counted by the backend itself for every domain
 * that ever had a session (a domain killed or removed keeps its counts), so
 * that a run's "bytes copied" does not depend on the VMs still being alive
 * to report it (SPEC.md 9.4, HV_STATS `traffic`):
 *
 *   - dataBytes: bytes really moved on the domain's behalf by data-carrying
 *     operations: the data fields of the routed messages it sent (ECHO
 *     payloads, request and reply; SIM_FRAME_COPY bytes: the backend
 *     forwards those bytes), and the `len` of every GNTTAB_COPY op of its
 *     batches that succeeded (the backend copies those bytes between the two
 *     pages; the request itself carries none);
 *   - routedBytes, grantCopyBytes: the two parts of dataBytes;
 *   - framesIn/Out, bytesIn/Out, largestFrame: the protocol traffic on its
 *     connection(s), as the backend received and sent it (encoded frames).
 */
import type { Envelope } from '../../protocol/envelope.ts';

/** The routed messages that carry buffer data, and their data field (the same in request and reply). */
const DATA_FIELDS: Readonly<Record<string, string>> = { ECHO: 'payload', SIM_FRAME_COPY: 'bytes' };

/** Counters of one domain. */
export interface DomainTraffic {
  domid: number;
  dataBytes: number;
  routedBytes: number;
  grantCopyBytes: number;
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  largestFrame: number;
}

/** The backend's traffic counters, by domain id. */
export class TrafficCounters {
  private readonly byDomain = new Map<number, DomainTraffic>();

  private of(domid: number): DomainTraffic {
    let t = this.byDomain.get(domid);
    if (!t) {
      t = { domid, dataBytes: 0, routedBytes: 0, grantCopyBytes: 0, framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, largestFrame: 0 };
      this.byDomain.set(domid, t);
    }
    return t;
  }

  /** One frame on a session of `domid` (the session's RpcConnection observer). */
  frame(domid: number, direction: 'in' | 'out', env: Envelope, bytes: number): void {
    const t = this.of(domid);
    if (direction === 'in') {
      t.framesIn++;
      t.bytesIn += bytes;
      // The data a domain sends in routed messages is bytes the backend moves for it.
      const field = env.kind === 'req' || env.kind === 'res' ? DATA_FIELDS[env.type] : undefined;
      const data = field ? (env.body as Record<string, unknown> | undefined)?.[field] : undefined;
      if (data instanceof Uint8Array) {
        t.routedBytes += data.byteLength;
        t.dataBytes += data.byteLength;
      }
    } else {
      t.framesOut++;
      t.bytesOut += bytes;
    }
    if (bytes > t.largestFrame) t.largestFrame = bytes;
  }

  /** `len` bytes copied by one successful GNTTAB_COPY op of `domid`. */
  grantCopy(domid: number, len: number): void {
    const t = this.of(domid);
    t.grantCopyBytes += len;
    t.dataBytes += len;
  }

  /** Every domain's counters, by domain id. */
  all(): DomainTraffic[] {
    return [...this.byDomain.values()].sort((a, b) => a.domid - b.domid).map((t) => ({ ...t }));
  }
}
