/**
 * One import: a buffer another domain exported to this one, and its state
 * machine (SPEC.md 11.2):
 *
 *   EXPORT --> registered --first fd (EXPORT_FD ok, pages mapped)--> mapped
 *                 ^                                                   |
 *                 +---------------- last fd released (unmapped) ------+
 *
 *   registered | mapped --NOTIFY_UNEXPORT / exporter died / refusal--> invalid
 *   invalid --no fd left (mapping, if any, unmapped)--> released (forgotten)
 *
 * An invalid import refuses new fds, but fds already open keep working and
 * their mapping stays readable until they are released.
 *
 * The mapping has its own state, which moves drive (SPEC.md 11.8):
 *
 *   unmapped --first fd--> mapping --> mapped (generation g)
 *   mapped --MOVE_NOTIFY g+1: views detached, pages unmapped--> invalidated
 *   invalidated --eager: before answering; lazy: at the next access--> mapping --> mapped (g+1)
 *   mapped | invalidated --last fd released--> unmapped
 */
import type { AccessMode, DirFormat } from '../../protocol/messages/dmabuf.ts';
import type { DmaBuf } from '../dmabuf/dma-buf.ts';
import { bufferSize, type Geometry } from '../dmabuf/geometry.ts';
import type { ForeignMapping } from '../guest/foreign-mapping.ts';
import type { Hid } from './hid.ts';
import { Serial } from './serial.ts';

/** Importer-side states of a buffer. */
export enum ImportState {
  /** EXPORT received and registered; nothing mapped. */
  Registered = 'registered',
  /** At least one fd open; the data pages are mapped. */
  Mapped = 'mapped',
  /** Unexported, refused by the exporter, or the exporter died: no new fd; open fds keep working. */
  Invalid = 'invalid',
  /** Forgotten: no fd left, nothing mapped. */
  Released = 'released',
}

/** State of an import's mapping of the exporter's pages. */
export enum ImportMapState {
  /** Nothing mapped (no fd, or mapping failed). */
  Unmapped = 'unmapped',
  /** Directory being read and data pages mapped. */
  Mapping = 'mapping',
  /** The data pages of the current generation are mapped. */
  Mapped = 'mapped',
  /** A move made the old mapping go (views detached, pages unmapped); the new pages are not mapped yet. */
  Invalidated = 'invalidated',
}

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
  mapState = ImportMapState.Unmapped;
  /** The generation `mapping` maps. */
  mappedGeneration = 0;
  /** Serialises MOVE_NOTIFY handling of this import. */
  readonly moves = new Serial();
  priv: Uint8Array;
  state = ImportState.Registered;
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

  /** True while new fds may be asked for. */
  get valid(): boolean {
    return this.state === ImportState.Registered || this.state === ImportState.Mapped;
  }

  /** A fresh fdId, unique among this import's open and pending fds. */
  allocFdId(): number {
    do {
      this.nextFdId = this.nextFdId >= 0xffffffff ? 1 : this.nextFdId + 1;
    } while (this.fds.has(this.nextFdId));
    return this.nextFdId;
  }
}
