import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Records the state-machine transitions taken when HDMABUF_TRANSITION_LOG is set (scripts/transition-coverage.ts).
    setupFiles: ['test/transition-coverage/setup.ts'],
    // Multi-process tests spawn real processes; keep per-test limits generous but finite.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    // Two cores: two test files at a time, each of which may start several processes.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
