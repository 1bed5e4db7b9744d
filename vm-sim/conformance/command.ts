/**
 * `hdmabuf conformance backend --url URL --token TOKEN [--json FILE]
 * [--junit FILE] [--timeout-ms MS] [--only FILE]...`
 * `hdmabuf conformance domain [--json FILE] [--junit FILE] [--timeout-ms MS]
 * [--only RULE]... -- COMMAND [ARGS...]`
 *
 * domain: starts this project's backend, starts COMMAND as a domain (SPEC
 * Appendix B) and plays SPEC 10, 11 and 11A against it (domain/run.ts); the
 * same report formats, the layers it does not announce not applicable.
 *
 * Checks a running backend against protocol/SPEC.md: prints the target and
 * its HELLO answer, runs the liveness check (HELLO, PING, one grant map) and
 * stops there with a clear verdict if it fails, then runs every check of the
 * conformance suite and prints a pass/fail table per SPEC section and each
 * failure with its rule, what was sent and what came back. Exit status: 0
 * when the backend conforms, 1 when a check failed, 3 when it is not live,
 * 2 on a usage error.
 */
import { writeFileSync } from 'node:fs';
import { UsageError, type Command } from '../cli/command.ts';
import { livenessLines, resultLines, toJson, toJunit, verdictOf, type ConformanceReport } from './report.ts';
// liveness.ts (the native addon) and suite.ts (vitest) are loaded when the command runs, not by every `hdmabuf` command.
import type { CheckResult } from './suite.ts';

/** wire.ts's TIMEOUT_ENV, named here so that wire.ts loads only after it is set. */
const TIMEOUT_ENV = 'HDMABUF_CONFORMANCE_TIMEOUT_MS';

/** `hdmabuf conformance backend …`. */
export const conformanceCommand: Command = {
  name: 'conformance',
  summary: 'Checks a backend or a domain against protocol/SPEC.md: hdmabuf conformance backend --url URL --token TOKEN | hdmabuf conformance domain -- COMMAND.',
  args: 'backend | domain -- COMMAND [ARGS...]',
  options: {
    url: { type: 'string', arg: 'URL', help: 'the backend\'s WebSocket URL, e.g. ws://127.0.0.1:7000 (the "url" of its ready line, SPEC.md 9.5)' },
    token: { type: 'string', arg: 'TOKEN', help: 'the control domain\'s token (the "controlToken" of its ready line)' },
    json: { type: 'string', arg: 'FILE', help: 'also write the report as JSON' },
    junit: { type: 'string', arg: 'FILE', help: 'also write the report as JUnit XML' },
    'timeout-ms': { type: 'string', arg: 'MS', help: 'how long a check waits for a reply or an event (default 5000; SPEC.md sets no reply time)' },
    only: { type: 'string', multiple: true, arg: 'NAME', help: 'backend: run only the suite files whose name starts with NAME, e.g. grant-map; domain: only the checks whose rule or section starts with NAME, e.g. 11.1' },
  },
  async moreHelp() {
    return `domain: starts this project's backend and COMMAND as a domain under test; COMMAND learns its backend URL,
domid, token and memory files from HDMABUF_URL, HDMABUF_DOMID, HDMABUF_TOKEN, HDMABUF_RAM_PATH,
HDMABUF_GRANT_TABLE_PATH, HDMABUF_MEM_PAGES, HDMABUF_MAX_GRANT_FRAMES, prints {"ready":true,"domid":N} once
connected, and obeys the JSON-line commands of SPEC.md Appendix B on stdin. Example (this project's own domain):
  hdmabuf conformance domain -- npx tsx vm-sim/conformance/domain/example-domain.ts
backend: start this project's backend by hand with: npx tsx vm-sim/hv-main.ts (SPEC.md 9.5).
It prints the target and its HELLO answer, checks liveness (HELLO, PING, one grant map) and stops with
the verdict NOT LIVE if that fails; then runs every check and prints a pass/fail table per SPEC section
and each failure with its rule, what was sent and what came back.
exit status: 0 conforms, 1 a check failed, 3 not live, 2 usage error
`;
  },
  async run(values, positionals) {
    const timeoutText = values['timeout-ms'] as string | undefined;
    const timeoutMs = timeoutText === undefined ? 5_000 : Number(timeoutText);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`conformance: --timeout-ms must be a positive integer, not ${timeoutText}`);
    const json = values.json as string | undefined;
    const junit = values.junit as string | undefined;
    const only = values.only as string[] | undefined;
    if (positionals[0] === 'domain') {
      const command = positionals.slice(1);
      if (command.length === 0) throw new UsageError('conformance: expected `hdmabuf conformance domain -- COMMAND [ARGS...]`: no command given');
      if (values.url !== undefined || values.token !== undefined) throw new UsageError('conformance domain: --url and --token are for `backend`; `domain` starts its own backend');
      return runDomain({ command, timeoutMs, ...(json ? { json } : {}), ...(junit ? { junit } : {}), ...(only ? { only } : {}) });
    }
    if (positionals[0] !== 'backend' || positionals.length > 1) {
      throw new UsageError(`conformance: expected \`hdmabuf conformance backend\` or \`hdmabuf conformance domain -- COMMAND\`, got: ${positionals.join(' ') || '(nothing)'}`);
    }
    const url = values.url as string | undefined;
    const token = values.token as string | undefined;
    if (!url || !token) throw new UsageError('conformance: --url and --token are required');
    return runBackend({ url, token, timeoutMs, ...(json ? { json } : {}), ...(junit ? { junit } : {}), ...(only ? { only } : {}) });
  },
};

