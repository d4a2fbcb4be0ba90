import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../src/db/connect.js';
import { GroupCommit } from '../src/inbox/group-commit.js';
import type { Order } from '../src/partner/schema.js';
import { createAmoSimulator } from '../src/sandbox/amo/index.js';
import { createPartnerSimulator, DEFAULT_PARTNER_WEBHOOK_SECRET } from '../src/sandbox/partner/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { BridgeProcess } from './support/bridge-process.js';
import { type DatabaseKind, DATABASES, dropDb, freshDatabaseUrl, freshDb } from './support/databases.js';
import { anOrder } from './support/orders.js';

/**
 * Group commit (src/inbox/group-commit.ts) as the partner webhook route uses it: webhooks
 * that arrive together share one transaction, each is answered after that commit, a bad one
 * fails alone, and an acknowledged one survives the process being killed.
 */

const signer = new Webhook(DEFAULT_PARTNER_WEBHOOK_SECRET);

function signedWebhook(webhookId: string, order: Order): { headers: Record<string, string>; body: string } {
  const now = new Date();
  const body = JSON.stringify({ type: 'order.created', timestamp: now.toISOString(), data: order });
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': webhookId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signer.sign(webhookId, now, body),
    },
  };
}

async function post(baseUrl: string, w: { headers: Record<string, string>; body: string }): Promise<number> {
  const res = await fetch(`${baseUrl}/webhooks/partner`, { method: 'POST', headers: w.headers, body: w.body });
  await res.arrayBuffer();
  return res.status;
}

/**
 * Sends every webhook at once: one connection each, all connected first, then every request
 * written in one go, so that they arrive together (as under load) whatever the client's
 * pacing. Resolves with each one's status, and checks through `onAnswer` as each answer comes.
 */
async function burst(baseUrl: string, webhooks: Array<{ headers: Record<string, string>; body: string }>, onAnswer: (i: number, status: number) => Promise<void>): Promise<number[]> {
  const { hostname, port } = new URL(baseUrl);
  const sockets = await Promise.all(
    webhooks.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(Number(port), hostname, () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 50)); // the server has accepted them all
  const answers = sockets.map(
    (socket, i) =>
      new Promise<number>((resolve, reject) => {
        let text = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (text += chunk));
        socket.once('error', reject);
        socket.once('end', () => {
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
          onAnswer(i, status).then(() => resolve(status), reject);
        });
      }),
  );
  sockets.forEach((socket, i) => {
    const w = webhooks[i]!;
    const head = Object.entries({ ...w.headers, host: `${hostname}:${port}`, 'content-length': String(Buffer.byteLength(w.body)), connection: 'close' })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`POST /webhooks/partner HTTP/1.1\r\n${head}\r\n${w.body}`);
  });
  return Promise.all(answers);
}

/** `amobridge_webhooks_per_commit`: how many accept transactions committed, and the webhooks they wrote. */
async function commits(baseUrl: string): Promise<{ commits: number; webhooks: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 'NaN');
  return { commits: value('amobridge_webhooks_per_commit_count'), webhooks: value('amobridge_webhooks_per_commit_sum') };
}

async function inboxKeys(db: Db): Promise<Set<string>> {
  const rows = await db.kysely.selectFrom('inbox').select('dedupe_key').execute();
  return new Set(rows.map((r) => r.dedupe_key));
}

/** The simulators and a compiled bridge on a fresh database of `kind`; `closers` gets what to close. */
async function startProcessBridge(kind: DatabaseKind, title: string, closers: Array<() => Promise<void>>) {
  const amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
  const partner = createPartnerSimulator();
  const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
  closers.push(() => amo.close(), () => partner.close());
  const { url, schema } = await freshDatabaseUrl(kind, title);
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-group-'));
  const bridge = await BridgeProcess.create({
    databaseUrl: schema ? `${url}?schema=${schema}` : url,
    amoUrl,
    partnerUrl,
    logPath: path.join(dir, 'bridge.log'),
    env: { LOG_LEVEL: 'warn' },
  });
  await bridge.start();
  return { bridge, url, schema };
}

