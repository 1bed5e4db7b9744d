/**
 * Runs `hdmabuf conformance domain -- COMMAND`: starts this project's backend,
 * creates the domain under test (DUT) and starts COMMAND as it (Appendix B),
 * creates the peers (a raw probe domain and reference domains of the library
 * driver), checks liveness (the ready line; the DUT answers
 * DMABUF_PEER_HELLO), runs every check of checks.ts, and finally checks that
 * nothing is left: the DUT exits when asked, HV_STATS shows no busy grant or
 * mapping of any domain, and the backend stops with no file of the run left.
 */
import { closeSync, openSync, readdirSync } from 'node:fs';
import { FenceHost } from '../../../src/fence-remote/fence-host.ts';
import { GuestKernel } from '../../../src/guest/kernel.ts';
import { HyperDmabuf } from '../../../src/hyper-dmabuf/driver.ts';
import { DmabufSync } from '../../../src/hyper-dmabuf/sync/index.ts';
import { nativeMem } from '../../../src/memory/native.ts';
import { spawnHv, type HvProcess } from '../../process/spawn/spawn-hv.ts';
import type { Liveness } from '../liveness.ts';
import type { CheckResult } from '../suite.ts';
import { clearTranscripts, recentTranscript, WireClient } from '../wire.ts';
import { DomainAgent } from './agent.ts';
import { DOMAIN_CHECKS, NotApplicable, type DomainCheck, type DomainSuiteContext, type RefDomain } from './checks.ts';
import type { DomainLaunch } from './contract.ts';

/** What a run needs. */
export interface DomainRunOptions {
  command: string[];
  timeoutMs: number;
  /** Only the checks whose rule or section starts with one of these. */
  only?: string[];
  /** Extra environment for the DUT (tests use it for the example domain's mutations). */
  env?: Record<string, string>;
  say?: (line: string) => void;
}

/** What a run found. */
export interface DomainRunResult {
  liveness: Liveness;
  checks: CheckResult[];
  /** The DUT's announced layers (undefined: not said). */
  layers?: string[];
  /** The DUT's last stderr / stray stdout lines. */
  log: string[];
}

const FILE = 'domain';
const DUT_PAGES = 8192;
const REF_PAGES = 4096;

interface Created { domid: number; token: string; ramPath: string; grantTablePath: string; maxGrantFrames: number }

