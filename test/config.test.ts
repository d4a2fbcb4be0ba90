import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema, ConfigError, loadConfig, parseEnv, storageEnv } from '../src/config.js';

const valid = {
  AMO_SUBDOMAIN: 'company2',
  AMO_LONG_LIVED_TOKEN: 'llt',
  AMO_WEBHOOK_SECRET: 'a-long-enough-path-secret',
  PARTNER_API_URL: 'https://partner.example/api',
  PARTNER_API_TOKEN: 'pt',
  PARTNER_WEBHOOK_SECRET: 'whsec_c2VjcmV0',
  WEBVIEW_JWT_SECRET: 'x'.repeat(32),
  WEBVIEW_JWT_ISSUER: 'company1',
  WEBVIEW_JWT_AUDIENCE: 'amobridge',
  SESSION_SECRET: 'y'.repeat(32),
};

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({
      PORT: 3000,
      DATABASE_URL: 'sqlite:./data/amobridge.db',
      MAPPINGS_PATH: 'mappings/default.yaml',
      AMO_RATE_LIMIT_RPS: 7,
      SWEEP_INTERVAL: 300,
      PARTNER_SWEEP_INTERVAL: 300,
      SHUTDOWN_TIMEOUT: 25,
      RETENTION: 30 * 86_400,
      RETENTION_INTERVAL: 3600,
      LOG_LEVEL: 'info',
      WEBVIEW_LOCALE: 'ru',
      WEBVIEW_TOKEN_MAX_AGE: 300,
      WEBVIEW_ORDER_LIMIT: { max: 5, windowMs: 600_000, window: { count: 10, unit: 'm' } },
    });
  });

  it('takes an empty variable as unset: a default applies, a required one is named as empty', () => {
    expect(loadConfig({ ...valid, PORT: '', SHUTDOWN_TIMEOUT: '' })).toMatchObject({ PORT: 3000, SHUTDOWN_TIMEOUT: 25 });
    expect(() => loadConfig({ ...valid, PARTNER_API_TOKEN: '' })).toThrow('invalid configuration: PARTNER_API_TOKEN is empty');
    expect(() => loadConfig({ ...valid, PARTNER_API_TOKEN: undefined })).toThrow('invalid configuration: PARTNER_API_TOKEN is not set');
  });

  it('validates a group on its own: the database commands need DATABASE_URL only', () => {
    expect(parseEnv(storageEnv, { DATABASE_URL: 'postgres://db.example/amobridge' })).toEqual({
      DATABASE_URL: 'postgres://db.example/amobridge',
      LOG_LEVEL: 'info',
    });
    expect(() => parseEnv(storageEnv, { DATABASE_URL: 'mysql://db.example/x' })).toThrow(/DATABASE_URL: must be sqlite/);
  });

  it.each([
    ['45s', 45],
    ['10m', 600],
    ['12h', 43_200],
    ['7d', 604_800],
  ])('reads RETENTION=%s as %i seconds', (value, seconds) => {
    expect(loadConfig({ ...valid, RETENTION: value }).RETENTION).toBe(seconds);
  });

  it('reads WEBVIEW_ORDER_LIMIT as orders per window', () => {
    expect(loadConfig({ ...valid, WEBVIEW_ORDER_LIMIT: '20/1d' }).WEBVIEW_ORDER_LIMIT).toEqual({ max: 20, windowMs: 86_400_000, window: { count: 1, unit: 'd' } });
    expect(loadConfig({ ...valid, WEBVIEW_ORDER_LIMIT: '1/30s' }).WEBVIEW_ORDER_LIMIT).toMatchObject({ max: 1, windowMs: 30_000 });
  });

  it.each([
    ['PARTNER_API_URL', { PARTNER_API_URL: undefined }],
    ['PARTNER_WEBHOOK_SECRET', { PARTNER_WEBHOOK_SECRET: 'not-a-whsec' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
    ['AMO_RATE_LIMIT_RPS', { AMO_RATE_LIMIT_RPS: 'fast' }],
    ['AMO_CLIENT_ID', { AMO_LONG_LIVED_TOKEN: undefined }],
    ['WEBVIEW_JWT_SECRET', { WEBVIEW_JWT_SECRET: 'short' }],
    ['PARTNER_SWEEP_INTERVAL', { PARTNER_SWEEP_INTERVAL: '-1' }],
    ['PARTNER_SWEEP_INTERVAL', { PARTNER_SWEEP_INTERVAL: 'often' }],
    ['SHUTDOWN_TIMEOUT', { SHUTDOWN_TIMEOUT: '0' }],
    ['RETENTION', { RETENTION: '30' }],
    ['RETENTION', { RETENTION: '30 days' }],
    ['RETENTION', { RETENTION: '1w' }],
    ['RETENTION', { RETENTION: '0d' }],
    ['RETENTION', { RETENTION: '-5m' }],
    ['RETENTION_INTERVAL', { RETENTION_INTERVAL: '-1' }],
    ['RETENTION_INTERVAL', { RETENTION_INTERVAL: 'hourly' }],
    ['WEBVIEW_LOCALE', { WEBVIEW_LOCALE: 'de' }],
    ['ADMIN_LOCALE', { ADMIN_LOCALE: 'de' }],
    ['WEBVIEW_TOKEN_MAX_AGE', { WEBVIEW_TOKEN_MAX_AGE: '0' }],
    ['WEBVIEW_TOKEN_MAX_AGE', { WEBVIEW_TOKEN_MAX_AGE: 'five minutes' }],
    ['WEBVIEW_ORDER_LIMIT', { WEBVIEW_ORDER_LIMIT: '5' }],
    ['WEBVIEW_ORDER_LIMIT', { WEBVIEW_ORDER_LIMIT: '0/10m' }],
    ['WEBVIEW_ORDER_LIMIT', { WEBVIEW_ORDER_LIMIT: '5/10 minutes' }],
  ])('names %s when it is missing or malformed', (name, change) => {
    const env = { ...valid, ...change } as Record<string, string | undefined>;
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`\\b${name}\\b`));
  });

  it('.env.example lists every variable, and nothing else', () => {
    const listed = readFileSync('.env.example', 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.slice(0, line.indexOf('=')));
    expect(listed.sort()).toEqual(Object.keys(configSchema.shape).sort());
  });

});
