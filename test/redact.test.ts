import { describe, expect, it } from 'vitest';
import { HttpError } from '../src/lib/http-error.js';
import { EMAIL_MASK, REDACTED, redact, redactText, scrubBody } from '../src/lib/redact.js';
import { parseConflict } from '../src/partner/client.js';

describe('redactText', () => {
  it.each([
    ['+7 903 555-01-01', '***0101'],
    ['+7(903)555-01-01', '***0101'],
    ['+79035550101', '***0101'],
    ['+7 903 5550101', '***0101'],
    ['8 (903) 555 01 01', '***0101'],
    ['8-903-555-01-01', '***0101'],
    ['7 903 555 01 01', '***0101'],
    ['79035550101', '***0101'],
    ['89035550101', '***0101'],
    ['84951234567', '***4567'],
    ['(903) 555-01-01', '***0101'],
    ['903 555-01-01', '***0101'],
    ['8 800 555 35 35', '***3535'],
    ['+44 20 7946 0958', '***0958'],
    ['+1 (415) 555-2671', '***2671'],
  ])('masks the phone %s', (phone, masked) => {
    expect(redactText(`call ${phone}, then`)).toBe(`call ${masked}, then`);
    expect(redactText(phone)).toBe(masked);
  });

  it.each([
    ['a unix time', '1700000000'],
    ['a time in ms', '1700000000000'],
    ['an amoCRM id', '31234567'],
    ['a ten-digit id (could be a phone without its trunk; ambiguous, so kept)', '9035550101'],
    ['an eleven-digit id that is no Russian number', '12345678901'],
    ['an eleven-digit id starting with 7 and no area code', '71234567890'],
    ['a twelve-digit id', '790355501011'],
    ['an order id', 'DM-1234567890'],
    ['a date', '2024-01-15'],
    ['an ISO time', '2024-01-15T10:20:30.000Z'],
    ['a date and time', '2024-01-15 10:20:30'],
    ['an IP address', '192.168.100.200'],
    ['a UUID', '550e8400-e29b-41d4-a716-446655440000'],
    ['a list of ids', 'deals 101 102 103 104 and 31234567 61000002'],
    ['an amount', '1 500 000.50'],
    ['a path', '/api/v4/leads/31234567?filter[id][]=61000002'],
    ['a short code', 'answered 409: {"code":"NotSupportedChoice","status":409}'],
  ])('leaves %s alone', (_name, text) => {
    expect(redactText(text)).toBe(text);
  });

  it.each([
    ['a JWT', 'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end', `token ${REDACTED} end`],
    ['a JWT fragment', 'got eyJ0eXAiOiJKV1QiLCJhbGciOi', `got ${REDACTED}`],
    ['a Bearer header', 'Authorization: Bearer def502.abc-xyz', `Authorization: Bearer ${REDACTED}`],
    ['a webhook secret', 'secret whsec_YW1vYnJpZGdl+/Zm9v= set', `secret whsec_${REDACTED} set`],
    [
      'OAuth parameters in a URL',
      'https://x.amocrm.ru/oauth?client_id=abc&code=def50200aa&refresh_token=r1&state=s',
      `https://x.amocrm.ru/oauth?client_id=abc&code=${REDACTED}&refresh_token=${REDACTED}&state=s`,
    ],
    ['a form body', 'grant_type=refresh_token&refresh_token=r1&client_secret=s2', `grant_type=refresh_token&refresh_token=${REDACTED}&client_secret=${REDACTED}`],
    ['JSON fields', '{"access_token":"a1","token_type":"Bearer","refresh_token":"r\\"1"}', `{"access_token":"${REDACTED}","token_type":"Bearer","refresh_token":"${REDACTED}"}`],
    ['a long OAuth code in JSON', `{"code":"${'d'.repeat(60)}"}`, `{"code":"${REDACTED}"}`],
    ['names in JSON text', '{"firstName":"Анна","last_name":"Иванова","given_name":"Пётр"}', `{"firstName":"${REDACTED}","last_name":"${REDACTED}","given_name":"${REDACTED}"}`],
    ['a phone field of any shape in JSON text', '{"phone":"9035550101"}', '{"phone":"***0101"}'],
    ['an e-mail', 'write to anna.ivanova+kids@mail.example.ru now', `write to ${EMAIL_MASK} now`],
  ])('redacts %s', (_name, text, expected) => {
    expect(redactText(text)).toBe(expected);
  });
});

