/**
 * Runs the backend conformance suite (test/conformance/*.test.ts) through
 * vitest's Node API, so that `hdmabuf conformance backend` works from an
 * installed package without the user invoking vitest, and returns one
 * result per check: its SPEC section (the file's describe block), its rule
 * (the test name up to its first colon), and for a failure the message and
 * the frames last sent and received.
 *
 * The suite's files run one at a time (the target has one control
 * connection) against the target named by HDMABUF_CONFORMANCE_URL and
 * HDMABUF_CONFORMANCE_CONTROL_TOKEN, which the test processes inherit.
 */
import { fileURLToPath } from 'node:url';
import type { RunnerTask, RunnerTestFile } from 'vitest';
import { startVitest } from 'vitest/node';
import { TIMEOUT_ENV } from './wire.ts';

/** The package root (this file is vm-sim/conformance/suite.ts). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One check's outcome. */
export interface CheckResult {
  /** SPEC section, as the suite's describe block names it, e.g. "7.4 GNTTAB_MAP_GRANT_REF". */
  section: string;
  /** The rule: the test name up to its first colon, e.g. "7.4 check 5". */
  rule: string;
  /** The whole test name. */
  name: string;
  file: string;
  state: 'pass' | 'fail' | 'skip';
  durationMs: number;
  /** For a failure: what went wrong. */
  message?: string;
  /** For a failure: the last frames sent (->) and received (<-) on each connection. */
  transcript?: string[];
}

/** What the suite run needs. */
export interface SuiteOptions {
  url: string;
  controlToken: string;
  /** Reply deadline of every check (ms). */
  timeoutMs: number;
  /** Only the files whose name contains one of these (default: all). */
  files?: string[];
  /** Called once per finished file, for progress. */
  onFile?: (file: string, passed: number, failed: number) => void;
}

/** Runs the suite and returns every check, teardown checks of each file included. */
export async function runSuite(opts: SuiteOptions): Promise<CheckResult[]> {
  process.env.HDMABUF_CONFORMANCE_URL = opts.url;
  process.env.HDMABUF_CONFORMANCE_CONTROL_TOKEN = opts.controlToken;
  process.env[TIMEOUT_ENV] = String(opts.timeoutMs);
  const filters = (opts.files ?? ['']).map((f) => `test/conformance/${f}`);
  const perTestMs = Math.max(60_000, opts.timeoutMs * 12);
  const quiet = {
    onFinished(files: RunnerTestFile[] = []) {
      for (const f of files) {
        const results = checksOf(f);
        opts.onFile?.(shortFile(f.filepath), results.filter((r) => r.state === 'pass').length, results.filter((r) => r.state === 'fail').length);
      }
    },
  };
  const vitest = await startVitest('test', filters, {
    root: PACKAGE_ROOT,
    config: `${PACKAGE_ROOT}vitest.config.ts`,
    watch: false,
    fileParallelism: false,
    testTimeout: perTestMs,
    hookTimeout: perTestMs,
    reporters: [quiet],
    passWithNoTests: false,
  });
  try {
    return vitest.state.getFiles().flatMap(checksOf);
  } finally {
    await vitest.close();
  }
}

function shortFile(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The checks of one file: its tests, and its teardown (afterAll) or collection errors as one more check. */
function checksOf(file: RunnerTestFile): CheckResult[] {
  const out: CheckResult[] = [];
  const name = shortFile(file.filepath);
  // A describe block inside a section (e.g. "over protocol v2") is named before the test, so that the check of
  // each protocol version can be told apart; the rule is the test's own.
  const walk = (task: RunnerTask, section: string, inner: readonly string[]): void => {
    if (task.type === 'suite') {
      const title = task.name.replace(/^SPEC\s+/, '');
      for (const t of task.tasks) walk(t, section || title, section ? [...inner, task.name] : inner);
      return;
    }
    const state = task.result?.state === 'pass' ? 'pass' : task.result?.state === 'fail' ? 'fail' : 'skip';
    const colon = task.name.indexOf(':');
    const result: CheckResult = {
      section: section || name, rule: colon > 0 ? task.name.slice(0, colon) : task.name, name: [...inner, task.name].join(' > '), file: name,
      state, durationMs: Math.round(task.result?.duration ?? 0),
    };
    if (state === 'fail') {
      result.message = (task.result?.errors ?? []).map((e) => e.message).join('\n') || 'failed';
      if (task.meta.transcript) result.transcript = task.meta.transcript;
    }
    out.push(result);
  };
  for (const t of file.tasks) walk(t, '', []);
  const fileErrors = file.result?.errors ?? [];
  const sectionOfFile = out[0]?.section ?? name;
  if (fileErrors.length > 0 || file.result?.state === 'fail' && out.every((r) => r.state !== 'fail')) {
    out.push({
      section: sectionOfFile, rule: 'teardown (9.3, 9.4: nothing left behind; 3-4: every frame the backend sent)', name: `${name}: file setup and teardown checks`,
      file: name, state: 'fail', durationMs: 0, message: fileErrors.map((e) => e.message).join('\n') || 'the file failed outside its tests',
    });
  } else {
    out.push({ section: sectionOfFile, rule: 'teardown (9.3, 9.4: nothing left behind; 3-4: every frame the backend sent)', name: `${name}: file setup and teardown checks`, file: name, state: 'pass', durationMs: 0 });
  }
  return out;
}
