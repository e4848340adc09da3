// Rounds (sealed-bid combinatorial auctions) and requests for quote (reverse
// auctions): what each asked for or offered, its state, and who won at what
// price. Principals show by their registered names.
import { api, hasEndpoint, h, table, wideCard, fill, price, num, time, who, principalNames, throttle, errorBox } from '../lib/util.js';
import { fmtRes } from '../lib/capacity.js';

const SHOWN = 50;  // the newest rounds and RFQs listed (the broker lists 500 at most)

// "12 rounds: 1 open · 11 cleared · 0 failed": how many are in each state,
// in `order` first, then any other state met.
export function stateCounts(items, order) {
  const n = new Map(order.map((s) => [s, 0]));
  for (const x of items) n.set(x.state, (n.get(x.state) || 0) + 1);
  return [...n].map(([s, c]) => `${num(c)} ${s}`).join(' · ');
}

export const roundWon = (r) => r.state === 'cleared' && (r.result?.winners || []).length > 0;

function winners(r, names) {
  if (r.state === 'failed') return h('span', { class: 'bad' }, r.result?.error || 'failed');
  if (!r.result) return h('span', { class: 'muted' }, 'sealed until the close');
  const ws = r.result.winners || [];
  if (!ws.length) return h('span', { class: 'muted' }, 'no winner');
  return ws.map((w) => h('div', {}, who(names, w.bidder), ` ${w.nodes.join(', ')} for ${price(w.pay)}`));
}

const roundColumns = (names) => [
  { label: 'round', get: (r) => r.id },
  { label: 'state', get: (r) => r.state },
  { label: 'offers (nodes)', get: (r) => (r.offers || []).map((o) => o.node).join(', ') || '—' },
  { label: 'bids', num: true, get: (r) => num(r.bids) },
  { label: 'closes (UTC)', get: (r) => (r.close ? time(r.close * 1000) : '—') },
  { label: 'winners: nodes for payment', get: (r) => winners(r, names) },
  { label: 'welfare', num: true, get: (r) => price(r.result?.welfare) },
];

function wants(q) {
  return `${q.nodes} × ${fmtRes(q.res)}${q.min_sites > 1 ? ` in ≥ ${q.min_sites} sites` : ''}`;
}

const rfqColumns = (names) => [
  { label: 'rfq', get: (q) => q.id },
  { label: 'state', get: (q) => (q.reason ? h('span', { title: q.reason }, q.state) : q.state) },
  { label: 'buyer', get: (q) => who(names, q.buyer) },
  { label: 'wants', get: wants },
  { label: 'max price', num: true, get: (q) => price(q.max_price) },
  { label: 'quotes', num: true, get: (q) => num((q.quotes || []).length) },
  { label: 'winner', get: (q) => who(names, q.winner) },
  { label: 'price', num: true, get: (q) => price(q.price) },
  { label: 'closes (UTC)', get: (q) => time(q.close * 1000) },
];

function summary(testid, text) {
  return h('p', { 'data-testid': testid }, text);
}

export function mount(root) {
  const s = { rounds: h('div'), rfqs: h('div') };
  fill(root, h('h1', {}, 'Rounds and RFQs'),
    h('div', { class: 'grid' },
      wideCard('Requests for quote', h('p', { class: 'muted' },
        'A buyer asks for capacity on N nodes and the most it pays; sellers (the pooling agents) quote, ',
        'escrowing what they offer; at the close the cheapest complete quote wins. Quote prices are sealed until then.'), s.rfqs),
      wideCard('Rounds', h('p', { class: 'muted' },
        'Sealed-bid combinatorial auctions of the broker\'s pool: bids for bundles of nodes, cleared at the close; ',
        'each winner pays its critical value; welfare is the sum of the winning bids\' values.'), s.rounds)));
  let gone = false;
  async function refresh() {
    try {
      const [{ rounds }, rfqs, names] = await Promise.all([
        api('/v1/rounds'),
        hasEndpoint('/v1/rfqs').then((has) => (has ? api('/v1/rfqs').then((r) => r.rfqs || []) : null)),
        principalNames()]);
      if (gone) return;
      const won = rounds.filter(roundWon).length;
      fill(s.rounds, summary('round-summary',
        `${num(rounds.length)} rounds: ${stateCounts(rounds, ['open', 'cleared', 'failed'])} (${num(won)} with winners)`),
      table(roundColumns(names), rounds.slice(0, SHOWN),
        { testid: 'rounds', empty: 'no rounds yet', key: (r) => r.id, caption: `the newest ${SHOWN}` }));
      fill(s.rfqs, rfqs === null
        ? h('p', { class: 'muted', 'data-testid': 'rfqs' }, 'none: this broker has no requests for quote')
        : [summary('rfq-summary', `${num(rfqs.length)} RFQs: ${stateCounts(rfqs, ['open', 'awarded', 'failed', 'cancelled'])}`),
          table(rfqColumns(names), rfqs.slice(0, SHOWN),
            { testid: 'rfqs', empty: 'none yet', key: (q) => q.id, caption: `the newest ${SHOWN}` })]);
    } catch (err) {
      if (!gone) fill(s.rounds, errorBox(err));
    }
  }
  const later = throttle(refresh, 300);
  refresh();
  return {
    refresh,
    onEvent(type) {
      if (type === 'round' || type === 'rfq') later();
    },
    destroy() { gone = true; },
  };
}
