import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema, ConfigError, loadConfig } from '../src/config.js';
import { runNode } from '../src/sandbox/processes.js';

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
      LOG_LEVEL: 'info',
    });
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

  it('stops `npm start` with a message naming the variable', async () => {
    const result = await runNode(['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, ...valid, PARTNER_API_TOKEN: '' },
      timeoutMs: 20_000,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/PARTNER_API_TOKEN/);
  });
});
