// One market: depth chart, candles, the live trade tape and the book.
import { api, h, table, card, fill, price, time, who, principalNames, throttle, errorBox } from '../lib/util.js';
import { depthChart, candleChart } from '../lib/charts.js';

const TAPE = 50;  // trades shown
const CANDLE_S = 60;  // candle interval

// Buyers and sellers by their registered names (`names`: key → name).
const tapeColumns = (names) => [
  { label: 'time (UTC)', get: (t) => time(t.ts_ms ?? t.ts) },
  { label: 'price', num: true, get: (t) => price(t.price) },
  { label: 'qty', num: true, get: (t) => t.qty },
  { label: 'buyer', get: (t) => who(names, t.buyer) },
  { label: 'seller', get: (t) => who(names, t.seller) },
];

function bookTable(side, levels) {
  return table([
    { label: 'price', num: true, get: (l) => h('span', { class: side }, price(l.price)) },
    { label: 'qty', num: true, get: (l) => l.qty },
    { label: 'orders', num: true, get: (l) => l.orders },
  ], levels, { caption: side === 'bid' ? 'Bids, best first' : 'Asks, best first', testid: `book-${side}s`, empty: 'empty' });
}

export function mount(root, id) {
  const m = encodeURIComponent(id);
  const s = { head: h('p', { class: 'muted' }, 'loading…'), depth: h('div'), candles: h('div'),
    tape: h('div', { 'aria-live': 'polite' }), bids: h('div'), asks: h('div') };
  fill(root, h('h1', {}, `Market ${id}`), s.head,
    h('div', { class: 'grid' }, card('Depth', s.depth), card('Candles (1 min)', s.candles),
      card('Trades', s.tape), card('Book', h('div', { class: 'grid' }, s.bids, s.asks))));
  const depth = depthChart(s.depth);
  const candles = candleChart(s.candles, CANDLE_S);
  let trades = [];
  let names = new Map();
  let gone = false;

  const showBook = (d) => {
    depth.update(d);
    fill(s.bids, bookTable('bid', d.bids));
    fill(s.asks, bookTable('ask', d.asks));
  };
  const showTape = () => fill(s.tape, table(tapeColumns(names), trades, { testid: 'tape', empty: 'no trades yet' }));
  const loadCandles = async () => {
    const c = await api(`/v1/markets/${m}/candles?interval=${CANDLE_S}`);
    if (!gone) candles.update(c.candles);
  };
  const candlesLater = throttle(() => loadCandles().catch(() => {}), 200);

  async function refresh() {
    try {
      const [detail, d, t, n] = await Promise.all([
        api(`/v1/markets/${m}`), api(`/v1/markets/${m}/depth?levels=20`), api(`/v1/markets/${m}/trades?limit=1000`),
        principalNames()]);
      if (gone) return;
      names = n;
      const mk = detail.market;
      fill(s.head, `${mk.node ? `node ${mk.node}` : `site ${mk.site}`} · ${mk.state} · unit ${mk.unit.cpu_mcores} m, ${mk.unit.mem_mib} MiB · window ${time(mk.not_before * 1000)} – ${time(mk.not_after * 1000)} UTC`);
      showBook(d);
      trades = t.trades.slice(-TAPE).reverse();
      showTape();
      await loadCandles();
    } catch (err) {
      if (!gone) fill(s.head, errorBox(err));
    }
  }
  refresh();
  return {
    refresh,
    onEvent(type, data) {
      if (data.market !== id) return;
      if (type === 'book') showBook(data);
      if (type === 'trade' && !trades.some((t) => t.id === data.id)) {
        trades = [data, ...trades].slice(0, TAPE);
        showTape();
        candlesLater();
      }
    },
    destroy() {
      gone = true;
      depth.destroy();
      candles.destroy();
    },
  };
}
