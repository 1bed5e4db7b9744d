/**
 * The copying paths the zero-copy ones are measured against, with a byte
 * count known in advance: a sink VM copies the granted pages of a source VM
 * into its own RAM with GNTTAB_COPY `rounds` times (the backend copies
 * `len` = 4096 bytes per page op; the request carries none) and checks the
 * pattern, then sends `echoes` ECHO round trips of `echoBytes` to the
 * source (the payload crosses the backend in the request and again in the
 * reply). The run's "bytes copied", counted by the backend (SPEC.md 9.4),
 * must be exactly
 *
 *   rounds * pages * 4096 + echoes * echoBytes * 2
 *
 * which the scenario declares (`expectedBytesCopied`) and the launcher
 * checks in place of "no buffer byte copied".
 */
import { PAGE_SIZE } from '../../../protocol/limits.ts';
import { defineScenario } from '../types.ts';

/** The bytes the backend must count for a run with these parameters. */
export function expectedCopiedBytes(p: { pages: number; rounds: number; echoes: number; echoBytes: number }): { grantCopyBytes: number; routedBytes: number; bytesCopied: number } {
  const grantCopyBytes = p.rounds * p.pages * PAGE_SIZE;
  const routedBytes = p.echoes * p.echoBytes * 2;
  return { grantCopyBytes, routedBytes, bytesCopied: grantCopyBytes + routedBytes };
}

export default defineScenario({
  name: 'copies',
  description: 'a sink VM copies a source VM\'s granted pages with GNTTAB_COPY and sends ECHO round trips: the backend counts exactly the bytes they move',
  params: {
    pages: { type: 'integer', default: 64, minimum: 1, maximum: 4096, description: 'pages granted by the source and copied per round' },
    rounds: { type: 'integer', default: 4, minimum: 1, maximum: 10_000, description: 'GNTTAB_COPY rounds of every page' },
    echoes: { type: 'integer', default: 8, minimum: 0, maximum: 10_000, description: 'ECHO round trips from the sink to the source' },
    echoBytes: { type: 'integer', default: 65536, minimum: 0, maximum: 8 * 1024 * 1024, description: 'payload bytes of each ECHO' },
  },
  domains: (p) => [
    { name: 'source', memory: Number(p.pages) * PAGE_SIZE + 8 * 1024 * 1024 },
    { name: 'sink', memory: Number(p.pages) * PAGE_SIZE + 8 * 1024 * 1024 },
  ],
  async run(ctx) {
    const p = { pages: Number(ctx.params.pages), rounds: Number(ctx.params.rounds), echoes: Number(ctx.params.echoes), echoBytes: Number(ctx.params.echoBytes) };
    ctx.stat('expectedBytesCopied', expectedCopiedBytes(p).bytesCopied);
    const src = await ctx.step({ do: 'call', in: 'source', cmd: 'mem.alloc', name: `source: ${p.pages} pages`, args: { pages: p.pages } });
    await ctx.step({ do: 'call', in: 'source', cmd: 'mem.fill', name: 'source: pattern written', args: { buf: src.buf, seed: 7 } });
    const granted = await ctx.step({ do: 'call', in: 'source', cmd: 'grant.many', name: 'source: every page granted read-only to the sink', args: { buf: src.buf, domid: '@domid:sink', readonly: true } });
    // A Uint32Array crosses the VM's IPC channel (JSON) as an object of indexed entries.
    const refs = Object.values(granted.refs as Record<string, number>);
    const dst = await ctx.step({ do: 'call', in: 'sink', cmd: 'mem.alloc', name: `sink: ${p.pages} pages`, args: { pages: p.pages } });
    for (let r = 1; r <= p.rounds; r++) {
      await ctx.step({ do: 'call', in: 'sink', cmd: 'copy.fromGrants', name: `sink: round ${r}, ${p.pages} pages copied with GNTTAB_COPY`, args: { dom: '@domid:source', refs, buf: dst.buf } });
    }
    await ctx.step({ do: 'call', in: 'sink', cmd: 'mem.check', name: 'sink: the copy holds the source\'s pattern', args: { buf: dst.buf, seed: 7 }, expect: { ok: true } });
    for (let e = 1; e <= p.echoes; e++) {
      await ctx.step({ do: 'call', in: 'sink', cmd: 'echo', name: `sink: ECHO ${e} of ${p.echoBytes} B to the source and back`, args: { dst: '@domid:source', bytes: p.echoBytes }, expect: { bytes: p.echoBytes } });
    }
    await ctx.step({ do: 'call', in: 'source', cmd: 'grant.end', name: 'source: every grant ended', args: { refs }, expect: { ended: p.pages, busy: 0 } });
    await ctx.step({ do: 'call', in: 'source', cmd: 'mem.free', name: 'source: pages freed', args: { buf: src.buf } });
    await ctx.step({ do: 'call', in: 'sink', cmd: 'mem.free', name: 'sink: pages freed', args: { buf: dst.buf } });
  },
});