/** Runs the suite; never throws for a failure of the DUT (it becomes a failed step or check). */
export async function runDomainSuite(o: DomainRunOptions): Promise<DomainRunResult> {
  const say = o.say ?? (() => undefined);
  const steps: string[] = [];
  const checks: CheckResult[] = [];
  let hv: HvProcess | undefined;
  let control: WireClient | undefined;
  let agent: DomainAgent | undefined;
  let probe: WireClient | undefined;
  const refs: RefDomain[] = [];
  const killed = new Set<RefDomain>();
  const views: ArrayBuffer[] = [];
  let step = 'start this project\'s backend (SPEC 9.5)';
  let liveness: Liveness;
  let layers: string[] | undefined;

  const bootRef = async (name: string, formats: ('multilevel' | 'linked')[]): Promise<RefDomain> => {
    const d = await control!.call<Created>('DOMAIN_CREATE', { name, memPages: REF_PAGES });
    const kernel = await GuestKernel.boot({ url: hv!.url, ...d, memPages: REF_PAGES, name });
    const driver = HyperDmabuf.load(kernel, { formats });
    const fences = new FenceHost(kernel);
    const ref: RefDomain = { name, domid: d.domid, kernel, driver, fences, sync: DmabufSync.load(driver, fences) };
    refs.push(ref);
    return ref;
  };
  // A reference domain whose shutdown fails is kept in the run's log: what it left behind is judged by the
  // HV_STATS check after every domain let go, which names the domain.
  const closeRef = async (r: RefDomain): Promise<void> => {
    const logged = (what: string) => (e: unknown): void => { refLog.push(`${r.name}: ${what} failed: ${String(e)}`); };
    r.sync.close();
    await r.fences.shutdown().catch(logged('fence host shutdown'));
    r.driver.close();
    await r.kernel.shutdown().catch(logged('kernel shutdown'));
  };
  const refLog: string[] = [];

  try {
    hv = await spawnHv({ readyTimeoutMs: 30_000 });
    steps.push(`${step}: ${hv.url}`);
    step = 'connect as the control domain and create the DUT (SPEC 5, 9.1)';
    control = await WireClient.connect(hv.url, 0, hv.controlToken, 'control');
    const d = await control.call<Created>('DOMAIN_CREATE', { name: 'under-test', memPages: DUT_PAGES });
    steps.push(step);
    step = `start the DUT: ${o.command.join(' ')} (Appendix B.1, B.2: its ready line)`;
    const launch: DomainLaunch = { url: hv.url, domid: d.domid, token: d.token, ramPath: d.ramPath, grantTablePath: d.grantTablePath, memPages: DUT_PAGES, maxGrantFrames: d.maxGrantFrames };
    agent = await DomainAgent.start(o.command, launch, Math.max(30_000, o.timeoutMs), o.env);
    steps.push(step);
    step = 'create the probe domain and the reference domains (library driver: multilevel-only, linked-only)';
    const p = await control.call<Created>('DOMAIN_CREATE', { name: 'probe', memPages: 16 });
    // The probe maps nothing, but a domain keeps its grant table mapped like any guest would.
    const fd = openSync(p.grantTablePath, 'r+');
    try { views.push(nativeMem.mapRange(fd, 0, p.maxGrantFrames, true)); } finally { closeSync(fd); }
    probe = await WireClient.connect(hv.url, p.domid, p.token, 'probe');
    const multi = await bootRef('ref-multilevel', ['multilevel']);
    const linked = await bootRef('ref-linked', ['linked']);
    steps.push(step);
    step = 'the DUT answers DMABUF_PEER_HELLO (10.4)';
    const helloReply = await probe.request('DMABUF_PEER_HELLO', { formats: ['multilevel', 'linked'], maxPriv: 4096, maxPages: 1 << 20 }, { dst: d.domid });
    if (helloReply.kind !== 'res') throw Object.assign(new Error(`${helloReply.kind} ${JSON.stringify(helloReply.body)}`), { rule: '10.4' });
    const hello = helloReply.body as DomainSuiteContext['hello'];
    layers = hello.layers;
    steps.push(`${step}: format ${hello.format}, formats ${JSON.stringify(hello.formats)}, maxPriv ${hello.maxPriv}, maxPages ${hello.maxPages}, layers ${layers ? JSON.stringify(layers) : '(not said)'}`);
    liveness = { ok: true, hello: { version: 0, domid: d.domid, caps: [], maxFrameBytes: 0, maxBatch: 0 }, steps };

    const ctx: DomainSuiteContext = {
      timeoutMs: o.timeoutMs, dut: { domid: d.domid, agent }, probe, probeDomid: p.domid, control, multi, linked, hello,
      spawnRef: (name) => bootRef(name, ['multilevel', 'linked']),
      async killRef(ref) {
        killed.add(ref);
        await control!.call('DOMAIN_DESTROY', { domid: ref.domid });
        await closeRef(ref);
      },
    };
    for (const c of selected(DOMAIN_CHECKS, o.only)) checks.push(await runCheck(c, ctx, layers));
    const pass = checks.filter((c) => c.state === 'pass').length;
    say(`  ${FILE}: ${pass} passed, ${checks.filter((c) => c.state === 'fail').length} failed, ${checks.filter((c) => c.state === 'skip').length} not applicable`);
  } catch (e) {
    const rule = (e as { rule?: string }).rule ?? (step.startsWith('start the DUT') ? 'B.2' : '-');
    liveness = { ok: false, steps, failedStep: step, rule, sent: step, got: (e as Error)?.message ?? String(e) };
  }

  // Teardown: every problem is one failed check of its own.
  const problems: string[] = [];
  const log: string[] = [];
  if (agent) {
    const exit = await agent.stop(5_000);
    log.push(...agent.log);
    if (!exit.asked || exit.code !== 0) problems.push(`the DUT did not exit 0 after the shutdown command (Appendix B.3): ${exit.signal ?? `exit ${exit.code}`}${exit.asked ? '' : ', shutdown not answered'}`);
  }
  for (const r of refs) if (!killed.has(r)) await closeRef(r);
  log.push(...refLog);
  if (control && !control.isClosed) {
    const stats = await control.call<{ domains: { domid: number; name: string; busyGrants: number; mappings: number }[]; routedPending: number }>('HV_STATS', {})
      .catch((e: unknown) => { problems.push(`HV_STATS could not be read after every domain let go, so nothing left behind is not shown: ${String(e)}`); return undefined; });
    const left = stats?.domains.filter((x) => x.busyGrants !== 0 || x.mappings !== 0) ?? [];
    if (left.length > 0) problems.push(`busy grants or mappings left after every domain let go (SPEC 11.1 rule 5, 11.2 rule 5): ${JSON.stringify(left)}`);
  }
  for (const c of [probe, control]) if (c && !c.isClosed) await c.close().catch(() => c.terminate());
  for (const v of views) nativeMem.unmap(v);
  if (hv) {
    const exit = await hv.child.reap(10_000);
    const files = readdirSync('/dev/shm').filter((n) => n.startsWith(`${hv!.runTag}-`));
    if (exit.code !== 0) problems.push(`our backend exited with ${exit.code}`);
    if (files.length > 0) problems.push(`files of the run left in /dev/shm: ${files.join(', ')}`);
  }
  if (liveness.ok) {
    checks.push({
      section: '11 The life of a buffer', rule: 'teardown (11.1 rule 5, 11.2 rule 5, Appendix B.3)', name: `${FILE}: nothing left behind once every domain let go; the DUT exits when asked`,
      file: FILE, state: problems.length === 0 ? 'pass' : 'fail', durationMs: 0, ...(problems.length ? { message: problems.join('\n') } : {}),
    });
  }
  return { liveness, checks, ...(layers ? { layers } : {}), log };
}

