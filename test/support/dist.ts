import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** The compiled bridge as `npm test` builds it before vitest runs (scripts/build.js). */
export const DIST_MAIN = path.resolve('dist/main.js');

/** What the build leaves out (tsconfig.build.json), so edits there do not make dist/ stale. */
const NOT_BUILT = [`sandbox${path.sep}`, `demo${path.sep}`];

/**
 * Tests of the compiled bridge and CLI run what `npm run build` made. Run alone (`npx vitest
 * run test/x.test.ts`), they would test an old build after an edit of src/: refuse that,
 * saying what to run.
 */
export function requireFreshBuild(): void {
  if (!existsSync(DIST_MAIN)) throw new Error('dist/ is missing: run `npm run build` (npm test does it before vitest)');
  const built = statSync(DIST_MAIN).mtimeMs;
  const stale = readdirSync('src', { recursive: true, encoding: 'utf8' })
    .filter((f) => !NOT_BUILT.some((skip) => f.startsWith(skip)))
    .find((f) => statSync(path.join('src', f)).mtimeMs > built);
  if (stale) throw new Error(`dist/ is older than src/${stale}: run \`npm run build\` (npm test does it before vitest)`);
}
