/**
 * Main-thread CPU accounting of the handoff figure (/proc/<pid>/schedstat):
 * work on this thread is counted, and a process that does not exist gives
 * no figure rather than a wrong one. No speed is asserted.
 */
import { describe, expect, it } from 'vitest';
import { cpuNs, CpuMeter } from '../../vm-sim/bench/cpu.ts';

describe.runIf(process.platform === 'linux')('CpuMeter', () => {
  it('counts this thread\'s work per operation', async () => {
    const meter = new CpuMeter([process.pid]);
    let x = 0;
    await meter.measure(async () => { for (let i = 0; i < 5_000_000; i++) x += i % 7; });
    expect(x).toBeGreaterThan(0);
    const per = meter.perOp(1000);
    expect(per).toHaveLength(1);
    expect(per![0]).toBeGreaterThan(0);
  });

  it('gives no figure for a process that does not exist', async () => {
    const gone = 2 ** 22 + 17;
    expect(cpuNs(gone)).toBeNull();
    const meter = new CpuMeter([process.pid, gone]);
    await meter.measure(async () => undefined);
    expect(meter.perOp(10)).toBeNull();
  });
});
