/**
 * Process entry of the stress suite's two legitimate domains (forked by
 * vm-sim/stress/main.ts, never run by hand).
 *
 * It boots two guest kernels, A and B, and keeps them working while the
 * hostile classes run: in each cycle B pings the backend, A grants four
 * pages to B read-only, B maps them (one GNTTAB_MAP_GRANT_REF), checks the
 * bytes A wrote, unmaps, and A ends access. Each cycle's duration is one
 * latency sample; any error or wrong byte is a legitimate failure.
 *
 * IPC: the parent sends `{ type: 'phase', name }` to start a new sample
 * set and `{ type: 'report' }` to get `{ type: 'report', samples, failures,
 * errors }` for the set; `{ type: 'stop' }` shuts both kernels down and
 * exits. The child reports `{ type: 'ready' }` once both kernels are up.
 */
import { GuestKernel, type GuestKernelBootOptions } from '../../src/guest/kernel.ts';
import { PING } from '../../protocol/messages/session.ts';

/** Messages from the parent. */
type ParentMessage = { type: 'phase'; name: string } | { type: 'report' } | { type: 'stop' };

const PAGES_PER_CYCLE = 4;
const PAGE = 4096;

async function main(): Promise<void> {
  const [aText, bText] = process.argv.slice(2);
  if (!aText || !bText) throw new Error('usage: legit-main.ts <boot options of A as JSON> <boot options of B as JSON>');
  const a = await GuestKernel.boot(JSON.parse(aText) as GuestKernelBootOptions);
  const b = await GuestKernel.boot(JSON.parse(bText) as GuestKernelBootOptions);
  let samples: number[] = [];
  let failures = 0;
  let errors: string[] = [];
  let running = true;
  const frames = a.allocator.alloc(PAGES_PER_CYCLE);
  const ram = a.ram.bytes;
  let serial = 0;

  const cycle = async (): Promise<void> => {
    const mark = ++serial & 0xff;
    for (const f of frames) ram[f * PAGE] = mark;
    await b.hv.call(PING, { nonce: serial >>> 0 });
    const refs = await a.grants.grantAccessMany(b.domid, frames, true);
    try {
      const mapping = await b.mapper.mapGrants(a.domid, refs, { readonly: true });
      try {
        const view = new Uint8Array(mapping.view);
        for (let i = 0; i < PAGES_PER_CYCLE; i++) {
          if (view[i * PAGE] !== mark) throw new Error(`page ${i} reads ${view[i * PAGE]}, A wrote ${mark}`);
        }
      } finally {
        await mapping.unmap();
      }
    } finally {
      for (const ref of refs) {
        if (a.grants.endAccess(ref) !== 'ended') throw new Error(`ref ${ref} still mapped after the unmap`);
      }
    }
  };

  const loop = async (): Promise<void> => {
    while (running) {
      const t0 = performance.now();
      try {
        await cycle();
        samples.push(performance.now() - t0);
      } catch (e) {
        failures++;
        if (errors.length < 5) errors.push((e as Error)?.message ?? String(e));
      }
    }
  };

  const looping = loop();
  process.on('message', (msg: ParentMessage) => {
    if (msg.type === 'phase') {
      samples = [];
      failures = 0;
      errors = [];
    } else if (msg.type === 'report') {
      process.send?.({ type: 'report', samples, failures, errors });
    } else if (msg.type === 'stop') {
      running = false;
      void looping
        .then(() => Promise.all([a.shutdown(), b.shutdown()]))
        .then(() => process.exit(0), (e: unknown) => {
          process.stderr.write(`shutdown failed: ${(e as Error)?.stack ?? String(e)}\n`);
          process.exit(1);
        });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready' });
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
