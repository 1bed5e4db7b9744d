/**
 * Outside domains in scenario runs (README, "Outside domains"; SPEC.md
 * Appendix B): a domain whose process is a command of the scenario's, here
 * vm-sim/scenarios/examples/outside-importer.mjs, an importer written with
 * ws and msgpackr only. It imports a project VM's buffers in both directory
 * formats and reads the producer's bytes through its mapping; it can be
 * killed; a command that never becomes ready fails the run; a step that
 * would need it to run a VM command is refused before anything starts. In
 * every case nothing is left: no busy grant, no mapping, no process, no
 * shared-memory file.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isRunning } from '../../vm-sim/process/spawn/child.ts';
import { runScenario } from '../../vm-sim/launcher/execute.ts';
import type { RunResult } from '../../vm-sim/launcher/result.ts';
import { loadScenario } from '../../vm-sim/scenarios/load.ts';
import { checkScenarioRun } from '../../vm-sim/scenarios/prepare.ts';
import type { Scenario } from '../../vm-sim/scenarios/types.ts';

const FIXTURE = ['node', 'vm-sim/scenarios/examples/outside-importer.mjs'];
const NOTHING_LEFT = { busyGrants: 0, mappings: 0, processes: 0, shmFiles: 0 };

function failing(r: RunResult): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
}

function expectNothingLeft(r: RunResult): void {
  expect(r.leaks).toEqual(NOTHING_LEFT);
  expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`${String(r.stats.runTag)}-`))).toEqual([]);
  for (const e of r.exits) expect(isRunning(e.pid), `${e.name} (pid ${e.pid})`).toBe(false);
}

describe('outside domains in a scenario run', () => {
  it('the example: an outside importer reads a VM\'s buffers (multilevel and linked) through its mapping; nothing leaks', async () => {
    const scenario = await loadScenario('vm-sim/scenarios/examples/outside-importer.json');
    const r = await runScenario(scenario);
    expect(failing(r)).toEqual([]);
    expect(r.ok).toBe(true);
    expectNothingLeft(r);
    const domains = r.stats.domains as Array<{ name: string; domid: number; pid: number; outside?: string }>;
    expect(domains.map((d) => [d.name, d.outside])).toEqual([['producer', undefined], ['outside', FIXTURE.join(' ')]]);
    // Both reads of the big buffer and the one of the small one, each compared with the written pattern.
    expect(r.stats.bytesVerifiedThroughMappings).toBe(2 * 4_218_880 + 12_345);
    expect(r.stats.bytesCopied).toBe(0);
    const outside = r.exits.find((e) => e.name === 'outside');
    expect(outside).toMatchObject({ role: 'outside', cause: 'shutdown', code: 0, pid: domains[1]!.pid });
  }, 120_000);

  it('a wrong pattern is seen as wrong; the outside domain killed mid-import is released by its exporter', async () => {
    const scenario: Scenario = {
      name: 'outside-killed', description: 'an outside importer reads the wrong seed, then dies holding the mapping',
      domains: [{ name: 'producer', memory: '8MiB' }, { name: 'outside', memory: '1MiB', command: FIXTURE }],
      steps: [
        { do: 'export', from: 'producer', to: 'outside', buffer: 'b', bytes: 65536 },
        { do: 'write', in: 'producer', buffer: 'b', seed: 1 },
        { do: 'import', into: 'outside', buffer: 'b' },
        { do: 'verify', in: 'outside', buffer: 'b', seed: 2, expect: { ok: false } },
        { do: 'kill', domain: 'outside' },
        // SPEC 11.4: the importer died, so every fd of it counts as released and the export ends.
        { do: 'wait', in: 'producer', event: 'released', buffer: 'b', to: 'outside' },
        { do: 'free', in: 'producer', buffer: 'b' },
      ],
    };
    checkScenarioRun(scenario, {}, 'test');
    const r = await runScenario(scenario);
    expect(failing(r)).toEqual([]);
    expectNothingLeft(r);
    expect(r.exits.find((e) => e.name === 'outside')).toMatchObject({ role: 'outside', cause: 'killed by the scenario', signal: 'SIGKILL' });
  }, 120_000);

  it('a command that exits before its ready line fails the run, naming it; nothing is left', async () => {
    const scenario: Scenario = {
      name: 'outside-never-ready', description: 'an outside domain that exits at once',
      domains: [{ name: 'producer', memory: '8MiB' }, { name: 'quitter', memory: '1MiB', command: ['node', '-e', 'process.exit(3)'] }],
      steps: [{ do: 'export', from: 'producer', to: 'quitter', buffer: 'b', bytes: 4096 }],
    };
    const r = await runScenario(scenario);
    expect(r.ok).toBe(false);
    expect(failing(r)).toEqual([expect.stringMatching(/^run: ERR_OUTSIDE_DOMAIN: outside domain quitter \(node -e process\.exit\(3\)\): the domain process exited \(3\) before its ready line/)]);
    expect(r.leaks).toMatchObject({ processes: 0, shmFiles: 0 });
    expect(r.leaks.busyGrants).toBe(0);
  }, 120_000);

  it('a step that needs an outside domain to run a VM command is refused before anything starts', () => {
    const base = { name: 'x', description: 'x', domains: [{ name: 'p', memory: '8MiB' }, { name: 'o', memory: '1MiB', command: FIXTURE }] };
    const refused = (steps: Scenario['steps']): string => {
      try {
        checkScenarioRun({ ...base, steps }, {}, 'file.json');
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refused([{ do: 'export', from: 'o', to: 'p', buffer: 'b', bytes: 4096 }]))
      .toMatch(/^file\.json: steps\[0\]\.from: "o" is an outside domain: it cannot be `from` of a export step \(an outside domain may be: import into; verify in; release in; kill domain; and any step's peer\)$/);
    expect(refused([{ do: 'export', from: 'p', to: 'o', buffer: 'b', bytes: 4096 }, { do: 'repeat', times: 1, steps: [{ do: 'write', in: 'o', buffer: 'b', seed: 1 }] }]))
      .toMatch(/^file\.json: steps\[1\]\.steps\[0\]\.in: "o" is an outside domain/);
    expect(refused([{ do: 'call', in: 'o', cmd: 'dmabuf.query' }])).toMatch(/steps\[0\]\.in: "o" is an outside domain/);
    // As a peer it may be named anywhere.
    expect(refused([
      { do: 'export', from: 'p', to: 'o', buffer: 'b', bytes: 4096 },
      { do: 'import', into: 'o', buffer: 'b' },
      { do: 'verify', in: 'o', buffer: 'b', seed: 1 },
      { do: 'query', in: 'p', buffer: 'b', to: 'o' },
      { do: 'release', in: 'o', buffer: 'b' },
      { do: 'unexport', in: 'p', buffer: 'b', to: 'o', wait: 'released' },
      { do: 'kill', domain: 'o' },
    ])).toBe('accepted');
  });
});
