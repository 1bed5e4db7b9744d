/**
 * One backend per test file, and the domains its tests create.
 *
 *   const hv = useBackend();          // in the file's top level
 *   it('...', async () => {
 *     const a = await hv.guest();      // DOMAIN_CREATE, files mapped, HELLO
 *     a.table.publish(1, b.domid, 5, false);
 *   });
 *
 * A "domain" is only a raw client in the test process: DOMAIN_CREATE by the
 * control domain, the domain's RAM and grant-table files mapped with the
 * native addon exactly where the reply says they are, and a WireClient that
 * said HELLO. The test writes grant entries itself, following SPEC 7.2.
 *
 * After the file (afterAll), in this order, whatever failed before:
 *  1. no frame the backend sent broke SPEC 3-4 (WireClient.violations);
 *  2. HV_STATS (SPEC 9.4): every domain this file created has no busy grant
 *     and no mapping, and no routed request is pending;
 *  3. every domain this file created that is still created or running is
 *     destroyed (DOMAIN_DESTROY, answered after its cascade); HV_STATS then
 *     lists none of them and their files are gone (SPEC 9.3 rule 2);
 *  4. connections closed, the test's own mappings unmapped;
 *  5. our own backend process (not an external target) is stopped: a domain
 *     connected at that moment sees close 1001, the process exits with 0,
 *     and no file of its run is left (SPEC 9.3 rule 3).
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import type { Envelope } from '../../../protocol/index.ts';
import { GrantTableView } from '../../../src/memory/grant-table-view.ts';
import { nativeMem } from '../../../src/memory/native.ts';
import { startTarget, type Target } from './target.ts';
import { clearTranscripts, recentTranscript, WireClient, type ErrBody } from './wire.ts';

declare module 'vitest' {
  interface TaskMeta {
    /** The last frames each connection sent and received when the test failed (`hdmabuf conformance` prints them). */
    transcript?: string[];
  }
}

/** DOMAIN_CREATE's reply (SPEC 12). */
export interface DomainCreated {
  domid: number;
  token: string;
  ramPath: string;
  grantTablePath: string;
  maxGrantFrames: number;
}

/** One HV_STATS domain entry (SPEC 9.4; mappingsOfDead over v2 only). */
export interface DomainStats {
  domid: number;
  name: string;
  state: 'created' | 'running' | 'dying' | 'dead';
  connected: boolean;
  grantsInUse: number;
  busyGrants: number;
  mappings: number;
  mappingsOfDead?: number;
  ports: number;
}

/** HV_STATS's reply. */
export interface HvStats { domains: DomainStats[]; shmFiles: string[]; routedPending: number }

/** A domain created by a test: its files mapped in the test process, and (once connected) its connection. */
export interface Guest extends DomainCreated {
  readonly name: string;
  readonly memPages: number;
  /** The domain's grant table, as the domain itself sees it. */
  readonly table: GrantTableView;
  /** The same memory as 32-bit words (word 2*ref: flags|domid<<16, word 2*ref+1: frame), for writes a misbehaving granter makes. */
  readonly words: Int32Array;
  /** The domain's RAM, read-write. */
  readonly ram: Uint8Array;
  /** Its connection, after HELLO (undefined for a domain created with connect: false until connect()). */
  client: WireClient;
  /** Says HELLO for it on a new connection. */
  connect(): Promise<WireClient>;
}

/** Options of guest(). */
export interface GuestOptions {
  name?: string;
  memPages?: number;
  maxGrantFrames?: number;
  domid?: number;
  /** Say HELLO (default true). */
  connect?: boolean;
  /** Highest protocol version its HELLO offers (default 1). */
  maxVersion?: number;
}

/** The backend of one test file. */
export interface BackendUnderTest {
  readonly url: string;
  readonly controlToken: string;
  /** Our own backend process, or undefined for an external target. */
  readonly target: Target;
  /** The control domain's connection (domain 0), over version 1 unless reconnectControl chose another. */
  readonly control: WireClient;
  /** Closes the control connection and says HELLO again offering versions 1..maxVersion (the target has one control connection). */
  reconnectControl(maxVersion: number): Promise<WireClient>;
  /** Creates a domain (DOMAIN_CREATE), maps its files, and by default connects it. */
  guest(opts?: GuestOptions): Promise<Guest>;
  /** Opens a raw connection (not authenticated); terminated after the file. */
  open(label: string, opts?: { perMessageDeflate?: boolean }): Promise<WireClient>;
  /** HV_STATS. */
  stats(): Promise<HvStats>;
  /** One domain's HV_STATS entry (undefined when not listed). */
  statsOf(domid: number): Promise<DomainStats | undefined>;
  /** Maps pages of a shm file in the test process, as a domain maps what the backend told it (unmapped after the file). */
  mapPages(path: string, pages: number[], writable: boolean): ArrayBuffer;
  /** Unmaps a view made by mapPages (it is detached: byteLength 0). */
  unmap(buf: ArrayBuffer): void;
}

