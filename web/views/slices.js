// Slices and their bindings (each with the state its node's guard reported).
import { api, h, table, card, fill, time, shortKey, throttle, errorBox } from '../lib/util.js';
import { fmtRes } from '../lib/capacity.js';

const bindingColumns = [
  { label: 'rcap', cls: 'mono', get: (b) => b.leaf },
  { label: 'node', get: (b) => b.node },
  { label: 'resources', num: true, get: (b) => fmtRes(b.chain[b.chain.length - 1].res) },
  { label: 'state', get: (b) => b.state },
  { label: 'until (UTC)', get: (b) => time(b.not_after * 1000) },
];

function sliceCard(s, bindings) {
  return card(`Slice ${s.name}`,
    h('p', { class: 'muted' }, `site ${s.site} · owners ${s.owners.map(shortKey).join(', ')} · expires ${time(s.expires * 1000)} UTC`,
      s.description ? ` · ${s.description}` : ''),
    table(bindingColumns, bindings, { caption: 'Bindings', testid: `bindings-${s.name}`, empty: 'nothing bound' }));
}

export function mount(root) {
  const list = h('div', { class: 'grid' });
  fill(root, h('h1', {}, 'Slices'), list);
  let gone = false;
  async function refresh() {
    try {
      const { slices } = await api('/v1/slices');
      const all = await Promise.all(slices.map((s) => api(`/v1/slices/${encodeURIComponent(s.name)}/bindings`)));
      if (gone) return;
      fill(list, slices.length ? slices.map((s, i) => sliceCard(s, all[i].bindings)) : h('p', { class: 'muted' }, 'no slices yet'));
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
