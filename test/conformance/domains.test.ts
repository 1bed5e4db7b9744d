/**
 * Conformance, SPEC.md section 9: domain states, DOMAIN_CREATE and
 * DOMAIN_DESTROY, the death cascade (9.2), the shared-memory files (9.3)
 * and HV_STATS (9.4).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GNTCOPY, GNTMAP, GNTST, GTF, PAGE_SIZE } from '../../protocol/index.ts';
import { domainDied, useBackend, type Guest } from './support/harness.ts';

const hv = useBackend();

const RW = GNTMAP.host_map;
const RO = GNTMAP.host_map | GNTMAP.readonly;

interface MapReply { status: number[]; handle: number[]; frame: number[]; ramPath: string }
function map(g: Guest, dom: number, refs: number[], flags = RW): Promise<MapReply> {
  return g.client.call<MapReply>('GNTTAB_MAP_GRANT_REF', { dom, flags, refs });
}
async function unmap(g: Guest, handles: number[]): Promise<number[]> {
  return (await g.client.call<{ status: number[] }>('GNTTAB_UNMAP_GRANT_REF', { handles })).status;
}
function publish(g: Guest, first: number, n: number, grantee: number, readonly: boolean): number[] {
  const refs: number[] = [];
  for (let r = first; r < first + n; r++) {
    g.table.publish(r, grantee, r % g.memPages, readonly);
    refs.push(r);
  }
  return refs;
}
function flagsOf(g: Guest, ref: number): number {
  return g.table.loadHeader(ref).flags;
}
/** A guest id no domain of the target has now. */
async function freeDomid(): Promise<number> {
  const used = new Set((await hv.stats()).domains.map((d) => d.domid));
  let id = 0x7fef;
  while (used.has(id)) id--;
  return id;
}

