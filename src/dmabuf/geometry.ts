/**
 * Buffer geometry: a buffer is `nents` pages, its data starting `firstOffset`
 * bytes into the first page and ending `lastLength` bytes into the last
 * (SPEC.md 10.2). With one page both apply to that page.
 *
 *   size = (nents - 1) * 4096 + lastLength - firstOffset
 */
import { ProtocolError } from '../../protocol/errors.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';

/** Page count, offset into the first page and end in the last. */
export interface Geometry {
  readonly nents: number;
  readonly firstOffset: number;
  readonly lastLength: number;
}

/** Bytes of data described by a geometry (not checked; see checkGeometry). */
export function bufferSize(g: Geometry): number {
  return (g.nents - 1) * PAGE_SIZE + g.lastLength - g.firstOffset;
}

/** The geometry of `size` bytes starting `firstOffset` bytes into the first page. */
export function geometryFor(size: number, firstOffset = 0): Geometry {
  if (!Number.isSafeInteger(size) || size < 1) throw new ProtocolError('ERR_BAD_ARGUMENT', `buffer size ${size} must be a positive integer`);
  if (!Number.isInteger(firstOffset) || firstOffset < 0 || firstOffset >= PAGE_SIZE) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `first-page offset ${firstOffset} must be in [0, ${PAGE_SIZE})`);
  }
  const end = firstOffset + size;
  const nents = Math.ceil(end / PAGE_SIZE);
  return { nents, firstOffset, lastLength: end - (nents - 1) * PAGE_SIZE };
}

/** Throws ERR_BAD_ARGUMENT unless the geometry describes at least one byte within its pages. */
export function checkGeometry(g: Geometry, what = 'buffer'): void {
  const ok = Number.isInteger(g.nents) && g.nents >= 1
    && Number.isInteger(g.firstOffset) && g.firstOffset >= 0 && g.firstOffset < PAGE_SIZE
    && Number.isInteger(g.lastLength) && g.lastLength >= 1 && g.lastLength <= PAGE_SIZE
    && bufferSize(g) >= 1;
  if (!ok) {
    throw new ProtocolError('ERR_BAD_ARGUMENT',
      `${what}: nents ${g.nents}, firstOffset ${g.firstOffset}, lastLength ${g.lastLength} describe no data (need nents >= 1, firstOffset < 4096, 1 <= lastLength <= 4096, size >= 1)`);
  }
}
