/**
 * The built-in scenarios, by name: the TypeScript modules of this
 * directory and its JSON files (which double as examples of the format).
 */
import { readFileSync } from 'node:fs';
import type { Scenario } from '../types.ts';
import { validateScenario } from '../validate.ts';
import bigBuffer from './big-buffer.ts';
import compositor from './compositor.ts';
import copies from './copies.ts';
import fanOut from './fan-out.ts';
import fences from './fences.ts';
import manyExports from './many-exports.ts';
import move from './move.ts';

function json(file: string): Scenario {
  const url = new URL(`./${file}`, import.meta.url);
  return validateScenario(JSON.parse(readFileSync(url, 'utf8')), `built-in ${file}`);
}

let all: Scenario[] | undefined;

/** Every built-in, in the order `hdmabuf list` shows them (the default first). */
export function builtinScenarios(): Scenario[] {
  all ??= [
    compositor,
    fanOut,
    json('importer-crash.json'),
    json('exporter-crash.json'),
    json('delayed-unexport.json'),
    bigBuffer,
    manyExports,
    fences,
    move,
    copies,
  ].map((s) => validateScenario(s, `built-in ${s.name}`));
  return all;
}

/** A built-in by name, or undefined. */
export function builtinScenario(name: string): Scenario | undefined {
  return builtinScenarios().find((s) => s.name === name);
}

/** The scenario `npm start` runs. */
export const DEFAULT_SCENARIO = 'compositor';
