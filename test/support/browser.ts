import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import { describe, it } from 'vitest';

/**
 * Browser tests drive Debian's Chromium through playwright-core: nothing is downloaded.
 *
 * - Without Chromium, a browser test is skipped, loudly, naming the package to install,
 *   so `npm test` passes on a fresh machine. Where a browser is required (CI: `.ci/run`
 *   installs Chromium and sets AMOBRIDGE_REQUIRE_BROWSER=1), a missing one is a failure.
 * - Screenshots go to a temporary folder, unless SCREENSHOTS_DIR names one:
 *   `npm run screenshots` refreshes docs/screenshots on purpose that way.
 */

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const REQUIRE_BROWSER = process.env.AMOBRIDGE_REQUIRE_BROWSER === '1';

/** Flags for a quiet, isolated headless Chromium in a container (no sandbox, no GPU, no calls home). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A phone in portrait, as Company 1's app shows the webview; Russian like its users. */
export const PHONE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  locale: 'ru-RU',
};

/** Why no browser can be driven here, or undefined when one can. */
export function missingBrowser(executable = CHROMIUM_PATH): string | undefined {
  if (existsSync(executable)) return undefined;
  return `Chromium was not found at ${executable}. Install it with \`apt-get install chromium\` (Debian), or set CHROMIUM_PATH.`;
}

/**
 * `describe` for a file of browser tests. Without Chromium: skipped with a warning, or,
 * with AMOBRIDGE_REQUIRE_BROWSER=1, one failing test that says what is missing.
 */
export function describeInBrowser(title: string, body: () => void): void {
  const missing = missingBrowser();
  if (!missing) {
    describe(title, body);
    return;
  }
  if (REQUIRE_BROWSER) {
    describe(title, () => {
      it('has Chromium to drive', () => {
        throw new Error(`${missing} (AMOBRIDGE_REQUIRE_BROWSER=1 makes a missing browser a failure)`);
      });
    });
    return;
  }
  console.warn(`\n!!! ${title}: SKIPPED. ${missing}\n`);
  describe.skip(`${title} (skipped: ${missing})`, body);
}

/**
 * Launches Chromium with CHROMIUM_ARGS. Each launch gets a fresh profile: Playwright
 * creates a temporary --user-data-dir for every non-persistent launch and removes it on
 * close (it refuses the flag in `args`, for that reason).
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

let screenshots: string | undefined;

/** Where screenshots go: SCREENSHOTS_DIR, or one temporary folder per test process. */
export function screenshotsDir(): string {
  if (!screenshots) {
    const configured = process.env.SCREENSHOTS_DIR;
    screenshots = configured ? path.resolve(configured) : mkdtempSync(path.join(tmpdir(), 'amobridge-screenshots-'));
    mkdirSync(screenshots, { recursive: true });
  }
  return screenshots;
}

/** A full-page screenshot named `<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(screenshotsDir(), `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
