/**
 * `hdmabuf conformance domain` against real processes: this project's
 * backend, and as the domain under test this project's example domain
 * (vm-sim/conformance/domain/example-domain.ts, a library guest in its own
 * process), whole, with the fence and reservation layers left out, and with
 * one rule broken on purpose. Each broken domain must fail exactly the
 * checks of the rule it breaks; a missing layer is not applicable, not
 * failed. The command itself runs once, as a user would, with both reports.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runDomainSuite, type DomainRunResult } from '../../vm-sim/conformance/domain/run.ts';

const EXAMPLE = fileURLToPath(new URL('../../vm-sim/conformance/domain/example-domain.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../../vm-sim/cli.ts', import.meta.url));
const DOMAIN = [process.execPath, '--import', 'tsx', EXAMPLE];
const TIMEOUT = 180_000;

const run = (env: Record<string, string> = {}): Promise<DomainRunResult> => runDomainSuite({ command: DOMAIN, timeoutMs: 10_000, env });
const failedRules = (r: DomainRunResult): string[] => [...new Set(r.checks.filter((c) => c.state === 'fail').map((c) => c.rule))].sort();

describe('hdmabuf conformance domain', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'conf-domain-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('the command passes every section against the example domain, and writes JSON and JUnit', async () => {
    const json = join(scratch, 'report.json');
    const junit = join(scratch, 'report.xml');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, 'conformance', 'domain', '--json', json, '--junit', junit, '--', ...DOMAIN], { maxBuffer: 1 << 24 });
    expect(stdout).toMatch(/verdict: CONFORMS/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { kind: string; verdict: string; target: { layers: string[] }; checks: { state: string; section: string }[]; sections: { section: string; fail: number }[] };
    expect(report.kind).toBe('domain');
    expect(report.verdict).toBe('conforms');
    expect(report.target.layers).toEqual(expect.arrayContaining(['dmabuf', 'fence', 'dmabuf-sync']));
    const sections = report.sections.map((s) => s.section.split(' ')[0]);
    for (const s of ['10.1', '10.4', '11.1', '11.2', '11.4', '11A']) expect(sections).toContain(s);
    expect(report.checks.filter((c) => c.state === 'fail')).toEqual([]);
    expect(report.checks.filter((c) => c.state === 'pass').length).toBeGreaterThanOrEqual(20);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/<testsuites name="hdmabuf conformance domain /);
    expect(xml).not.toMatch(/<failure/);
  }, TIMEOUT);

  it('a domain without the fence and reservation layers: their checks are not applicable, and it must refuse them with ERR_UNSUPPORTED_LAYER', async () => {
    const r = await run({ HDMABUF_EXAMPLE_LAYERS: 'dmabuf' });
    expect(r.liveness.ok).toBe(true);
    expect(r.layers).not.toContain('fence');
    expect(failedRules(r)).toEqual([]);
    const na = r.checks.filter((c) => c.state === 'skip');
    expect(na.map((c) => c.rule).sort()).toEqual(expect.arrayContaining(['11A.4 observer', '11A.4 closed', '11A.8']));
    for (const c of na.filter((x) => x.rule.startsWith('11A'))) expect(c.message).toMatch(/not applicable: the domain does not announce the (fence|dmabuf-sync) layer/);
    expect(r.checks.find((c) => c.rule === '6 optional layers')?.state).toBe('pass');
  }, TIMEOUT);

  it('a domain that accepts an id of another domain fails 10.1 dom, and only that rule', async () => {
    const r = await run({ HDMABUF_EXAMPLE_BREAK: 'accept-foreign-id' });
    expect(r.liveness.ok).toBe(true);
    expect(failedRules(r)).toEqual(['10.1 dom']);
    const failed = r.checks.filter((c) => c.state === 'fail');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.message).toMatch(/expected err ERR_ID_DOMAIN_MISMATCH, got res/);
  }, TIMEOUT);

  it('a domain that accepts an undo with nothing to undo fails 11.3 refusals; one that accepts a move_notify not newer fails 11.8 refusals; each only that rule', async () => {
    for (const [mutation, rule, message] of [
      ['ops-accept-undo', '11.3 refusals', /detach with nothing to undo: expected err ERR_BAD_ARGUMENT, got res/],
      ['move-any-generation', '11.8 refusals', /generation 1 again \(not newer than the import's\): expected err ERR_BAD_ARGUMENT, got res/],
    ] as const) {
      const r = await runDomainSuite({ command: DOMAIN, timeoutMs: 10_000, env: { HDMABUF_EXAMPLE_BREAK: mutation }, only: ['11.3', '11.8'] });
      expect(r.liveness.ok, mutation).toBe(true);
      expect(r.checks.filter((c) => c.state === 'pass').map((c) => c.rule), mutation).toEqual(expect.arrayContaining(['11.8 move']));
      expect(failedRules(r), mutation).toEqual([rule]);
      expect(r.checks.find((c) => c.state === 'fail')?.message, mutation).toMatch(message);
    }
  }, TIMEOUT);

  it('a domain whose DMABUF_PEER_HELLO answer ignores the offer fails 10.4 rule 1', async () => {
    const r = await run({ HDMABUF_EXAMPLE_BREAK: 'hello-ignores-offer' });
    expect(r.liveness.ok).toBe(true);
    expect(failedRules(r)).toContain('10.4 rule 1');
    expect(r.checks.find((c) => c.name.includes('offered only linked'))?.state).toBe('fail');
    // Rules the mutation does not touch still pass: the importer's own checks of an EXPORT.
    for (const rule of ['10.1 dom', '10.2 size', '11.2 rule 1']) expect(failedRules(r)).not.toContain(rule);
  }, TIMEOUT);
});
