import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, type ExpectStatic, it } from 'vitest';
import { runNode, spawnNode } from '../src/sandbox/processes.js';
import { waitFor } from './support/stack.js';

/**
 * No test leaves a process behind: a bridge started by a test that fails or times out is
 * killed by the suite's clean-up, and one whose vitest worker is stopped (SIGTERM) or
 * killed (SIGKILL) goes down with it (src/sandbox/processes.ts).
 */

/** Processes still alive (not zombies) that are `pid` or in its process group, from /proc. */
function survivors(pid: number): number[] {
  const alive: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone while we looked
    }
    // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if ((Number(entry) === pid || Number(group) === pid) && state !== 'Z' && state !== 'X') alive.push(Number(entry));
  }
  return alive;
}

const gone = (pid: number, timeoutMs = 10_000) => waitFor(`process ${pid} and its group to be gone`, () => survivors(pid).length === 0, timeoutMs);

/** A stand-in for a vitest worker that started a bridge (test/support/bridge-owner.ts). */
async function ownerWithBridge(expect: ExpectStatic) {
  const owner = spawnNode(['--import', 'tsx', 'test/support/bridge-owner.ts'], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: owner.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    owner.once('exit', (code) => reject(new Error(`the owner exited with ${code} before its bridge was ready`)));
  });
  lines.close();
  const { pid } = JSON.parse(first) as { pid: number };
  expect(survivors(pid)).toContain(pid);
  return { owner: owner.pid!, bridge: pid };
}

// Concurrent: each test mostly waits for processes to start.
describe.concurrent('processes started by tests', () => {
  it('a test that fails or times out leaves no bridge running', async ({ expect }) => {
    const pidsFile = path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-cleanup-')), 'pids');
    const run = await runNode(['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/fixtures/vitest.config.ts'], {
      env: { PATH: process.env.PATH ?? '', FIXTURE_PIDS_FILE: pidsFile, NO_COLOR: '1' },
      timeoutMs: 90_000,
    });
    expect(run.timedOut).toBe(false);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toMatch(/Tests\s+2 failed \(2\)/);
    expect(run.stderr).toContain('Test timed out in 2000ms');

    const pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(survivors(pid), `bridge ${pid}`).toEqual([]);
  }, 120_000);

  it('a worker stopped with SIGTERM, as vitest stops one, takes its bridge down', async ({ expect }) => {
    const { owner, bridge } = await ownerWithBridge(expect);
    process.kill(owner, 'SIGTERM'); // the worker alone, as vitest signals it
    await gone(owner);
    await gone(bridge);
  }, 60_000);

  it('a worker killed with SIGKILL, as vitest does when SIGTERM is not enough, takes its bridge down', async ({ expect }) => {
    const { owner, bridge } = await ownerWithBridge(expect);
    process.kill(owner, 'SIGKILL');
    await gone(owner);
    await gone(bridge);
  }, 60_000);
});
