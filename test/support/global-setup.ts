import { execFileSync } from 'node:child_process';
import { staleBuild } from '../../bench/lib/build.js';
import { dropTestSchemas } from './databases.js';

/**
 * Before the run: clear the PostgreSQL schemas earlier runs left (see dropDb), and bring
 * dist/ up to date when src/ changed since the last build (npm test builds first; a single
 * file run with `npx vitest run` may not have), since the bridge processes run the build.
 */
export default async function setup(): Promise<void> {
  await dropTestSchemas();
  if (staleBuild()) execFileSync(process.execPath, ['scripts/build.js', '--no-check'], { stdio: 'inherit' });
}
