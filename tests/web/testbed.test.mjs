// The living testbed's dashboard in headless Chromium (issue #18, "Checks"):
// given the URL of a running testbed (scripts/testbed.sh), the dashboard must
// show its activity. Every expected value is read from the same public API
// the page reads, so nothing here depends on how much the testbed has done:
//   * overview: every market, with its last price for those that traded (at
//     least one has); the sites; the six nodes; the activity card's RFQs,
//     rounds and slivers enforced as the API counts them; the ledger's size,
//     growing while the page is open (over the event stream, no reload);
//   * rounds and RFQs: the newest awarded RFQ with its winner and price, the
//     newest round cleared with winners, each winner with its nodes and
//     payment, and the welfare;
//   * slices: every slice with all its bindings, the monitoring slice
//     enforced on every node as the guards report;
//   * nodes: per node, what is bound and what the guard reports enforced,
//     and its usage reports; every sliver the guards reported (bought /
//     kernel), when the broker has sliver reports;
//   * ledger: the inclusion proof of the first and the newest entry checks;
//   * no console errors; screenshots to BUILD/web-screenshots/testbed-*.png.
// Each check waits (bounded) for the page and the API to agree, and prints
// what it found.
//
//   node tests/web/testbed.test.mjs BUILD_DIR URL
//
// Exit 0: passed; 1: failed; 77: skipped (no /usr/bin/chromium, or no
// web/node_modules: run `npm ci` in web/, as dev.sh does).
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { puppeteerOrSkip, launch, log, pageErrors, run, assertScheme, source } from './harness.mjs';

const build = path.resolve(process.argv[2] || path.join(source, 'build'));
const base = (process.argv[3] || '').replace(/\/+$/, '');
const shots = path.join(build, 'web-screenshots');
const NODES = 6;  // scripts/testbed.sh: three sites of two nodes
const MONITOR = 'mit_monitor';  // the monitoring slice, bound on every node from the start
const ACTIVITY_S = 150;  // how long to wait for the testbed to have traded, awarded and cleared
const AGREE_S = 30;  // how long the page may take to show what the API shows
const LIVE_S = 60;  // how long to wait for the ledger to grow with the page open

if (!/^https?:\/\/[^/]+$/.test(base)) {
  console.error('usage: node tests/web/testbed.test.mjs BUILD_DIR URL (the testbed\'s http://HOST:PORT)');
  process.exit(2);
}
const puppeteer = await puppeteerOrSkip();
let browser = null;

async function get(target) {
  const r = await fetch(`${base}${target}`, { headers: { Accept: 'application/json' } });
  const doc = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`GET ${target}: ${r.status} ${JSON.stringify(doc)}`);
  return doc;
}

// The dashboard's own formatting (web/lib/util.js, web/lib/capacity.js).
const price = (s) => (s == null ? '—' : String(s).includes('.') ? String(s).replace(/0+$/, '').replace(/\.$/, '') : String(s));
const num = (n) => Number(n).toLocaleString('en-US');
const shortKey = (k) => (k.length > 20 ? `${k.slice(0, 14)}…${k.slice(-4)}` : k);
const fmtRes = (r) => `${r.cpu_mcores} m · ${r.mem_mib} MiB`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs `check` (which throws while what it wants is not there) until it
// returns, for at most `seconds`; then fails with its last complaint.
async function eventually(what, seconds, check) {
  const t0 = Date.now();
  let last = null;
  for (;;) {
    try {
      const found = await check();
      log(`${what} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${found}`);
      return found;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > seconds * 1000) assert.fail(`${what}: not within ${seconds} s: ${last.message}`);
    await sleep(500);
  }
}

// A table's rows as {key, cells: [text]} (the dashboard's tables carry each
// row's id in data-key).
function rows(page, testid) {
  return page.$$eval(`[data-testid="${testid}"] tbody tr`, (trs) => trs.map((tr) => ({
    key: tr.dataset.key ?? null, cells: [...tr.children].map((td) => td.innerText.trim()) })));
}

function textOf(page, sel) {
  return page.$eval(sel, (e) => e.innerText.trim()).catch(() => '');
}

async function open(page, hash, ready) {
  await page.goto(`${base}/${hash}`, { waitUntil: 'networkidle2' });
  await page.waitForSelector(ready, { timeout: 10000 });
}

async function names() {
  const { principals } = await get('/v1/principals');
  const m = new Map(principals.map((p) => [p.key, p.name]));
  return (k) => m.get(k) || shortKey(k);
}

