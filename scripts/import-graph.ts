/**
 * The import graph of the repository's TypeScript: which file imports which
 * (static `import`/`export ... from` and `import()` of relative paths, type
 * imports included). Used by test/architecture/imports.test.ts to prove
 * that src/ has no import cycle and that imports run one way:
 * protocol <- src <- workloads <- vm-sim (tests may import anything).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** A file's relative imports, as repository-relative paths. */
export type ImportGraph = Map<string, string[]>;

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// Comments hold example imports (JSDoc); they are not edges.
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** The graph of every .ts file under `folders` of `root`. */
export function importGraph(root: string, folders: readonly string[]): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const folder of folders) {
    for (const file of tsFiles(join(root, folder))) {
      const from = relative(root, file);
      const deps: string[] = [];
      for (const m of withoutComments(readFileSync(file, 'utf8')).matchAll(IMPORT)) {
        const spec = m[1] ?? m[2] ?? m[3];
        if (!spec || !spec.startsWith('.')) continue;
        deps.push(relative(root, resolve(dirname(file), spec)));
      }
      graph.set(from, deps);
    }
  }
  return graph;
}

/** Every cycle among the graph's files (each as the files in import order, first repeated last), one per strongly connected component. */
export function importCycles(graph: ImportGraph): string[][] {
  // Tarjan's strongly connected components; a component of more than one file (or a file importing itself) is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) !== idx.get(v)) return;
    const comp: string[] = [];
    let w: string;
    do { w = stack.pop()!; on.delete(w); comp.push(w); } while (w !== v);
    if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return cycles;
}

/** The layers, lowest first: a file may import its own layer and the ones before it. */
export const LAYERS = ['protocol', 'src', 'workloads', 'vm-sim'] as const;

/** Imports that run up the layers (from a lower layer to a higher one), as "from -> to". */
export function upwardImports(graph: ImportGraph): string[] {
  const layerOf = (p: string): number => LAYERS.indexOf(p.split('/')[0] as (typeof LAYERS)[number]);
  const bad: string[] = [];
  for (const [from, deps] of graph) {
    const lf = layerOf(from);
    if (lf < 0) continue;
    for (const to of deps) {
      const lt = layerOf(to);
      if (lt < 0 || lt > lf) bad.push(`${from} -> ${to}`);
    }
  }
  return bad.sort();
}
