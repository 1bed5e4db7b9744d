/** The importer's machines of one imported buffer (SPEC.md 11.2 and 11.8.4). */
import { defineMachine, type ValueOf } from '../state-machine.ts';

/** Importer-side states of a buffer. */
export const BufferImportState = {
  /** EXPORT received and registered; nothing mapped. */
  Registered: 'registered',
  /** At least one fd open; the data pages are mapped. */
  Mapped: 'mapped',
  /** Unexported, refused by the exporter, or the exporter died: no new fd; open fds keep working. */
  Invalid: 'invalid',
  /** Forgotten: no fd left, nothing mapped. */
  Released: 'released',
} as const;
/** Importer-side states of a buffer. */
export type BufferImportState = ValueOf<typeof BufferImportState>;

/** Events of an imported buffer. */
export type BufferImportEvent = 'first-fd' | 'last-fd-released' | 'invalidated' | 'forgotten';

const { Registered, Mapped, Invalid, Released } = BufferImportState;

/** An imported buffer, at the importer (SPEC.md 11.2). */
export const BufferImportMachine = defineMachine<BufferImportState, BufferImportEvent>({
  id: 'buffer_import',
  title: 'An imported buffer, at the importer',
  section: '11.2',
  initial: Registered,
  states: {
    [Registered]: 'DMABUF_EXPORT received, validated and registered; nothing mapped; a new fd is asked of the exporter',
    [Mapped]: 'at least one fd open; the data pages are mapped; a new fd is asked of the exporter',
    [Invalid]: 'unexported, refused by the exporter, or the exporter died; open fds keep working; a new fd gets ERR_UNEXPORTED at once',
    [Released]: 'forgotten: no fd open, nothing mapped; its id gets ERR_UNKNOWN_BUFFER',
  },
  events: {
    'first-fd': 'exportFd: directory read, data pages mapped, and EXPORT_FD answered ok (v2: the first fd does not wait for that answer, rule 2; later fds share the mapping)',
    'last-fd-released': 'the last fd released (or a v2 early fd revoked): pages unmapped first, then the release operation sent (none for a revoked fd)',
    invalidated: 'DMABUF_NOTIFY_UNEXPORT, an EXPORT_FD refused with ERR_UNEXPORTED or ERR_UNKNOWN_BUFFER, or DOMAIN_DIED(exporter)',
    forgotten: 'no fd open or pending and nothing mapped (at once when none was open)',
  },
  transitions: [
    { from: [Registered], event: 'first-fd', to: Mapped },
    { from: [Mapped], event: 'last-fd-released', to: Registered },
    { from: [Registered, Mapped], event: 'invalidated', to: Invalid },
    { from: [Invalid], event: 'forgotten', to: Released },
  ],
});

/** State of an import's mapping of the exporter's pages. */
export const ImportMapState = {
  /** Nothing mapped (no fd, or mapping failed). */
  Unmapped: 'unmapped',
  /** Directory being read and data pages mapped. */
  Mapping: 'mapping',
  /** The data pages of the current generation are mapped. */
  Mapped: 'mapped',
  /** A move made the old mapping go (views detached, pages unmapped); the new pages are not mapped yet. */
  Invalidated: 'invalidated',
} as const;
/** State of an import's mapping. */
export type ImportMapState = ValueOf<typeof ImportMapState>;

/** Events of an import's mapping. */
export type ImportMapEvent = 'map' | 'mapped' | 'map-failed' | 'remap-failed' | 'moved' | 'unmapped';

/** An import's mapping, at the importer (SPEC.md 11.8.4), orthogonal to its state of 11.2. */
export const ImportMapMachine = defineMachine<ImportMapState, ImportMapEvent>({
  id: 'import_map',
  title: 'An import\'s mapping, at the importer',
  section: '11.8.4',
  initial: ImportMapState.Unmapped,
  states: {
    unmapped: 'nothing mapped (no fd, or the first mapping failed)',
    mapping: 'the directory is being read and the data pages mapped',
    mapped: 'the data pages of the current generation g are mapped',
    invalidated: 'a move made the old mapping go (views detached, old pages unmapped); the new pages are not mapped yet',
  },
  events: {
    map: 'the first fd, an fd\'s access after a move (lazy), or MOVE_NOTIFY with fds open (eager): the current directory is read and its pages mapped in one batch',
    mapped: 'the pages of the current generation are mapped (a mapping of an older location is unmapped at once and the current one mapped instead)',
    'map-failed': 'the mapping failed (no fd is created)',
    'remap-failed': 'mapping again after a move failed: the next access tries again',
    moved: 'MOVE_NOTIFY g+1: the new directory adopted, views detached, the old pages unmapped, before the answer',
    unmapped: 'the last fd released: the pages are unmapped',
  },
  transitions: [
    { from: ['unmapped', 'invalidated'], event: 'map', to: 'mapping' },
    // From invalidated the pages are mapped again through 'map' (the importer always enters mapping first).
    { from: ['mapping'], event: 'mapped', to: 'mapped' },
    { from: ['mapping'], event: 'map-failed', to: 'unmapped' },
    { from: ['mapping'], event: 'remap-failed', to: 'invalidated' },
    // Only a current mapping is invalidated: one being made when a move arrives is checked against the
    // generation when it completes, unmapped at once if stale, and the new location mapped (still mapping).
    { from: ['mapped'], event: 'moved', to: 'invalidated' },
    { from: ['mapped', 'invalidated'], event: 'unmapped', to: 'unmapped' },
  ],
});

/** State of one batch of another domain's pages mapped into this process. */
export const ForeignMappingState = {
  /** The pages are mapped; the view reads them. */
  Mapped: 'mapped',
  /** The view is detached and the pages unmapped here; the handles are being released at the backend. */
  Unmapping: 'unmapping',
  /** Every handle released: the granter's busy bits are clear. */
  Unmapped: 'unmapped',
} as const;
/** State of one foreign mapping. */
export type ForeignMappingState = ValueOf<typeof ForeignMappingState>;

/** One batch of another domain's pages mapped into this process (SPEC.md 7.4, 7.5): the view goes before the handles. */
export const ForeignMappingMachine = defineMachine<ForeignMappingState, 'unmap' | 'handles-released'>({
  id: 'foreign_mapping',
  title: 'A foreign mapping: one batch of another domain\'s pages mapped into a domain',
  section: '7.5',
  initial: ForeignMappingState.Mapped,
  states: {
    mapped: 'the pages are mapped; the view reads them',
    unmapping: 'the view is detached and the pages unmapped in this domain; GNTTAB_UNMAP_GRANT_REF is releasing the handles',
    unmapped: 'every handle released: the granter\'s busy bits are clear, so it may end access',
  },
  events: {
    unmap: 'unmap: the view detached first, so nothing here can touch the pages any more',
    'handles-released': 'GNTTAB_UNMAP_GRANT_REF answered (or the connection is gone)',
  },
  transitions: [
    { from: ['mapped'], event: 'unmap', to: 'unmapping' },
    { from: ['unmapping'], event: 'handles-released', to: 'unmapped' },
  ],
});