// ---- what the API says ----

// Every binding of every slice, with its slice.
async function allBindings() {
  const { slices } = await get('/v1/slices');
  const lists = await Promise.all(slices.map((s) => get(`/v1/slices/${encodeURIComponent(s.name)}/bindings`)));
  return { slices, bindings: lists.flatMap((l) => l.bindings) };
}

const isEnforced = (b) => b.state === 'redeemed' && b.report?.state === 'active';

// The testbed has traded, awarded an RFQ and cleared a round with a winner.
async function waitForActivity() {
  return eventually('the API shows trades, an awarded RFQ and a round won', ACTIVITY_S, async () => {
    const { markets } = await get('/v1/markets');
    const traded = [];
    for (const m of markets) {
      if ((await get(`/v1/markets/${encodeURIComponent(m.id)}/trades?limit=1`)).trades.length) traded.push(m.id);
    }
    const awarded = (await get('/v1/rfqs?state=awarded')).rfqs;
    const won = (await get('/v1/rounds?state=cleared')).rounds.filter((r) => (r.result?.winners || []).length);
    assert.ok(traded.length && awarded.length && won.length,
      `${traded.length} of ${markets.length} markets traded, ${awarded.length} RFQs awarded, ${won.length} rounds won`);
    return `${traded.length} of ${markets.length} markets traded, ${awarded.length} RFQs awarded, ${won.length} rounds won`;
  });
}

// ---- the views ----

