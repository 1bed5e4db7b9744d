/**
 * Unit tests of the foreign mapper against a stand-in backend (no socket):
 * one round trip per batch, contiguous views in ref order, per-entry
 * failures undone (XSA-361), and unmap order (view detached before the
 * handles are released). The granter's RAM is a real tmpfs file.
 */
import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GNTMAP, GNTST } from '../../protocol/grant-abi.ts';
import { PAGE_SIZE } from '../../protocol/limits.ts';
import type { RequestDecl } from '../../protocol/message.ts';
import { GrantBatchError } from '../../src/guest/errors.ts';
import { ForeignMapper } from '../../src/guest/foreign-mapper.ts';
import type { ForeignMapping } from '../../src/guest/foreign-mapping.ts';
import { copyPages } from '../../src/guest/grant-copy.ts';
import type { Hypercaller } from '../../src/guest/hypercalls.ts';
import { nativeMem } from '../../src/memory/native.ts';

const files: string[] = [];
afterEach(() => { for (const f of files.splice(0)) unlinkSync(f); });

let seq = 0;
/** A RAM file of n pages whose page p starts with the byte p + 1. */
function ramFile(n: number): string {
  const path = `/dev/shm/hdmabuf-mapper-test-${process.pid}-${seq++}`;
  const fd = openSync(path, 'w+', 0o600);
  ftruncateSync(fd, n * PAGE_SIZE);
  for (let p = 0; p < n; p++) writeSync(fd, Uint8Array.of(p + 1), 0, 1, p * PAGE_SIZE);
  closeSync(fd);
  files.push(path);
  return path;
}

interface Call { type: string; body: Record<string, unknown>; viewBytesAtCall?: number }

/** A backend stand-in: ref r of dom 1 is frame grants.get(r), or a status if negative. */
class FakeHv implements Hypercaller {
  readonly domid = 2;
  readonly calls: Call[] = [];
  nextHandle = 100;
  closed = false;
  watch: ForeignMapping | undefined;
  constructor(readonly maxBatch: number, readonly ramPath: string, readonly grants: Map<number, number>) {}

  async call(decl: RequestDecl, body: Record<string, unknown>): Promise<never> {
    this.calls.push({ type: decl.type, body, ...(this.watch ? { viewBytesAtCall: this.watch.view.byteLength } : {}) });
    if (this.closed) throw Object.assign(new Error('closed'), { code: 'ERR_CLOSED' });
    if (decl.type === 'GNTTAB_MAP_GRANT_REF') {
      const refs = body.refs as number[];
      const status = refs.map((r) => { const g = this.grants.get(r); return g === undefined ? GNTST.bad_gntref : g < 0 ? g : GNTST.okay; });
      return {
        status,
        handle: status.map((s) => (s === 0 ? this.nextHandle++ : 0xffffffff)),
        frame: refs.map((r, i) => (status[i] === 0 ? this.grants.get(r)! : 0)),
        ramPath: this.ramPath,
      } as never;
    }
    if (decl.type === 'GNTTAB_UNMAP_GRANT_REF') return { status: (body.handles as number[]).map(() => GNTST.okay) } as never;
    if (decl.type === 'GNTTAB_COPY') return { status: (body.ops as unknown[]).map(() => GNTST.okay) } as never;
    throw new Error(`unexpected ${decl.type}`);
  }

  ofType(type: string): Call[] { return this.calls.filter((c) => c.type === type); }
}

function setup(maxBatch = 1024, pages = 64): { hv: FakeHv; mapper: ForeignMapper } {
  const grants = new Map<number, number>();
  // ref r -> frame (r * 7) % pages: scattered and out of order.
  for (let r = 1; r < pages; r++) grants.set(r, (r * 7) % pages);
  const hv = new FakeHv(maxBatch, ramFile(pages), grants);
  return { hv, mapper: new ForeignMapper(hv) };
}

