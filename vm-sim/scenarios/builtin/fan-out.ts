/**
 * Fan-out: one buffer exported to several importers (one id each); each
 * imports it on its NEW_IMPORT event and reads the exporter's pattern
 * through its own mapping of the same pages.
 */
import { defineScenario, type DomainSpec, type Step } from '../types.ts';

export default defineScenario({
  name: 'fan-out',
  description: 'one 1080p buffer exported to 4 importers, each reading the same pages through its own mapping',
  params: {
    importers: { type: 'integer', default: 4, minimum: 1, maximum: 32, description: 'importing domains, one process each' },
    width: { type: 'integer', default: 1920, minimum: 1, maximum: 2048, description: 'framebuffer width in pixels (the source has 32 MiB)' },
    height: { type: 'integer', default: 1080, minimum: 1, maximum: 2048, description: 'framebuffer height in pixels' },
  },
  domains: (p) => [
    { name: 'source', memory: '32MiB' },
    ...Array.from({ length: Number(p.importers) }, (_, i): DomainSpec => ({ name: `sink${i + 1}`, memory: '8MiB' })),
  ],
  async run(ctx) {
    const sinks = Array.from({ length: Number(ctx.params.importers) }, (_, i) => `sink${i + 1}`);
    const step = (s: Step): Promise<Record<string, unknown>> => ctx.step(s);
    await step({ do: 'export', from: 'source', to: sinks, buffer: 'fb', width: ctx.params.width as number, height: ctx.params.height as number });
    await step({ do: 'write', in: 'source', buffer: 'fb', seed: 42 });
    await Promise.all(sinks.map((s) => step({ do: 'import', into: s, buffer: 'fb' })));
    for (const s of sinks) await step({ do: 'verify', in: s, buffer: 'fb', seed: 42 });
    for (const s of sinks) await step({ do: 'query', in: 'source', buffer: 'fb', to: s, expect: { busy: true, importer: ctx.vm(s).domid } });
    for (const s of sinks) await step({ do: 'release', in: s, buffer: 'fb' });
    await step({ do: 'unexport', in: 'source', buffer: 'fb', wait: 'released' });
    await step({ do: 'free', in: 'source', buffer: 'fb' });
    await step({ do: 'call', in: 'source', cmd: 'dmabuf.stats', name: 'source: every page back, no grant left', expect: { kernel: { usedPages: 0, grants: { granted: 0 } } } });
    ctx.stat('importers', sinks.length);
  },
});