/**
 * The bridge in a process of its own, as it runs: the burst then arrives from another
 * process, as Company 1's would (in one process, client and server take turns).
 */
describe.each(DATABASES)('group commit of partner webhooks on %s', (kind) => {
  let bridge: BridgeProcess | undefined;
  let db: Db;
  const closers: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    const started = await startProcessBridge(kind, `group-commit-${kind}`, closers);
    bridge = started.bridge;
    const { url, schema } = started;
    // The test's own connection: it sees what the bridge committed, and nothing else.
    db = connect(url, { schema });
    closers.push(() => db.close());
  });
  afterAll(async () => {
    await bridge?.stop('SIGKILL');
    for (const close of closers.splice(0)) await close();
  });

  it('writes concurrent webhooks in fewer transactions than webhooks, answering each after its commit', async () => {
    const baseUrl = bridge!.url;
    const before = await commits(baseUrl);
    const webhooks = Array.from({ length: 80 }, (_, i) => signedWebhook(`gc-${i}`, anOrder('on_approval', { id: `GC-${i}`, userId: `gc-user-${i}` })));
    // Inside the burst: a delivery repeated, and a second, newer picture of one order.
    webhooks.push(webhooks[3]!);
    webhooks.push(signedWebhook('gc-5-newer', anOrder('approved', { id: 'GC-5', userId: 'gc-user-5', updatedAt: '2026-01-02T00:00:00Z' })));

    const statuses = await burst(baseUrl, webhooks, async (i, status) => {
      // Answered only once committed: the row is there the moment the answer is.
      if (status === 202) expect((await inboxKeys(db)).has(`partner:${webhooks[i]!.headers['webhook-id']}`)).toBe(true);
    });

    expect(statuses.filter((s) => s === 202)).toHaveLength(81);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1); // the repeat, whichever came second
    const keys = await inboxKeys(db);
    for (const w of webhooks) expect(keys.has(`partner:${w.headers['webhook-id']}`)).toBe(true);
    expect(keys.size).toBe(81);
    const order5 = await db.kysely.selectFrom('orders').selectAll().where('order_id', '=', 'GC-5').executeTakeFirstOrThrow();
    expect(order5.partner_status).toBe('approved');

    const after = await commits(baseUrl);
    expect(after.webhooks - before.webhooks).toBe(82);
    // Arriving together, they share transactions: far fewer than one each.
    expect(after.commits - before.commits).toBeGreaterThan(0);
    expect(after.commits - before.commits).toBeLessThan(82 / 4);
  });

  if (kind === 'postgres') {
    it('fails a webhook the database refuses alone; the others of its group are accepted', async () => {
      const baseUrl = bridge!.url;
      // A trigger makes the database refuse this one order's row, as a constraint or a
      // full disk would: the webhook passed every check before the write.
      await sql`create function refuse_gc_bad() returns trigger language plpgsql as $$
        begin if new.order_id = 'GC-BAD' then raise exception 'refused by the test'; end if; return new; end $$`.execute(db.kysely);
      await sql`create trigger refuse_gc_bad before insert or update on orders for each row execute function refuse_gc_bad()`.execute(db.kysely);
      const bad = signedWebhook('gc-bad', anOrder('on_approval', { id: 'GC-BAD' }));
      const good = Array.from({ length: 20 }, (_, i) => signedWebhook(`gc-good-${i}`, anOrder('on_approval', { id: `GC-GOOD-${i}` })));
      const before = await commits(baseUrl);
      const statuses = await burst(baseUrl, [...good.slice(0, 10), bad, ...good.slice(10)], async () => undefined);
      expect(statuses[10]).toBe(500);
      expect(statuses.filter((s) => s === 202)).toHaveLength(20);
      const keys = await inboxKeys(db);
      expect(keys.has('partner:gc-bad')).toBe(false);
      for (const w of good) expect(keys.has(`partner:${w.headers['webhook-id']}`)).toBe(true);
      // The good ones were committed one by one after their group failed, or in groups without the bad one.
      expect((await commits(baseUrl)).webhooks - before.webhooks).toBe(20);
    });
  }
});

