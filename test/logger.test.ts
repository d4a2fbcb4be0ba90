import { describe, expect, it } from 'vitest';
import { maskPhone } from '../src/logger.js';
import { capturingLogger } from './support/logs.js';

describe('logs', () => {
  it('never carry tokens or full phone numbers, however deep', () => {
    const { logger, events } = capturingLogger('info');
    logger.info('order.intake.contact_created', {
      orderId: 'DM-1',
      phone: '+7 (916) 123-45-67',
      customer: { phone: '+79161234567', firstName: 'Анна' },
      access_token: 'eyJ0eXAiOiJKV1QiLCJhbGciOi',
      headers: { authorization: 'Bearer secret-value' },
    });
    const entry = events[0]!;
    const line = JSON.stringify(entry);
    expect(entry).toMatchObject({ message: 'order.intake.contact_created', orderId: 'DM-1', level: 'info' });
    expect(line).not.toMatch(/1234567|123-45-67|eyJ0eXAi|secret-value/);
    expect(entry.phone).toBe('***4567');
    expect(entry.customer).toMatchObject({ phone: '***4567' });
    expect(entry.access_token).toBe('[redacted]');
  });

  it('masks all but the last four digits', () => {
    expect(maskPhone('+7 916 123-45-67')).toBe('***4567');
    expect(maskPhone('12')).toBe('***');
  });
});
