/**
 * A programmatic scenario (TypeScript module): a camera VM fills two
 * buffers and a filter VM and an encoder VM each read them; the loop and
 * the checks are code. Run it with
 *
 *   hdmabuf run vm-sim/scenarios/examples/pipeline.ts --param rounds=3
 *
 * A module's default export is a scenario; steps run through ctx.step (the
 * same vocabulary as JSON files), and ctx.check / ctx.stat add to the result.
 */
import { defineScenario } from '../types.ts';

export default defineScenario({
  name: 'pipeline',
  description: 'a camera VM shares two buffers with a filter VM and an encoder VM, several rounds',
  params: { rounds: 2 },
  domains: [
    { name: 'camera', memory: '16MiB' },
    { name: 'filter', memory: '8MiB' },
    { name: 'encoder', memory: '8MiB' },
  ],
  async run(ctx) {
    const readers = ['filter', 'encoder'];
    for (const b of ['a', 'b']) {
      await ctx.step({ do: 'export', from: 'camera', to: readers, buffer: b, width: 320, height: 240 });
      for (const r of readers) await ctx.step({ do: 'import', into: r, buffer: b });
    }
    const rounds = Number(ctx.params.rounds);
    for (let round = 1; round <= rounds; round++) {
      for (const b of ['a', 'b']) {
        const seed = round * 10 + (b === 'a' ? 1 : 2);
        await ctx.step({ do: 'write', in: 'camera', buffer: b, seed });
        for (const r of readers) await ctx.step({ do: 'verify', in: r, buffer: b, seed });
      }
    }
    ctx.check(`${rounds} rounds read by ${readers.length} readers`, true, `${rounds * 2 * readers.length} buffers checked through mappings`);
    for (const b of ['a', 'b']) {
      for (const r of readers) await ctx.step({ do: 'release', in: r, buffer: b });
      await ctx.step({ do: 'unexport', in: 'camera', buffer: b, wait: 'released' });
      await ctx.step({ do: 'free', in: 'camera', buffer: b });
    }
  },
});
