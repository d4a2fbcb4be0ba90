/**
 * Personal data and secrets out of anything that leaves the process as text: log lines,
 * jobs.last_error, error messages built from a peer's answer. Two passes, both pure:
 *
 * - by key, at any depth (arrays included): secrets, phones, e-mails and person names;
 * - by value, in every string: phone numbers, e-mails, JWTs, `Bearer …`, `whsec_…`, and
 *   tokens in query strings or JSON text (`access_token=…`, `"refresh_token":"…"`).
 *
 * What a phone looks like, as opposed to the ids and timestamps logs are full of:
 * - `+` then 10–15 digits in any grouping (`+7 903 555-01-01`, `+44 20 7946 0958`);
 * - the Russian 3-3-2-2 shape with separators or parentheses, with or without the trunk
 *   `7`/`8` (`8 (903) 555 01 01`, `903 555-01-01`);
 * - a bare 11-digit run `7…`/`8…` whose area code starts with 3, 4, 8 or 9 (Russia's
 *   geographic and mobile codes), e.g. `79035550101`.
 * A bare run of 10, 12 or 13 digits is an id or a timestamp (1700000000, 1700000000000)
 * and is left alone, as is a bare 11-digit run of another shape. A phone stored under a
 * phone-like key is masked whatever its shape.
 */

export const REDACTED = '[redacted]';
export const EMAIL_MASK = '[email]';

/** A phone with all but its last four digits hidden: `***0101`. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  if (digits.length <= 4) return '***';
  return `***${digits.slice(-4)}`;
}

const SECRET_KEYS = /token|secret|authorization|password|passwd|cookie|code_verifier|signature|api_?key/i;
/**
 * `code` is an OAuth authorization code (hundreds of characters) or an error code
 * (`NotSupportedChoice`, `ECONNREFUSED`) that a person needs: only the long ones go.
 */
const LONG_CODE = 40;
const PHONE_KEYS = /phone|^tel$|^mobile$/i;
const EMAIL_KEYS = /e-?mail/i;
/** Keys that always hold a person's name, in the spellings Company 1, amoCRM and OIDC use. */
const NAME_KEYS =
  /^(first_?name|last_?name|middle_?name|second_?name|given_?name|family_?name|full_?name|sur_?name|patronymic|fio|customer|customer_?name|contact_?name)$/i;
/**
 * `name` is masked only where it names a person: under a person-like key (a Company 1
 * customer, an amoCRM contact) or beside first/last name fields. Elsewhere it names a
 * pipeline, a stage, a tag, a field or a deal ("<service> — order <id>"), which the
 * logs need and which are not personal data.
 */
const PERSON_KEYS = /^(customer|customers|contact|contacts|client|clients|person|persons|people|buyer|recipient)$/i;
const PERSON_SIBLINGS = /^(first_?name|last_?name|given_?name|family_?name)$/i;

/** Secret-named parameters in a query string or form, and secret-named fields in JSON text. */
const SECRET_FIELD_NAMES = 'access_token|refresh_token|id_token|token|client_secret|secret|password|api_?key';
const NAME_FIELD_NAMES = 'first_?name|last_?name|middle_?name|given_?name|family_?name|full_?name|patronymic';

const TEXT_RULES: ReadonlyArray<readonly [RegExp, (match: string, ...groups: string[]) => string]> = [
  // "access_token":"…", "firstName":"…", "phone":"…" inside JSON text (a peer's body in a message).
  [new RegExp(`"(${SECRET_FIELD_NAMES}|${NAME_FIELD_NAMES})"(\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"`, 'gi'), (_m, key, colon) => `"${key}"${colon}"${REDACTED}"`],
  [new RegExp(`"code"(\\s*:\\s*)"[^"]{${LONG_CODE},}"`, 'g'), (_m, colon) => `"code"${colon}"${REDACTED}"`],
  [/"([^"\s]*phone[^"\s]*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"/gi, (_m, key, colon, value) => `"${key}"${colon}"${maskPhone(value)}"`],
  // ?code=…&refresh_token=… in URLs and form bodies.
  [new RegExp(`(^|[?&;\\s])(${SECRET_FIELD_NAMES}|code)=[^&#\\s"']+`, 'gi'), (_m, lead, key) => `${lead}${key}=${REDACTED}`],
  [/\bBearer\s+[A-Za-z0-9._~+/=-]+/g, () => `Bearer ${REDACTED}`],
  // JWTs (and their fragments): the header always starts {" → eyJ.
  [/\beyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2}/g, () => REDACTED],
  [/\bwhsec_[A-Za-z0-9+/=]+/g, () => `whsec_${REDACTED}`],
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, () => EMAIL_MASK],
  // International: + and 10–15 digits.
  [/\+\d{1,3}[\s-]?(?:\(\d{1,5}\)|\d{1,5})(?:[\s-]?\d{1,4}){1,5}(?!\d)/g, (m) => (digitCount(m) >= 10 && digitCount(m) <= 15 ? maskPhone(m) : m)],
  // Russian without +: optional trunk 7/8, a 3-digit area code (maybe in parentheses), 3-2-2.
  [/(?<![\w+])(?:[78][\s-]?)?(?:\(\d{3,5}\)|\d{3})[\s-]?\d{3}[\s-]?\d{2}[\s-]?\d{2}(?!\w)/g, (m) => (looksLikeRussianPhone(m) ? maskPhone(m) : m)],
];