function selected(all: readonly DomainCheck[], only: string[] | undefined): DomainCheck[] {
  if (!only || only.length === 0) return [...all];
  return all.filter((c) => only.some((p) => c.rule.startsWith(p) || c.section.startsWith(p)));
}

async function runCheck(c: DomainCheck, ctx: DomainSuiteContext, layers: string[] | undefined): Promise<CheckResult> {
  const base = { section: c.section, rule: c.rule, name: c.name, file: FILE };
  if (c.layer && !(layers ?? []).includes(c.layer)) {
    return { ...base, state: 'skip', durationMs: 0, message: `not applicable: the domain does not announce the ${c.layer} layer in DMABUF_PEER_HELLO layers (${layers ? JSON.stringify(layers) : 'not said'})` };
  }
  clearTranscripts();
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = ctx.timeoutMs * 6;
    await Promise.race([c.run(ctx), new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the check did not finish within ${limit} ms`)), limit); })]);
    return { ...base, state: 'pass', durationMs: Math.round(performance.now() - t0) };
  } catch (e) {
    if (e instanceof NotApplicable) return { ...base, state: 'skip', durationMs: Math.round(performance.now() - t0), message: `not applicable: ${e.message}` };
    return { ...base, state: 'fail', durationMs: Math.round(performance.now() - t0), message: (e as Error)?.message ?? String(e), transcript: recentTranscript() };
  } finally {
    clearTimeout(timer);
  }
}
