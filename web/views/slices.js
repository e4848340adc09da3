// Slices and their bindings (each with the state its node's guard reported).
import { api, h, table, wideCard, fill, num, time, who, principalNames, throttle, errorBox } from '../lib/util.js';
import { fmtRes } from '../lib/capacity.js';
import { enforced } from './overview.js';

// What the node's guard last reported of a binding (docs/broker.md "Binding state").
function guardReport(b) {
  const r = b.report;
  if (!r) return h('span', { class: 'muted' }, 'nothing yet');
  const what = `${r.state}${r.reason ? ` (${r.reason})` : ''} at ${time(r.ts * 1000)}`;
  return h('span', { class: r.state === 'refused' ? 'bad' : null, title: r.detail || null }, what);
}

const bindingColumns = [
  { label: 'rcap', cls: 'mono', get: (b) => b.leaf },
  { label: 'node', get: (b) => b.node },
  { label: 'resources', num: true, get: (b) => fmtRes(b.chain[b.chain.length - 1].res) },
  { label: 'state', get: (b) => b.state },
  { label: 'guard reported (UTC)', get: guardReport },
  { label: 'until (UTC)', get: (b) => time(b.not_after * 1000) },
];

function sliceCard(s, bindings, names) {
  const live = bindings.filter((b) => b.state !== 'expired');
  return wideCard(`Slice ${s.name}`,
    h('p', { class: 'muted' }, `site ${s.site} · owners `, s.owners.flatMap((k, i) => [i ? ', ' : '', who(names, k)]),
      ` · expires ${time(s.expires * 1000)} UTC`, s.description ? ` · ${s.description}` : ''),
    h('p', { 'data-testid': `enforced-${s.name}` },
      `${num(live.filter(enforced).length)} of ${num(live.length)} slivers enforced, as the guards report`),
    table(bindingColumns, bindings, { caption: 'Bindings', testid: `bindings-${s.name}`, empty: 'nothing bound', key: (b) => b.leaf }));
}

export function mount(root) {
  const list = h('div', { class: 'grid' });
  fill(root, h('h1', {}, 'Slices'), list);
  let gone = false;
  async function refresh() {
    try {
      const [{ slices }, names] = await Promise.all([api('/v1/slices'), principalNames()]);
      const all = await Promise.all(slices.map((s) => api(`/v1/slices/${encodeURIComponent(s.name)}/bindings`)));
      if (gone) return;
      fill(list, slices.length ? slices.map((s, i) => sliceCard(s, all[i].bindings, names)) : h('p', { class: 'muted' }, 'no slices yet'));
    } catch (err) {
      if (!gone) fill(list, errorBox(err));
    }
  }
  const later = throttle(refresh, 300);
  refresh();
  return {
    refresh,
    onEvent(type) {
      if (type === 'binding') later();
    },
    destroy() { gone = true; },
  };
}
