// Overview: what is going on (trades in the last minute, RFQs, rounds,
// slivers enforced, share bids), markets (last price, 24 h change and volume,
// best bid/ask), sites, nodes (capacity, sold, free, enforced) and the
// ledger's head.
import { api, hasEndpoint, h, table, card, wideCard, fill, price, num, time, throttle, errorBox } from '../lib/util.js';
import { nodeCapacity, capacityColumns } from '../lib/capacity.js';
import { stateCounts, roundWon } from './rounds.js';

const DAY_S = 86400;
const ACTIVITY_MS = 10000;  // the activity card is re-read this often even without events

async function marketRow(m) {
  const now = Math.floor(Date.now() / 1000);
  const [detail, candles] = await Promise.all([
    api(`/v1/markets/${encodeURIComponent(m.id)}`),
    api(`/v1/markets/${encodeURIComponent(m.id)}/candles?interval=3600&from=${now - DAY_S}`),
  ]);
  const cs = candles.candles || [];
  const last = cs.length ? cs[cs.length - 1].close : null;
  const open = cs.length ? Number(cs[0].open) : null;
  const change = last != null && open ? ((Number(last) - open) / open) * 100 : null;
  const volume = cs.reduce((a, c) => a + c.volume, 0);
  return { ...m, last, change, volume, bid: detail.best_bid, ask: detail.best_ask };
}

// A market's window, "12-07 06:20 – 07:20" (UTC; the end's date when it differs).
function marketWindow(m) {
  const [a, b] = [time(m.not_before * 1000), time(m.not_after * 1000)];
  return `${a.slice(5, 16)} – ${b.slice(0, 10) === a.slice(0, 10) ? b.slice(11, 16) : b.slice(5, 16)}`;
}

const marketColumns = [
  { label: 'market', get: (m) => h('a', { href: `#/market/${encodeURIComponent(m.id)}` }, m.id) },
  { label: 'where, window (UTC)', get: (m) => [m.node || `site ${m.site}`, h('div', { class: 'muted small' }, marketWindow(m))] },
  { label: 'state', get: (m) => m.state },
  { label: 'last', num: true, get: (m) => price(m.last) },
  { label: '24 h', num: true, get: (m) => (m.change == null ? '—' : `${m.change >= 0 ? '+' : ''}${m.change.toFixed(2)} %`) },
  { label: 'volume 24 h', num: true, get: (m) => num(m.volume) },
  { label: 'bid', num: true, get: (m) => h('span', { class: 'bid' }, price(m.bid)) },
  { label: 'ask', num: true, get: (m) => h('span', { class: 'ask' }, price(m.ask)) },
];

const siteColumns = [
  { label: 'site', get: (s) => s.name },
  { label: 'slices', num: true, get: (s) => `${s.slices} / ${s.slice_limit}` },
  { label: 'created', get: (s) => time(s.created_ms) },
];

// A sliver (a binding) is enforced when its node's guard reported it
// redeemed and in force (docs/broker.md "Binding state").
export const enforced = (b) => b.state === 'redeemed' && b.report?.state === 'active';

// The activity card's figures, read from the same public GETs as the views.
async function activity() {
  const now = Math.floor(Date.now() / 1000);
  const [{ markets }, { nodes }, { slices }, { rounds }, rfqs] = await Promise.all([
    api('/v1/markets'), api('/v1/nodes'), api('/v1/slices'), api('/v1/rounds'),
    hasEndpoint('/v1/rfqs').then((has) => (has ? api('/v1/rfqs').then((r) => r.rfqs || []) : null))]);
  const [minute, bindings, bids] = await Promise.all([
    Promise.all(markets.map((m) => api(`/v1/markets/${encodeURIComponent(m.id)}/candles?interval=60&from=${now - 60}`))),
    Promise.all(slices.map((s) => api(`/v1/slices/${encodeURIComponent(s.name)}/bindings`))),
    Promise.all(nodes.map((n) => api(`/v1/share_bids?node=${encodeURIComponent(n.id)}`)))]);
  const perMarket = minute.map((c) => (c.candles || []).reduce((a, k) => a + k.trades, 0));
  const slivers = bindings.flatMap((b) => b.bindings).filter((b) => b.state !== 'expired');
  const active = bids.map((b) => (b.bids || []).length);
  return {
    trades: perMarket.reduce((a, n) => a + n, 0),
    tradedMarkets: perMarket.filter((n) => n > 0).length,
    rfqs,
    rounds,
    slivers: slivers.length,
    enforced: slivers.filter(enforced).length,
    refused: slivers.filter((b) => b.state === 'refused').length,
    shareBids: active.reduce((a, n) => a + n, 0),
    shareNodes: active.filter((n) => n > 0).length,
  };
}

