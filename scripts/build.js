#!/usr/bin/env node
// `npm run build`: a dist/ that runs on its own. tsc compiles src/ (tsconfig.build.json
// leaves the simulators and the demo out), then the files the bridge reads at run time
// are copied beside the modules that read them.
//
//   node scripts/build.js [--out-dir <dir>] [--no-check]
//
// --no-check skips type checking (`npm test` has just type-checked everything);
// --out-dir builds elsewhere (the benchmark builds into a temp folder, not over dist/).
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Read at run time, relative to the compiled modules that read them (src/webview/views.ts, src/admin-ui/views.ts). */
const ASSETS = ['webview/views', 'webview/static', 'admin-ui/views', 'admin-ui/static'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { 'out-dir': { type: 'string', default: 'dist' }, 'no-check': { type: 'boolean', default: false } },
});
const outDir = path.resolve(root, values['out-dir']);

// A stale module of a deleted source file must not survive into the new build.
rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const args = [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--outDir', outDir, ...(values['no-check'] ? ['--noCheck'] : [])];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
for (const asset of ASSETS) cpSync(path.join(root, 'src', asset), path.join(outDir, asset), { recursive: true });
