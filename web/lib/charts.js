// The market's two charts, drawn by uPlot (web/node_modules/uplot, served
// as /vendor/uplot/): cumulative depth (bids and asks as steps) and candles
// (OHLC drawn by a draw hook, as uPlot's candlestick demo does). Each chart
// comes with its text alternative: a table, visually hidden until toggled.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { h, table, price, time, fill } from './util.js';

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A chart frame: the plot, a button that shows the data table, the table.
function frame(root, label) {
  const plot = h('div', { class: 'chart', role: 'img', 'aria-label': label });
  const alt = h('div', { class: 'sr-only' });
  const toggle = h('button', {
    type: 'button', 'aria-expanded': 'false',
    onclick: () => {
      const shown = alt.classList.toggle('sr-only') === false;
      toggle.setAttribute('aria-expanded', String(shown));
      toggle.textContent = shown ? 'Hide table' : 'Show as table';
    },
  }, 'Show as table');
  fill(root, plot, h('div', { class: 'chart-tools' }, toggle), alt);
  return { plot, alt };
}

function autoSize(u, el) {
  const ro = new ResizeObserver(() => u.setSize({ width: el.clientWidth, height: 240 }));
  ro.observe(el);
  return () => ro.disconnect();
}

// Depth: x = price, y = cumulative quantity on each side of the book.
export function depthChart(root) {
  const { plot, alt } = frame(root, 'Depth chart: cumulative quantity by price; the table below lists the levels');
  const opts = {
    width: plot.clientWidth || 600, height: 240,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ stroke: css('--muted') }, { stroke: css('--muted') }],
    series: [
      { label: 'price' },
      { label: 'bids', stroke: css('--bid'), fill: `${css('--bid')}33`, paths: uPlot.paths.stepped({ align: -1 }) },
      { label: 'asks', stroke: css('--ask'), fill: `${css('--ask')}33`, paths: uPlot.paths.stepped({ align: 1 }) },
    ],
  };
  const u = new uPlot(opts, [[], [], []], plot);
  const stop = autoSize(u, plot);
  return {
    update({ bids = [], asks = [] }) {
      u.setData(depthData(bids, asks));
      fill(alt, table(levelColumns, [...asks].reverse().map((l) => ({ ...l, side: 'ask' }))
        .concat(bids.map((l) => ({ ...l, side: 'bid' }))), { caption: 'Depth by price level', testid: 'depth-table' }));
    },
    destroy() { stop(); u.destroy(); },
  };
}

const levelColumns = [
  { label: 'side', get: (l) => l.side },
  { label: 'price', num: true, get: (l) => price(l.price) },
  { label: 'qty', num: true, get: (l) => l.qty },
  { label: 'orders', num: true, get: (l) => l.orders },
];

function depthData(bids, asks) {
  const prices = [...new Set([...bids, ...asks].map((l) => Number(l.price)))].sort((a, b) => a - b);
  if (!prices.length) return [[], [], []];
  // A margin on each side, so each side's last level shows as a step.
  const pad = (prices[prices.length - 1] - prices[0]) * 0.1 || prices[0] * 0.1 || 1;
  const xs = [prices[0] - pad, ...prices, prices[prices.length - 1] + pad];
  const bidAt = new Map(bids.map((l) => [Number(l.price), l.qty]));
  const askAt = new Map(asks.map((l) => [Number(l.price), l.qty]));
  const bestBid = bids.length ? Number(bids[0].price) : -Infinity;
  const bestAsk = asks.length ? Number(asks[0].price) : Infinity;
  const b = new Array(xs.length).fill(null);
  const a = new Array(xs.length).fill(null);
  let cum = 0;
  for (let i = xs.length - 1; i >= 0; i--) {
    cum += bidAt.get(xs[i]) || 0;
    if (xs[i] <= bestBid && bids.length) b[i] = cum;
  }
  cum = 0;
  for (let i = 0; i < xs.length; i++) {
    cum += askAt.get(xs[i]) || 0;
    if (xs[i] >= bestAsk && asks.length) a[i] = cum;
  }
  return [xs, b, a];
}

// Candles: x = bucket start (unix s), OHLC drawn by the hook, volume as a series.
export function candleChart(root, interval) {
  const { plot, alt } = frame(root, 'Candlestick chart of trade prices; the table below lists each candle');
  const hidden = { paths: () => null, points: { show: false } };
  const opts = {
    width: plot.clientWidth || 600, height: 240,
    axes: [{ stroke: css('--muted') }, { stroke: css('--muted') }],
    series: [{}, { label: 'open', ...hidden }, { label: 'high', ...hidden },
      { label: 'low', ...hidden }, { label: 'close', ...hidden }],
    scales: {
      y: { range: (u, min, max) => { const p = (max - min) * 0.1 || max * 0.1 || 1; return [Math.max(0, min - p), max + p]; } },
    },
    hooks: { draw: [(u) => drawCandles(u, interval)] },
  };
  const u = new uPlot(opts, [[], [], [], [], []], plot);
  const stop = autoSize(u, plot);
  return {
    update(candles) {
      const d = [[], [], [], [], []];
      // Empty buckets around them, so the axis spans at least 10 buckets.
      const first = candles.length ? candles[0].t : Math.floor(Date.now() / 1000 / interval) * interval;
      const last = candles.length ? candles[candles.length - 1].t : first;
      const pads = [first - 10 * interval, last + interval];
      d[0].push(pads[0]);
      for (let i = 1; i < 5; i++) d[i].push(null);
      for (const c of candles) {
        d[0].push(c.t + interval / 2);
        for (const [i, k] of ['open', 'high', 'low', 'close'].entries()) d[i + 1].push(Number(c[k]));
      }
      d[0].push(pads[1]);
      for (let i = 1; i < 5; i++) d[i].push(null);
      u.setData(d);
      fill(alt, table(candleColumns, [...candles].reverse(), { caption: 'Candles, newest first', testid: 'candles-table' }));
    },
    destroy() { stop(); u.destroy(); },
  };
}

const candleColumns = [
  { label: 'time (UTC)', get: (c) => time(c.t * 1000) },
  { label: 'open', num: true, get: (c) => price(c.open) },
  { label: 'high', num: true, get: (c) => price(c.high) },
  { label: 'low', num: true, get: (c) => price(c.low) },
  { label: 'close', num: true, get: (c) => price(c.close) },
  { label: 'volume', num: true, get: (c) => c.volume },
  { label: 'trades', num: true, get: (c) => c.trades },
];

function drawCandles(u, interval) {
  const [ts, o, hi, lo, c] = u.data;
  if (!ts.length) return;
  const ctx = u.ctx;
  const step = u.valToPos(ts[0] + interval, 'x', true) - u.valToPos(ts[0], 'x', true);
  const w = Math.max(3, Math.min(24 * devicePixelRatio, Math.abs(step) * 0.6));
  ctx.save();
  for (let i = 0; i < ts.length; i++) {
    if (o[i] == null) continue;
    const x = u.valToPos(ts[i], 'x', true);
    const [yo, yc, yh, yl] = [o[i], c[i], hi[i], lo[i]].map((v) => u.valToPos(v, 'y', true));
    ctx.strokeStyle = ctx.fillStyle = c[i] >= o[i] ? css('--bid') : css('--ask');
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    ctx.beginPath();
    ctx.moveTo(Math.round(x), yh);
    ctx.lineTo(Math.round(x), yl);
    ctx.stroke();
    ctx.fillRect(Math.round(x - w / 2), Math.min(yo, yc), Math.round(w), Math.max(2, Math.abs(yc - yo)));
  }
  ctx.restore();
}