interface BackendRun { url: string; token: string; timeoutMs: number; json?: string; junit?: string; only?: string[] }

async function runBackend(o: BackendRun): Promise<number> {
  const say = (...lines: string[]): void => { process.stdout.write(`${(lines.length ? lines : ['']).join('\n')}\n`); };
  say(`target: ${o.url}`);
  const { checkLiveness } = await import('./liveness.ts');
  const liveness = await checkLiveness(o.url, o.token);
  if (liveness.hello) say(`HELLO answer: ${JSON.stringify(liveness.hello)}`);
  say('liveness (HELLO, PING, one grant map):');
  for (const line of livenessLines(liveness)) say(line);
  let checks: CheckResult[] = [];
  if (liveness.ok) {
    say('', 'running the conformance checks (one suite file at a time)…');
    // Loaded only here: vitest's Node API is large, and only this command needs it.
    const { runSuite } = await import('./suite.ts');
    checks = await runSuite({
      url: o.url, controlToken: o.token, timeoutMs: o.timeoutMs,
      ...(o.only ? { files: o.only } : {}),
      onFile: (file, pass, fail) => say(`  ${file}: ${pass} passed, ${fail} failed`),
    });
    say();
    for (const line of resultLines(checks)) say(line);
  }
  const report: ConformanceReport = {
    kind: 'backend',
    target: { url: o.url, ...(liveness.hello ? { hello: liveness.hello } : {}) }, liveness, checks, verdict: verdictOf(liveness, checks),
  };
  if (o.json) writeFileSync(o.json, toJson(report));
  if (o.junit) writeFileSync(o.junit, toJunit(report));
  const failed = checks.filter((c) => c.state === 'fail').length;
  say('', report.verdict === 'not live'
    ? `verdict: NOT LIVE: the target failed "${liveness.ok ? '' : liveness.failedStep}", so no section was checked`
    : `verdict: ${report.verdict === 'conforms' ? 'CONFORMS' : 'DOES NOT CONFORM'}: ${checks.length - failed} of ${checks.length} checks passed`);
  if (o.json) say(`JSON report: ${o.json}`);
  if (o.junit) say(`JUnit report: ${o.junit}`);
  return report.verdict === 'conforms' ? 0 : report.verdict === 'not live' ? 3 : 1;
}

interface DomainRun { command: string[]; timeoutMs: number; json?: string; junit?: string; only?: string[] }

async function runDomain(o: DomainRun): Promise<number> {
  const say = (...lines: string[]): void => { process.stdout.write(`${(lines.length ? lines : ['']).join('\n')}\n`); };
  const target = o.command.join(' ');
  say(`domain under test: ${target}`);
  // The wire clients read their reply deadline when first loaded.
  process.env[TIMEOUT_ENV] = String(o.timeoutMs);
  const { runDomainSuite } = await import('./domain/run.ts');
  say('running the domain checks (SPEC 10, 11, 11A)…');
  const result = await runDomainSuite({ command: o.command, timeoutMs: o.timeoutMs, ...(o.only ? { only: o.only } : {}), say });
  say('liveness (backend, DUT ready line, DMABUF_PEER_HELLO answered):');
  for (const line of livenessLines(result.liveness)) say(line);
  if (result.liveness.ok) {
    say();
    for (const line of resultLines(result.checks)) say(line);
  } else if (result.log.length > 0) {
    say('', 'the domain\'s last output:', ...result.log.map((l) => `  ${l}`));
  }
  const report: ConformanceReport = {
    kind: 'domain',
    target: { url: target, ...(result.layers ? { layers: result.layers } : {}) }, liveness: result.liveness, checks: result.checks, verdict: verdictOf(result.liveness, result.checks),
  };
  if (o.json) writeFileSync(o.json, toJson(report));
  if (o.junit) writeFileSync(o.junit, toJunit(report));
  const failed = result.checks.filter((c) => c.state === 'fail').length;
  const na = result.checks.filter((c) => c.state === 'skip').length;
  say('', report.verdict === 'not live'
    ? `verdict: NOT LIVE: "${result.liveness.ok ? '' : result.liveness.failedStep}" failed, so no section was checked`
    : `verdict: ${report.verdict === 'conforms' ? 'CONFORMS' : 'DOES NOT CONFORM'}: ${result.checks.length - failed - na} of ${result.checks.length - na} applicable checks passed${na ? ` (${na} not applicable)` : ''}`);
  if (o.json) say(`JSON report: ${o.json}`);
  if (o.junit) say(`JUnit report: ${o.junit}`);
  return report.verdict === 'conforms' ? 0 : report.verdict === 'not live' ? 3 : 1;
}
