import { existsSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runNode } from '../../src/sandbox/processes.js';

/** The compiled bridge as `npm run build` makes it (scripts/build.js). */
export const DIST_MAIN = path.resolve('dist/main.js');

/** What the build leaves out (tsconfig.build.json): editing it does not make dist/ stale. */
const NOT_BUILT = [`sandbox${path.sep}`, `demo${path.sep}`];

/** Why dist/ is not the build of src/ as it is now (missing, or older than a source file); undefined when it is. */
export function staleBuild(): string | undefined {
  if (!existsSync(DIST_MAIN)) return 'dist/ is missing';
  const built = statSync(DIST_MAIN).mtimeMs;
  const newer = readdirSync('src', { recursive: true, encoding: 'utf8' })
    .filter((f) => !NOT_BUILT.some((skip) => f.startsWith(skip)))
    .find((f) => statSync(path.join('src', f)).mtimeMs > built);
  return newer === undefined ? undefined : `dist/ is older than src/${newer}`;
}

/**
 * The entry point of the compiled bridge, for `node <entry>`: dist/main.js when it is the
 * build of the current src/ (`npm test` has just made it), otherwise a build of its own.
 */
export async function compiledBridge(): Promise<string> {
  return staleBuild() === undefined ? DIST_MAIN : buildBridge();
}

/**
 * Builds the bridge as `npm run build` does (scripts/build.js: compiled modules, templates
 * and static files), into a temp folder rather than over dist/, which tests may be running;
 * types are not checked (that is `npm run typecheck`'s job).
 */
export async function buildBridge(): Promise<string> {
  const root = mkdtempSync(path.join(tmpdir(), 'amobridge-bench-build-'));
  const built = await runNode(['scripts/build.js', '--out-dir', path.join(root, 'dist'), '--no-check'], { timeoutMs: 120_000 });
  if (built.code !== 0) throw new Error(`scripts/build.js exited with ${built.code}: ${built.stderr.slice(-1000)}`);
  symlinkSync(path.resolve('node_modules'), path.join(root, 'node_modules'), 'dir');
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ type: 'module' }));
  return path.join(root, 'dist', 'main.js');
}
