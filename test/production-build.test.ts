import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { createPartnerSimulator, type PartnerSimulator } from '../src/sandbox/partner/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { BridgeProcess } from './support/bridge-process.js';
import { requireFreshBuild } from './support/dist.js';
import { signWebviewToken } from './support/webview.js';

const run = promisify(execFile);

/**
 * `npm run build` makes a dist/ that runs on its own: what a deployment copies is dist/,
 * package.json, node_modules and the mappings, and no src/.
 */

/** A folder laid out as a deployment: dist/, package.json, mappings/, node_modules (linked). */
function deployment(withDist: boolean): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-deploy-'));
  if (withDist) cpSync('dist', path.join(dir, 'dist'), { recursive: true });
  cpSync('package.json', path.join(dir, 'package.json'));
  cpSync('bin', path.join(dir, 'bin'), { recursive: true });
  cpSync('mappings', path.join(dir, 'mappings'), { recursive: true });
  symlinkSync(path.resolve('node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

const failing = (file: string, args: string[], cwd: string) =>
  run(file, args, { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, timeout: 20_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );

describe('the production build', () => {
  let amo: AmoSimulator | undefined;
  let partner: PartnerSimulator | undefined;
  let bridge: BridgeProcess | undefined;
  beforeAll(() => requireFreshBuild());
  afterEach(async () => {
    bridge?.kill();
    await Promise.all([amo?.close(), partner?.close()]);
  });

  it('leaves the simulators and the demo out, and imports production dependencies only', () => {
    expect(existsSync('dist/sandbox')).toBe(false);
    expect(existsSync('dist/demo')).toBe(false);
    const modules = readdirSync('dist', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    expect(modules.length).toBeGreaterThan(20);
    // After `npm prune --omit=dev` only `dependencies` are installed.
    const { dependencies } = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
    for (const file of modules) {
      const code = readFileSync(path.join('dist', file), 'utf8');
      expect(code, file).not.toMatch(/from '[^']*\/(sandbox|demo)\//);
      for (const [, specifier] of code.matchAll(/(?:from |import\(|import )'([^'.][^']*)'/g)) {
        if (specifier!.startsWith('node:')) continue;
        const name = specifier!.split('/').slice(0, specifier!.startsWith('@') ? 2 : 1).join('/');
        expect(Object.keys(dependencies), `${file} imports ${specifier}`).toContain(name);
      }
    }
  });

  it('runs from a folder with no src/: health, readiness, a webview page, the admin page and their stylesheets', async () => {
    const dir = deployment(true);
    amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
    partner = createPartnerSimulator();
    const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
    bridge = await BridgeProcess.create({
      databaseUrl: `sqlite:${path.join(dir, 'data', 'bridge.db')}`,
      amoUrl,
      partnerUrl,
      logPath: path.join(dir, 'bridge.log'),
      command: 'compiled',
      cwd: dir,
    });
    await bridge.start();
    expect(existsSync(path.join(dir, 'src'))).toBe(false);

    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${bridge.url}/readyz`)).status).toBe(200);

    // Sign in as Company 1's app does, then the orders page renders from dist/webview/views.
    const signIn = await fetch(`${bridge.url}/webview?token=${await signWebviewToken({ sub: 'deployed-user' })}`, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const page = await fetch(new URL(signIn.headers.get('location')!, bridge.url), { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/<html/);
    const stylesheet = /href="(\/webview\/static\/[^"]+\.css)"/.exec(html)?.[1];
    expect(stylesheet).toBeDefined();
    const css = await fetch(new URL(stylesheet!, bridge.url));
    expect(css.status).toBe(200);
    expect(await css.text()).toBe(readFileSync(path.join('src/webview/static', path.basename(stylesheet!)), 'utf8'));

    // The admin page renders from dist/admin-ui/views, with its stylesheet.
    const adminPage = await fetch(`${bridge.url}/admin/ui/sign-in`);
    expect(adminPage.status).toBe(200);
    expect(await adminPage.text()).toMatch(/<form method="post" action="\/admin\/ui\/sign-in"/);
    const adminCss = await fetch(`${bridge.url}/admin/ui/static/admin.css`);
    expect(await adminCss.text()).toBe(readFileSync('src/admin-ui/static/admin.css', 'utf8'));

    bridge.signal('SIGTERM');
    expect(await bridge.exit(10_000)).toEqual({ code: 0, signal: null });
  });

  it('npm start without a build says to run `npm run build`, in one line', async () => {
    const dir = deployment(false);
    const { code, stderr } = await failing('npm', ['start'], dir);
    expect(code).not.toBe(0);
    expect(stderr).toBe('amobridge: no build in dist/: run `npm run build` first (or `npm run dev` to run from source)\n');
  });

  it('the amobridge command without a build says the same', async () => {
    const dir = deployment(false);
    const { code, stderr } = await failing(process.execPath, ['bin/amobridge.js', 'dead', 'list'], dir);
    expect(code).toBe(1);
    expect(stderr).toBe('amobridge: no build in dist/: run `npm run build` first (or `npm run cli -- <command>` to run from source)\n');
  });
});
