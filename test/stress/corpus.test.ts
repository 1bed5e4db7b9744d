/**
 * Replays the stress suite's regression corpus (test/stress/corpus/*.json,
 * see vm-sim/stress/corpus.ts): every input that ever crashed, stalled or was
 * mis-answered by the backend is sent again, in the connection state it was
 * found in, and must get the answer SPEC.md requires, with the connection
 * then still serving (or closed, where that is the answer).
 */
import { describe, expect, it } from 'vitest';
import { loadCorpus } from '../../vm-sim/stress/corpus.ts';
import { disagreement } from '../../vm-sim/stress/oracle.ts';
import { RawClient } from '../../vm-sim/stress/raw-client.ts';
import { onCleanup, startBackend } from '../hv/helpers.ts';

const corpus = loadCorpus();

describe('stress regression corpus', () => {
  it('holds entries (the inputs of issue 9 at least)', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(9);
  });

  it.each(corpus.map(({ file, entry }) => [file, entry] as const))('%s', async (_file, entry) => {
    const hv = await startBackend();
    let client: RawClient;
    if (entry.state === 'authenticated') {
      const d = await hv.createDomain({ name: 'corpus', memPages: 16 });
      client = await RawClient.connect(hv.url, d.domid, d.token, entry.version ?? 1);
    } else {
      client = await RawClient.open(hv.url);
    }
    onCleanup(() => { client.terminate(); });
    const got = await client.exchange(Uint8Array.from(Buffer.from(entry.frameHex, 'hex')), 5000);
    expect(disagreement(entry.expected, got), `${entry.class}: ${entry.note}`).toBeUndefined();
  }, 20_000);
});
