/**
 * Many concurrent exports: `count` one-page buffers exported to one
 * importer and all live at once (the original driver stopped at 1,000),
 * then all unexported and released, leaving no grant, page or file.
 */
import { ENTRIES_PER_FRAME } from '../../../protocol/grant-abi.ts';
import { PAGE_SIZE } from '../../../protocol/limits.ts';
import { defineScenario } from '../types.ts';

/** Grant refs and pages per one-page export: the data page and a two-page multilevel directory. */
const PER_EXPORT = 3;

export default defineScenario({
  name: 'many-exports',
  description: '10,000 one-page buffers exported concurrently to one importer, then all unexported and released',
  params: {
    count: { type: 'integer', default: 10_000, minimum: 1, maximum: 1_000_000, description: 'one-page buffers exported, all live at once' },
    window: { type: 'integer', default: 256, minimum: 1, maximum: 65_536, description: 'exports in flight at most' },
  },
  domains: (p) => [
    { name: 'exporter', memory: Number(p.count) * PER_EXPORT * PAGE_SIZE + 16 * 1024 * 1024, maxGrantFrames: Math.ceil((Number(p.count) * PER_EXPORT + 1) / ENTRIES_PER_FRAME) + 8 },
    { name: 'importer', memory: '8MiB' },
  ],
  async run(ctx) {
    const count = Number(ctx.params.count);
    const out = await ctx.step({ do: 'call', in: 'exporter', cmd: 'sim.exportMany', name: `export ${count} buffers, up to ${String(ctx.params.window)} in flight`, args: { to: '@domid:importer', count, window: Number(ctx.params.window) }, timeoutMs: 300_000, expect: { exported: count, live: count } });
    ctx.stat('exports', { count, perSecond: out.perSecond, ms: out.ms });
    await ctx.step({ do: 'call', in: 'importer', cmd: 'dmabuf.stats', name: `importer holds ${count} imports`, expect: { importer: { registered: count, byState: { registered: count } } } });
    const un = await ctx.step({ do: 'call', in: 'exporter', cmd: 'sim.unexportMany', name: `unexport all ${count} and wait for each release`, args: {}, timeoutMs: 300_000, expect: { unexported: count, freed: count } });
    ctx.stat('unexports', { count, perSecond: un.perSecond, ms: un.ms });
    await ctx.step({ do: 'call', in: 'importer', cmd: 'dmabuf.stats', name: 'importer forgot every import', expect: { importer: { byState: { registered: 0, mapped: 0, invalid: 0 } } } });
    await ctx.step({ do: 'call', in: 'exporter', cmd: 'dmabuf.stats', name: 'exporter: every page back, no grant left', expect: { kernel: { usedPages: 0, grants: { granted: 0, deferred: 0 } } } });
  },
});
