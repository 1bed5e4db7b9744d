/**
 * The regression corpus: every input that ever crashed, stalled or was
 * mis-answered by the backend, one JSON file each under
 * test/stress/corpus/, with its class and the answer SPEC.md expects.
 * `npm test` replays them (test/stress/corpus.test.ts), as fuzzing projects
 * keep their crash reports.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Expected } from './oracle.ts';

/** Where the corpus lives. */
export const CORPUS_DIR = fileURLToPath(new URL('../../test/stress/corpus/', import.meta.url));

/** One corpus entry. */
export interface CorpusEntry {
  /** The hostile class that found it (or `issue-9` for the inputs the issue reported). */
  class: string;
  /** Connection state the frame is sent in. */
  state: 'authenticated' | 'unauthenticated';
  /** Protocol version the authenticated connection negotiated (absent: 1). */
  version?: number;
  /** The frame, as hex. */
  frameHex: string;
  /** The answer SPEC.md requires. */
  expected: Expected;
  /** What went wrong when it was found, and why this is the answer. */
  note: string;
}

/** Writes an entry (named by class and the frame's hash) unless it exists; returns its path. */
export function saveEntry(entry: CorpusEntry, dir = CORPUS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const hash = createHash('sha256').update(entry.frameHex).digest('hex').slice(0, 12);
  const path = join(dir, `${entry.class}-${hash}.json`);
  if (!existsSync(path)) writeFileSync(path, `${JSON.stringify(entry, null, 2)}\n`);
  return path;
}

/** Every entry of the corpus, with its file name. */
export function loadCorpus(dir = CORPUS_DIR): { file: string; entry: CorpusEntry }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((file) => ({
    file,
    entry: JSON.parse(readFileSync(join(dir, file), 'utf8')) as CorpusEntry,
  }));
}
