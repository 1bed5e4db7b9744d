/**
 * One style for declaring states (the convention of protocol/state-machine.ts):
 * an `as const` object of named values plus a type of the same name, as every
 * machine of protocol/machines declares its states next to its transition
 * table. No TypeScript `enum`, and no state type written as a bare union of
 * string literals, in protocol/, src/, workloads/ or vm-sim/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Every .ts file under `dir`, relative to the repository root. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Declarations of `text` in another style: `enum X {` and `type XState = 'a' | 'b'`. */
function otherStyles(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:export\s+)?(?:declare\s+)?(?:const\s+)?enum\s+(\w+)/gm)) found.push(`enum ${m[1]}`);
  for (const m of text.matchAll(/^\s*(?:export\s+)?type\s+(\w*State)\s*=\s*'[^']*'\s*\|/gm)) found.push(`union ${m[1]}`);
  return found;
}

describe('state declarations', () => {
  it('recognises the other styles (the check can fail)', () => {
    expect(otherStyles("export enum RunState {\n  A = 'a',\n}\ntype VmProcessState = 'booting' | 'serving';\n")).toEqual(['enum RunState', 'union VmProcessState']);
    expect(otherStyles("/** (enum dma_resv_usage) */\nexport const S = { A: 'a' } as const;\nexport type S = ValueOf<typeof S>;\ntype Kind = 'a' | 'b';\n")).toEqual([]);
  });

  it('declares every state as an `as const` object plus a type of the same name', () => {
    const files = ['protocol', 'src', 'workloads', 'vm-sim'].flatMap(tsFiles);
    expect(files.length).toBeGreaterThan(200);
    const offenders = files.flatMap((f) => otherStyles(readFileSync(join(root, f), 'utf8')).map((d) => `${relative('.', f)}: ${d}`));
    expect(offenders).toEqual([]);
  });
});
