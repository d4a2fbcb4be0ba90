import { DIST_MAIN, staleBuild } from '../../bench/lib/build.js';

export { DIST_MAIN };

/**
 * Tests of the compiled bridge and CLI run what `npm run build` made. Run alone (`npx vitest
 * run test/x.test.ts`), they would test an old build after an edit of src/: refuse that,
 * saying what to run.
 */
export function requireFreshBuild(): void {
  const stale = staleBuild();
  if (stale) throw new Error(`${stale}: run \`npm run build\` (npm test does it before vitest)`);
}
