// The ledger: the signed head, recent entries, and an inclusion proof of a
// chosen entry checked here with WebCrypto (lib/merkle.js).
import { api, h, table, card, wideCard, fill, time, throttle, errorBox } from '../lib/util.js';
import { leafHash, verifyInclusion } from '../lib/merkle.js';
import { headCard } from './overview.js';

const RECENT = 20;

// Fetches entry `seq`, its proof for the head, and checks it; renders the steps into `out`.
async function check(seq, head, out) {
  fill(out, h('p', { class: 'muted' }, `checking entry ${seq} against the head of size ${head.size}…`));
  try {
    const [{ entries }, proof] = await Promise.all([
      api(`/v1/ledger/entries?from=${seq}&to=${seq + 1}`),
      api(`/v1/ledger/proof/inclusion?seq=${seq}&size=${head.size}`)]);
    const leaf = await leafHash(entries[0]);
    const res = await verifyInclusion({ seq, size: head.size, path: proof.path, leaf, root: head.root });
    fill(out,
      h('p', {}, `Entry ${seq} (${entries[0].type}) in the tree of size ${head.size}, root ${head.root}; proof of ${proof.path.length} hashes.`),
      h('ol', { class: 'steps' }, res.steps.map((s) => h('li', { class: 'mono' }, s))),
      h('p', { class: res.ok ? 'ok' : 'bad', 'data-testid': 'proof-result', 'data-ok': String(res.ok), role: 'status' },
        res.ok ? '✓ included: the computed root matches the signed head' : '✗ mismatch: this proof does not lead to the signed head'));
  } catch (err) {
    fill(out, h('p', { class: 'bad', 'data-testid': 'proof-result', 'data-ok': 'false' }, `✗ ${err.message}`));
  }
}

export function mount(root) {
  const s = { head: h('div'), entries: h('div'), proof: h('div', { 'aria-live': 'polite' }) };
  const seqInput = h('input', { type: 'number', min: '0', id: 'proof-seq', 'aria-label': 'entry seq' });
  let head = null;
  const run = () => head && check(Number(seqInput.value || 0), head, s.proof);
  fill(root, h('h1', {}, 'Ledger'), h('div', { class: 'grid' }, s.head,
    card('Inclusion proof', h('p', {}, h('label', { for: 'proof-seq' }, 'Entry seq '), seqInput, ' ',
      h('button', { type: 'button', id: 'proof-check', onclick: run }, 'Fetch proof and check')), s.proof),
    wideCard('Recent entries', s.entries)));
  let gone = false;
  const entryColumns = [
    { label: 'seq', num: true, get: (e) => e.seq },
    { label: 'type', get: (e) => e.type },
    { label: 'time (UTC)', get: (e) => time(e.ts) },
    { label: 'body', cls: 'mono clip', get: (e) => JSON.stringify(e.body) },
    { label: '', get: (e) => h('button', { type: 'button', onclick: () => { seqInput.value = e.seq; run(); } }, 'check') },
  ];
  async function refresh() {
    try {
      const hd = await api('/v1/ledger/head');
      const from = Math.max(0, hd.size - RECENT);
      const { entries } = await api(`/v1/ledger/entries?from=${from}&to=${hd.size}`);
      if (gone) return;
      head = hd;
      if (seqInput.value === '') seqInput.value = String(Math.max(0, hd.size - 1));
      seqInput.max = String(hd.size - 1);
      fill(s.head, headCard(hd));
      fill(s.entries, table(entryColumns, entries.reverse(), { testid: 'entries' }));
    } catch (err) {
      if (!gone) fill(s.entries, errorBox(err));
    }
  }
  const later = throttle(refresh, 300);
  refresh();
  return {
    refresh,
    onEvent(type) {
      if (type === 'head') later();
    },
    destroy() { gone = true; },
  };
}