async function checkOverview(page) {
  await open(page, '#/', '[data-testid=ledger-size]');
  await page.waitForFunction(() => document.getElementById('stream-state').dataset.state === 'live', { timeout: 10000 })
    .catch(() => assert.fail('the event stream did not open within 10 s (GET /v1/events)'));
  await page.evaluate(() => { window.__sameDocument = true; });

  // Markets: every one listed; the last price as the hourly candles say.
  let traded = [];
  await eventually('overview: the markets and their last prices', AGREE_S, async () => {
    const { markets } = await get('/v1/markets');
    const now = Math.floor(Date.now() / 1000);
    const last = new Map();
    for (const m of markets) {
      const { candles } = await get(`/v1/markets/${encodeURIComponent(m.id)}/candles?interval=3600&from=${now - 86400}`);
      last.set(m.id, candles.length ? price(candles[candles.length - 1].close) : '—');
    }
    const shown = new Map((await rows(page, 'markets')).map((r) => [r.key, r.cells[3]]));
    assert.deepEqual([...shown.keys()].sort(), markets.map((m) => m.id).sort(), 'the markets listed');
    for (const [id, p] of last) assert.equal(shown.get(id), p, `market ${id}'s last price`);
    const withPrice = [...last].filter(([, p]) => p !== '—');
    assert.ok(withPrice.length > 0, 'no market shows a last price');
    traded = withPrice;
    return `${markets.length} markets, ${withPrice.length} with a last price: ${withPrice.map(([id, p]) => `${id} ${p}`).join(', ')}`;
  });

  await eventually('overview: sites and nodes', AGREE_S, async () => {
    const [{ sites }, { nodes }] = await Promise.all([get('/v1/sites'), get('/v1/nodes')]);
    assert.equal(nodes.length, NODES, 'the testbed\'s nodes in /v1/nodes');
    assert.deepEqual((await rows(page, 'sites')).map((r) => r.key).sort(), sites.map((s) => s.name).sort(), 'the sites listed');
    const shown = await rows(page, 'nodes');
    assert.deepEqual(shown.map((r) => r.key).sort(), nodes.map((n) => n.id).sort(), 'the nodes listed');
    for (const n of nodes) {
      assert.equal(shown.find((r) => r.key === n.id).cells[2], fmtRes(n.capacity), `node ${n.id}'s capacity`);
    }
    return `sites ${sites.map((s) => s.name).join(', ')}; nodes ${nodes.map((n) => n.id).join(', ')}`;
  });

  // The activity card counts what the API lists.
  await eventually('overview: the activity card', AGREE_S, async () => {
    const [{ rfqs }, { rounds }, { bindings }] = await Promise.all([get('/v1/rfqs'), get('/v1/rounds'), allBindings()]);
    const awarded = rfqs.filter((q) => q.state === 'awarded').length;
    const cleared = rounds.filter((r) => r.state === 'cleared');
    const won = cleared.filter((r) => (r.result?.winners || []).length).length;
    const live = bindings.filter((b) => b.state !== 'expired');
    const a = {
      rfqs: await textOf(page, '[data-testid=activity-rfqs]'),
      rounds: await textOf(page, '[data-testid=activity-rounds]'),
      slivers: await textOf(page, '[data-testid=activity-slivers]'),
      trades: await textOf(page, '[data-testid=activity-trades]'),
    };
    assert.ok(a.rfqs.startsWith(`${num(awarded)} awarded`), `RFQs awarded: the API has ${awarded}, the page shows "${a.rfqs}"`);
    assert.ok(a.rounds.startsWith(`${num(cleared.length)} cleared`) && a.rounds.includes(`(${num(won)} with winners)`),
      `rounds: the API has ${cleared.length} cleared, ${won} with winners; the page shows "${a.rounds}"`);
    assert.ok(a.slivers.startsWith(`${num(live.filter(isEnforced).length)} of ${num(live.length)} bound`),
      `slivers: the API has ${live.filter(isEnforced).length} of ${live.length} enforced; the page shows "${a.slivers}"`);
    assert.match(a.trades, /^\d[\d,]* on \d+ markets$/, 'trades in the last minute');
    return Object.values(a).join('; ');
  });

  // The ledger's size: what the API's head says, then growing live.
  const size = async () => Number((await textOf(page, '[data-testid=ledger-size]')).replace(/,/g, ''));
  const first = await size();
  const head = await get('/v1/ledger/head');
  assert.ok(first > 0 && first <= head.size, `the ledger size shown (${first}) is the API's (${head.size}) or older`);
  await eventually('overview: the ledger grows without a reload', LIVE_S, async () => {
    const now = await size();
    assert.ok(now > first, `still ${now}`);
    assert.ok(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded');
    return `${num(first)} → ${num(now)} entries`;
  });
  return traded[0][0];
}

async function checkRounds(page) {
  await open(page, '#/rounds', '[data-testid=rfqs]');
  const who = await names();
  await eventually('rounds: the newest awarded RFQ with its winner and price', AGREE_S, async () => {
    const [q] = (await get('/v1/rfqs?state=awarded')).rfqs;
    const row = (await rows(page, 'rfqs')).find((r) => r.key === q.id);
    assert.ok(row, `RFQ ${q.id} is not listed`);
    const t = row.cells.join(' | ');
    for (const part of ['awarded', who(q.buyer), who(q.winner), price(q.price), price(q.max_price)]) {
      assert.ok(t.includes(part), `RFQ ${q.id}'s row lacks "${part}": ${t}`);
    }
    return t;
  });
  await eventually('rounds: the newest round won, its winners and welfare', AGREE_S, async () => {
    const r = (await get('/v1/rounds?state=cleared')).rounds.find((x) => (x.result?.winners || []).length);
    const row = (await rows(page, 'rounds')).find((x) => x.key === r.id);
    assert.ok(row, `round ${r.id} is not listed`);
    const t = row.cells.join(' | ');
    const parts = ['cleared', price(r.result.welfare), ...r.result.winners.flatMap((w) => [who(w.bidder), w.nodes.join(', '), price(w.pay)])];
    for (const part of parts) assert.ok(t.includes(part), `round ${r.id}'s row lacks "${part}": ${t}`);
    return t.replace(/\n/g, '; ');
  });
  await eventually('rounds: the summaries', AGREE_S, async () => {
    const [{ rfqs }, { rounds }] = await Promise.all([get('/v1/rfqs'), get('/v1/rounds')]);
    const rs = await textOf(page, '[data-testid=round-summary]');
    const qs = await textOf(page, '[data-testid=rfq-summary]');
    assert.ok(rs.startsWith(`${num(rounds.length)} rounds`), `rounds: ${rounds.length} in the API, the page says "${rs}"`);
    assert.ok(qs.startsWith(`${num(rfqs.length)} RFQs`), `RFQs: ${rfqs.length} in the API, the page says "${qs}"`);
    return `${qs}; ${rs}`;
  });
}

async function checkSlices(page) {
  await open(page, '#/slices', 'main h2');
  await eventually('slices: every slice with its bindings', AGREE_S, async () => {
    const { slices } = await get('/v1/slices');
    assert.ok(slices.some((s) => s.name === MONITOR), `no ${MONITOR} slice in /v1/slices`);
    const found = [];
    for (const s of slices) {
      const { bindings } = await get(`/v1/slices/${encodeURIComponent(s.name)}/bindings`);
      const shown = (await rows(page, `bindings-${s.name}`)).filter((r) => r.key !== null);
      assert.deepEqual(shown.map((r) => r.key).sort(), bindings.map((b) => b.leaf).sort(), `slice ${s.name}'s bindings`);
      for (const b of bindings) {
        const cells = shown.find((r) => r.key === b.leaf).cells;
        assert.equal(cells[1], b.node, `${b.leaf}'s node`);
        assert.equal(cells[3], b.state, `${b.leaf}'s state`);
      }
      const live = bindings.filter((b) => b.state !== 'expired');
      const want = `${num(live.filter(isEnforced).length)} of ${num(live.length)} slivers enforced`;
      const says = await textOf(page, `[data-testid="enforced-${s.name}"]`);
      assert.ok(says.startsWith(want), `slice ${s.name}: the API says ${want}, the page "${says}"`);
      found.push(`${s.name} (${want})`);
    }
    const monitor = (await get(`/v1/slices/${MONITOR}/bindings`)).bindings;
    assert.equal(new Set(monitor.filter(isEnforced).map((b) => b.node)).size, NODES, `${MONITOR} is not enforced on every node`);
    return found.join(', ');
  });
}

async function checkNodes(page) {
  // A usage report has no event of its own: the page shows the count as it
  // read it, at or after `before` and at most what the API says now.
  const usage = async (nodes) => new Map(await Promise.all(nodes.map(async (n) =>
    [n.id, (await get(`/v1/nodes/${encodeURIComponent(n.id)}/usage`)).totals])));
  const before = await usage((await get('/v1/nodes')).nodes);
  await open(page, '#/nodes', '[data-testid=capacity]');
  await eventually('nodes: usage per node, as the guards report', AGREE_S, async () => {
    const { nodes } = await get('/v1/nodes');
    const shown = await rows(page, 'usage');
    const now = await usage(nodes);
    const out = [];
    for (const n of nodes) {
      const [was, is] = [before.get(n.id)?.reports ?? 0, now.get(n.id).reports];
      const row = shown.find((r) => r.cells[0] === n.id);
      assert.ok(row, `node ${n.id} is not in the usage table`);
      assert.ok(is > 0, `node ${n.id}'s guard has reported no usage`);
      assert.equal(row.cells[1], num(now.get(n.id).slivers), `node ${n.id}'s slivers with usage`);
      const shownReports = Number(row.cells[2].replace(/,/g, ''));
      assert.ok(shownReports >= was && shownReports <= is,
        `node ${n.id}'s usage reports: the page shows ${row.cells[2]}, the API had ${was} when the page opened and ${is} now`);
      out.push(`${n.id} ${row.cells[1]} slivers, ${row.cells[2]} reports`);
    }
    return out.join('; ');
  });
  await eventually('nodes: bound and enforced per node, as the guards report', AGREE_S, async () => {
    const [{ nodes }, { bindings }] = await Promise.all([get('/v1/nodes'), allBindings()]);
    const shown = await rows(page, 'capacity');
    const out = [];
    for (const n of nodes) {
      const mine = bindings.filter((b) => b.node === n.id && ['active', 'scheduled', 'redeemed'].includes(b.state));
      const sum = (bs) => bs.reduce((a, b) => {
        const res = b.chain[b.chain.length - 1].res;
        return { cpu_mcores: a.cpu_mcores + res.cpu_mcores, mem_mib: a.mem_mib + res.mem_mib };
      }, { cpu_mcores: 0, mem_mib: 0 });
      const row = shown.find((r) => r.cells[0] === n.id);
      assert.ok(row, `node ${n.id} is not in the capacity table`);
      const [bound, enforced] = [row.cells[5], row.cells[6]];
      assert.equal(bound, fmtRes(sum(mine)), `node ${n.id}'s bound capacity (the API binds ${mine.length} slivers there)`);
      assert.equal(enforced, fmtRes(sum(mine.filter(isEnforced))), `node ${n.id}'s enforced capacity, as its guard reports`);
      out.push(`${n.id} bound ${bound}, enforced ${enforced}`);
    }
    return out.join('; ');
  });
}

// The guards' sliver reports with the kernel's read-back (when the broker
// has them): every sliver each guard reported is a row, bought first.
async function checkSlivers(page) {
  const { paths } = await get('/openapi.json');
  if (!paths['/v1/nodes/{node}/slivers']?.get) {
    log('nodes: this broker has no sliver reports (GET /v1/nodes/{node}/slivers)');
    return;
  }
  await open(page, '#/nodes', '[data-testid=slivers]');
  await eventually('nodes: every sliver the guards reported, bought / kernel', AGREE_S, async () => {
    const { nodes } = await get('/v1/nodes');
    const reported = (await Promise.all(nodes.map((n) => get(`/v1/nodes/${encodeURIComponent(n.id)}/slivers`))))
      .flatMap((r) => r.slivers);
    const shown = await rows(page, 'slivers');
    assert.ok(reported.length >= NODES, `${reported.length} slivers reported by the guards (${MONITOR} is on every node)`);
    for (const v of reported) {
      const row = shown.find((r) => r.cells[0] === v.node && r.cells[1] === v.slice);
      assert.ok(row, `node ${v.node}'s sliver of ${v.slice} is not shown`);
      assert.equal(row.cells[2], v.state, `node ${v.node}'s sliver of ${v.slice}: state`);
      assert.ok(row.cells[3].startsWith(`${v.bought.cpu_mcores} / `), `node ${v.node}'s sliver of ${v.slice}: cpu bought, shows ${row.cells[3]}`);
    }
    assert.equal(shown.length, reported.length, 'one row per sliver reported');
    return `${reported.length} slivers on ${new Set(reported.map((v) => v.node)).size} nodes`;
  });
}

async function checkProof(page) {
  await open(page, '#/ledger', '[data-testid=entries]');
  // The newest entry of the head the page shows (the API's may be newer already).
  const size = Number((await textOf(page, '[data-testid=ledger-size]')).replace(/,/g, ''));
  for (const seq of [1, size - 1]) {
    await page.$eval('#proof-seq', (e, v) => { e.value = v; }, String(seq));
    await page.click('#proof-check');
    await page.waitForFunction((s) => document.querySelector('[data-testid=proof-result]')
      && document.querySelector('#view').textContent.includes(`Entry ${s} `), { timeout: 10000 }, seq)
      .catch(() => {});
    const ok = await page.$eval('[data-testid=proof-result]', (e) => e.dataset.ok).catch(() => 'missing');
    assert.equal(ok, 'true', `entry ${seq}'s inclusion proof: ${await textOf(page, '#view')}`);
    log(`ledger: entry ${seq}'s inclusion proof checks`);
  }
}

// `market`: a market that traded (none when the overview's check failed).
async function screenshots(page, market) {
  fs.mkdirSync(shots, { recursive: true });
  const views = { overview: '#/', ...(market ? { market: `#/market/${encodeURIComponent(market)}` } : {}), nodes: '#/nodes',
    rounds: '#/rounds', slices: '#/slices', ledger: '#/ledger' };
  for (const [scheme, w, h, label] of [['light', 1280, 800, 'desktop'], ['dark', 390, 844, 'phone']]) {
    await page.setViewport({ width: w, height: h });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    for (const [name, hash] of Object.entries(views)) {
      await open(page, hash, 'main h1');
      await sleep(1000);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} at ${w} px is ${overflow} px wider than the screen`);
      await assertScheme(page, scheme);
      await page.screenshot({ path: path.join(shots, `testbed-${name}-${label}-${scheme}.png`), fullPage: true });
    }
  }
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.setViewport({ width: 1280, height: 800 });
  log(`screenshots in ${shots}/testbed-*.png`);
}

async function main() {
  log(`testbed at ${base}`);
  await waitForActivity();
  browser = await launch(puppeteer);
  const page = await browser.newPage();
  // A fetch still running when the test navigates away is aborted: not an error.
  const errors = pageErrors(page, (r) => r.failure()?.errorText === 'net::ERR_ABORTED');
  await page.setViewport({ width: 1280, height: 800 });

  // Every view is checked even when one fails, so one run names all that is wrong.
  const failed = [];
  let traded = null;
  for (const [name, check] of [['overview', async () => { traded = await checkOverview(page); }],
    ['rounds', checkRounds], ['slices', checkSlices], ['nodes', checkNodes], ['slivers', checkSlivers],
    ['ledger', checkProof],
    ['screenshots', () => screenshots(page, traded)]]) {
    try {
      await check(page);
    } catch (err) {
      log(`FAILED ${name}: ${err.message}`);
      failed.push(name);
    }
  }
  assert.deepEqual(errors, [], 'no console errors');
  assert.deepEqual(failed, [], 'views that do not show the testbed');
  log('PASS');
}

await run(main, () => browser?.close().catch(() => {}));
