/**
 * The domain-death cascade: a dead mapper's mappings and busy bits are
 * released, its ports closed, peers told; a dead granter's files outlive it
 * while its pages are still mapped.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GNTMAP, GNTST, GTF, PAGE_SIZE } from '../../protocol/index.ts';
import { DOMAIN_DESTROY } from '../../protocol/messages/control.ts';
import { EVTCHN_ALLOC_UNBOUND, EVTCHN_BIND_INTERDOMAIN, EVTCHN_STATUS } from '../../protocol/messages/evtchn.ts';
import { GNTTAB_SETUP_TABLE } from '../../protocol/messages/grant.ts';
import { DOMAIN_DIED, PING } from '../../protocol/messages/session.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { connectControl, errorCode, mapRefs, nextEvent, publishRange, startBackend, startGuest, unmapHandles } from './helpers.ts';

describe('domain death', () => {
  it('releases a dead mapper\'s mappings, clears busy bits, closes its ports and tells the others', async () => {
    const hv = await startBackend();
    const ctl = await connectControl(hv);
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    const refs = publishRange(a.table, 1, 100, b.domid, false);
    const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map, refs });
    expect(m.status.every((s) => s === GNTST.okay)).toBe(true);
    const ro = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1] });
    expect(a.table.endAccess(1)).toBe('busy');
    const { port } = await a.client.call(EVTCHN_ALLOC_UNBOUND, { remoteDom: b.domid });
    await b.client.call(EVTCHN_BIND_INTERDOMAIN, { remoteDom: a.domid, remotePort: port });

    const toA = nextEvent(a.client, DOMAIN_DIED);
    const toCtl = nextEvent(ctl, DOMAIN_DIED);
    await b.client.conn.destroy(); // as if the process were killed
    const died = { domid: b.domid, reason: 'disconnected', mappingsReleased: 101 };
    expect(await toA).toEqual(died);
    expect(await toCtl).toEqual(died);
    expect(ro.status).toEqual([GNTST.okay]);
    for (const r of refs) expect(a.table.loadHeader(r).flags).toBe(GTF.permit_access);
    for (const r of refs) expect(a.table.endAccess(r)).toBe('ended');
    expect(await a.client.call(EVTCHN_STATUS, { port })).toEqual({ state: 'unbound', remoteDom: b.domid });
    // b is gone entirely: nothing of it maps anything, so its files went at once.
    const stats = hv.stats();
    expect(stats.domains.map((d) => d.domid)).toEqual([a.domid]);
    expect(stats.shmFiles).toEqual([a.created.grantTablePath, a.created.ramPath].sort());
    expect(existsSync(b.created.ramPath)).toBe(false);
    // A dead domain cannot come back.
    expect(await errorCode(HvClient.connect({ url: hv.url, domid: b.domid, token: b.created.token }))).toBe('ERR_NO_SUCH_DOMAIN');
  });

  it('keeps a dead granter\'s files while its pages are mapped, and removes them at the last unmap', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.ram.fill(0x77, 2 * PAGE_SIZE, 3 * PAGE_SIZE);
    a.table.publish(1, b.domid, 2, true);
    a.table.publish(2, b.domid, 3, false);
    const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1, 2] });
    const died = nextEvent(b.client, DOMAIN_DIED);
    await a.client.conn.destroy();
    expect(await died).toEqual({ domid: a.domid, reason: 'disconnected', mappingsReleased: 0 });
    expect(hv.stats().domains.find((d) => d.domid === a.domid)).toMatchObject({ state: 'dead', connected: false, busyGrants: 2 });
    expect(existsSync(a.created.ramPath)).toBe(true);
    // A dead granter accepts no new maps.
    expect((await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs: [1] })).status).toEqual([GNTST.bad_domain]);
    // Unmapping one is not enough.
    await unmapHandles(b.client, { handles: [m.handle[0]!] });
    expect(existsSync(a.created.ramPath)).toBe(true);
    expect((await unmapHandles(b.client, { handles: [m.handle[1]!] })).status).toEqual([GNTST.okay]);
    expect(existsSync(a.created.ramPath)).toBe(false);
    expect(existsSync(a.created.grantTablePath)).toBe(false);
    expect(hv.stats().domains.map((d) => d.domid)).toEqual([b.domid]);
  });

  it('removes a dead granter\'s files when the last mapper dies too', async () => {
    const hv = await startBackend();
    const ctl = await connectControl(hv);
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map, refs: [1] });
    const aDied = nextEvent(ctl, DOMAIN_DIED, (e) => e.domid === a.domid);
    await a.client.conn.destroy();
    await aDied;
    expect(hv.stats().shmFiles).toHaveLength(4);
    const bDied = nextEvent(ctl, DOMAIN_DIED, (e) => e.domid === b.domid);
    await b.client.close();
    expect(await bDied).toMatchObject({ mappingsReleased: 1 });
    expect(hv.stats()).toMatchObject({ domains: [], shmFiles: [], routedPending: 0, internalErrors: 0 });
  });

  it('DOMAIN_DESTROY closes the domain\'s connection and runs the same cascade', async () => {
    const hv = await startBackend();
    const ctl = await connectControl(hv);
    const a = await startGuest(hv);
    const b = await startGuest(hv);
    a.table.publish(1, b.domid, 1, false);
    await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map, refs: [1] });
    const closed = new Promise<number>((resolve) => b.client.once('close', (code: number) => resolve(code)));
    const toA = nextEvent(a.client, DOMAIN_DIED);
    await ctl.call(DOMAIN_DESTROY, { domid: b.domid });
    expect(await toA).toEqual({ domid: b.domid, reason: 'destroyed', mappingsReleased: 1 });
    expect(await closed).toBe(1000);
    expect(a.table.isBusy(1)).toBe(false);
    expect(await errorCode(ctl.call(DOMAIN_DESTROY, { domid: b.domid }))).toBe('ERR_NO_SUCH_DOMAIN');
    // A domain that never connected can be destroyed too.
    const idle = await startGuest(hv, { connect: false });
    await hv.destroyDomain(idle.domid);
    expect(existsSync(idle.created.ramPath)).toBe(false);
    await expect(a.client.call(PING, { nonce: 3 })).resolves.toEqual({ nonce: 3 });
  });

  it('releases a huge maptrack in chunks (XSA-380) and still reports every mapping', async () => {
    const hv = await startBackend();
    const a = await startGuest(hv, { memPages: 32768 });
    const b = await startGuest(hv);
    await a.client.call(GNTTAB_SETUP_TABLE, { nrFrames: 64 });
    const refs = publishRange(a.table, 1, 30000, b.domid, true);
    const m = await mapRefs(b.client, { dom: a.domid, flags: GNTMAP.host_map | GNTMAP.readonly, refs });
    expect(m.status.filter((s) => s !== GNTST.okay)).toEqual([]);
    expect(hv.stats().domains.find((d) => d.domid === a.domid)?.busyGrants).toBe(30000);
    const died = nextEvent(a.client, DOMAIN_DIED);
    await b.client.conn.destroy();
    expect(await died).toMatchObject({ mappingsReleased: 30000 });
    expect(hv.stats().domains.find((d) => d.domid === a.domid)?.busyGrants).toBe(0);
  });
});