function digitCount(text: string): number {
  return text.replace(/\D/g, '').length;
}

function looksLikeRussianPhone(match: string): boolean {
  const digits = match.replace(/\D/g, '');
  if (/^\d+$/.test(match)) return digits.length === 11 && /^[78][3489]/.test(digits);
  if (digits.length === 11) return /^[78]/.test(digits);
  return digits.length === 10;
}

/** Secrets, e-mails and phone numbers found in free text, replaced; everything else kept. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replace] of TEXT_RULES) out = out.replace(pattern, replace as (m: string, ...g: string[]) => string);
  return out;
}

const MAX_DEPTH = 10;

/**
 * A deep copy of `value` with secrets, phones, e-mails and names hidden: by key at any
 * depth, arrays included, and by value in every string. Errors become
 * `{ name, message, stack, …own fields }`, all redacted. `key` is the name `value` sits under.
 */
export function redact(value: unknown, key = ''): unknown {
  return redactAt(value, key, false, 0, new WeakSet());
}

function redactAt(value: unknown, key: string, person: boolean, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || value === undefined) return value;
  if (key && SECRET_KEYS.test(key)) return REDACTED;
  if (key === 'code' && typeof value === 'string' && value.length >= LONG_CODE) return REDACTED;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') {
    if (key && PHONE_KEYS.test(key)) return maskPhone(String(value));
    if (typeof value !== 'string') return value; // numbers are ids, amounts and times
    if (key && (EMAIL_KEYS.test(key) || NAME_KEYS.test(key) || (person && key === 'name'))) return REDACTED;
    return redactText(value);
  }
  if (typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  try {
    // An array's items sit under the array's own key: `phones: [...]` are phones.
    if (Array.isArray(value)) return value.map((item) => redactAt(item, key, person, depth + 1, seen));
    const source: Record<string, unknown> =
      value instanceof Error ? { ...errorHead(value), ...(value as object), stack: value.stack } : (value as Record<string, unknown>);
    const personHere = PERSON_KEYS.test(key) || Object.keys(source).some((k) => PERSON_SIBLINGS.test(k));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(source)) out[k] = redactAt(v, k, personHere, depth + 1, seen);
    return out;
  } finally {
    seen.delete(value);
  }
}

/** An Error's name and message are not enumerable: copied by hand so they are kept. */
function errorHead(error: Error): { name: string; message: string } {
  return { name: error.name, message: error.message };
}

/** Longer answers are scrubbed as text only: parsing megabytes of JSON for a 300-character excerpt is waste. */
const MAX_PARSED_BODY = 64 * 1024;

/**
 * A peer's response body made fit for an error message: JSON is parsed and redacted by
 * key and value (so an echoed order loses its customer), anything else by value; then
 * cut to `maxLength`. Cutting comes last, so no phone is split past recognition.
 */
export function scrubBody(body: string, maxLength = 300): string {
  if (!body) return '';
  let scrubbed: string | undefined;
  const trimmed = body.trim();
  if (body.length <= MAX_PARSED_BODY && (trimmed.startsWith('{') || trimmed.startsWith('['))) {
    try {
      scrubbed = JSON.stringify(redact(JSON.parse(trimmed)));
    } catch {
      scrubbed = undefined;
    }
  }
  scrubbed ??= redactText(body.slice(0, Math.max(maxLength * 4, 2000)));
  return scrubbed.length > maxLength ? `${scrubbed.slice(0, maxLength)}…` : scrubbed;
}
