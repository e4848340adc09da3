// What the browser tests of tests/web/ share: puppeteer-core from
// web/node_modules and Debian's headless chromium (exit 77, skipped, when
// either is missing), a timestamped log, the page's errors collected, and the
// run: exit 0 passed, 1 failed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SKIP = 77;
export const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const chromium = process.env.CHROMIUM || '/usr/bin/chromium';

// Exits 77 unless chromium and every one of `more` ([what, path]) exist;
// then loads puppeteer-core.
export async function puppeteerOrSkip(more = []) {
  const puppeteerPath = path.join(source, 'web/node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js');
  for (const [what, p] of [['chromium', chromium], ['web/node_modules (npm ci in web/)', puppeteerPath], ...more]) {
    if (!fs.existsSync(p)) {
      console.log(`SKIP: ${what} not found at ${p}`);
      process.exit(SKIP);
    }
  }
  return (await import(puppeteerPath)).default;
}

export function launch(puppeteer) {
  return puppeteer.launch({ executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export function log(...a) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a);
}

// The page's console errors, uncaught exceptions and failed requests (but
// the event stream's, and those `ignore(request)` accepts), as they come.
export function pageErrors(page, ignore = () => false) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location()?.url})`); });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/events') && !ignore(r)) errors.push(`request failed: ${r.url()} (${r.failure()?.errorText})`);
  });
  return errors;
}

// The page is drawn in `scheme` ('light' or 'dark', as emulated): its
// background is dark exactly when the scheme is (style.css's --bg).
export async function assertScheme(page, scheme) {
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  const dark = (r + g + b) / 3 < 128;
  if (dark !== (scheme === 'dark')) throw new Error(`the page is not drawn ${scheme} (background ${bg})`);
}

// Runs `main`, then `cleanup` whatever happened; exits 0 or 1.
export async function run(main, cleanup) {
  let code = 0;
  const t0 = Date.now();
  try {
    await main();
  } catch (err) {
    console.error(`FAIL: ${err.message}`);
    code = 1;
  } finally {
    await cleanup();
  }
  log(`took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(code);
}
