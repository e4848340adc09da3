// Overview: markets (last price, 24 h change and volume, best bid/ask), sites,
// nodes (capacity, sold, free, enforced) and the ledger's head.
import { api, h, table, card, wideCard, fill, price, num, time, throttle, errorBox } from '../lib/util.js';
import { nodeCapacity, capacityColumns } from '../lib/capacity.js';

const DAY_S = 86400;

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

const marketColumns = [
  { label: 'market', get: (m) => h('a', { href: `#/market/${encodeURIComponent(m.id)}` }, m.id) },
  { label: 'where', get: (m) => m.node || `site ${m.site}` },
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

export function headCard(head) {
  return card('Ledger', h('dl', {},
    h('dt', {}, 'size'), h('dd', { 'data-testid': 'ledger-size' }, num(head.size)),
    h('dt', {}, 'root'), h('dd', { class: 'mono' }, head.root),
    h('dt', {}, 'signed at'), h('dd', {}, time(head.ts))),
  h('p', {}, h('a', { href: '#/ledger' }, 'Entries and inclusion proofs →')));
}

export function mount(root) {
  const slots = { markets: h('div'), sites: h('div'), nodes: h('div'), ledger: h('div') };
  fill(root, h('h1', {}, 'Overview'),
    h('div', { class: 'grid' }, wideCard('Markets', slots.markets), slots.ledger,
      card('Sites', slots.sites), wideCard('Nodes', slots.nodes)));
  let gone = false;
  async function refresh() {
    try {
      const [markets, sites, nodes, head] = await Promise.all([
        api('/v1/markets'), api('/v1/sites'), api('/v1/nodes'), api('/v1/ledger/head')]);
      const rows = await Promise.all(markets.markets.map(marketRow));
      const caps = await nodeCapacity(nodes.nodes);
      if (gone) return;
      fill(slots.markets, table(marketColumns, rows, { testid: 'markets', empty: 'no markets yet' }));
      fill(slots.sites, table(siteColumns, sites.sites, { testid: 'sites' }));
      fill(slots.nodes, table(capacityColumns, caps, { testid: 'nodes' }));
      fill(slots.ledger, headCard(head));
    } catch (err) {
      if (!gone) fill(slots.markets, errorBox(err));
    }
  }
  const later = throttle(refresh, 1000);
  refresh();
  return {
    refresh,
    onEvent(type, data) {
      if (type === 'head') fill(slots.ledger, headCard(data));
      if (type === 'trade' || type === 'book' || type === 'binding' || type === 'share') later();
    },
    destroy() { gone = true; },
  };
}
