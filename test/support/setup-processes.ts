import { afterAll, afterEach, beforeEach } from 'vitest';
import { killOwnedProcesses, processMark } from '../../src/sandbox/processes.js';

/**
 * Loaded into every test file (vitest `setupFiles`): a process a test started and did not
 * stop — because it failed, timed out or forgot — is killed with its process group after
 * the test's own after-each hooks; one started in a beforeAll, after the file. Concurrent
 * tests cannot tell whose process is whose, so theirs go when the last of them ends.
 */
let running = 0;
let mark = 0;
beforeEach(() => {
  if (running++ === 0) mark = processMark();
});
afterEach(async () => {
  if (--running === 0) await killOwnedProcesses({ since: mark });
});
afterAll(async () => {
  await killOwnedProcesses();
});
