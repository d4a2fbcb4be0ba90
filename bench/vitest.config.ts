import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** `npm run bench:smoke`: the benchmark harness's own check, outside `npm test`. */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['bench/**/*.test.ts'],
    // Kills a run left behind by a failed or timed-out smoke (src/sandbox/processes.ts).
    setupFiles: ['test/support/setup-processes.ts'],
    pool: 'forks',
    maxWorkers: 1,
  },
});
