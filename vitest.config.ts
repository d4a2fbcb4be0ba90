import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Kills what a failed or timed-out test left running (src/sandbox/processes.ts).
    setupFiles: ['test/support/setup-processes.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real servers on ephemeral ports; files run in parallel forks. Most of a
    // test's time is spent waiting on loopback HTTP and timers, so more forks than cores.
    pool: 'forks',
    maxWorkers: 5,
    // Files in one fork share loaded modules instead of importing every package again per
    // file (that was a third of the suite's CPU on 2 cores). Safe here: each test builds its
    // own bridge, metrics registry and database; no module keeps state between tests.
    isolate: false,
  },
});
