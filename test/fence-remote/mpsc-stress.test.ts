/** The MPSC stress between in-process peers (the multi-process run is in test/multiprocess/fence-sync.test.ts). */
import { describe, expect, it } from 'vitest';
import { MpscStress } from '../../workloads/mpsc-stress.ts';
import { fenceResources, NOTHING, startPeers } from './pair.ts';

describe('multi-producer single-consumer stress between in-process peers', () => {
  it('3 producers x 100 iterations: the shared counter is n*it at every consumer iteration', async () => {
    const { peers: [c, ...ps] } = await startPeers(4);
    const consumer = await MpscStress.consumer(c!.host, c!.kernel, ps.map((p) => p.domid));
    const producers = await Promise.all(ps.map((p) => MpscStress.producer(p.host, p.kernel, c!.domid, consumer.refs[p.domid]!)));
    const results = await Promise.all([consumer.run(100), ...producers.map((p) => p.run(100))]);
    expect(results[0]).toMatchObject({ iterations: 100, mismatches: 0, counter: 300 });
    for (const r of results) expect(r).toMatchObject({ iterations: 100, mismatches: 0 });
    await Promise.all(producers.map((p) => p.close()));
    await consumer.close();
    for (const p of [c!, ...ps]) expect(fenceResources(p)).toEqual(NOTHING);
  });
});
