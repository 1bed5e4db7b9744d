/**
 * Killing each role of the `fences` and `move` scenarios (producer VM,
 * consumer VM, backend) at points chosen by events of the run: after the
 * producer exported the ring (before the consumer opened it), in the middle
 * of the frame stream (the consumer's first frame count), and during the
 * teardown (once the consumer closed its side). The survivors stay up,
 * their steps fail with the death, typed, the result names the dead
 * process, and nothing leaks (kill-roles.ts).
 */
import { describe, it } from 'vitest';
import { expectSurvived, runAndKill, type KillPoint } from './kill-roles.ts';

const POINTS: Record<'fences' | 'move', KillPoint[]> = {
  fences: [
    { name: 'after the export of the ring', at: /^✓ #1 /, params: { frames: 50 } },
    { name: 'mid-stream', at: /^consumer: frames \d+\/1000000$/, params: { frames: 1_000_000 } },
    { name: 'during teardown', at: /^✓ #\d+ consumer: views unmapped/, params: { frames: 30 } },
  ],
  move: [
    { name: 'after the export of the ring', at: /^✓ #1 /, params: { frames: 50, moves: 2 } },
    { name: 'mid-stream, pages moving', at: /^producer: moves \d+\/1000000$/, params: { frames: 1_000_000, moves: 1_000_000 } },
    { name: 'during teardown', at: /^✓ #\d+ consumer: views unmapped/, params: { frames: 30, moves: 2 } },
  ],
};

for (const scenario of ['fences', 'move'] as const) {
  describe(`kill a role of ${scenario}`, () => {
    for (const victim of ['producer', 'consumer', 'hv']) {
      for (const point of POINTS[scenario]) {
        it(`${victim} ${point.name}`, async () => {
          expectSurvived(await runAndKill(scenario, victim, point), victim);
        }, 180_000);
      }
    }
  });
}
