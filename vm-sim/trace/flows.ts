/**
 * Joins the wire records of all processes into messages: the hops of one
 * frame (sender out, receiver in) share a flow key, and a frame the backend
 * forwards continues the flow of the frame it forwards (WireRecord.via).
 */
import type { WireRecord } from './records.ts';

/** One message's records, in travel order: out, in, (forwarded out, in). */
export interface Flow {
  /** Key of the first hop. */
  readonly key: string;
  readonly type: string;
  readonly records: WireRecord[];
}

/** Groups records by message. Records of a flow are ordered by hop, then out before in (never by clock). */
export function groupFlows(records: readonly WireRecord[]): Flow[] {
  const parent = new Map<string, string>();
  for (const r of records) if (r.via !== undefined && r.dir === 'out') parent.set(r.flow, r.via);
  const rootOf = (key: string): { root: string; depth: number } => {
    let depth = 0;
    let k = key;
    // Bounded: a cycle would be a bug, never an infinite loop.
    while (parent.has(k) && depth < 8) { k = parent.get(k)!; depth++; }
    return { root: k, depth };
  };
  const groups = new Map<string, Array<{ rec: WireRecord; depth: number }>>();
  for (const rec of records) {
    const { root, depth } = rootOf(rec.flow);
    let g = groups.get(root);
    if (!g) groups.set(root, (g = []));
    g.push({ rec, depth });
  }
  const flows: Flow[] = [];
  for (const [key, g] of groups) {
    g.sort((a, b) => a.depth - b.depth || (a.rec.dir === b.rec.dir ? a.rec.ts - b.rec.ts : a.rec.dir === 'out' ? -1 : 1));
    flows.push({ key, type: g[0]!.rec.type, records: g.map((x) => x.rec) });
  }
  return flows;
}