describe.each(DATABASES)('GroupCommit on %s', (kind) => {
  let db: Db;
  beforeAll(async () => {
    db = await freshDb(kind, `group-commit-unit-${kind}`);
  });
  afterAll(async () => dropDb(db));

  /** Writes inbox rows by key, one transaction per group; a key already there violates the unique index. */
  function committer(groups: string[][]) {
    return new GroupCommit<string, number>({
      write: (keys) =>
        db.kysely.transaction().execute(async (trx) => {
          groups.push([...keys]);
          // A transaction that takes a while, as one over the network does: submissions meanwhile wait for the next.
          await new Promise((r) => setTimeout(r, 20));
          const ids: number[] = [];
          for (const key of keys) {
            const row = await trx.insertInto('inbox').values({ source: 'partner', dedupe_key: key, received_at: 0, body: '' }).returning('id').executeTakeFirstOrThrow();
            ids.push(Number(row.id));
          }
          return ids;
        }),
    });
  }

  it('takes what is submitted together into one transaction, in order, and what comes during it into the next', async () => {
    const groups: string[][] = [];
    const gc = committer(groups);
    const first = Array.from({ length: 10 }, (_, i) => gc.submit(`u-${i}`));
    const ids = await Promise.all(first);
    expect(groups).toEqual([Array.from({ length: 10 }, (_, i) => `u-${i}`)]);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // Submitted while a group is being written: they wait for it, then go together.
    const late: Array<Promise<number>> = [];
    const early = gc.submit('v-0');
    setTimeout(() => late.push(gc.submit('v-1'), gc.submit('v-2')), 5);
    await early;
    await gc.drain();
    await Promise.all(late);
    expect(groups.slice(1)).toEqual([['v-0'], ['v-1', 'v-2']]);
  });

  it('rejects only the item that fails; the rest of its group is written', async () => {
    const groups: string[][] = [];
    const gc = committer(groups);
    await gc.submit('dup');
    const results = await Promise.allSettled(['w-1', 'w-2', 'dup', 'w-3'].map((k) => gc.submit(k)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    // The group rolled back whole, then each item went alone.
    expect(groups.slice(1)).toEqual([['w-1', 'w-2', 'dup', 'w-3'], ['w-1'], ['w-2'], ['dup'], ['w-3']]);
    const keys = await inboxKeys(db);
    expect([...keys].filter((k) => /^(dup|w-)/.test(k)).sort()).toEqual(['dup', 'w-1', 'w-2', 'w-3']);
  });
});

describe.each(DATABASES)('acknowledged webhooks and SIGKILL on %s', (kind) => {
  let bridge: BridgeProcess | undefined;
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await bridge?.stop('SIGKILL');
    for (const close of closers.splice(0)) await close();
  });

  it('every webhook answered 2xx before the kill is in the database after it', async () => {
    const started = await startProcessBridge(kind, `group-commit-kill-${kind}`, closers);
    bridge = started.bridge;
    const { url, schema } = started;
    const target = bridge;

    // 16 senders back to back until the kill; every answer is noted as it comes.
    const acknowledged: string[] = [];
    let sent = 0;
    let killed = false;
    const sender = async () => {
      while (!killed) {
        const i = sent++;
        const w = signedWebhook(`kill-${i}`, anOrder('on_approval', { id: `K-${i}`, userId: `k-${i}` }));
        const status = await post(target.url, w).catch(() => 0);
        if (status === 202) acknowledged.push(w.headers['webhook-id']!);
      }
    };
    const senders = Array.from({ length: 16 }, sender);
    while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 5));
    killed = true;
    expect(await target.stop('SIGKILL')).toBeNull();
    bridge = undefined;
    await Promise.all(senders);

    const db = connect(url, { schema });
    closers.push(() => db.close());
    const keys = await inboxKeys(db);
    const lost = acknowledged.filter((id) => !keys.has(`partner:${id}`));
    expect(lost).toEqual([]);
    expect(acknowledged.length).toBeGreaterThanOrEqual(300);
  });
});
