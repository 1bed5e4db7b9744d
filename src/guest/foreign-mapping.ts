/**
 * A batch of another domain's granted pages, mapped into this process as one
 * contiguous ArrayBuffer.
 *
 * Unmapping is deterministic and ordered: the pages are munmapped and the
 * ArrayBuffer detached first (so nothing in this process can touch them any
 * more), and only then are the handles released to the backend, which then
 * clears the granter's busy bits. Doing it the other way round would let the
 * granter end access and reuse a page that this process can still read.
 */
import { ForeignMappingMachine, type ForeignMappingState } from '../../protocol/machines/import.ts';
import { nativeMem } from '../memory/native.ts';

/** Releases the handles of a mapping at the backend (GNTTAB_UNMAP_GRANT_REF); the mapper provides it. */
export type HandleReleaser = (mapping: ForeignMapping) => Promise<void>;

/** What the mapper learned when it mapped the batch. */
export interface ForeignMappingInit {
  dom: number;
  refs: Uint32Array;
  readonly: boolean;
  handles: Uint32Array;
  frames: Uint32Array;
  ramPath: string;
  view: ArrayBuffer;
  /** Backend round trips the map took. */
  mapRequests: number;
}

/** A live (or former) mapping of granted pages. */
export class ForeignMapping {
  /** Granting domain. */
  readonly dom: number;
  /** Grant refs, in view order (empty when the backend read them from a directory: GNTTAB_MAP_DIRECTORY, v2). */
  readonly refs: Uint32Array;
  readonly readonly: boolean;
  /** Mapping handles, one per ref. */
  readonly handles: Uint32Array;
  /** Page index in the granter's RAM file per ref. */
  readonly frames: Uint32Array;
  /** The granter's RAM file. */
  readonly ramPath: string;
  /** Backend round trips the map took (1 unless the batch exceeded maxBatch). */
  readonly mapRequests: number;
  private viewValue: ArrayBuffer;
  /** Lifecycle (a declared machine: protocol/machines/import.ts); changes only through its transition table. */
  private readonly lifecycle = ForeignMappingMachine.start();
  private unmapping: Promise<void> | undefined;
  private readonly releaser: HandleReleaser;

  constructor(init: ForeignMappingInit, releaser: HandleReleaser) {
    this.dom = init.dom;
    this.refs = init.refs;
    this.readonly = init.readonly;
    this.handles = init.handles;
    this.frames = init.frames;
    this.ramPath = init.ramPath;
    this.mapRequests = init.mapRequests;
    this.viewValue = init.view;
    this.releaser = releaser;
  }

  /** The pages, contiguous, in ref order; byteLength 0 once unmapped. Read-only mappings fault on write. */
  get view(): ArrayBuffer {
    return this.viewValue;
  }

  /** Number of pages. */
  get pages(): number {
    return this.handles.length;
  }

  get state(): ForeignMappingState {
    return this.lifecycle.state;
  }

  /**
   * Unmaps: detaches the view first, then releases every handle in one round
   * trip. Idempotent: later calls return the first call's promise.
   */
  unmap(): Promise<void> {
    if (!this.unmapping) {
      nativeMem.unmap(this.viewValue);
      this.lifecycle.apply('unmap');
      this.unmapping = this.releaser(this).finally(() => { this.lifecycle.apply('handles-released'); });
    }
    return this.unmapping;
  }
}
