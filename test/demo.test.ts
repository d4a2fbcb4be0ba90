import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo/run.js';

/** `npm run demo` shows all three stages: intake, stage sync from a manager's moves, the webview. */
describe('the demo', () => {
  it('takes orders in, drives them from a manager’s moves in amoCRM, and places and cancels one in the webview', async () => {
    const lines: string[] = [];
    const demo = await runDemo({ write: (line) => lines.push(line) });
    try {
      const out = lines.join('\n');
      const stage2 = out.slice(out.indexOf('── Stage 2'), out.indexOf('── Stage 3'));
      const stage3 = out.slice(out.indexOf('── Stage 3'));
      expect(out).toContain('── Stage 1');

      // Stage 2: each move arrives as amoCRM's webhook and changes the order as the table says.
      expect(stage2).toMatch(/manager {3}deal \d+ \(order DM-000001\) → "Recorded for trial"\n {2}webhook {3}amoCRM → bridge: update \+ status of deal \d+\n {2}order {5}DM-000001: status on_approval → approved/);
      expect(stage2).toContain('DM-000001: cost — → 12500');
      expect(stage2).toContain('DM-000001: paid no → yes');
      expect(stage2).toContain('DM-000001: status in_work → executed');
      expect(stage2).toContain('DM-000002: status on_approval → in_work, cost — → 9900, paid no → yes (2 PATCHes');
      expect(stage2).toContain('DM-000003: status on_approval → rejected');

      // Stage 3: signed in by link, the order placed with its comment, cancelled; the deal
      // hears of both, moves to Refusal, and the echo of that move sends nothing.
      expect(stage3).toMatch(/webview {3}user dm-user-5 signed in/);
      expect(stage3).toMatch(/note {6}deal \d+ ← "Комментарий клиента: Удобно после 18:00"/);
      expect(stage3).toMatch(/note {6}deal \d+ ← "Клиент отменил заказ"/);
      expect(stage3).toMatch(/amoCRM {4}deal \d+ moved by the bridge to "Closed - lost" \(cancelled\)/);
      expect(stage3).toMatch(/reconcile deal \d+: order DM-000005 already in step with the deal, nothing sent/);
      expect(stage3).toContain('DM-000005: status on_approval → cancelled');
      expect(stage3).toContain('since the cancel: 1 (the cancel itself');

      expect(out).not.toContain('DEAD');
      expect(out).toMatch(/API calls \(the manager's moves included\), 0 answered 429/);
      expect(await demo.stack.bridge.db.kysely.selectFrom('jobs').select('id').where('status', '=', 'dead').execute()).toEqual([]);
    } finally {
      await demo.stop();
    }
  });
});
