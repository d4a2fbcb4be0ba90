#!/usr/bin/env node
// The `amobridge` command: the compiled CLI (npm run build). From source: `npm run cli -- <command>`.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('amobridge: no build in dist/: run `npm run build` first (or `npm run cli -- <command>` to run from source)\n');
  process.exit(1);
}
await import(entry.href);
