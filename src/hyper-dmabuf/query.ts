/**
 * QUERY (the original's IOCTL_HYPER_DMABUF_QUERY): every item, each
 * answering what its name says. Differences from the original:
 * DELAYED_UNEXPORTED is not inverted, and the importer answers it too
 * (always false: a delay is the exporter's business, the importer only
 * learns when the unexport takes effect); PRIV_INFO returns a copy.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import { ExportState } from '../../protocol/machines/export.ts';
import type { ExportedBuffer } from './export-entry.ts';
import { formatHid, type Hid } from './hid.ts';
import type { ImportedBuffer } from './import-entry.ts';

/** Query items, with the original's names in comments. */
export const QUERY_ITEMS = [
  'type', // HYPER_DMABUF_QUERY_TYPE (0x10)
  'exporter', // _EXPORTER (0x11)
  'importer', // _IMPORTER (0x12)
  'size', // _SIZE (0x13)
  'busy', // _BUSY (0x14)
  'unexported', // _UNEXPORTED (0x15)
  'delayedUnexported', // _DELAYED_UNEXPORTED (0x16)
  'privSize', // _PRIV_INFO_SIZE (0x17)
  'priv', // _PRIV_INFO (0x18)
] as const;
/** A query item. */
export type QueryItem = (typeof QUERY_ITEMS)[number];

/** Every item of one buffer. */
export interface QueryResult {
  /** 'exported' on the exporting domain, 'imported' on the importer. */
  type: 'exported' | 'imported';
  /** The exporting domain. */
  exporter: number;
  /** The importing domain. */
  importer: number;
  /** Bytes of data (not rounded to pages). */
  size: number;
  /** Exporter: the importer holds at least one fd. Importer: this domain holds at least one fd. */
  busy: boolean;
  /** The buffer was unexported (exporter: the unexport took effect; importer: NOTIFY_UNEXPORT, refusal or exporter death). */
  unexported: boolean;
  /** An unexport is scheduled and has not yet taken effect. */
  delayedUnexported: boolean;
  privSize: number;
  /** A copy of the private data. */
  priv: Uint8Array;
  /** The per-buffer state (SPEC.md 11). */
  state: string;
  /** Moves of the buffer announced so far (SPEC.md 11.8); 0 before the first. */
  generation: number;
  /** Exporter: stable | moving. Importer: the mapping's state (unmapped | mapping | mapped | invalidated). */
  moveState: string;
}

/** The exporter's answer. */
export function queryExport(e: ExportedBuffer, self: number): QueryResult {
  return {
    type: 'exported', exporter: self, importer: e.target, size: e.buf.size,
    busy: e.fds.size > 0,
    unexported: !e.importable,
    delayedUnexported: e.state === ExportState.UnexportScheduled,
    privSize: e.priv.byteLength, priv: Uint8Array.from(e.priv), state: e.state,
    generation: e.generation, moveState: e.moveState,
  };
}

/** The importer's answer. */
export function queryImport(i: ImportedBuffer, self: number): QueryResult {
  return {
    type: 'imported', exporter: i.exporter, importer: self, size: i.size,
    busy: i.fds.size > 0,
    unexported: !i.valid,
    delayedUnexported: false,
    privSize: i.priv.byteLength, priv: Uint8Array.from(i.priv), state: i.state,
    generation: i.generation, moveState: i.mapState,
  };
}

/** ERR_UNKNOWN_BUFFER for a query of an id this domain does not hold. */
export function unknownForQuery(hid: Hid, self: number): ProtocolError {
  return new ProtocolError('ERR_UNKNOWN_BUFFER', `dom${self} holds no ${hid.dom === self ? 'export' : 'import'} ${formatHid(hid)}`);
}
