/**
 * A buffer larger than 256 MiB (default 257 MiB: 65,792 pages). Its grants
 * do not fit Xen's default 64-frame grant table (32,768 entries), so the
 * exporting domain is created with a larger maxGrantFrames (DOMAIN_CREATE),
 * and its data pages do not fit one map batch (65,536 refs): over v1 the
 * importer maps them in more than one GNTTAB_MAP_GRANT_REF; over v2 one
 * GNTTAB_MAP_DIRECTORY maps them all and the backend slices the work (SPEC 7.7).
 */
import { MAX_BATCH, PAGE_SIZE } from '../../../protocol/limits.ts';
import { ENTRIES_PER_FRAME } from '../../../protocol/grant-abi.ts';
import { defineScenario, type Params } from '../types.ts';

const MiB = 1024 * 1024;
const pagesOf = (p: Params): number => Math.ceil((Number(p.mib) * MiB) / PAGE_SIZE);

export default defineScenario({
  name: 'big-buffer',
  description: 'a 257 MiB buffer: a larger grant table and more than one map batch',
  params: {
    mib: { type: 'integer', default: 257, minimum: 1, maximum: 4096, description: 'buffer size in MiB (above 256 needs more than one map batch)' },
  },
  domains: (p) => [
    // Directory pages (1 per 1,024 data refs, + the top page) and ref 0 need room too.
    { name: 'exporter', memory: Number(p.mib) * MiB + 32 * MiB, maxGrantFrames: Math.ceil((pagesOf(p) + Math.ceil(pagesOf(p) / 1024) + 2) / ENTRIES_PER_FRAME) + 16 },
    { name: 'importer', memory: '16MiB' },
  ],
  async run(ctx) {
    const pages = pagesOf(ctx.params);
    await ctx.step({ do: 'export', from: 'exporter', to: 'importer', buffer: 'big', bytes: pages * PAGE_SIZE });
    await ctx.step({ do: 'write', in: 'exporter', buffer: 'big', seed: 257 });
    type MapperStats = { kernel: { mapper: { mapRequests: number; directoryMaps?: number } } };
    const before = await ctx.vm('importer').call<MapperStats>('dmabuf.stats');
    await ctx.step({ do: 'import', into: 'importer', buffer: 'big', timeoutMs: 120_000 });
    const after = await ctx.vm('importer').call<MapperStats>('dmabuf.stats');
    const requests = after.kernel.mapper.mapRequests - before.kernel.mapper.mapRequests;
    const directoryMaps = (after.kernel.mapper.directoryMaps ?? 0) - (before.kernel.mapper.directoryMaps ?? 0);
    const dataBatches = Math.ceil(pages / MAX_BATCH);
    if (directoryMaps > 0) {
      // v2 (SPEC 7.7): one GNTTAB_MAP_DIRECTORY maps the whole buffer; the backend splits the work into slices itself.
      ctx.check(`mapped ${pages} pages with one GNTTAB_MAP_DIRECTORY (v2)`, requests === 1 && directoryMaps === 1, `${requests} map request(s), ${directoryMaps} directory map(s)`);
    } else {
      // v1: directory rounds plus data batches; the data alone needs ceil(pages / MAX_BATCH).
      ctx.check(`mapped ${pages} pages in ${dataBatches} data batch(es) of at most ${MAX_BATCH}`, requests >= dataBatches && (pages <= MAX_BATCH || dataBatches > 1), `${requests} GNTTAB_MAP_GRANT_REF requests (directory and data)`);
    }
    ctx.stat('bigBuffer', { pages, bytes: pages * PAGE_SIZE, mapRequests: requests, directoryMaps, dataBatches });
    await ctx.step({ do: 'verify', in: 'importer', buffer: 'big', seed: 257, timeoutMs: 120_000 });
    await ctx.step({ do: 'release', in: 'importer', buffer: 'big' });
    await ctx.step({ do: 'unexport', in: 'exporter', buffer: 'big', wait: 'released', timeoutMs: 120_000 });
    await ctx.step({ do: 'free', in: 'exporter', buffer: 'big' });
    await ctx.step({ do: 'call', in: 'exporter', cmd: 'dmabuf.stats', name: 'exporter: every page back, no grant left', expect: { kernel: { usedPages: 0, grants: { granted: 0, deferred: 0 } } } });
  },
});
