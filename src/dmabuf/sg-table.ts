/**
 * A scatter-gather table: the pages of a buffer as some domain's RAM frames,
 * with the buffer's geometry. What `map` on an attachment returns (Linux's
 * struct sg_table, with entries merged over runs of adjacent frames).
 */
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { bufferSize, checkGeometry, type Geometry } from './geometry.ts';

/** One entry: bytes [offset, offset + length) of the run of pages starting at frame. */
export interface SgEntry {
  readonly frame: number;
  readonly offset: number;
  readonly length: number;
}

/** A read-only scatter-gather table. */
export class SgTable implements Geometry {
  /** Domain whose RAM holds the frames. */
  readonly dom: number;
  readonly firstOffset: number;
  readonly lastLength: number;
  private readonly framesValue: Uint32Array;

  constructor(dom: number, frames: ArrayLike<number>, firstOffset: number, lastLength: number) {
    this.dom = dom;
    this.framesValue = Uint32Array.from(frames as ArrayLike<number>);
    this.firstOffset = firstOffset;
    this.lastLength = lastLength;
    checkGeometry(this, 'sg table');
  }

  /** Pages. */
  get nents(): number {
    return this.framesValue.length;
  }

  /** Bytes of data. */
  get size(): number {
    return bufferSize(this);
  }

  /** The frames, one per page, in buffer order (a copy: the table cannot be changed through it). */
  frames(): Uint32Array {
    return this.framesValue.slice();
  }

  /** Entries, one per run of adjacent frames, with the geometry applied. */
  entries(): SgEntry[] {
    const f = this.framesValue;
    const out: SgEntry[] = [];
    let i = 0;
    while (i < f.length) {
      let j = i + 1;
      while (j < f.length && f[j] === f[i]! + (j - i)) j++;
      const start = i === 0 ? this.firstOffset : 0;
      const end = j === f.length ? (j - i - 1) * PAGE_SIZE + this.lastLength : (j - i) * PAGE_SIZE;
      out.push({ frame: f[i]!, offset: start, length: end - start });
      i = j;
    }
    return out;
  }
}
