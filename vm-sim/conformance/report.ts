/**
 * The reports of `hdmabuf conformance`: a pass/fail table per SPEC section
 * and every failure with its rule, what was sent and what came back (text);
 * the same as one JSON document; and JUnit XML (one testsuite per section)
 * for CI systems.
 */
import type { HelloAnswer, Liveness } from './liveness.ts';
import type { CheckResult } from './suite.ts';

/** Everything one run found. */
export interface ConformanceReport {
  /** What was checked: a backend, or a domain (its command line as `url`, its announced layers). */
  kind: 'backend' | 'domain';
  target: { url: string; hello?: HelloAnswer; layers?: string[] };
  liveness: Liveness;
  checks: CheckResult[];
  verdict: 'conforms' | 'does not conform' | 'not live';
}

/** The SPEC section a describe title names: its leading number ("3.3: structure limits" and "SPEC 3 transport" give 3.3 and 3). */
export function sectionKey(title: string): string {
  return /^\d+[A-Z]?(\.\d+)*/.exec(title)?.[0] ?? title;
}

/** Passed/failed/skipped per SPEC section, in SPEC order; a section is named by its longest title without a colon. */
export function sectionTotals(checks: readonly CheckResult[]): { section: string; pass: number; fail: number; skip: number }[] {
  const rows = new Map<string, { section: string; pass: number; fail: number; skip: number }>();
  for (const c of checks) {
    const key = sectionKey(c.section);
    const row = rows.get(key) ?? { section: key, pass: 0, fail: 0, skip: 0 };
    if (!c.section.includes(':') && c.section.length > row.section.length) row.section = c.section;
    row[c.state]++;
    rows.set(key, row);
  }
  // In SPEC order: 3 before 3.3 before 4 before 11A before 14.
  const order = (s: string): number[] => sectionKey(s).split('.').map((p) => parseInt(p, 10) + (/[A-Z]$/.test(p) ? 0.5 : 0));
  const cmp = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? -1) !== (b[i] ?? -1)) return (a[i] ?? -1) - (b[i] ?? -1);
    return 0;
  };
  return [...rows.entries()].sort(([a], [b]) => cmp(order(a), order(b))).map(([, row]) => row);
}

/** The verdict of a run. */
export function verdictOf(liveness: Liveness, checks: readonly CheckResult[]): ConformanceReport['verdict'] {
  if (!liveness.ok) return 'not live';
  return checks.length > 0 && checks.every((c) => c.state !== 'fail') ? 'conforms' : 'does not conform';
}

/** The liveness part of the text report. */
export function livenessLines(l: Liveness): string[] {
  const out = l.steps.map((s) => `  ok    ${s}`);
  if (!l.ok) {
    out.push(`  FAIL  ${l.failedStep}`, `        rule: SPEC ${l.rule}`, `        sent: ${l.sent}`, `        got:  ${l.got}`);
  }
  return out;
}

/** The section table and every failure, as text. */
export function resultLines(checks: readonly CheckResult[]): string[] {
  const rows = sectionTotals(checks);
  const width = Math.max(7, ...rows.map((r) => r.section.length));
  const out = [`${'section'.padEnd(width)}  pass  fail  skip (skip: not applicable)`, `${'-'.repeat(width)}  ----  ----  ----`];
  for (const r of rows) out.push(`${r.section.padEnd(width)}  ${String(r.pass).padStart(4)}  ${String(r.fail).padStart(4)}  ${String(r.skip).padStart(4)}${r.fail > 0 ? '  FAIL' : ''}`);
  const failed = checks.filter((c) => c.state === 'fail');
  if (failed.length > 0) out.push('', `${failed.length} failed check(s):`);
  for (const c of failed) {
    out.push('', `FAIL  SPEC ${c.rule}  [${c.section}; ${c.file}]`, `      ${c.name}`);
    for (const line of (c.message ?? '').split('\n').slice(0, 12)) out.push(`      ${line}`);
    if (c.transcript && c.transcript.length > 0) {
      out.push('      frames per connection, oldest first (-> sent, <- received):');
      for (const t of c.transcript) out.push(`        ${t}`);
    }
  }
  return out;
}

/** The report as one JSON document. */
export function toJson(report: ConformanceReport): string {
  return `${JSON.stringify({ ...report, sections: sectionTotals(report.checks) }, null, 2)}\n`;
}

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!)
  // Characters XML 1.0 cannot hold at all.
  // eslint-disable-next-line no-control-regex
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '?');

/** The report as JUnit XML: one testsuite per SPEC section (the liveness check first), one testcase per check. */
export function toJunit(report: ConformanceReport): string {
  const suites: string[] = [];
  const live = report.liveness;
  const liveCase = live.ok
    ? '    <testcase classname="liveness" name="HELLO, PING, one grant map"/>'
    : `    <testcase classname="liveness" name="HELLO, PING, one grant map"><failure message="${xml(`SPEC ${live.rule}: ${live.failedStep}`)}">${xml(`sent: ${live.sent}\ngot: ${live.got}`)}</failure></testcase>`;
  suites.push(`  <testsuite name="liveness" tests="1" failures="${live.ok ? 0 : 1}" skipped="0">\n${liveCase}\n  </testsuite>`);
  for (const row of sectionTotals(report.checks)) {
    const cases = report.checks.filter((c) => sectionKey(c.section) === sectionKey(row.section)).map((c) => {
      const head = `    <testcase classname="${xml(`SPEC ${c.section}`)}" name="${xml(c.name)}" time="${(c.durationMs / 1000).toFixed(3)}"`;
      if (c.state === 'skip') return c.message ? `${head}><skipped message="${xml(c.message)}"/></testcase>` : `${head}><skipped/></testcase>`;
      if (c.state === 'pass') return `${head}/>`;
      const detail = [c.message ?? '', ...(c.transcript ?? [])].join('\n');
      return `${head}><failure message="${xml(`SPEC ${c.rule}`)}">${xml(detail)}</failure></testcase>`;
    });
    suites.push(`  <testsuite name="${xml(`SPEC ${row.section}`)}" tests="${row.pass + row.fail + row.skip}" failures="${row.fail}" skipped="${row.skip}">\n${cases.join('\n')}\n  </testsuite>`);
  }
  const failures = report.checks.filter((c) => c.state === 'fail').length + (live.ok ? 0 : 1);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="hdmabuf conformance ${report.kind} ${xml(report.target.url)}" tests="${report.checks.length + 1}" failures="${failures}">\n${suites.join('\n')}\n</testsuites>\n`;
}
