// Rounds (sealed-bid combinatorial auctions) and requests for quote.
import { api, hasEndpoint, h, table, card, fill, time, throttle, errorBox } from '../lib/util.js';

const roundColumns = [
  { label: 'round', get: (r) => r.id },
  { label: 'state', get: (r) => r.state },
  { label: 'offers', num: true, get: (r) => (r.offers || []).map((o) => o.node).join(', ') || '—' },
  { label: 'bids', num: true, get: (r) => r.bids ?? '—' },
  { label: 'closes (UTC)', get: (r) => (r.close ? time(r.close * 1000) : '—') },
  { label: 'winners', num: true, get: (r) => (r.result ? (r.result.winners || []).length : '—') },
];

const rfqColumns = [
  { label: 'rfq', get: (q) => q.id },
  { label: 'state', get: (q) => q.state ?? '—' },
  { label: 'created', get: (q) => time(q.created_ms) },
];

export function mount(root) {
  const s = { rounds: h('div'), rfqs: h('div') };
  fill(root, h('h1', {}, 'Rounds and RFQs'),
    h('div', { class: 'grid' }, card('Rounds', s.rounds), card('Requests for quote', s.rfqs)));
  let gone = false;
  async function refresh() {
    try {
      const { rounds } = await api('/v1/rounds');
      const rfqs = (await hasEndpoint('/v1/rfqs')) ? (await api('/v1/rfqs')).rfqs || [] : null;
      if (gone) return;
      fill(s.rounds, table(roundColumns, rounds, { testid: 'rounds', empty: 'no rounds yet' }));
      fill(s.rfqs, rfqs === null
        ? h('p', { class: 'muted', 'data-testid': 'rfqs' }, 'none: this broker has no requests for quote')
        : table(rfqColumns, rfqs, { testid: 'rfqs', empty: 'none' }));
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