function activityCard(a) {
  const row = (label, href, testid, value) => [
    h('dt', {}, href ? h('a', { href }, label) : label), h('dd', { 'data-testid': testid }, value)];
  return card('Activity', h('dl', { 'data-testid': 'activity' },
    row('trades, last minute', null, 'activity-trades', `${num(a.trades)} on ${num(a.tradedMarkets)} markets`),
    row('requests for quote', '#/rounds', 'activity-rfqs',
      a.rfqs === null ? 'none (this broker has no RFQs)' : stateCounts(a.rfqs, ['awarded', 'open'])),
    row('rounds', '#/rounds', 'activity-rounds',
      `${stateCounts(a.rounds, ['cleared', 'open'])} (${num(a.rounds.filter(roundWon).length)} with winners)`),
    row('slivers enforced', '#/slices', 'activity-slivers',
      `${num(a.enforced)} of ${num(a.slivers)} bound, as the guards report${a.refused ? ` (${num(a.refused)} refused)` : ''}`),
    row('share bids', '#/nodes', 'activity-shares', `${num(a.shareBids)} active on ${num(a.shareNodes)} nodes`)));
}

export function headCard(head) {
  return card('Ledger', h('dl', {},
    h('dt', {}, 'size'), h('dd', { 'data-testid': 'ledger-size' }, num(head.size)),
    h('dt', {}, 'root'), h('dd', { class: 'mono' }, head.root),
    h('dt', {}, 'signed at'), h('dd', {}, time(head.ts))),
  h('p', {}, h('a', { href: '#/ledger' }, 'Entries and inclusion proofs →')));
}

export function mount(root) {
  const slots = { activity: h('div'), markets: h('div'), sites: h('div'), nodes: h('div'), ledger: h('div') };
  fill(root, h('h1', {}, 'Overview'),
    h('div', { class: 'grid' }, slots.activity, slots.ledger, wideCard('Markets', slots.markets),
      card('Sites', slots.sites), wideCard('Nodes', slots.nodes)));
  let gone = false;
  async function refreshActivity() {
    try {
      const a = await activity();
      if (!gone) fill(slots.activity, activityCard(a));
    } catch (err) {
      if (!gone) fill(slots.activity, card('Activity', errorBox(err)));
    }
  }
  async function refresh() {
    try {
      const [markets, sites, nodes, head] = await Promise.all([
        api('/v1/markets'), api('/v1/sites'), api('/v1/nodes'), api('/v1/ledger/head')]);
      // Node markets by node, then site markets by site; each place's windows in order.
      const ordered = [...markets.markets].sort((a, b) => Boolean(a.node) !== Boolean(b.node) ? (a.node ? -1 : 1)
        : (a.node || a.site).localeCompare(b.node || b.site) || a.not_before - b.not_before);
      const rows = await Promise.all(ordered.map(marketRow));
      const caps = await nodeCapacity(nodes.nodes);
      if (gone) return;
      fill(slots.markets, table(marketColumns, rows, { testid: 'markets', empty: 'no markets yet', key: (m) => m.id }));
      fill(slots.sites, table(siteColumns, sites.sites, { testid: 'sites', key: (x) => x.name }));
      fill(slots.nodes, table(capacityColumns, caps, { testid: 'nodes', key: (n) => n.id }));
      fill(slots.ledger, headCard(head));
    } catch (err) {
      if (!gone) fill(slots.markets, errorBox(err));
    }
  }
  const later = throttle(refresh, 1000);
  const activityLater = throttle(refreshActivity, 1000);
  // "The last minute" moves on without events too.
  const tick = setInterval(refreshActivity, ACTIVITY_MS);
  refresh();
  refreshActivity();
  return {
    refresh() {
      refresh();
      refreshActivity();
    },
    onEvent(type, data) {
      if (type === 'head') fill(slots.ledger, headCard(data));
      if (type === 'trade' || type === 'book' || type === 'binding' || type === 'share') later();
      if (['trade', 'binding', 'share', 'round', 'rfq'].includes(type)) activityLater();
    },
    destroy() {
      gone = true;
      clearInterval(tick);
    },
  };
}