describe('SPEC 9 domains', () => {
  it('9.1, 9.3 rule 1, 12 DOMAIN_CREATE: a new domain is created (not connected) with a token and two zero-filled files of mode 0600 named <dir>/<tag>-d<domid>-ram and -gnttab', async () => {
    const g = await hv.guest({ memPages: 3, maxGrantFrames: 5, connect: false });
    expect(g.token.length).toBeGreaterThan(0);
    expect(g.maxGrantFrames).toBe(5);
    const ram = basename(g.ramPath).match(/^(.+)-d(\d+)-ram$/);
    const gnt = basename(g.grantTablePath).match(/^(.+)-d(\d+)-gnttab$/);
    expect(ram?.[2]).toBe(String(g.domid));
    expect(gnt?.[2]).toBe(String(g.domid));
    expect(gnt?.[1]).toBe(ram?.[1]);
    expect(dirname(g.grantTablePath)).toBe(dirname(g.ramPath));
    for (const [path, bytes] of [[g.ramPath, 3 * PAGE_SIZE], [g.grantTablePath, 5 * PAGE_SIZE]] as const) {
      const st = statSync(path);
      expect(st.size, path).toBe(bytes);
      expect(st.mode & 0o777, path).toBe(0o600);
      expect(readFileSync(path).every((x) => x === 0), `${path} is zero-filled`).toBe(true);
    }
    const stats = await hv.stats();
    expect(stats.domains.find((d) => d.domid === g.domid)).toEqual({
      domid: g.domid, name: g.name, state: 'created', connected: false, grantsInUse: 0, busyGrants: 0, mappings: 0, ports: 0,
    });
    expect(stats.shmFiles).toEqual(expect.arrayContaining([g.ramPath, g.grantTablePath]));
    await g.connect();
    expect(await hv.statsOf(g.domid)).toMatchObject({ state: 'running', connected: true });
  });

  it('9.1, 12 DOMAIN_CREATE: a wanted domid is given when free; when it exists: ERR_BAD_ARGUMENT', async () => {
    const wanted = await freeDomid();
    const g = await hv.guest({ domid: wanted, connect: false });
    expect(g.domid).toBe(wanted);
    const again = await hv.control.refused('DOMAIN_CREATE', { name: 'twin', memPages: 1, domid: wanted });
    expect(again.body.code).toBe('ERR_BAD_ARGUMENT');
    expect(await hv.statsOf(wanted)).toMatchObject({ name: g.name, state: 'created' });
  });

  it('9.2: a dying mapper\'s mappings are released (busy bits cleared, the granter can end access), its ports closed, every other connected domain told DOMAIN_DIED with mappingsReleased, its files removed, and it cannot come back', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const watcher = await hv.guest();
    const refs = publish(a, 1, 100, b.domid, false);
    const m = await map(b, a.domid, refs, RW);
    const ro = await map(b, a.domid, [1], RO);
    expect([...m.status, ...ro.status].every((s) => s === GNTST.okay)).toBe(true);
    const p = (await a.client.call<{ port: number }>('EVTCHN_ALLOC_UNBOUND', { remoteDom: b.domid })).port;
    await b.client.call('EVTCHN_BIND_INTERDOMAIN', { remoteDom: a.domid, remotePort: p });
    expect(a.table.endAccess(1)).toBe('busy');
    const toA = domainDied(a.client, b.domid);
    const toWatcher = domainDied(watcher.client, b.domid);
    const toControl = domainDied(hv.control, b.domid);
    b.client.terminate(); // as a killed process: no closing handshake
    const died = { domid: b.domid, reason: 'disconnected', mappingsReleased: 101 };
    expect(await toA).toEqual(died);
    expect(await toWatcher).toEqual(died);
    expect(await toControl).toEqual(died);
    // The cascade was done before DOMAIN_DIED: bits clear, ports unbound.
    expect(refs.filter((r) => flagsOf(a, r) !== GTF.permit_access)).toEqual([]);
    expect(refs.map((r) => a.table.endAccess(r)).filter((x) => x !== 'ended')).toEqual([]);
    expect(await a.client.call('EVTCHN_STATUS', { port: p })).toEqual({ state: 'unbound', remoteDom: b.domid });
    expect(await hv.statsOf(b.domid)).toBeUndefined();
    expect(await hv.statsOf(a.domid)).toMatchObject({ busyGrants: 0, grantsInUse: 0 });
    expect([existsSync(b.ramPath), existsSync(b.grantTablePath)]).toEqual([false, false]);
    const revenant = await hv.open('revenant');
    expect((await revenant.hello(b.domid, b.token)).body).toMatchObject({ code: 'ERR_NO_SUCH_DOMAIN' });
  });

  it('9.1, 9.2: DOMAIN_DESTROY answers after the cascade, closes the domain\'s connection with 1000, and tells the others (reason destroyed); a second one gets ERR_NO_SUCH_DOMAIN; a domain that never connected can be destroyed', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    a.table.publish(1, b.domid, 1, false);
    await map(b, a.domid, [1], RW);
    expect(flagsOf(a, 1)).toBe(GTF.permit_access | GTF.reading | GTF.writing);
    const toA = domainDied(a.client, b.domid);
    expect(await hv.control.call('DOMAIN_DESTROY', { domid: b.domid })).toEqual({});
    // The reply comes after the cascade: the busy bits are already clear.
    expect(flagsOf(a, 1)).toBe(GTF.permit_access);
    expect(await b.client.closeCode()).toBe(1000);
    expect(await toA).toEqual({ domid: b.domid, reason: 'destroyed', mappingsReleased: 1 });
    expect((await hv.control.refused('DOMAIN_DESTROY', { domid: b.domid })).body.code).toBe('ERR_NO_SUCH_DOMAIN');
    expect((await hv.control.refused('DOMAIN_DESTROY', { domid: await freeDomid() })).body.code).toBe('ERR_NO_SUCH_DOMAIN');
    const idle = await hv.guest({ connect: false });
    const idleDied = domainDied(a.client, idle.domid);
    expect(await hv.control.call('DOMAIN_DESTROY', { domid: idle.domid })).toEqual({});
    expect(await idleDied).toEqual({ domid: idle.domid, reason: 'destroyed', mappingsReleased: 0 });
    expect([existsSync(idle.ramPath), existsSync(idle.grantTablePath)]).toEqual([false, false]);
    const late = await hv.open('late');
    expect((await late.hello(idle.domid, idle.token)).body).toMatchObject({ code: 'ERR_NO_SUCH_DOMAIN' });
  });

  it('9.1 rules 3-4, 9.2, 9.3 rule 2, 7.5 rule 4: a dead granter stays listed (dead) with its files while its pages are mapped, the mappings still work, it is no valid granter or port peer, and its files go at the last unmap', async () => {
    const a = await hv.guest({ memPages: 8 });
    const b = await hv.guest({ memPages: 8 });
    a.ram.fill(0x77, 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    a.table.publish(1, b.domid, 2, true);
    a.table.publish(2, b.domid, 3, false);
    const m = await map(b, a.domid, [1, 2], RO);
    const died = domainDied(b.client, a.domid);
    a.client.terminate();
    expect(await died).toEqual({ domid: a.domid, reason: 'disconnected', mappingsReleased: 0 });
    expect(await hv.statsOf(a.domid)).toMatchObject({ state: 'dead', connected: false, busyGrants: 2 });
    expect((await hv.stats()).shmFiles).toEqual(expect.arrayContaining([a.ramPath, a.grantTablePath]));
    // The mapping is untouched: the page still reads as the granter left it.
    const view = hv.mapPages(m.ramPath, [m.frame[0]!], false);
    expect(new Uint8Array(view).every((x) => x === 0x77)).toBe(true);
    hv.unmap(view);
    // Dead: not a granter (map, copy), not a port peer.
    expect((await map(b, a.domid, [1], RO)).status).toEqual([GNTST.bad_domain]);
    const copy = await b.client.call<{ status: number[] }>('GNTTAB_COPY', { ops: [{ source: { ref: 1, dom: a.domid, offset: 0 }, dest: { ref: 0, dom: b.domid, offset: 0 }, len: 8, flags: GNTCOPY.source_gref }] });
    expect(copy.status).toEqual([GNTST.bad_domain]);
    expect((await b.client.refused('EVTCHN_ALLOC_UNBOUND', { remoteDom: a.domid })).body.code).toBe('ERR_NO_SUCH_DOMAIN');
    expect((await hv.control.refused('DOMAIN_DESTROY', { domid: a.domid })).body.code).toBe('ERR_NO_SUCH_DOMAIN');
    // One unmap is not the last.
    expect(await unmap(b, [m.handle[0]!])).toEqual([GNTST.okay]);
    expect([existsSync(a.ramPath), existsSync(a.grantTablePath)]).toEqual([true, true]);
    expect(await unmap(b, [m.handle[1]!])).toEqual([GNTST.okay]);
    expect([existsSync(a.ramPath), existsSync(a.grantTablePath)]).toEqual([false, false]);
    expect(await hv.statsOf(a.domid)).toBeUndefined();
  });

  it('9.3 rule 2: a dead granter\'s files go when its last mapper dies', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    a.table.publish(1, b.domid, 1, false);
    await map(b, a.domid, [1], RW);
    const aDied = domainDied(hv.control, a.domid);
    a.client.terminate();
    await aDied;
    expect(await hv.statsOf(a.domid)).toMatchObject({ state: 'dead' });
    const bDied = domainDied(hv.control, b.domid);
    await b.client.close();
    expect(await bDied).toEqual({ domid: b.domid, reason: 'disconnected', mappingsReleased: 1 });
    const stats = await hv.stats();
    expect(stats.domains.filter((d) => d.domid === a.domid || d.domid === b.domid)).toEqual([]);
    expect(stats.shmFiles.filter((f) => [a.ramPath, a.grantTablePath, b.ramPath, b.grantTablePath].includes(f))).toEqual([]);
    expect([a.ramPath, a.grantTablePath, b.ramPath, b.grantTablePath].filter((f) => existsSync(f))).toEqual([]);
  });

  it('9.2 step 3: a maptrack of 30,000 entries is released by one cascade, every entry counted in DOMAIN_DIED', async () => {
    const a = await hv.guest({ memPages: 64 });
    const b = await hv.guest();
    await a.client.call('GNTTAB_SETUP_TABLE', { nrFrames: 64 });
    const refs = publish(a, 1, 30_000, b.domid, true);
    const m = await map(b, a.domid, refs, RO);
    expect(m.status.filter((s) => s !== GNTST.okay)).toEqual([]);
    expect(await hv.statsOf(a.domid)).toMatchObject({ busyGrants: 30_000 });
    const died = domainDied(a.client, b.domid);
    b.client.terminate();
    expect(await died).toEqual({ domid: b.domid, reason: 'disconnected', mappingsReleased: 30_000 });
    expect(await hv.statsOf(a.domid)).toMatchObject({ busyGrants: 0, grantsInUse: 30_000 });
  });

  it('9.4: HV_STATS lists every guest not yet removed (not the control domain) with its state, connection, grants in use and busy (within nrFrames x 512), mappings and ports; shmFiles; routedPending', async () => {
    const a = await hv.guest();
    const b = await hv.guest();
    const idle = await hv.guest({ connect: false });
    publish(a, 1, 3, b.domid, true);
    a.table.publish(2100, b.domid, 1, true); // beyond the 4 frames in use: not counted
    const m = await map(b, a.domid, [1, 1, 2], RO);
    await a.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: b.domid });
    await a.client.call('EVTCHN_ALLOC_UNBOUND', { remoteDom: idle.domid });
    const pending = a.client.request('ECHO', { payload: new Uint8Array(1) }, { dst: b.domid });
    const fwd = await b.client.nextRequest('ECHO');
    const stats = await hv.stats();
    expect(stats.domains.map((d) => d.domid)).not.toContain(0);
    const of = (id: number) => stats.domains.find((d) => d.domid === id);
    expect(of(a.domid)).toEqual({ domid: a.domid, name: a.name, state: 'running', connected: true, grantsInUse: 3, busyGrants: 2, mappings: 0, ports: 2 });
    expect(of(b.domid)).toEqual({ domid: b.domid, name: b.name, state: 'running', connected: true, grantsInUse: 0, busyGrants: 0, mappings: 3, ports: 0 });
    expect(of(idle.domid)).toMatchObject({ state: 'created', connected: false, ports: 0 });
    expect(stats.shmFiles).toEqual(expect.arrayContaining([a.ramPath, a.grantTablePath, b.ramPath, b.grantTablePath, idle.ramPath, idle.grantTablePath]));
    expect(stats.routedPending).toBe(1);
    b.client.send({ v: 1, kind: 'res', type: 'ECHO', id: fwd.id, dst: a.domid, body: { payload: new Uint8Array(1) } });
    expect((await pending).kind).toBe('res');
    expect(await unmap(b, m.handle)).toEqual([GNTST.okay, GNTST.okay, GNTST.okay]);
    const after = await hv.stats();
    expect(after.routedPending).toBe(0);
    expect(after.domains.find((d) => d.domid === a.domid)).toMatchObject({ busyGrants: 0 });
    expect(after.domains.find((d) => d.domid === b.domid)).toMatchObject({ mappings: 0 });
  });

  it('9.4, 12 HV_STATS over v1: exactly the fields of v1 (no field v2 added, so a strict v1 receiver accepts it)', async () => {
    await hv.guest();
    const stats = await hv.stats();
    expect(Object.keys(stats).sort()).toEqual(['domains', 'routedPending', 'shmFiles']);
    for (const d of stats.domains) expect(Object.keys(d).sort()).toEqual(['busyGrants', 'connected', 'domid', 'grantsInUse', 'mappings', 'name', 'ports', 'state']);
  });

  it('9.4, 12 HV_STATS (v2): v1\'s fields, and mappingsOfDead per domain, internalErrors and traffic', async () => {
    const a = await hv.guest({ maxVersion: 2 });
    // One frame after HELLO (frames before a successful HELLO count for no domain, 9.4).
    await a.client.call('PING', { nonce: 1 });
    const control = await hv.reconnectControl(2);
    try {
      const reply = await control.call<Record<string, unknown> & { domains: Record<string, unknown>[]; traffic: Record<string, unknown>[] }>('HV_STATS', {});
      expect(Object.keys(reply).sort()).toEqual(['domains', 'internalErrors', 'routedPending', 'shmFiles', 'traffic']);
      expect(reply.domains.find((d) => d.domid === a.domid)).toEqual({
        domid: a.domid, name: a.name, state: 'running', connected: true, grantsInUse: 0, busyGrants: 0, mappings: 0, mappingsOfDead: 0, ports: 0,
      });
      expect(reply.internalErrors).toBe(0);
      const t = reply.traffic.find((x) => x.domid === a.domid);
      expect(t, 'a domain that had a session is listed in traffic').toBeDefined();
      expect(t!.framesIn as number).toBeGreaterThanOrEqual(1);
    } finally {
      await hv.reconnectControl(1);
    }
  });
});
