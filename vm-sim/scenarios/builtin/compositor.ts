/**
 * The default scenario: a render VM shares three 1920x1080 RGBA
 * framebuffers with a compositor VM (width, height, stride and format as
 * private data); the compositor imports each on its NEW_IMPORT event; for
 * `frames` frames the render VM draws a frame-numbered pattern into the
 * next buffer and hands it off, the compositor checks every pixel through
 * its mapping (no copy) and hands the buffer back; then everything is
 * released, unexported and freed.
 */
import { PAGE_SIZE } from '../../../protocol/limits.ts';
import { defineScenario, type Params } from '../types.ts';

const fbBytes = (p: Params): number => Number(p.width) * Number(p.height) * 4;

export default defineScenario({
  name: 'compositor',
  description: 'render VM hands 3 1080p RGBA framebuffers to a compositor VM for 300 frames, each checked through the mapping',
  params: {
    frames: { type: 'integer', default: 300, minimum: 1, maximum: 10_000_000, description: 'frames handed off and checked' },
    width: { type: 'integer', default: 1920, minimum: 1, maximum: 16384, description: 'framebuffer width in pixels' },
    height: { type: 'integer', default: 1080, minimum: 1, maximum: 16384, description: 'framebuffer height in pixels' },
    buffers: { type: 'integer', default: 3, minimum: 1, maximum: 16, description: 'framebuffers cycled through' },
    check: { type: 'string', default: 'full', enum: ['full', 'stamp', 'none'], description: 'what the compositor checks: every pixel, a 3-word stamp, or nothing' },
    inFlight: { type: 'integer', default: 1, minimum: 1, maximum: 16, description: 'handoffs outstanding at most (at most `buffers` are useful)' },
  },
  domains: (p) => [
    { name: 'render', memory: Number(p.buffers) * Math.ceil(fbBytes(p) / PAGE_SIZE) * PAGE_SIZE + 16 * 1024 * 1024 },
    { name: 'compositor', memory: '16MiB' },
  ],
  async run(ctx) {
    const n = Number(ctx.params.buffers);
    const { width, height } = ctx.params;
    const labels = Array.from({ length: n }, (_, i) => `fb${i}`);
    for (const fb of labels) await ctx.step({ do: 'export', from: 'render', to: 'compositor', buffer: fb, width, height: height!, format: 'RGBA8888' } as never);
    for (const fb of labels) {
      await ctx.step({
        do: 'import', into: 'compositor', buffer: fb,
        // The compositor learns the geometry from the private data, not from the launcher.
        expect: { framebuffer: { width: Number(width), height: Number(height), stride: Number(width) * 4, format: 'AB24' } },
      });
    }
    await ctx.step({ do: 'handoff', from: 'render', to: 'compositor', buffers: labels, frames: ctx.params.frames!, check: ctx.params.check as 'full', inFlight: ctx.params.inFlight! } as never);
    for (const fb of labels) await ctx.step({ do: 'release', in: 'compositor', buffer: fb });
    for (const fb of labels) await ctx.step({ do: 'unexport', in: 'render', buffer: fb, wait: 'released' });
    for (const fb of labels) await ctx.step({ do: 'free', in: 'render', buffer: fb });
    await ctx.step({ do: 'call', in: 'render', cmd: 'dmabuf.stats', name: 'render: every page back, no grant left', expect: { kernel: { usedPages: 0, grants: { granted: 0, deferred: 0 } } } });
  },
});
