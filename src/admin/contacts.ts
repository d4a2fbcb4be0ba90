import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { searchKey } from '../sync/contact-directory.js';

/**
 * The contact directory's search (GET /admin/contacts): a person types a Company 1 user
 * id, an amoCRM contact id, a name or a phone, and gets the few entries it could mean,
 * best first: an exact id, then an id that starts so, then a name or the phone's last four
 * digits, each group most recently used first.
 */

export const DIRECTORY_SEARCH_LIMIT = 20;

export type DirectoryMatch = 'id' | 'id prefix' | 'name' | 'phone';

export interface DirectoryEntry {
  userId: string;
  contactId: number;
  name: string | null;
  /** The last four digits of the phone: all the directory keeps. */
  phoneLast4: string | null;
  lastUsedAt: string | null;
  match: DirectoryMatch;
}

/** A query that looks like a phone (digits and the usual separators, 4+ digits) matches by its last four. */
function phoneDigits(q: string): string | null {
  if (!/^[\d\s()+-]+$/.test(q)) return null;
  const digits = q.replace(/\D/g, '');
  return digits.length >= 4 ? digits.slice(-4) : null;
}

/** `%text%` for LIKE, with `!` escaping the wildcards the text itself holds. */
const containing = (text: string) => `%${text.replace(/[!%_]/g, '!$&')}%`;

export async function searchDirectory(db: Kysely<Database>, query: string, limit = DIRECTORY_SEARCH_LIMIT): Promise<DirectoryEntry[]> {
  const q = query.trim();
  const key = searchKey(q);
  const phone = phoneDigits(q);
  const contactText = sql<string>`cast(contact_id as text)`;
  // substr, not LIKE, for ids: case-sensitive on both databases, and no wildcards to escape.
  const exact = sql<boolean>`(user_id = ${q} or ${contactText} = ${q})`;
  const prefix = sql<boolean>`(substr(user_id, 1, ${q.length}) = ${q} or substr(${contactText}, 1, ${q.length}) = ${q})`;
  const byName = key ? sql<boolean>`name_key like ${containing(key)} escape '!'` : sql<boolean>`1 = 0`;
  const byPhone = phone ? sql<boolean>`phone_last4 = ${phone}` : sql<boolean>`1 = 0`;
  const rank = sql<number>`case when ${exact} then 0 when ${prefix} then 1 else 2 end`;

  const rows = await db
    .selectFrom('contacts')
    .select(['user_id', 'contact_id', 'name', 'name_key', 'phone_last4', 'last_used_at', rank.as('rank')])
    .where(sql<boolean>`(${exact} or ${prefix} or ${byName} or ${byPhone})`)
    .orderBy(sql`${rank}`)
    .orderBy(sql`coalesce(last_used_at, 0)`, 'desc')
    .orderBy('user_id')
    .limit(limit)
    .execute();

  return rows.map((row) => ({
    userId: row.user_id,
    contactId: Number(row.contact_id),
    name: row.name,
    phoneLast4: row.phone_last4,
    lastUsedAt: row.last_used_at === null ? null : new Date(Number(row.last_used_at)).toISOString(),
    match: matchOf(Number(row.rank), row.name_key, key),
  }));
}

function matchOf(rank: number, nameKey: string | null, key: string): DirectoryMatch {
  if (rank === 0) return 'id';
  if (rank === 1) return 'id prefix';
  return key && nameKey?.includes(key) ? 'name' : 'phone';
}
