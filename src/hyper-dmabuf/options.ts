/**
 * Driver configuration and its defaults. Every limit here is also checked
 * against the protocol's wire bounds, so a configuration can never promise
 * a peer more than the wire can carry.
 */
import { ProtocolError } from '../../protocol/errors.ts';
import {
  DIR_FORMATS, DMABUF_DEFAULT_MAX_PRIV, DMABUF_MAX_PAGES, DMABUF_MAX_PRIV_WIRE, type DirFormat,
} from '../../protocol/messages/dmabuf.ts';
import { DEFAULT_MAX_LIVE_IDS } from './hid.ts';

/** How an importer sends remote-sync operations. */
export type SyncMode = 'ack' | 'async';

/**
 * When an importer maps the new pages after a move (SPEC.md 11.8): 'lazy'
 * at the next access that needs them (Linux: mappings are re-created after
 * move_notify returns), 'eager' before it answers the MOVE_NOTIFY.
 */
export type RemapMode = 'lazy' | 'eager';

/** Remap modes, for argument checks. */
export const REMAP_MODES: readonly RemapMode[] = ['lazy', 'eager'];

/** Driver options. */
export interface HyperDmabufOptions {
  /** Largest private data exported or accepted (default 4096; at most 65,536). Over it: ERR_PRIV_TOO_LARGE, never truncation. */
  maxPriv?: number;
  /** Largest buffer in pages exported or accepted (default 1024 x 1024). */
  maxPages?: number;
  /** Most live exports (default 1,048,576). */
  maxExports?: number;
  /** Most live imports (default 1,048,576). */
  maxImports?: number;
  /** Directory formats this driver reads and writes, in order of preference (default multilevel, linked). */
  formats?: DirFormat[];
  /** Depth of the NEW_IMPORT event queue (default 64). */
  eventQueueDepth?: number;
  /** Default remote-sync mode of new fds (default 'ack'). */
  syncMode?: SyncMode;
  /** When to map the new pages after a move (default 'lazy'). */
  remapOnMove?: RemapMode;
}

/** Options with every default filled in. */
export type ResolvedOptions = Required<HyperDmabufOptions>;

/** Default depth of the NEW_IMPORT queue (the original: 32). */
export const DEFAULT_EVENT_QUEUE_DEPTH = 64;

function bounded(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new ProtocolError('ERR_BAD_ARGUMENT', `option ${name} = ${value} is outside [${min}, ${max}]`);
  return value;
}

/** Fills defaults and checks bounds; throws ERR_BAD_ARGUMENT. */
export function resolveOptions(options: HyperDmabufOptions = {}): ResolvedOptions {
  const formats = options.formats ?? [...DIR_FORMATS];
  if (formats.length === 0 || new Set(formats).size !== formats.length || formats.some((f) => !DIR_FORMATS.includes(f))) {
    throw new ProtocolError('ERR_BAD_ARGUMENT', `option formats must list distinct formats among ${DIR_FORMATS.join(', ')}`);
  }
  return {
    maxPriv: bounded('maxPriv', options.maxPriv ?? DMABUF_DEFAULT_MAX_PRIV, 0, DMABUF_MAX_PRIV_WIRE),
    maxPages: bounded('maxPages', options.maxPages ?? DMABUF_MAX_PAGES, 1, DMABUF_MAX_PAGES),
    maxExports: bounded('maxExports', options.maxExports ?? DEFAULT_MAX_LIVE_IDS, 1, 0xfffffffe),
    maxImports: bounded('maxImports', options.maxImports ?? DEFAULT_MAX_LIVE_IDS, 1, 0xfffffffe),
    formats,
    eventQueueDepth: bounded('eventQueueDepth', options.eventQueueDepth ?? DEFAULT_EVENT_QUEUE_DEPTH, 1, 1 << 20),
    syncMode: options.syncMode ?? 'ack',
    remapOnMove: remapMode(options.remapOnMove),
  };
}

function remapMode(mode: RemapMode | undefined): RemapMode {
  if (mode === undefined) return 'lazy';
  if (!REMAP_MODES.includes(mode)) throw new ProtocolError('ERR_BAD_ARGUMENT', `option remapOnMove must be one of ${REMAP_MODES.join(', ')}`);
  return mode;
}