describe('redact', () => {
  it('masks by key at any depth, arrays included, and by value in every string', () => {
    const input = {
      orderId: 'R-1',
      dealId: 31_234_567,
      customer: { firstName: 'Анна', lastName: 'Иванова', phone: '9035550101', email: 'a@b.ru' },
      phones: ['+79035550101', 89_035_550_102],
      _embedded: { contacts: [{ id: 5, name: 'Анна Иванова', custom_fields_values: [{ field_code: 'PHONE', values: [{ value: '+7 903 555-01-03' }] }] }] },
      _links: { self: { href: 'https://x.amocrm.ru/api/v4/leads?access_token=abc' } },
      pipeline: { id: 7, name: 'Company 2', statuses: [{ id: 142, name: 'Success' }] },
      headers: { Authorization: 'Bearer x', 'webhook-signature': 'v1,abc' },
      code: 'ECONNREFUSED',
      at: 1_700_000_000_000,
    };
    expect(redact(input)).toEqual({
      orderId: 'R-1',
      dealId: 31_234_567,
      customer: { firstName: REDACTED, lastName: REDACTED, phone: '***0101', email: REDACTED },
      phones: ['***0101', '***0102'],
      _embedded: { contacts: [{ id: 5, name: REDACTED, custom_fields_values: [{ field_code: 'PHONE', values: [{ value: '***0103' }] }] }] },
      _links: { self: { href: `https://x.amocrm.ru/api/v4/leads?access_token=${REDACTED}` } },
      pipeline: { id: 7, name: 'Company 2', statuses: [{ id: 142, name: 'Success' }] },
      headers: { Authorization: REDACTED, 'webhook-signature': REDACTED },
      code: 'ECONNREFUSED',
      at: 1_700_000_000_000,
    });
  });

  it('masks a name beside first/last name fields, and a customer given as one string', () => {
    expect(redact({ deal: { name: 'Trial — order R-1' }, user: { name: 'Анна', first_name: 'Анна' }, customer: 'Анна Иванова' })).toEqual({
      deal: { name: 'Trial — order R-1' },
      user: { name: REDACTED, first_name: REDACTED },
      customer: REDACTED,
    });
  });

  it('turns an Error into its redacted name, message, fields and stack', () => {
    const error = Object.assign(new Error('no contact for +7 903 555-01-01'), { status: 409 });
    const out = redact(error) as Record<string, unknown>;
    expect(out).toMatchObject({ name: 'Error', message: 'no contact for ***0101', status: 409 });
    expect(out.stack).toMatch(/^Error: no contact for \*\*\*0101\n/);
  });

  it('survives cycles and depth without leaking', () => {
    const a: Record<string, unknown> = { phone: '+79035550101' };
    a.self = a;
    let deep: Record<string, unknown> = { note: '+7 903 555-01-09' };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    const text = JSON.stringify(redact({ a, deep }));
    expect(text).toContain('[circular]');
    expect(text).not.toMatch(/555-?01-?0[19]/);
  });
});

describe('scrubBody', () => {
  const order = {
    id: 'R-1',
    status: 'on_approval',
    customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+7 903 555-01-01', email: 'anna@example.ru' },
  };

  it('parses JSON and redacts it by key and value, then cuts it', () => {
    const body = JSON.stringify({ error: 'transition not allowed', currentStatus: 'executed', order });
    const scrubbed = scrubBody(body);
    expect(scrubbed).not.toMatch(/Анна|Иванова|555-01-01|anna@/);
    expect(JSON.parse(scrubbed)).toMatchObject({ error: 'transition not allowed', currentStatus: 'executed', order: { id: 'R-1', customer: { phone: '***0101' } } });
    expect(scrubBody(JSON.stringify({ items: Array.from({ length: 50 }, () => order) }), 300)).toHaveLength(301);
  });

  it('redacts a text body by value, before cutting it (no phone split at the cut)', () => {
    const text = `${'x'.repeat(290)} call +7 903 555-01-01`;
    expect(scrubBody(text, 300)).not.toMatch(/903|555/);
    expect(scrubBody('<html>Ivan, +79035550101</html>')).toBe('<html>Ivan, ***0101</html>');
    expect(scrubBody('')).toBe('');
  });
});

describe('HttpError', () => {
  it('keeps the raw answer for its caller, and only a scrubbed excerpt where it is shown', () => {
    const body = JSON.stringify({ error: 'transition not allowed', currentStatus: 'executed', customer: { firstName: 'Анна', phone: '+79035550101' } });
    const error = new HttpError('partner', 'PATCH', '/orders/R-1', 409, body);
    expect(parseConflict(error)).toEqual({ error: 'transition not allowed', currentStatus: 'executed' });
    expect(error.message).toBe(`partner PATCH /orders/R-1 answered 409: ${error.excerpt}`);
    for (const shown of [error.message, error.stack ?? '', JSON.stringify(error), JSON.stringify(redact(error))]) {
      expect(shown).not.toMatch(/Анна|9035550101/);
    }
    expect(new HttpError('amocrm', 'GET', '/api/v4/leads', 503, '').message).toBe('amocrm GET /api/v4/leads answered 503');
  });
});
