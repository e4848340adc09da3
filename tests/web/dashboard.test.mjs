// The dashboard in headless Chromium (issue #16, "Checks"): a real
// bourse-broker on a free loopback port with a fresh database, seeded with the
// demo and a market; orders and a trade placed through the API (the `bourse`
// CLI, signed) must show in the depth chart, the tape and the candles within
// 2 s without a reload; the ledger view's inclusion proof must check on a
// real head and fail on a tampered proof; the nodes view shows a guard's
// sliver report (bought vs kernel); no console errors; the banner shows
// when the stream drops and goes when it is back. Screenshots of every view
// (desktop and phone width, light and dark) go to BUILD/web-screenshots/.
//
//   node tests/web/dashboard.test.mjs BUILD_DIR
//
// Exit 0: passed; 1: failed; 77: skipped (no /usr/bin/chromium, or no
// web/node_modules: run `npm ci` in web/, as dev.sh does).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { puppeteerOrSkip, launch, log, pageErrors, run, assertScheme, source } from './harness.mjs';

const build = path.resolve(process.argv[2] || path.join(source, 'build'));
const brokerBin = path.join(build, 'broker/bourse-broker');
const cli = path.join(build, 'clients/bourse');
const shots = path.join(build, 'web-screenshots');
const LIVE_MS = 2000;  // the bound for a change to show without a reload

const puppeteer = await puppeteerOrSkip([['uPlot (npm ci in web/)', path.join(source, 'web/node_modules/uplot/dist/uPlot.esm.js')]]);
for (const b of [brokerBin, cli]) {
  if (!fs.existsSync(b)) {
    console.error(`FAIL: ${b} is not built`);
    process.exit(1);
  }
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bourse-web-test-'));
const db = path.join(tmp, 'bourse.db');
const adminKey = `${db}.admin-key.pem`;
const alice = path.join(tmp, 'keys/alice.pem');
let broker = null;
let browser = null;

// Starts the broker (on `listen`); resolves with its URL once it listens.
function startBroker(listen = '127.0.0.1:0') {
  return new Promise((resolve, reject) => {
    const p = spawn(brokerBin, ['--db', db, '--listen', listen, '--access-log', 'off'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    broker = p;
    let out = '';
    p.stderr.on('data', (d) => process.stderr.write(`broker: ${d}`));
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/"listening":"([^"]+)"/);
      if (m) resolve(m[1]);
    });
    p.on('exit', (code) => reject(new Error(`broker exited with ${code} before listening`)));
    setTimeout(() => reject(new Error('broker did not start in 10 s')), 10000);
  });
}

function stopBroker() {
  if (!broker || broker.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    broker.once('exit', resolve);
    broker.kill('SIGTERM');
    setTimeout(() => broker.kill('SIGKILL'), 5000);
  });
}

