import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

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
      LOG_LEVEL: 'info',
      WEBVIEW_LOCALE: 'ru',
      WEBVIEW_TOKEN_MAX_AGE: 300,
      WEBVIEW_ORDER_LIMIT: { max: 5, windowMs: 600_000, window: { count: 10, unit: 'm' } },
    });
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
    ['WEBVIEW_LOCALE', { WEBVIEW_LOCALE: 'de' }],
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

  it('stops `npm start` with a message naming the variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, ...valid, PARTNER_API_TOKEN: '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/PARTNER_API_TOKEN/);
  });
});
