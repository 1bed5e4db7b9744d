/**
 * Writes scenario.schema.json from schema.ts (`npm run schema`); with
 * --check, exits 1 if the file is stale instead (a test runs that).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { scenarioSchema } from './schema.ts';

/** Where the schema file lives (scenario files name it in "$schema"). */
export const SCHEMA_FILE = new URL('./scenario.schema.json', import.meta.url);

/** The file's text as it must be. */
export function schemaText(): string {
  return `${JSON.stringify(scenarioSchema(), null, 2)}\n`;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) {
  if (process.argv.includes('--check')) {
    if (readFileSync(SCHEMA_FILE, 'utf8') !== schemaText()) {
      console.error('scenario.schema.json is stale: run npm run schema');
      process.exit(1);
    }
  } else {
    writeFileSync(SCHEMA_FILE, schemaText());
  }
}