function bourse(...args) {
  return execFileSync(cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function call(url, key, method, target, body) {
  return JSON.parse(bourse('broker', 'call', '--url', url, '--key', key, method, target, JSON.stringify(body)));
}

async function seed(url) {
  bourse('broker', 'seed-demo', '--url', url, '--admin-key', adminKey, '--dir', path.join(tmp, 'keys'));
  const nb = Math.floor(Date.now() / 1000) + 3600;
  const unit = { cpu_mcores: 100, mem_mib: 128, disk_mib: 0, net_min_kbps: 0, net_max_kbps: 1000 };
  const { market } = call(url, adminKey, 'POST', '/v1/markets',
    { node: 'demo-n2', unit, not_before: nb, not_after: nb + 86400 });
  call(url, adminKey, 'POST', `/v1/markets/${market.id}/orders`,
    { side: 'sell', type: 'limit', tif: 'gtc', qty: 10, price: '0.5', rcap: 'grant-demo-n2' });
  return market.id;
}

function text(page, sel) {
  return page.$eval(sel, (e) => e.innerText).catch(() => '');
}

// Waits until `sel`'s text contains every one of `parts` (within LIVE_MS).
async function showsWithin(page, sel, parts, what) {
  const t0 = Date.now();
  try {
    await page.waitForFunction((s, ps) => {
      const e = document.querySelector(s);
      return e && ps.every((p) => e.textContent.includes(p));
    }, { timeout: LIVE_MS, polling: 50 }, sel, parts);
  } catch {
    assert.fail(`${what}: ${sel} did not show ${JSON.stringify(parts)} within ${LIVE_MS} ms; it shows: ${await text(page, sel)}`);
  }
  log(`${what}: shown after ${Date.now() - t0} ms`);
}

const VIEWS = (market) => ({ overview: '#/', market: `#/market/${market}`, nodes: '#/nodes',
  rounds: '#/rounds', slices: '#/slices', ledger: '#/ledger' });

async function screenshots(page, base, market) {
  fs.mkdirSync(shots, { recursive: true });
  for (const [scheme, w, h, label] of [['light', 1280, 800, 'desktop'], ['dark', 1280, 800, 'desktop'],
    ['light', 390, 844, 'phone'], ['dark', 390, 844, 'phone']]) {
    await page.setViewport({ width: w, height: h });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    for (const [name, hash] of Object.entries(VIEWS(market))) {
      await page.goto(`${base}/${hash}`, { waitUntil: 'networkidle2' });
      await page.waitForSelector('main h1');
      await new Promise((r) => setTimeout(r, 300));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} at ${w} px is ${overflow} px wider than the screen`);
      await assertScheme(page, scheme);
      await page.screenshot({ path: path.join(shots, `${name}-${label}-${scheme}.png`), fullPage: true });
    }
  }
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.setViewport({ width: 1280, height: 800 });
  log(`screenshots in ${shots}`);
}

async function checkLive(page, base, url, market) {
  await page.goto(`${base}/#/market/${market}`, { waitUntil: 'networkidle2' });
  await page.waitForSelector('[data-testid=book-asks]');
  await page.waitForFunction(() => document.getElementById('stream-state').dataset.state === 'live',
    { timeout: 5000 }).catch(() => assert.fail('the event stream did not open within 5 s (GET /v1/events)'));
  await page.evaluate(() => { window.__sameDocument = true; });
  assert.ok(await page.$('[data-testid=depth-table]'), 'the depth chart has its table');
  assert.ok(await page.$('.uplot canvas'), 'uPlot drew the charts');

  call(url, alice, 'POST', `/v1/markets/${market}/orders`, { side: 'buy', type: 'limit', tif: 'gtc', qty: 3, price: '0.45' });
  await showsWithin(page, '[data-testid=depth-table]', ['bid', '0.45', '3'], 'a new bid in the depth chart');
  await showsWithin(page, '[data-testid=book-bids]', ['0.45'], 'a new bid in the book');

  const { trades } = call(url, alice, 'POST', `/v1/markets/${market}/orders`, { side: 'buy', type: 'limit', tif: 'gtc', qty: 2, price: '0.5' });
  assert.equal(trades.length, 1, 'the buy traded');
  await showsWithin(page, '[data-testid=tape] tbody tr:first-child', ['0.5', '2'], 'the trade on the tape');
  await showsWithin(page, '[data-testid=candles-table] tbody tr:first-child', ['0.5', '2', '1'], 'the trade in the candles');
  await showsWithin(page, '[data-testid=depth-table]', ['ask', '0.5', '8'], 'the ask reduced in the depth chart');
  assert.ok(await page.evaluate(() => window.__sameDocument === true), 'no reload happened');

  // The text alternative shows on demand; the theme toggles.
  await page.click('.chart-tools button');
  assert.ok(await page.$eval('[data-testid=depth-table]', (e) => e.parentElement.classList.contains('sr-only') === false
    && e.getBoundingClientRect().height > 20), 'Show as table shows the depth table');
  const dark = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const before = await dark();
  await page.click('#theme');
  assert.notEqual(await dark(), before, 'the theme toggle changes the colours');
  await page.click('#theme');
  // Back to following the system's scheme: the toggle set this document's
  // data-theme, so a new document (hash changes keep it).
  await page.evaluate(() => localStorage.removeItem('bourse-theme'));
  await page.reload({ waitUntil: 'networkidle2' });
}

// The overview follows the stream too: a trade moves the market's 24 h
// volume, and the new signed head its ledger size.
async function checkOverviewLive(page, base, url, market) {
  await page.goto(`${base}/#/`, { waitUntil: 'networkidle2' });
  await page.waitForFunction(() => document.getElementById('stream-state').dataset.state === 'live', { timeout: 5000 });
  await showsWithin(page, '[data-testid=markets] tbody', [market], 'the market on the overview');
  const volume = () => page.$eval('[data-testid=markets] tbody tr td:nth-child(6)', (e) => e.textContent);
  assert.equal(await volume(), '2');
  const size = Number((await text(page, '[data-testid=ledger-size]')).replace(/,/g, ''));
  const { trades } = call(url, alice, 'POST', `/v1/markets/${market}/orders`, { side: 'buy', type: 'market', tif: 'ioc', qty: 1 });
  assert.equal(trades.length, 1, 'the market buy traded');
  await page.waitForFunction(() => document.querySelector('[data-testid=markets] tbody tr td:nth-child(6)')?.textContent === '3',
    { timeout: LIVE_MS, polling: 50 }).catch(() => assert.fail('the overview\'s 24 h volume did not follow the trade'));
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid=ledger-size]')?.textContent.replace(/,/g, '')) > n,
    { timeout: LIVE_MS, polling: 50 }, size).catch(() => assert.fail('the overview\'s ledger size did not follow the head'));
  log('overview: volume and ledger size follow the stream');
}

async function checkProof(page, base) {
  await page.goto(`${base}/#/ledger`, { waitUntil: 'networkidle2' });
  await page.waitForSelector('[data-testid=entries]');
  const size = Number((await text(page, '[data-testid=ledger-size]')).replace(/,/g, ''));
  assert.ok(size > 4, `the ledger has entries (${size})`);
  for (const seq of [1, size - 1]) {
    await page.$eval('#proof-seq', (e, v) => { e.value = v; }, String(seq));
    await page.click('#proof-check');
    await page.waitForFunction(() => document.querySelector('[data-testid=proof-result]'), { timeout: 5000 });
    const ok = await page.$eval('[data-testid=proof-result]', (e) => e.dataset.ok);
    assert.equal(ok, 'true', `entry ${seq}'s proof checks: ${await text(page, '#view')}`);
  }
  // The same check with one byte of the proof flipped must fail.
  await page.setRequestInterception(true);
  const tamper = async (req) => {
    if (!req.url().includes('/v1/ledger/proof/inclusion')) return req.continue();
    const real = await (await fetch(req.url())).json();
    const h0 = real.path[0];
    real.path[0] = (h0[0] === '0' ? '1' : '0') + h0.slice(1);
    return req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify(real) });
  };
  page.on('request', tamper);
  await page.$eval('#proof-seq', (e) => { e.value = '1'; });
  await page.click('#proof-check');
  await page.waitForFunction(() => document.querySelector('[data-testid=proof-result]')?.dataset.ok === 'false',
    { timeout: 5000 }).catch(() => assert.fail(`a tampered proof was not refused: ${''}`));
  page.off('request', tamper);
  await page.setRequestInterception(false);
  log('inclusion proof: checks on the real head, fails when tampered');
}

