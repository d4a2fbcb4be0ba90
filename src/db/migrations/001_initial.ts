import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/** Migrations are numbered and never edited once released: add a new file instead. */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  const bigint = 'bigint';

  await db.schema
    .createTable('inbox')
    .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    .addColumn('received_at', bigint, (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('job_key', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('run_at', bigint, (c) => c.notNull())
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', bigint)
    .addColumn('last_error', 'text')
    .addColumn('inbox_id', bigint)
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();
  // Leasing scans unfinished jobs in id order; the key index answers "is an earlier job
  // of this key still unfinished?" for each candidate.
  await sql`create index jobs_unfinished on jobs (run_at, id) where status in ('queued', 'running')`.execute(db);
  await sql`create index jobs_key on jobs (job_key, id) where status <> 'done'`.execute(db);
  // Coalescing: at most one waiting job per (kind, key); a new event joins it.
  await sql`create unique index jobs_waiting_once on jobs (kind, job_key) where status = 'queued' and attempts = 0`.execute(db);
  await sql`create index jobs_dead on jobs (updated_at) where status = 'dead'`.execute(db);

  await db.schema
    .createTable('orders')
    .addColumn('order_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('service_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', bigint)
    .addColumn('deal_id', bigint)
    .addColumn('partner_status', 'text', (c) => c.notNull())
    .addColumn('snapshot', 'text', (c) => c.notNull())
    .addColumn('partner_updated_at', bigint, (c) => c.notNull())
    .addColumn('note', 'text')
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('closed_by_partner', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('info_pushed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();
  await sql`create index orders_deal on orders (deal_id)`.execute(db);
  await sql`create index orders_user on orders (user_id)`.execute(db);

  await db.schema
    .createTable('contacts')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('contact_id', bigint, (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('amo_creates')
    .addColumn('natural_key', 'text', (c) => c.primaryKey())
    .addColumn('started_at', bigint, (c) => c.notNull())
    .addColumn('job_id', bigint)
    .addColumn('entity_id', bigint)
    .execute();

  await db.schema
    .createTable('amo_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('access_token', 'text', (c) => c.notNull())
    .addColumn('refresh_token', 'text', (c) => c.notNull())
    .addColumn('expires_at', bigint, (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('rate_slots')
    .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('bucket', 'text', (c) => c.notNull())
    .addColumn('at', bigint, (c) => c.notNull())
    .execute();
  await sql`create index rate_slots_at on rate_slots (bucket, at)`.execute(db);

  await db.schema
    .createTable('kv')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();
}
