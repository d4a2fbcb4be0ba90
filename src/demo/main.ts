import readline from 'node:readline';
import { runDemo } from './run.js';

/**
 * `npm run demo [-- --keep]`: the three integration stages, printed (src/demo/run.ts).
 * With --keep the stack stays up for a person to try: a sign-in link for the webview
 * (Enter prints a fresh one: a link signs in once) and how to move a deal in amoCRM.
 */

const keep = process.argv.slice(2).includes('--keep');

try {
  const demo = await runDemo();
  if (!keep) {
    await demo.stop();
    process.exit(0);
  }
  const { stack } = demo;
  console.log(`\nStill running (--keep). Open the webview as user dm-user-5 (one sign-in per link; Enter for a fresh one):`);
  console.log(`  ${await demo.signInLink()}`);
  console.log(`Move a deal as a manager; amoCRM's webhook reaches the bridge (status ids: GET ${stack.amoUrl}/api/v4/leads/pipelines):`);
  console.log(
    `  curl -X PATCH ${stack.amoUrl}/api/v4/leads/<deal id> -H 'Authorization: Bearer sandbox-long-lived-token' ` +
      `-H 'Content-Type: application/json' -d '{"status_id": ${stack.amo.statusIdByName('Recorded for trial')}}'`,
  );
  console.log('Ctrl-C stops.');
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', () => void demo.signInLink().then((link) => console.log(`  ${link}`)));
  const stop = () => {
    input.close();
    void demo.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  console.error('demo failed:', error);
  process.exit(1);
}
