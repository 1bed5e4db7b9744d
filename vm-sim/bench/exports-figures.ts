/**
 * Exports per second with up to N concurrent exports (all live at once),
 * against the rate with a small table: the rate should not collapse as the
 * grant table and the id table grow. Unexport-and-release rate reported
 * alongside.
 */
import { drainEvents, type BenchContext } from './context.ts';
import { result, type BenchResult } from './types.ts';

const LONG = 900_000;

async function exportsPerSecond(ctx: BenchContext, count: number): Promise<{ perSecond: number; unexportsPerSecond: number }> {
  const ex = await ctx.exporter.call<{ perSecond: number }>('sim.exportMany', { to: ctx.importer.domid, count, window: 256 }, LONG);
  const un = await ctx.exporter.call<{ perSecond: number }>('sim.unexportMany', { window: 256, timeoutMs: 120_000 }, LONG);
  // The importer's bounded queue kept the newest events; nobody wants them.
  await drainEvents(ctx.importer);
  return { perSecond: ex.perSecond, unexportsPerSecond: un.perSecond };
}

/** The concurrent-exports figures. */
export async function exportsFigure(ctx: BenchContext): Promise<BenchResult[]> {
  const { exportsBaseline, exportsCount } = ctx.config;
  ctx.log(`concurrent exports: ${exportsBaseline}, then ${exportsCount}, all live at once`);
  const small = await exportsPerSecond(ctx, exportsBaseline);
  const large = await exportsPerSecond(ctx, exportsCount);
  return [
    result({
      id: 'exports-per-second', name: `exports per second, ${exportsCount} concurrent exports of one page (256 in flight)`, value: large.perSecond, unit: 'exports/s', trials: 1, version: ctx.newest.version,
      baseline: small.perSecond, baselineName: `the same with ${exportsBaseline} exports`,
      ratio: large.perSecond / small.perSecond, ratioMeaning: `rate at ${exportsCount} / rate at ${exportsBaseline}`,
      target: { op: '>=', value: 0.5, source: 'own' },
      note: 'the issue sets no target; ours: the rate does not collapse as the tables grow (the original driver stopped at 1,000 exports)',
    }),
    result({
      id: 'unexports-per-second', name: `unexport and release, ${exportsCount} exports`, value: large.unexportsPerSecond, unit: 'exports/s', trials: 1, version: ctx.newest.version,
      baseline: small.unexportsPerSecond, baselineName: `the same with ${exportsBaseline} exports`,
      ratio: large.unexportsPerSecond / small.unexportsPerSecond, ratioMeaning: `rate at ${exportsCount} / rate at ${exportsBaseline}`,
    }),
  ];
}
