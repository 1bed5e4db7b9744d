/**
 * The transition log behind scripts/transition-coverage.ts: the one
 * transition function reports each transition taken (never a refused one),
 * a process appends each distinct one once, the backend process records its
 * own when started with HDMABUF_TRANSITION_LOG, and the comparison with the
 * declared tables names what was never taken.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MACHINES } from '../../protocol/machines/index.ts';
import { defineMachine, IllegalTransitionError, observeTransitions } from '../../protocol/state-machine.ts';
import { HvClient } from '../../src/transport/hv-client.ts';
import { spawnHv } from '../../vm-sim/process/spawn/spawn-hv.ts';
import { declaredTransitions, readTransitionLogs, startTransitionLog, TRANSITION_LOG_ENV, untakenTransitions } from '../../vm-sim/trace/transition-log.ts';

// A machine of this test only: its transitions never match a declared one.
const Door = defineMachine<'shut' | 'open', 'push' | 'pull'>({
  id: 'test_door', title: 'a door', section: '0', initial: 'shut',
  states: { shut: 'shut', open: 'open' },
  events: { push: 'opens it', pull: 'shuts it' },
  transitions: [{ from: ['shut'], event: 'push', to: 'open' }, { from: ['open'], event: 'pull', to: 'shut' }],
});

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'hdmabuf-transition-log-'));
  dirs.push(d);
  return d;
}

afterEach(() => {
  // Back to what the setup file installed (recording into $HDMABUF_TRANSITION_LOG, or nothing).
  observeTransitions(undefined);
  startTransitionLog();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('transition log', () => {
  it('records each transition taken once, and no refused one', () => {
    const dir = tempDir();
    startTransitionLog(dir);
    const door = Door.start();
    door.apply('push');
    door.apply('pull');
    door.apply('push');
    expect(() => door.apply('push')).toThrow(IllegalTransitionError);
    expect(readFileSync(join(dir, `${process.pid}.log`), 'utf8')).toBe('test_door shut push\ntest_door open pull\n');
    expect([...readTransitionLogs(dir)]).toEqual(['test_door shut push', 'test_door open pull']);
  });

  it('names every declared transition not taken (the comparison can fail)', () => {
    const declared = declaredTransitions([Door as never]);
    expect(declared).toEqual(['test_door shut push', 'test_door open pull']);
    expect(untakenTransitions(declared, new Set(['test_door shut push']))).toEqual(['test_door open pull']);
    expect(untakenTransitions(declared, new Set(declared))).toEqual([]);
    // One line per state a row leaves from, over every machine.
    expect(declaredTransitions(MACHINES)).toHaveLength(MACHINES.reduce((n, m) => n + m.decl.transitions.reduce((k, t) => k + t.from.length, 0), 0));
  });

  it('a backend process started with the variable records the transitions it takes', async () => {
    const dir = tempDir();
    const hv = await spawnHv({ env: { [TRANSITION_LOG_ENV]: dir } });
    try {
      const control = await HvClient.connect({ url: hv.url, domid: 0, token: hv.controlToken, name: 'control' });
      await control.close();
    } finally {
      expect(await hv.child.reap()).toMatchObject({ code: 0 });
    }
    const lines = readFileSync(join(dir, `${hv.pid}.log`), 'utf8').trim().split('\n');
    // The connection's socket closed: from open when the backend saw the close before its SIGTERM,
    // from closing when its shutdown closed the connection first (both orders are possible).
    expect(lines.filter((l) => /^connection (open|closing) socket-closed$/.test(l))).toHaveLength(1);
    expect(new Set(lines).size).toBe(lines.length);
  });
});
