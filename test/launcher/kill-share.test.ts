/**
 * Killing each role of the `compositor` and `fan-out` scenarios (the
 * exporting VM, an importing VM, the backend) at points chosen by events of
 * the run: after the first buffer was exported, in the middle of the
 * work (the render VM's first frame count; the first import mapped), and
 * during the teardown (the first release done). The survivors stay up,
 * their steps fail with the death, typed, the result names the dead
 * process, and nothing leaks (kill-roles.ts).
 */
import { describe, it } from 'vitest';
import { expectSurvived, runAndKill, type KillPoint } from './kill-roles.ts';

const SMALL = { width: 640, height: 360 };

const CASES: Array<{ scenario: string; victims: string[]; points: KillPoint[] }> = [
  {
    scenario: 'compositor',
    victims: ['render', 'compositor', 'hv'],
    points: [
      { name: 'after the first export', at: /^✓ #1 /, params: { ...SMALL, frames: 20 } },
      { name: 'mid-stream', at: /^render: frames \d+\/1000000$/, params: { ...SMALL, frames: 1_000_000 } },
      { name: 'during teardown', at: /^✓ #\d+ release /, params: { ...SMALL, frames: 20 } },
    ],
  },
  {
    scenario: 'fan-out',
    victims: ['source', 'sink2', 'hv'],
    points: [
      { name: 'after the export', at: /^✓ #1 /, params: { ...SMALL, importers: 3 } },
      { name: 'after the first import', at: /^✓ #\d+ import /, params: { ...SMALL, importers: 3 } },
      { name: 'during teardown', at: /^✓ #\d+ release /, params: { ...SMALL, importers: 3 } },
    ],
  },
];

for (const { scenario, victims, points } of CASES) {
  describe(`kill a role of ${scenario}`, () => {
    for (const victim of victims) {
      for (const point of points) {
        it(`${victim} ${point.name}`, async () => {
          expectSurvived(await runAndKill(scenario, victim, point), victim);
        }, 180_000);
      }
    }
  });
}
