/**
 * A buffer's CPU view as 32-bit words, kept across moves: a move detaches
 * the view it made stale and bumps the buffer's generation, so the holder
 * fetches a new one (vmap) and lets go of the old (vunmap) whenever the
 * generation changed. Used between begin_cpu_access and end_cpu_access
 * only, when no move can run.
 */
import type { DmaBuf } from '../src/dmabuf/dma-buf.ts';

/** A vmap of one buffer, refreshed after moves. */
export class CpuView {
  readonly buf: DmaBuf;
  #view: Uint8Array | undefined;
  #words: Uint32Array | undefined;
  #generation = -1;
  /** Views fetched again after a move. */
  refreshes = 0;

  constructor(buf: DmaBuf) {
    this.buf = buf;
  }

  /** The current words (whole 32-bit words of the buffer's data), fetched again if the buffer moved. */
  async words(): Promise<Uint32Array> {
    if (this.#words && this.#generation === this.buf.generation && this.#view?.byteLength !== 0) return this.#words;
    const old = this.#view;
    const generation = this.buf.generation;
    const view = await this.buf.vmap();
    if (old) {
      await this.buf.vunmap(old);
      this.refreshes++;
    }
    this.#view = view;
    this.#generation = generation;
    if (view.byteOffset % 4 !== 0) throw new RangeError(`${this.buf.name}: the view does not start on a 32-bit boundary`);
    this.#words = new Uint32Array(view.buffer, view.byteOffset, view.byteLength >>> 2);
    return this.#words;
  }

  /** Lets go of the view. Idempotent. */
  async release(): Promise<void> {
    const v = this.#view;
    this.#view = undefined;
    this.#words = undefined;
    if (v && this.buf.state === 'live') await this.buf.vunmap(v);
  }
}