// The nodes view's slivers: a guard's report (signed by demo-n1's key, as
// the guard sends it) shows bought vs the kernel's read-back, the time it was
// read, and a kernel figure that differs from what was enforced is marked.
async function checkSlivers(page, base, url) {
  await page.goto(`${base}/#/nodes`, { waitUntil: 'networkidle2' });
  await page.waitForSelector('[data-testid=slivers]');
  assert.match(await text(page, '[data-testid=slivers]'), /no sliver reports yet/);
  const res = { cpu_mcores: 500, mem_mib: 512, disk_mib: 1024, net_min_kbps: 1000, net_max_kbps: 10000 };
  const readMs = Date.UTC(2026, 0, 2, 3, 4, 5);
  const kernel = { read_ms: readMs, cpu_mcores: 500, cpu_shares: 512, cpu_cap_mcores: 0, mem_mib: 256,
    net_min_kbps: 1000, net_max_kbps: 10000, net_classified: true, disk_mib: 1024, disk_fs_mib: 1000,
    problems: [], differences: ['mem_mib: kernel 256, enforced 512'] };
  const reply = call(url, path.join(tmp, 'keys/node-demo-n1.pem'), 'POST', '/v1/nodes/demo-n1/slivers',
    { slivers: [{ slice: 'demo_hello', state: 'active', bought: res, enforced: res, kernel }] });
  assert.equal(reply.changed, true);
  const parts = ['demo-n1', 'demo_hello', '500 / 500', '512 / 256', '1000 / 1000', '10000 / 10000',
    '1024 / 1024', '2026-01-02 03:04:05', 'differs: mem_mib'];
  await page.waitForFunction((ps) => {
    const e = document.querySelector('[data-testid=slivers] tbody');
    return e && ps.every((p) => e.textContent.includes(p));
  }, { timeout: 10000, polling: 100 }, parts).catch(async () => assert.fail(
    `the slivers table did not show the report; it shows: ${await text(page, '[data-testid=slivers]')}`));
  const marked = await page.$$eval('[data-testid=slivers] [data-kernel].bad', (es) => es.map((e) => e.dataset.kernel));
  assert.deepEqual(marked, ['mem_mib'], 'only the differing kernel figure is marked');
  const note = await page.$eval('[data-testid=slivers] tbody td:last-child span', (e) => e.title);
  assert.equal(note, 'mem_mib: kernel 256, enforced 512', 'the guard\'s note is the tooltip');
  log('nodes: the sliver report shows bought vs kernel, read time, the difference marked');
}

