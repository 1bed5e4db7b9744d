/**
 * The scenario schema file: current with schema.ts, valid JSON Schema, and
 * every scenario file of the repository passes it as an editor would check
 * it (plain ajv on the file, no code of ours); the built-ins' parameters are
 * all declared.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { builtinScenarios } from '../../vm-sim/scenarios/builtin/index.ts';
import { paramDecls } from '../../vm-sim/scenarios/params.ts';
import { SCHEMA_FILE, schemaText } from '../../vm-sim/scenarios/write-schema.ts';

const scenarioFiles = ['builtin', 'examples'].flatMap((d) => readdirSync(new URL(`../../vm-sim/scenarios/${d}/`, import.meta.url))
  .filter((f) => f.endsWith('.json')).map((f) => new URL(`../../vm-sim/scenarios/${d}/${f}`, import.meta.url)));

describe('scenario.schema.json', () => {
  it('is current (npm run schema writes it)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(schemaText());
  });

  it('passes every scenario file of the repository, which names it in $schema', () => {
    const ajv = new Ajv2020({ discriminator: true, strict: false });
    const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as object);
    expect(scenarioFiles.length).toBeGreaterThanOrEqual(4);
    for (const f of scenarioFiles) {
      const s = JSON.parse(readFileSync(f, 'utf8')) as { $schema?: string };
      expect(validate(s), `${f.pathname}: ${JSON.stringify(validate.errors)}`).toBe(true);
      expect(new URL(s.$schema!, f).href).toBe(SCHEMA_FILE.href);
    }
    expect(validate({ name: 'x', description: 'd', domains: [{ name: 'a', memory: '1MiB' }], steps: [{ do: 'pause', ms: -1 }] })).toBe(false);
  });

  it('declares every built-in parameter with type, range or values, default and meaning', () => {
    for (const s of builtinScenarios()) {
      for (const [name, d] of Object.entries(paramDecls(s))) {
        const what = `${s.name}.${name}`;
        expect(d.description, what).not.toBe('');
        if (d.type === 'integer' || d.type === 'number') {
          expect(d.minimum, what).toBeTypeOf('number');
          expect(d.maximum, what).toBeTypeOf('number');
        }
        if (d.type === 'string') expect(d.enum, what).toBeDefined();
      }
    }
  });
});
