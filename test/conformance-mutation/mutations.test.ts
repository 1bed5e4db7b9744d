/**
 * Mutation tests of the conformance suite: `hdmabuf conformance backend`
 * run against our backend through a proxy that breaks one rule at a time
 * must fail exactly the checks of that rule, and pass everything through
 * an honest proxy (and through one that reorders replies, which SPEC 6
 * allows). Each run is the real command in a child process, its JSON report
 * read back.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GNTST, GTF, type Envelope } from '../../protocol/index.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { spawnHv, type HvProcess } from '../../vm-sim/process/spawn/spawn-hv.ts';
import { passThrough, reencode, startProxy, type Mutation, type MutationProxy } from './proxy.ts';

const CLI = new URL('../../vm-sim/bin/hdmabuf.js', import.meta.url).pathname;
/** The checks' reply deadline in these runs (the late-reply mutation waits twice as long). */
const TIMEOUT_MS = 10_000;

let hv: HvProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'hdmabuf-mutation-'));

beforeAll(async () => {
  hv = await spawnHv({ readyTimeoutMs: 60_000 });
}, 90_000);

afterAll(async () => {
  if (hv) {
    const exit = await hv.child.reap(15_000);
    expect(exit.code, 'backend exit code').toBe(0);
  }
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

interface Report { verdict: string; liveness: { ok: boolean; rule?: string }; checks: { rule: string; state: string; file: string; message?: string }[] }

/** Runs the command through a proxy with `mutation`, on the suite files `only`, and returns its JSON report and the proxy's mutation count. */
async function runThrough(name: string, only: string, mutation: (p: MutationProxy) => Mutation): Promise<{ report: Report; mutated: number; code: number | null }> {
  const proxy = await startProxy(hv!.url, mutation);
  const json = join(dir, `${name}.json`);
  try {
    const child = spawn(process.execPath, [CLI, 'conformance', 'backend', '--url', proxy.url, '--token', hv!.controlToken, '--only', only, '--json', json, '--timeout-ms', String(TIMEOUT_MS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The command runs its own vitest: none of this test run's settings may leak into it.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(VITEST|TINYPOOL|NODE_OPTIONS$|TEST$)/.test(k))),
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    let report: Report;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    } catch (e) {
      throw new Error(`no JSON report (exit ${code}); output:\n${output}`, { cause: e });
    }
    if (report.checks.length === 0 && report.liveness.ok) throw new Error(`the command ran no check (exit ${code}); output:\n${output}`);
    return { report, mutated: proxy.mutated, code };
  } finally {
    await proxy.close();
  }
}

const failedRules = (r: Report): string[] => [...new Set(r.checks.filter((c) => c.state === 'fail').map((c) => c.rule))].sort();
/** The failed checks with their messages: what a mismatch of failedRules must show to be diagnosed. */
const failures = (r: Report): string => r.checks.filter((c) => c.state === 'fail').map((c) => `${c.rule}: ${String(c.message)}`).join('\n');

/** A reply to a request of `type` with a `res` body: changed by `edit` (returns false to leave it). */
function editReplies(type: string, edit: (body: Record<string, unknown>) => boolean): (p: MutationProxy) => Mutation {
  return (p) => (env, bytes, conn) => {
    if (env.kind === 'res' && env.type === type && edit(env.body)) {
      p.mutated++;
      conn.toClient(reencode(env));
      return;
    }
    conn.toClient(bytes);
  };
}

describe('mutation tests of the conformance suite (each run is `hdmabuf conformance backend` through a proxy)', () => {
  it('an honest proxy: every check of the file passes', async () => {
    const { report, code } = await runThrough('honest', 'evtchn', passThrough);
    expect(failedRules(report), failures(report)).toEqual([]);
    expect(report.verdict).toBe('conforms');
    expect(code).toBe(0);
  }, 300_000);

  it('replies reordered (SPEC 6 allows any order): still every check passes', async () => {
    // Each reply is held until the connection's next reply passes, then sent after it; a reply with none after it within 20 ms goes then.
    const reorder = (p: MutationProxy): Mutation => {
      const held = new Map<object, { bytes: Uint8Array; timer: NodeJS.Timeout }>();
      return (env, bytes, conn) => {
        const prior = held.get(conn);
        if (env.kind === 'res' || env.kind === 'err') {
          if (prior) {
            held.delete(conn);
            clearTimeout(prior.timer);
            conn.toClient(bytes);
            conn.toClient(prior.bytes);
            p.mutated++;
            return;
          }
          held.set(conn, { bytes, timer: setTimeout(() => { held.delete(conn); conn.toClient(bytes); }, 20) });
          return;
        }
        conn.toClient(bytes);
      };
    };
    const { report, mutated } = await runThrough('reorder', 'evtchn', reorder);
    expect(mutated, 'replies were actually reordered').toBeGreaterThan(0);
    expect(failedRules(report), failures(report)).toEqual([]);
  }, 300_000);

  it('a wrong field in one reply type (EVTCHN_STATUS of an interdomain port names the wrong remote port): exactly the checks of 8 rule 5 that read such a status fail', async () => {
    const mutation = editReplies('EVTCHN_STATUS', (body) => {
      if (body.state !== 'interdomain') return false;
      body.remotePort = (body.remotePort as number) + 1;
      return true;
    });
    const { report, mutated } = await runThrough('wrong-field', 'evtchn', mutation);
    expect(mutated).toBeGreaterThan(0);
    // The two checks that read an interdomain status (8 rules 1-2 with rule 5, and rule 2's bind); nothing else.
    expect(failedRules(report), failures(report)).toEqual(['8 rule 2', '8 rules 1-2, 5']);
  }, 300_000);

  it('a late reply (EVTCHN_CLOSE answered after twice the deadline): exactly the checks that close a port fail', async () => {
    const late = (p: MutationProxy): Mutation => (env: Envelope, bytes, conn) => {
      if ((env.kind === 'res' || env.kind === 'err') && env.type === 'EVTCHN_CLOSE') {
        p.mutated++;
        setTimeout(() => conn.toClient(bytes), 2 * TIMEOUT_MS);
        return;
      }
      conn.toClient(bytes);
    };
    const { report, mutated } = await runThrough('late-reply', 'evtchn', late);
    expect(mutated).toBeGreaterThan(0);
    expect(failedRules(report), failures(report)).toEqual(['8 rule 4', '8 rules 1-2, 5']);
  }, 300_000);

  it('a dropped busy bit (after every map the granter\'s GTF_reading and GTF_writing are cleared behind the backend\'s back): the liveness check stops on it; with liveness spared, exactly the checks that read busy bits after a map fail', async () => {
    // The proxy maps every grant table that DOMAIN_CREATE announces and, before passing a map reply on, clears the
    // busy bits of each entry it mapped (SPEC 7.4 "Pins and busy bits" rule 3 broken).
    const tables = new Map<number, { words: Int32Array; buf: ArrayBuffer }>();
    const dropBusy = (spareLiveness: boolean) => (p: MutationProxy): Mutation => (env, bytes, conn) => {
      const created = env.kind === 'res' && env.type === 'DOMAIN_CREATE' ? conn.requests.get(env.id) : undefined;
      if (created && !(spareLiveness && String(created.body.name).startsWith('live-'))) {
        const body = env.body as { domid: number; grantTablePath: string; maxGrantFrames: number };
        const fd = openSync(body.grantTablePath, 'r+');
        try {
          const buf = nativeMem.mapRange(fd, 0, body.maxGrantFrames, true);
          tables.set(body.domid, { words: new Int32Array(buf), buf });
        } finally {
          closeSync(fd);
        }
      }
      const req = conn.requests.get(env.id);
      if (env.kind === 'res' && env.type === 'GNTTAB_MAP_GRANT_REF' && req) {
        const { dom, refs } = req.body as { dom: number; refs: number[] };
        const status = (env.body as { status: number[] }).status;
        const table = tables.get(dom);
        refs.forEach((ref, i) => {
          if (status[i] !== GNTST.okay || !table) return;
          Atomics.and(table.words, 2 * ref, ~(GTF.reading | GTF.writing));
          p.mutated++;
        });
      }
      conn.toClient(bytes);
    };
    try {
      // The command's own liveness check maps one grant and reads its busy bit: it stops there.
      const first = await runThrough('busy-bit-liveness', 'domains', dropBusy(false));
      expect(first.report.verdict).toBe('not live');
      expect(first.report.liveness).toMatchObject({ ok: false, rule: '7.4 pins and busy bits rule 3' });
      expect(first.code).toBe(3);
      // With the liveness check's two domains spared, the suite runs and its busy-bit checks fail.
      for (const t of tables.values()) nativeMem.unmap(t.buf);
      tables.clear();
      const { report, mutated } = await runThrough('busy-bit', 'domains', dropBusy(true));
      expect(mutated).toBeGreaterThan(0);
      // The file's teardown fails too, and only because those checks stopped before unmapping what they mapped.
      expect(failedRules(report), failures(report)).toEqual([...BUSY_BIT_CHECKS, TEARDOWN].sort());
      const teardown = report.checks.find((c) => c.rule === TEARDOWN);
      expect(teardown?.message).toMatch(/HV_STATS after the file \(SPEC 9\.4\): busy grants, mappings or routed requests left/);
      expect(teardown?.message).not.toMatch(/files of removed domains|frames the backend sent/);
    } finally {
      for (const t of tables.values()) nativeMem.unmap(t.buf);
    }
  }, 600_000);
});

/**
 * The checks of domains.test.ts that look at busy bits after a map (and so must fail when they are dropped): the
 * granter's end of access refused while mapped (9.2), the entry's flags after a map (9.1, 9.2), HV_STATS busyGrants
 * of a dead granter (9.1 rules 3-4 …), of 30,000 mapped entries (9.2 step 3) and of a running one (9.4). 9.1's
 * creation checks, the wanted id and 9.3 rule 2 (files at the last mapper's death) read no busy bit and pass.
 */
const TEARDOWN = 'teardown (9.3, 9.4: nothing left behind; 3-4: every frame the backend sent)';

const BUSY_BIT_CHECKS: string[] = ['9.1 rules 3-4, 9.2, 9.3 rule 2, 7.5 rule 4', '9.1, 9.2', '9.2', '9.2 step 3', '9.4'].sort();

