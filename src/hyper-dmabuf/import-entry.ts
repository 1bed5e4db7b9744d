/**
 * One import: a buffer another domain exported to this one, and its two
 * state machines, declared as transition tables in
 * protocol/machines/import.ts and drawn in SPEC.md 11.2 (its life) and
 * 11.8.4 (its mapping, which moves drive).
 *
 * An invalid import refuses new fds, but fds already open keep working and
 * their mapping stays readable until they are released.
 */
import { BufferImportMachine, BufferImportState, ImportMapMachine, type ImportMapState } from '../../protocol/machines/import.ts';
import type { AccessMode, DirFormat } from '../../protocol/messages/dmabuf.ts';
import type { DmaBuf } from '../dmabuf/dma-buf.ts';
import { bufferSize, type Geometry } from '../dmabuf/geometry.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import type { Hid } from './hid.ts';
import { Serial } from './serial.ts';

/** Why an import became invalid. */
export type InvalidReason = 'unexported' | 'exporter-died' | 'refused';

/** How the mapping was made, for statistics and the one-batch proofs. */
export interface MapInfo {
  dirPages: number;
  /** The importer's own batched map round trips to read the directory (v1); 0 in v2, where the backend reads it. */
  dirRounds: number;
  /** GNTTAB_MAP_GRANT_REF requests for the data pages (v1: 1 below the backend's batch limit), or the one GNTTAB_MAP_DIRECTORY (v2). */
  dataMapRequests: number;
}

/** The importer's record of one import. */
export class ImportedBuffer {
  readonly hid: Hid;
  readonly key: string;
  readonly exporter: number;
  readonly geometry: Geometry;
  readonly size: number;
  /** Directory of the current location (a move replaces it). */
  dirRef: number;
  format: DirFormat;
  readonly access: AccessMode;
  /** Moves announced by the exporter so far (MOVE_NOTIFY generation); 0 until the first. */
  generation = 0;
  /** The mapping's state (SPEC.md 11.8.4); changes only through its transition table. */
  readonly map = ImportMapMachine.start();
  /** The generation `mapping` maps. */
  mappedGeneration = 0;
  /** Serialises MOVE_NOTIFY handling of this import. */
  readonly moves = new Serial();
  priv: Uint8Array;
  /** State (SPEC.md 11.2); changes only through its transition table. */
  readonly lifecycle = BufferImportMachine.start();
  invalidReason: InvalidReason | undefined;
  /** The exporter died: remote-sync messages are no longer sent. */
  exporterDead = false;
  /** The data pages, mapped while any fd is open. */
  mapping: ForeignMapping | undefined;
  /** A mapping in progress (concurrent first fds share it). */
  mapping$: Promise<ForeignMapping> | undefined;
  mapInfo: MapInfo | undefined;
  /** Open fds (local dma-bufs) by fdId. */
  readonly fds = new Map<number, DmaBuf>();
  /** EXPORT_FD requests in flight. */
  pendingFds = 0;
  private nextFdId = 0;

  constructor(init: { hid: Hid; key: string; exporter: number; geometry: Geometry; dirRef: number; format: DirFormat; access: AccessMode; priv: Uint8Array }) {
    this.hid = init.hid;
    this.key = init.key;
    this.exporter = init.exporter;
    this.geometry = init.geometry;
    this.size = bufferSize(init.geometry);
    this.dirRef = init.dirRef;
    this.format = init.format;
    this.access = init.access;
    this.priv = init.priv;
  }

  /** The import's state (SPEC.md 11.2). */
  get state(): BufferImportState {
    return this.lifecycle.state;
  }

  /** The mapping's state (SPEC.md 11.8.4). */
  get mapState(): ImportMapState {
    return this.map.state;
  }

  /** True while new fds may be asked for. */
  get valid(): boolean {
    return this.lifecycle.is(BufferImportState.Registered, BufferImportState.Mapped);
  }

  /** A fresh fdId, unique among this import's open and pending fds. */
  allocFdId(): number {
    do {
      this.nextFdId = this.nextFdId >= 0xffffffff ? 1 : this.nextFdId + 1;
    } while (this.fds.has(this.nextFdId));
    return this.nextFdId;
  }
}