/** Registers the file's backend: started in beforeAll, checked and stopped in afterAll. */
export function useBackend(): BackendUnderTest {
  let target: Target | undefined;
  let control: WireClient | undefined;
  const clients: WireClient[] = [];
  const views = new Set<ArrayBuffer>();
  const created: Guest[] = [];
  let guestSerial = 0;

  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is not available: the backend did not start`);
    return v;
  };

  const mapFile = (path: string, pages: number[] | { whole: number }, writable: boolean): ArrayBuffer => {
    const fd = openSync(path, writable ? 'r+' : 'r');
    try {
      const buf = Array.isArray(pages)
        ? nativeMem.mapPages(fd, Uint32Array.from(pages), writable)
        : nativeMem.mapRange(fd, 0, pages.whole, writable);
      views.add(buf);
      return buf;
    } finally {
      closeSync(fd);
    }
  };

  const api: BackendUnderTest = {
    get url() { return need(target, 'url').url; },
    get controlToken() { return need(target, 'controlToken').controlToken; },
    get target() { return need(target, 'target'); },
    get control() { return need(control, 'control'); },

    async guest(opts = {}) {
      const name = opts.name ?? `conf-${++guestSerial}`;
      const memPages = opts.memPages ?? 256;
      const reply = await api.control.call<DomainCreated>('DOMAIN_CREATE', {
        name, memPages,
        ...(opts.maxGrantFrames !== undefined ? { maxGrantFrames: opts.maxGrantFrames } : {}),
        ...(opts.domid !== undefined ? { domid: opts.domid } : {}),
      });
      // Ids are reused once a dead domain is removed: news about the earlier holder of this id is stale now.
      const stale = (e: Envelope) => (e.type === 'DOMAIN_DIED' || e.type === 'DOMAIN_UP') && (e.body as { domid?: number }).domid === reply.domid;
      for (const c of clients) c.forget(stale);
      const tableBuf = mapFile(reply.grantTablePath, { whole: reply.maxGrantFrames }, true);
      const ramBuf = mapFile(reply.ramPath, { whole: memPages }, true);
      const g: Guest = {
        ...reply, name, memPages,
        table: new GrantTableView(tableBuf),
        words: new Int32Array(tableBuf),
        ram: new Uint8Array(ramBuf),
        client: undefined as unknown as WireClient,
        async connect() {
          const c = await WireClient.connect(api.url, reply.domid, reply.token, `d${reply.domid}`, opts.maxVersion !== undefined ? { maxVersion: opts.maxVersion } : {});
          clients.push(c);
          g.client = c;
          return c;
        },
      };
      created.push(g);
      if (opts.connect !== false) await g.connect();
      return g;
    },

    async reconnectControl(maxVersion) {
      const old = api.control;
      await old.close();
      control = await WireClient.reconnect(api.url, 0, api.controlToken, `control-v${maxVersion}`, { maxVersion });
      clients.push(control);
      return control;
    },

    async open(label, opts = {}) {
      const c = await WireClient.open(api.url, label, opts);
      clients.push(c);
      return c;
    },

    stats() {
      return api.control.call<HvStats>('HV_STATS', {});
    },

    async statsOf(domid) {
      return (await api.stats()).domains.find((d) => d.domid === domid);
    },

    mapPages(path, pages, writable) {
      return mapFile(path, pages, writable);
    },

    unmap(buf) {
      if (views.delete(buf)) nativeMem.unmap(buf);
    },
  };

  // A failed check names what was sent and what came back: the last frames of every connection.
  beforeEach((ctx) => {
    clearTranscripts();
    ctx.onTestFailed(() => { ctx.task.meta.transcript = recentTranscript(); });
  });

  beforeAll(async () => {
    target = await startTarget();
    try {
      control = await WireClient.connect(target.url, 0, target.controlToken, 'control');
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_ALREADY_CONNECTED') {
        throw new Error('the target already has a live control connection: run the conformance files one at a time (--no-file-parallelism) and close any other toolstack', { cause: e });
      }
      throw e;
    }
    clients.push(control);
  }, 60_000);

  afterAll(async () => {
    const problems: string[] = [];
    const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error)?.message ?? String(e)}`);
      }
    };
    const ours = new Set(created.map((g) => g.domid));
    if (control && !control.isClosed) {
      await step('HV_STATS after the file (SPEC 9.4)', async () => {
        const stats = await api.stats();
        const leaks = stats.domains
          .filter((d) => ours.has(d.domid) && (d.busyGrants !== 0 || d.mappings !== 0))
          .map((d) => ({ domid: d.domid, busyGrants: d.busyGrants, mappings: d.mappings }));
        if (leaks.length > 0 || stats.routedPending !== 0) {
          throw new Error(`busy grants, mappings or routed requests left: ${JSON.stringify({ leaks, routedPending: stats.routedPending })}`);
        }
      });
      await step('destroying the file\'s domains (SPEC 9.1, 9.3)', async () => {
        const stats = await api.stats();
        for (const d of stats.domains.filter((x) => ours.has(x.domid) && (x.state === 'created' || x.state === 'running'))) {
          const reply = await api.control.request('DOMAIN_DESTROY', { domid: d.domid });
          // A domain whose connection closed meanwhile may already be dying.
          if (reply.kind === 'err') expect((reply.body as unknown as ErrBody).code).toBe('ERR_NO_SUCH_DOMAIN');
        }
        // Every cascade has finished once this answer comes: DOMAIN_DESTROY answers after its cascade,
        // and a connection-closed cascade is over when DOMAIN_DIED was sent; HV_STATS must list none.
        const after = await api.stats();
        const left = after.domains.filter((x) => ours.has(x.domid) && (x.state === 'created' || x.state === 'running' || x.mappings > 0));
        expect(left, 'domains of this file still alive or mapping').toEqual([]);
      });
    }
    // Before any other domain is created: a new one may reuse a removed domain's id, and so its file names.
    await step('files of removed domains (SPEC 9.3 rule 2)', () => {
      const stillThere = created.flatMap((g) => [g.ramPath, g.grantTablePath]).filter((p) => existsSync(p));
      expect(stillThere).toEqual([]);
    });
    // Our own backend: a domain connected at shutdown sees its connection closed with 1001 (SPEC 9.3 rule 3).
    let witness: WireClient | undefined;
    if (target?.own && control && !control.isClosed) {
      await step('a domain to witness the shutdown', async () => {
        const w = await api.control.call<DomainCreated>('DOMAIN_CREATE', { name: 'shutdown-witness', memPages: 1 });
        witness = await WireClient.connect(api.url, w.domid, w.token, 'witness');
      });
    }
    for (const c of clients) if (!c.isClosed) c.terminate();
    await step('connections closed', async () => { await Promise.all(clients.map((c) => c.closeCode().catch(() => 0))); });
    await step('frames the backend sent (SPEC 3-4)', () => {
      expect(clients.flatMap((c) => c.violations)).toEqual([]);
    });
    for (const v of views) nativeMem.unmap(v);
    views.clear();
    if (target) {
      await step('stopping our backend (SPEC 9.3 rule 3)', async () => {
        const witnessed = witness?.closeCode().catch((e: Error) => e.message);
        const { exitCode, leftFiles } = await target!.stop();
        expect(exitCode, 'backend exit code').toBe(0);
        expect(leftFiles, 'files of the run left after shutdown').toEqual([]);
        if (witnessed) expect(await witnessed, 'close code of a connection at shutdown').toBe(1001);
        if (witness) expect(witness.violations).toEqual([]);
      });
    }
    if (problems.length > 0) throw new Error(`teardown checks failed:\n- ${problems.join('\n- ')}`);
  }, 60_000);

  return api;
}

/** Waits for DOMAIN_DIED about `domid` on `client` (SPEC 9.2 step 5). */
export function domainDied(client: WireClient, domid: number): Promise<{ domid: number; reason: string; mappingsReleased: number }> {
  return client.nextEvent<{ domid: number; reason: string; mappingsReleased: number }>('DOMAIN_DIED', (b) => b.domid === domid).then((e) => e.body);
}
