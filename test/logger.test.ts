import { describe, expect, it } from 'vitest';
import { maskPhone } from '../src/logger.js';
import { captureLogs } from './support/logs.js';

describe('logs', () => {
  it('never carry tokens or full phone numbers, however deep', () => {
    const { logger, lines } = captureLogs();
    logger.info('order.intake.contact_created', {
      orderId: 'DM-1',
      phone: '+7 (916) 123-45-67',
      customer: { phone: '+79161234567', firstName: 'Анна' },
      access_token: 'eyJ0eXAiOiJKV1QiLCJhbGciOi',
      headers: { authorization: 'Bearer secret-value' },
    });
    const line = lines.join('');
    const entry = JSON.parse(line);
    expect(entry).toMatchObject({ message: 'order.intake.contact_created', orderId: 'DM-1', level: 'info' });
    expect(line).not.toMatch(/1234567|123-45-67|eyJ0eXAi|secret-value/);
    expect(entry.phone).toBe('***4567');
    expect(entry.customer.phone).toBe('***4567');
    expect(entry.access_token).toBe('[redacted]');
  });

  it('masks all but the last four digits', () => {
    expect(maskPhone('+7 916 123-45-67')).toBe('***4567');
    expect(maskPhone('12')).toBe('***');
  });

  it('masks phones inside arrays, error strings and the message itself', () => {
    const { logger, lines, last } = captureLogs();
    logger.warn('job.retry', {
      phones: ['+7 903 555-01-01', '8 (903) 555 01 02'],
      contacts: [{ values: ['79035550103'] }],
      error: 'partner PATCH /orders/R-1 answered 409: {"phone":"+79035550104","status":"x"}',
    });
    logger.error('could not reach 8-903-555-01-05 about order R-7');
    const text = lines.join('');
    expect(text).not.toMatch(/555-?01-?0[1-5]|555 01 0[1-5]|903555010[1-5]/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ phones: ['***0101', '***0102'], contacts: [{ values: ['***0103'] }] });
    expect(JSON.parse(lines[0]!).error).toContain('"phone":"***0104"');
    expect(last().message).toBe('could not reach ***0105 about order R-7');
  });

  it('masks phones and secrets inside a logged Error, its message and its stack', () => {
    const { logger, lines } = captureLogs();
    logger.error('webview.error', { error: new Error('no contact for +7 903 555-01-06 (token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln)') });
    const text = lines.join('');
    expect(text).toContain('***0106');
    expect(text).not.toMatch(/555-01-06|eyJhbGci|eyJzdWIi/);
  });

  it('masks names under name-like keys, and a contact’s name, but not a pipeline’s or a stage’s', () => {
    const { logger, last } = captureLogs();
    logger.info('order.intake.contact_created', {
      customer: { firstName: 'Анна', lastName: 'Иванова', email: 'anna@example.ru' },
      given_name: 'Пётр',
      family_name: 'Петров',
      contact: { id: 5, name: 'Анна Иванова', first_name: 'Анна', last_name: 'Иванова' },
      pipeline: { id: 7_000_001, name: 'Company 2' },
      stage: { id: 61_000_002, name: 'Recorded for trial' },
      tag: { id: 499_278, name: 'Companies 1. Services' },
    });
    const entry = last();
    const text = JSON.stringify(entry);
    expect(text).not.toMatch(/Анна|Иванова|Пётр|Петров|anna@example/);
    expect(entry).toMatchObject({
      pipeline: { id: 7_000_001, name: 'Company 2' },
      stage: { id: 61_000_002, name: 'Recorded for trial' },
      tag: { id: 499_278, name: 'Companies 1. Services' },
      contact: { id: 5 },
    });
  });

  it('redacts tokens by their look, whatever the key', () => {
    const { logger, lines } = captureLogs();
    logger.warn('amo.request.retry', {
      detail: 'sent Authorization: Bearer def50200abc.secret-part',
      url: 'https://company2.amocrm.ru/oauth2/access_token?client_id=1&code=def502009a8b7c&refresh_token=r3fr3sh-t0k3n-v4lu3',
      note: 'webview link /webview?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.sig-nature',
      secretText: ['whsec_YW1vYnJpZGdlLXNlY3JldA=='],
    });
    const text = lines.join('');
    expect(text).not.toMatch(/def50200abc|secret-part|def502009a8b7c|r3fr3sh|eyJhbGci|eyJzdWIi|YW1vYnJpZGdlLXNlY3JldA/);
    const entry = JSON.parse(text);
    expect(entry.url).toContain('client_id=1');
    expect(entry.detail).toContain('Bearer [redacted]');
  });

  it('leaves ids, timestamps and amounts alone', () => {
    const { logger, last } = captureLogs();
    const fields = {
      orderId: 'DM-1234567890',
      dealId: 31_234_567,
      dealIds: [61_000_002, 7_000_001, 1_234_567_890],
      contactId: '9035550101',
      userId: '12345678901',
      timestampMs: 1_700_000_000_000,
      at: '1700000000123',
      unix: '1700000000',
      when: '2024-01-15T10:20:30.000Z',
      path: '/api/v4/leads/31234567',
      reason: 'deal 31234567 is in pipeline 7000001, not "Company 2"; ids 101 102 103 104',
      price: '150000.50',
      workerId: 'worker-1a2b3c4d',
    };
    logger.info('sync.checked 31234567 at 1700000000000', fields);
    const entry = last();
    expect(entry).toMatchObject(fields);
    expect(entry.message).toBe('sync.checked 31234567 at 1700000000000');
  });
});