async function checkDrop(page, base, url) {
  await page.goto(`${base}/#/`, { waitUntil: 'networkidle2' });
  const port = new URL(url).port;
  await stopBroker();
  await page.waitForFunction(() => !document.getElementById('banner').hidden, { timeout: 5000 })
    .catch(() => assert.fail('no banner when the stream dropped'));
  await startBroker(`127.0.0.1:${port}`);
  await page.waitForFunction(() => document.getElementById('banner').hidden
    && document.getElementById('stream-state').dataset.state === 'live', { timeout: 15000 })
    .catch(() => assert.fail('the stream did not come back after the broker restarted'));
  log('stream drop: banner shown, then reconnected');
}

async function main() {
  execFileSync(brokerBin, ['init', '--db', db], { stdio: 'ignore' });
  const url = await startBroker();
  const market = await seed(url);
  log(`broker at ${url}, market ${market}`);
  browser = await launch(puppeteer);
  const page = await browser.newPage();
  const errors = pageErrors(page);
  await page.setViewport({ width: 1280, height: 800 });

  await checkLive(page, url, url, market);
  await checkOverviewLive(page, url, url, market);
  await checkProof(page, url);
  await checkSlivers(page, url, url);
  await screenshots(page, url, market);
  assert.deepEqual(errors, [], 'no console errors');
  await checkDrop(page, url, url);
  log('PASS');
}

await run(main, async () => {
  await browser?.close().catch(() => {});
  await stopBroker();
  fs.rmSync(tmp, { recursive: true, force: true });
});
