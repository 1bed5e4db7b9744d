/**
 * Finds a scenario: a built-in by name, or a file. A .json file holds one
 * scenario object; a .ts/.mts/.js/.mjs module exports one as its default
 * export (defineScenario({...})). Either way it is validated first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinScenario, builtinScenarios } from './builtin/index.ts';
import { didYouMean } from './suggest.ts';
import type { Scenario } from './types.ts';
import { ScenarioError, validateScenario } from './validate.ts';

/** The compiler's (esbuild's, through tsx) or the loader's message, without the stack. */
function loadMessage(e: unknown): string {
  const err = e as { message?: string; errors?: Array<{ text?: string; location?: { file?: string; line?: number; column?: number; lineText?: string } }> };
  if (Array.isArray(err.errors) && err.errors.length > 0) {
    return err.errors.map((x) => `${x.location ? `${x.location.file ?? ''}:${x.location.line ?? '?'}:${x.location.column ?? '?'}: ` : ''}${x.text ?? ''}`).join('\n');
  }
  // esbuild (through tsx): "Transform failed with 1 error:\n<file>:<line>:<col>: ERROR: <text>".
  return String(err.message ?? e).split('\n    at ')[0]!.replace(/^Transform failed with \d+ errors?:\n/, '').trim();
}

/** Loads a built-in by name or a scenario file by path. */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const builtin = builtinScenario(nameOrPath);
  if (builtin) return builtin;
  const path = resolve(nameOrPath);
  if (!existsSync(path)) {
    const names = builtinScenarios().map((s) => s.name);
    throw new ScenarioError(`no built-in scenario and no file named ${JSON.stringify(nameOrPath)}${didYouMean(nameOrPath, names)} (built-ins: ${names.join(', ')})`);
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.json') {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new ScenarioError(`${nameOrPath}: not valid JSON: ${(e as Error).message}`);
    }
    return validateScenario(raw, nameOrPath);
  }
  if (['.ts', '.mts', '.js', '.mjs'].includes(ext)) {
    let mod: { default?: unknown; scenario?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as typeof mod;
    } catch (e) {
      throw new ScenarioError(`${nameOrPath}: cannot load the module: ${loadMessage(e)}`);
    }
    if (mod.default === undefined && mod.scenario === undefined) throw new ScenarioError(`${nameOrPath}: the module has no default export (export default defineScenario({...}))`);
    return validateScenario(mod.default ?? mod.scenario, nameOrPath);
  }
  throw new ScenarioError(`${nameOrPath}: a scenario file is .json, or a .ts/.js module with a default export`);
}
