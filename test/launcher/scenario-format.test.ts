/**
 * The scenario format without processes: validation errors name the field,
 * parameters substitute and take their defaults' types, sizes parse, and
 * expectations match partially.
 */
import { describe, expect, it } from 'vitest';
import { parseParams } from '../../vm-sim/launcher/params.ts';
import { resolveDomains } from '../../vm-sim/launcher/execute.ts';
import { builtinScenarios } from '../../vm-sim/scenarios/builtin/index.ts';
import { mismatch, substitute } from '../../vm-sim/scenarios/steps/values.ts';
import { paramDefaults } from '../../vm-sim/scenarios/params.ts';
import { parseBytes } from '../../vm-sim/scenarios/units.ts';
import { validateScenario } from '../../vm-sim/scenarios/validate.ts';
import { checkScenarioRun } from '../../vm-sim/scenarios/prepare.ts';

const base = { name: 's', description: 'd', domains: [{ name: 'a', memory: '4MiB' }, { name: 'b', memory: 65536 }] };

describe('scenario validation', () => {
  it('accepts every built-in and the minimal form', () => {
    // The built-ins, in this order (other layers may add theirs after them).
    expect(builtinScenarios().map((s) => s.name).slice(0, 7)).toEqual(['compositor', 'fan-out', 'importer-crash', 'exporter-crash', 'delayed-unexport', 'big-buffer', 'many-exports']);
    expect(() => validateScenario({ ...base, steps: [] }, 't')).not.toThrow();
  });

  it.each([
    [{ ...base, steps: [{ do: 'explode' }] }, /steps\[0\]\.do: "explode" is not allowed.*allowed: export, import/],
    [{ ...base, steps: [{ do: 'import', into: 'a' }] }, /steps\[0\]: missing field "buffer"/],
    [{ ...base, steps: [{ do: 'export', from: 'a', to: 'c', buffer: 'x', bytes: 1 }] }, /steps\[0\]\.to: no domain "c"/],
    [{ ...base, steps: [{ do: 'export', from: 'a', to: 'b', buffer: 'x' }] }, /missing field "bytes" \(or width and height\)/],
    [{ ...base, steps: [{ do: 'repeat', times: 2, steps: [{ do: 'kill' }] }] }, /steps\[0\]\.steps\[0\]: missing field "domain"/],
    [{ ...base, domains: [{ name: 'a', memory: '1MiB' }, { name: 'a', memory: '1MiB' }], steps: [] }, /declared twice/],
    [{ ...base, stepz: [] }, /unknown field "stepz"; did you mean "steps"\?/],
  ])('rejects %#', (raw, re) => {
    expect(() => checkScenarioRun(validateScenario(raw, 't'), {}, 't')).toThrow(re);
  });
});

describe('parameters and values', () => {
  it('substitutes "$name" and types command-line values after the defaults', () => {
    expect(substitute({ a: '$n', b: ['$s', 'x$n'] }, { n: 3, s: 'y' })).toEqual({ a: 3, b: ['y', 'x$n'] });
    expect(() => substitute('$nope', {})).toThrow(/unknown parameter/);
    expect(parseParams(['frames=20', 'check=stamp', 'flag=true', 'n=7'], { frames: 300, check: 'full', flag: false })).toEqual({ frames: 20, check: 'stamp', flag: true, n: 7 });
    expect(() => parseParams(['frames=many'], { frames: 1 })).toThrow(/number/);
  });

  it('parses sizes and resolves domains to pages', () => {
    expect(parseBytes('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseBytes('1.5KiB')).toBe(1536);
    expect(parseBytes(4096)).toBe(4096);
    expect(() => parseBytes('lots')).toThrow(/not a size/);
    const compositor = builtinScenarios()[0]!;
    expect(resolveDomains(compositor, paramDefaults(compositor))).toEqual([
      { name: 'render', memPages: 3 * 2025 + 4096 },
      { name: 'compositor', memPages: 4096 },
    ]);
  });

  it('matches expectations partially and says where they differ', () => {
    expect(mismatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: 2 } })).toBeUndefined();
    expect(mismatch({ a: 1, b: { c: 2 } }, { b: { c: 3 } })).toBe('result.b.c is 2, expected 3');
  });
});
