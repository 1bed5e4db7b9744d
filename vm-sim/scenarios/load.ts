/**
 * Finds a scenario: a built-in by name, or a file. A .json file holds one
 * scenario object; a .ts/.mts/.js/.mjs module exports one as its default
 * export (defineScenario({...})). Either way it is validated first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinScenario, builtinScenarios } from './builtin/index.ts';
import type { Scenario } from './types.ts';
import { ScenarioError, validateScenario } from './validate.ts';

/** Loads a built-in by name or a scenario file by path. */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const builtin = builtinScenario(nameOrPath);
  if (builtin) return builtin;
  const path = resolve(nameOrPath);
  if (!existsSync(path)) {
    throw new ScenarioError(`no built-in scenario and no file named ${JSON.stringify(nameOrPath)}; built-ins: ${builtinScenarios().map((s) => s.name).join(', ')}`);
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
    const mod = (await import(pathToFileURL(path).href)) as { default?: unknown; scenario?: unknown };
    return validateScenario(mod.default ?? mod.scenario, nameOrPath);
  }
  throw new ScenarioError(`${nameOrPath}: a scenario file is .json, or a .ts/.js module with a default export`);
}