describe('ForeignMapper', () => {
  it('maps a batch with one round trip into one contiguous view, in ref order', async () => {
    const { hv, mapper } = setup();
    const live = nativeMem.liveMappings();
    const refs = Array.from({ length: 40 }, (_, i) => i + 1);
    const m = await mapper.mapGrants(1, refs, { readonly: true });
    expect(hv.ofType('GNTTAB_MAP_GRANT_REF')).toHaveLength(1);
    expect(hv.calls[0]!.body).toMatchObject({ dom: 1, flags: GNTMAP.host_map | GNTMAP.readonly });
    expect(m.view.byteLength).toBe(40 * PAGE_SIZE);
    const bytes = new Uint8Array(m.view);
    refs.forEach((r, k) => expect(bytes[k * PAGE_SIZE]).toBe(((r * 7) % 64) + 1));
    expect(nativeMem.liveMappings()).toBe(live + 1);
    expect(mapper.stats()).toMatchObject({ mapRequests: 1, maps: 1, liveMappings: 1, livePages: 40, openFiles: 1 });
    await m.unmap();
    expect(nativeMem.liveMappings()).toBe(live);
  });

  it('splits a batch only past maxBatch', async () => {
    const { hv, mapper } = setup(16);
    const m = await mapper.mapGrants(1, Array.from({ length: 40 }, (_, i) => i + 1), { readonly: false });
    expect(hv.ofType('GNTTAB_MAP_GRANT_REF').map((c) => (c.body.refs as number[]).length)).toEqual([16, 16, 8]);
    expect(m.mapRequests).toBe(3);
    expect(hv.calls[0]!.body.flags).toBe(GNTMAP.host_map);
    await m.unmap();
    expect(hv.ofType('GNTTAB_UNMAP_GRANT_REF').map((c) => (c.body.handles as number[]).length)).toEqual([16, 16, 8]);
  });

  it('on any failed entry, releases every handle that succeeded and throws statuses by GNTST name', async () => {
    const { hv, mapper } = setup();
    hv.grants.set(5, GNTST.permission_denied);
    const live = nativeMem.liveMappings();
    const err = await mapper.mapGrants(1, [3, 5, 4, 999], { readonly: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GrantBatchError);
    const e = err as GrantBatchError;
    expect(e.code).toBe('ERR_GRANT_MAP');
    expect(e.statusNames).toEqual(['GNTST_okay', 'GNTST_permission_denied', 'GNTST_okay', 'GNTST_bad_gntref']);
    expect(e.message).toMatch(/2 of 4 entries failed/);
    expect(e.message).toMatch(/GNTST_permission_denied x1/);
    const unmaps = hv.ofType('GNTTAB_UNMAP_GRANT_REF');
    expect(unmaps).toHaveLength(1);
    expect(unmaps[0]!.body.handles).toEqual([100, 101]);
    expect(nativeMem.liveMappings()).toBe(live);
    expect(mapper.stats()).toMatchObject({ liveMappings: 0, failedMaps: 1 });
  });

  it('unmap detaches the view before releasing the handles, once, however often it is called', async () => {
    const { hv, mapper } = setup();
    const m = await mapper.mapGrants(1, [1, 2, 3], { readonly: false });
    hv.watch = m;
    const view = m.view;
    await Promise.all([m.unmap(), m.unmap()]);
    await m.unmap();
    const unmaps = hv.ofType('GNTTAB_UNMAP_GRANT_REF');
    expect(unmaps).toHaveLength(1);
    expect(unmaps[0]!.viewBytesAtCall).toBe(0);
    expect(view.byteLength).toBe(0);
    expect(m.state).toBe('unmapped');
    expect(mapper.stats()).toMatchObject({ liveMappings: 0 });
  });

  it('treats a closed connection as released (the backend drops a dead domain\'s mappings)', async () => {
    const { hv, mapper } = setup();
    const m = await mapper.mapGrants(1, [1, 2], { readonly: true });
    hv.closed = true;
    await expect(m.unmap()).resolves.toBeUndefined();
    expect(m.view.byteLength).toBe(0);
  });

  it('reopens a dead peer\'s RAM file only for new maps, and closes it when its last mapping goes', async () => {
    const { mapper } = setup();
    const a = await mapper.mapGrants(1, [1], { readonly: true });
    mapper.onPeerDied(1);
    expect(mapper.stats().openFiles).toBe(1); // still used by a
    const b = await mapper.mapGrants(1, [2], { readonly: true });
    expect(mapper.stats().openFiles).toBe(2);
    await a.unmap();
    expect(mapper.stats().openFiles).toBe(1);
    await mapper.unmapAll();
    expect(b.view.byteLength).toBe(0);
    expect(mapper.stats()).toMatchObject({ openFiles: 0, liveMappings: 0 });
  });

  it('copies whole pages with GNTTAB_COPY in one round trip', async () => {
    const { hv } = setup();
    await copyPages(hv, 'from-grants', 1, [4, 5], [10, 11]);
    const [copy] = hv.ofType('GNTTAB_COPY');
    expect(copy!.body.ops).toEqual([
      { source: { ref: 4, dom: 1, offset: 0 }, dest: { ref: 10, dom: 2, offset: 0 }, len: PAGE_SIZE, flags: 1 },
      { source: { ref: 5, dom: 1, offset: 0 }, dest: { ref: 11, dom: 2, offset: 0 }, len: PAGE_SIZE, flags: 1 },
    ]);
  });
});
