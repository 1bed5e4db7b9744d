/**
 * The import graph of the code (scripts/import-graph.ts): no cycle among
 * the files of protocol/, src/ and workloads/, none across the folders of
 * vm-sim/, and imports run one way,
 * protocol <- src <- workloads <- vm-sim (nothing below imports a layer
 * above it; tests may import anything).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles, importGraph, upwardImports } from '../../scripts/import-graph.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const graph = importGraph(root, ['protocol', 'src', 'workloads', 'vm-sim']);

describe('import graph', () => {
  it('reads the edges it checks (type imports, re-exports and dynamic imports included)', () => {
    expect(graph.get('src/hv/session.ts')).toContain('src/hv/handlers.ts');
    expect(graph.get('src/dmabuf/dma-buf.ts')).toContain('src/dmabuf/move.ts');
    expect(graph.get('src/dmabuf/system-heap.ts')).toContain('src/dmabuf/system-heap-priv.ts');
    expect([...graph.values()].reduce((n, deps) => n + deps.length, 0)).toBeGreaterThan(500);
  });

  it('finds a cycle and an upward import when there is one (the check can fail)', () => {
    const bad = new Map([
      ['src/a.ts', ['src/b.ts']], ['src/b.ts', ['src/c.ts']], ['src/c.ts', ['src/a.ts', 'vm-sim/x.ts']],
      ['src/d.ts', ['src/d.ts']], ['vm-sim/x.ts', []],
    ]);
    expect(importCycles(bad)).toEqual([['src/a.ts', 'src/b.ts', 'src/c.ts'], ['src/d.ts']]);
    expect(upwardImports(bad)).toEqual(['src/c.ts -> vm-sim/x.ts']);
  });

  it('has no cycle among the files of protocol/, src/ and workloads/', () => {
    const library = new Map([...graph].filter(([f]) => /^(protocol|src|workloads)\//.test(f)));
    expect(importCycles(library)).toEqual([]);
  });

  it('has no cycle across the folders of vm-sim/ (launcher, scenarios, report, trace, process, ...)', () => {
    const folderOf = (f: string) => f.split('/').slice(0, 2).join('/');
    const crossing = importCycles(graph).filter((cycle) => new Set(cycle.map(folderOf)).size > 1);
    expect(crossing).toEqual([]);
  });

  it('runs one way: protocol <- src <- workloads <- vm-sim', () => {
    expect(upwardImports(graph)).toEqual([]);
  });
});
