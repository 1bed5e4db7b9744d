/**
 * A run whose backend died is put down to that death (ERR_BACKEND_DIED)
 * whichever the launcher heard of first: the exit, or a step that failed of
 * what the death left (test/launcher/kill-fences.test.ts kills the backend
 * during a teardown whose next step can fail either way).
 */
import { describe, expect, it } from 'vitest';
import { backendDeathCheck } from '../../vm-sim/launcher/execute.ts';
import type { ProcessExit } from '../../vm-sim/launcher/exits.ts';

const hvKilled: ProcessExit = { name: 'hv', role: 'hv', pid: 42, code: null, signal: 'SIGKILL', atMs: 1234, cause: 'died' };
const stepFailed = { name: '#7 producer: no grant left', ok: false, detail: 'result.owner.grantsLive is 1, expected 0' };

describe('the run check of a backend that died', () => {
  it('is added when a step failed of something else, naming the death', () => {
    expect(backendDeathCheck([hvKilled], [stepFailed])).toEqual([{ name: 'run', ok: false, detail: expect.stringMatching(/^ERR_BACKEND_DIED: hv \(pid 42\) died: signal SIGKILL/) }]);
  });

  it('is not added twice, nor for a backend that ended in the stop cascade, nor for a VM that died', () => {
    expect(backendDeathCheck([hvKilled], [stepFailed, { name: 'run', ok: false, detail: 'ERR_BACKEND_DIED: hv (pid 42) died' }])).toEqual([]);
    expect(backendDeathCheck([{ ...hvKilled, cause: 'shutdown', signal: null, code: 0 }], [stepFailed])).toEqual([]);
    expect(backendDeathCheck([{ ...hvKilled, name: 'producer', role: 'vm' }], [stepFailed])).toEqual([]);
  });
});
