/**
 * Which declared state-machine transitions the code takes under the tests:
 *
 *   npx tsx scripts/transition-coverage.ts [test files or folders ...]   (default: every test)
 *   npx tsx scripts/transition-coverage.ts --from DIR                    (only read the logs of an earlier run)
 *
 * Runs vitest with HDMABUF_TRANSITION_LOG set (vm-sim/trace/transition-log.ts:
 * the test workers, the backend and every VM record each transition they
 * take; test/protocol/state-machines.test.ts, which takes every transition
 * by construction, records nothing), then compares the union with every
 * table of protocol/machines. Prints, per machine, the transitions taken out
 * of those declared and each one never taken; exits 1 when one was never
 * taken (or the tests failed).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MACHINES } from '../protocol/machines/index.ts';
import { declaredTransitions, readTransitionLogs, TRANSITION_LOG_ENV, untakenTransitions } from '../vm-sim/trace/transition-log.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
let dir: string;
let testsFailed = false;
if (args[0] === '--from') {
  dir = args[1] ?? '';
} else {
  dir = mkdtempSync(join(tmpdir(), 'hdmabuf-transitions-'));
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const run = spawnSync(process.execPath, [vitest, 'run', ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, [TRANSITION_LOG_ENV]: dir } });
  testsFailed = run.status !== 0;
}

const taken = readTransitionLogs(dir);
let untakenTotal = 0;
for (const machine of MACHINES) {
  const declared = declaredTransitions([machine]);
  const untaken = untakenTransitions(declared, taken);
  untakenTotal += untaken.length;
  console.log(`${machine.decl.id}: ${declared.length - untaken.length}/${declared.length} taken`);
  for (const k of untaken) console.log(`  never taken: ${k.split(' ').slice(1).join(' --')}-->`);
}
const all = declaredTransitions(MACHINES).length;
console.log(`\n${all - untakenTotal} of ${all} declared transitions taken (logs in ${dir})${testsFailed ? '; the tests FAILED' : ''}`);
process.exit(untakenTotal > 0 || testsFailed ? 1 : 0);
