/** The benchmark's figures, shared by its tests. */

/** Every figure, in the order the report gives them. */
export const BENCH_IDS = [
  'first-share-1080p-vs-routed-copy',
  'first-share-4k-vs-memcpy', 'first-share-4k-vs-routed-copy', 'first-share-4k-vs-ws-copy',
  'map-4k', 'map-4k-vs-import-floor', 'v1-vs-newest-first-share-4k', 'v1-vs-newest-map-4k',
  'first-share-4k-scattered', 'map-4k-scattered', 'map-4k-scattered-vs-import-floor', 'v1-vs-newest-first-share-4k-scattered',
  'handoff-vs-round-trip', 'triple-buffering', 'fan-out', 'exports-per-second', 'unexports-per-second',
];
