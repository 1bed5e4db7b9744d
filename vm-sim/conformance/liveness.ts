/**
 * The liveness check that `hdmabuf conformance backend` runs before the
 * suite: can the target be spoken to at all? HELLO as the control domain
 * (section 5), PING (12), and one grant map between two fresh domains
 * (9.1 DOMAIN_CREATE, 7.2 granting, 7.4 map, 7.5 unmap, 9.1 DOMAIN_DESTROY).
 * If any step fails the suite would only repeat the failure in every
 * section, so the command stops with this step's verdict instead.
 *
 * Limits are read from the target's answers (HELLO's maxBatch and
 * maxFrameBytes, DOMAIN_CREATE's maxGrantFrames), never assumed.
 */
import { closeSync, openSync } from 'node:fs';
import { GNTMAP, GNTST } from '../../protocol/grant-abi.ts';
import { GrantTableView } from '../../src/memory/grant-table-view.ts';
import { nativeMem } from '../../src/memory/native.ts';
import { WireClient } from './wire.ts';

/** The HELLO answer the target gave the control domain. */
export interface HelloAnswer { version: number; domid: number; caps: string[]; maxFrameBytes: number; maxBatch: number }

/** The outcome of the liveness check. */
export type Liveness =
  | { ok: true; hello: HelloAnswer; steps: string[] }
  | { ok: false; hello?: HelloAnswer; steps: string[]; failedStep: string; rule: string; sent: string; got: string };

interface Created { domid: number; token: string; ramPath: string; grantTablePath: string; maxGrantFrames: number }

class StepFailed extends Error {
  constructor(readonly rule: string, readonly sent: string, readonly got: string) { super(got); }
}

const show = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `<${x.length} bytes>` : x));

/** Runs the liveness check against `url` with the control domain's token. Never throws. */
export async function checkLiveness(url: string, controlToken: string): Promise<Liveness> {
  const steps: string[] = [];
  let step = 'connect';
  let hello: HelloAnswer | undefined;
  const clients: WireClient[] = [];
  const views: ArrayBuffer[] = [];
  const created: number[] = [];
  let control: WireClient | undefined;
  const request = async (c: WireClient, rule: string, type: string, body: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const sent = `${type} ${show(body)}`;
    let reply;
    try {
      reply = await c.request(type, body);
    } catch (e) {
      throw new StepFailed(rule, sent, (e as Error).message);
    }
    if (reply.kind !== 'res') throw new StepFailed(rule, sent, `${reply.kind} ${show(reply.body)}`);
    return reply.body;
  };
  try {
    step = `open a WebSocket to ${url} (3.1)`;
    try {
      control = await WireClient.open(url, 'control');
    } catch (e) {
      throw new StepFailed('3.1', `WebSocket upgrade to ${url}`, (e as Error).message);
    }
    clients.push(control);
    steps.push(step);
    step = 'HELLO as the control domain (5)';
    const helloBody = { minVersion: 1, maxVersion: 1, domid: 0, token: '<control token>', caps: ['gnttab.v1'] };
    const reply = await control.hello(0, controlToken).catch((e: Error) => { throw new StepFailed('5', `HELLO ${show(helloBody)}`, e.message); });
    if (reply.kind !== 'res') throw new StepFailed('5 rule 3', `HELLO ${show(helloBody)}`, `${reply.kind} ${show(reply.body)}`);
    hello = reply.body as unknown as HelloAnswer;
    steps.push(step);
    step = 'PING (12 PING)';
    const nonce = 0x5eed;
    const pong = await request(control, '12 PING', 'PING', { nonce });
    if (pong.nonce !== nonce) throw new StepFailed('12 PING', `PING ${show({ nonce })}`, `res ${show(pong)}`);
    steps.push(step);
    step = 'DOMAIN_CREATE two domains and HELLO for each (9.1, 5)';
    const domains: { info: Created; client: WireClient; table: GrantTableView }[] = [];
    for (const name of ['live-a', 'live-b']) {
      const info = await request(control, '9.1', 'DOMAIN_CREATE', { name, memPages: 4 }) as unknown as Created;
      created.push(info.domid);
      const fd = openSync(info.grantTablePath, 'r+');
      let tableBuf: ArrayBuffer;
      try {
        tableBuf = nativeMem.mapRange(fd, 0, info.maxGrantFrames, true);
      } finally {
        closeSync(fd);
      }
      views.push(tableBuf);
      const client = await WireClient.open(url, `d${info.domid}`);
      clients.push(client);
      const r = await client.hello(info.domid, info.token);
      if (r.kind !== 'res') throw new StepFailed('5 rule 3', `HELLO for d${info.domid} with DOMAIN_CREATE's token`, `${r.kind} ${show(r.body)}`);
      domains.push({ info, client, table: new GrantTableView(tableBuf) });
    }
    steps.push(step);
    const [a, b] = domains as [typeof domains[0], typeof domains[0]];
    step = `d${a.info.domid} grants frame 1 to d${b.info.domid} (7.2); d${b.info.domid} maps it (7.4) and unmaps it (7.5)`;
    a.table.publish(1, b.info.domid, 1, false);
    const mapBody = { dom: a.info.domid, flags: GNTMAP.host_map, refs: [1] };
    const mapped = await request(b.client, '7.4', 'GNTTAB_MAP_GRANT_REF', mapBody) as { status: number[]; handle: number[]; frame: number[] };
    if (mapped.status[0] !== GNTST.okay || mapped.frame[0] !== 1) throw new StepFailed('7.4 check 8', `GNTTAB_MAP_GRANT_REF ${show(mapBody)}`, `res ${show(mapped)}`);
    if (!a.table.isBusy(1)) throw new StepFailed('7.4 pins and busy bits rule 3', `GNTTAB_MAP_GRANT_REF ${show(mapBody)}`, 'the granted entry has neither GTF_reading nor GTF_writing set after the map');
    const unmapBody = { handles: [mapped.handle[0]] };
    const unmapped = await request(b.client, '7.5', 'GNTTAB_UNMAP_GRANT_REF', unmapBody) as { status: number[] };
    if (unmapped.status[0] !== GNTST.okay) throw new StepFailed('7.5 rule 3', `GNTTAB_UNMAP_GRANT_REF ${show(unmapBody)}`, `res ${show(unmapped)}`);
    const ended = a.table.endAccess(1);
    if (ended !== 'ended') throw new StepFailed('7.4 pins and busy bits rule 4', `GNTTAB_UNMAP_GRANT_REF ${show(unmapBody)}`, `end of access after the last unmap: ${ended}`);
    steps.push(step);
    step = 'DOMAIN_DESTROY both (9.1)';
    for (const domid of created.splice(0)) await request(control, '9.1', 'DOMAIN_DESTROY', { domid });
    steps.push(step);
    return { ok: true, hello, steps };
  } catch (e) {
    const f = e instanceof StepFailed ? e : new StepFailed('-', step, (e as Error)?.message ?? String(e));
    return { ok: false, ...(hello ? { hello } : {}), steps, failedStep: step, rule: f.rule, sent: f.sent, got: f.got };
  } finally {
    // Whatever failed: leave no domain of ours behind (an err, e.g. already dying, is fine here).
    for (const domid of created) await control?.request('DOMAIN_DESTROY', { domid }).catch(() => undefined);
    for (const c of clients) if (!c.isClosed) await c.close().catch(() => c.terminate());
    for (const v of views) nativeMem.unmap(v);
  }
}
