/**
 * The few fields of a message body that say which object it is about, as a
 * short label for diagrams and trace slices: the buffer (hid as dom:cnt),
 * the frame, how many grant refs or handles a batch carries, pages, the fd,
 * the sync op, the port, the timeline and seqno of fences. Everything else
 * (keys, private data, paths) is left out on purpose: a label must stay
 * short, and numbers are what the diagram folds over (collapse.ts).
 */

/** Fields shown as `<label> <value>`, in this order. */
const SCALARS: ReadonlyArray<readonly [field: string, label: string]> = [
  ['frame', 'frame'], ['fdId', 'fd'], ['nents', 'pages'], ['nrFrames', 'frames'], ['port', 'port'],
  ['remotePort', 'port'], ['tl', 'tl'], ['seqno', 'seqno'], ['cookie', 'cookie'], ['openFds', 'fds open'],
];
/** Array fields shown as their length: `<n> <label>`. */
const COUNTS: ReadonlyArray<readonly [field: string, label: string]> = [
  ['refs', 'refs'], ['handles', 'handles'], ['ops', 'ops'], ['fences', 'fences'], ['entries', 'entries'],
];

/** A short label of a body's key fields ('' when it has none). Never throws. */
export function keyFields(body: unknown): string {
  if (body === null || typeof body !== 'object') return '';
  const b = body as Record<string, unknown>;
  const out: string[] = [];
  const hid = b.hid as { dom?: unknown; cnt?: unknown } | undefined;
  if (hid && typeof hid === 'object' && typeof hid.dom === 'number' && typeof hid.cnt === 'number') out.push(`buf ${hid.dom}:${hid.cnt}`);
  if (typeof b.op === 'string') out.push(b.op);
  if (typeof b.domid === 'number') out.push(`dom ${b.domid}`);
  for (const [field, label] of SCALARS) {
    const v = b[field];
    if (typeof v === 'number' || typeof v === 'bigint') out.push(`${label} ${v}`);
  }
  for (const [field, label] of COUNTS) {
    const n = lengthOf(b[field]);
    if (n !== undefined) out.push(`${n} ${label}`);
  }
  return out.join(', ');
}

function lengthOf(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length;
  if (ArrayBuffer.isView(v) && 'length' in v) return (v as unknown as { length: number }).length;
  return undefined;
}
