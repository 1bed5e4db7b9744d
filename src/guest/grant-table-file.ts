/**
 * The guest's mapping of its own grant-table file, read-write.
 *
 * The backend may create the file at its maximum size or grow it on
 * GNTTAB_SETUP_TABLE; either way this maps what exists, and after a growth
 * remaps if the file became larger than the mapping (the addon refuses to map
 * past end of file, where an access would be SIGBUS).
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { ENTRIES_PER_FRAME, GRANT_ENTRY_BYTES } from '../../protocol/grant-abi.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import { nativeMem } from '../memory/native.ts';
import { GrantTableView } from '../memory/grant-table-view.ts';
import { GuestError } from './errors.ts';

/** Memory that holds a grant table; the guest grant table asks it to cover more frames after a growth. */
export interface GrantTableMemory {
  /** A view covering at least the frames the backend has set up. */
  readonly view: GrantTableView;
  /** Called after the backend grew the table to nrFrames frames: make `view` cover them. */
  grow(nrFrames: number): void;
  /** Releases the memory. Idempotent. */
  close(): void;
}

const FRAME_BYTES = ENTRIES_PER_FRAME * GRANT_ENTRY_BYTES;

/** A grant-table file mapped read-write. */
export class GrantTableFile implements GrantTableMemory {
  readonly path: string;
  private fd: number;
  private buffer: ArrayBuffer;
  private viewValue: GrantTableView;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
    this.buffer = new ArrayBuffer(0);
    this.viewValue = new GrantTableView(this.buffer);
    this.remap();
  }

  /** Opens and maps the file. */
  static open(path: string): GrantTableFile {
    if (FRAME_BYTES !== PAGE_SIZE) throw new Error('a grant-table frame must be one page');
    return new GrantTableFile(path, openSync(path, 'r+'));
  }

  /** Frames currently mapped. */
  get mappedFrames(): number {
    return this.buffer.byteLength / FRAME_BYTES;
  }

  get view(): GrantTableView {
    return this.viewValue;
  }

  grow(nrFrames: number): void {
    if (this.fd < 0) throw new GuestError('ERR_STATE', `grant table ${this.path} is closed`);
    if (this.mappedFrames >= nrFrames) return;
    this.remap();
    if (this.mappedFrames < nrFrames) {
      throw new GuestError('ERR_STATE', `grant table ${this.path} has ${this.mappedFrames} frames after growth to ${nrFrames}`);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    nativeMem.unmap(this.buffer);
    closeSync(this.fd);
    this.fd = -1;
    this.buffer = new ArrayBuffer(0);
    this.viewValue = new GrantTableView(this.buffer);
  }

  /** Maps the whole file as it is now, then drops the old mapping. */
  private remap(): void {
    const size = fstatSync(this.fd).size;
    const frames = Math.floor(size / FRAME_BYTES);
    if (frames === 0 || frames === this.mappedFrames) return;
    const next = nativeMem.mapRange(this.fd, 0, frames, true);
    const old = this.buffer;
    this.buffer = next;
    this.viewValue = new GrantTableView(next);
    if (old.byteLength > 0) nativeMem.unmap(old);
  }
}
