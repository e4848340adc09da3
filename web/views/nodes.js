// Nodes: capacity sold and free, bound and enforced (as the guards report),
// each sliver bought vs what the kernel holds (the guards' read-back), usage,
// and the share bids on each node.
import { api, h, table, card, wideCard, fill, num, throttle, errorBox } from '../lib/util.js';
import { nodeCapacity, capacityColumns } from '../lib/capacity.js';
import { nodeSlivers, sliverColumns } from '../lib/slivers.js';

const usageColumns = [
  { label: 'node', get: (u) => u.node },
  { label: 'slivers', num: true, get: (u) => num(u.totals.slivers) },
  { label: 'reports', num: true, get: (u) => num(u.totals.reports) },
  { label: 'cpu (s)', num: true, get: (u) => num(Math.round(u.totals.cpu_usec / 1e6)) },
  { label: 'disk used (MiB)', num: true, get: (u) => num(u.totals.disk_used_mib) },
  { label: 'net tx (bytes)', num: true, get: (u) => num(u.totals.net_tx_bytes) },
];

const shareColumns = [
  { label: 'bid', get: (b) => b.id },
  { label: 'node', get: (b) => b.node },
  { label: 'slice', get: (b) => b.slice ?? '—' },
  { label: 'rate (credits/s)', num: true, get: (b) => b.rate ?? '—' },
  { label: 'state', get: (b) => b.state ?? 'active' },
];

export function mount(root) {
  const s = { cap: h('div'), slivers: h('div'), usage: h('div'), shares: h('div') };
  fill(root, h('h1', {}, 'Nodes'), h('div', { class: 'grid' },
    wideCard('Capacity', s.cap, h('p', { class: 'muted' },
      'sold: taken from the broker\'s grants by others (any time window); free: still in the broker\'s pool; ',
      'bound: on slices; enforced: bound and reported active by the node\'s guard.')),
    wideCard('Slivers (bought / read back from the kernel)', s.slivers, h('p', { class: 'muted' },
      'Each guard reads back from the kernel what it enforces (cgroup CPU share and quota, memory limit, ',
      'HTB rate and ceil, disk size) and reports its slivers when they change; read: when the guard read them. ',
      'A kernel figure that differs from what the guard enforces is marked; proportional shares raise what is enforced above what was bought.')),
    card('Usage (as the guards report)', s.usage), card('Share bids', s.shares)));
  let gone = false;
  async function refresh() {
    try {
      const { nodes } = await api('/v1/nodes');
      const [caps, slivers, usage, shares] = await Promise.all([
        nodeCapacity(nodes),
        nodeSlivers(nodes),
        Promise.all(nodes.map((n) => api(`/v1/nodes/${encodeURIComponent(n.id)}/usage`))),
        Promise.all(nodes.map((n) => api(`/v1/share_bids?node=${encodeURIComponent(n.id)}`))),
      ]);
      if (gone) return;
      fill(s.cap, table(capacityColumns, caps, { testid: 'capacity' }));
      fill(s.slivers, table(sliverColumns, slivers, { testid: 'slivers', empty: 'no sliver reports yet' }));
      fill(s.usage, table(usageColumns, usage, { testid: 'usage' }));
      fill(s.shares, table(shareColumns, shares.flatMap((x) => x.bids || []), { empty: 'no active share bids' }));
    } catch (err) {
      if (!gone) fill(s.cap, errorBox(err));
    }
  }
  const later = throttle(refresh, 1000);
  // A sliver report is a ledger entry with no event of its own: a new head
  // may carry one (at most one refresh every 3 s for them).
  const slow = throttle(refresh, 3000);
  refresh();
  return {
    refresh,
    onEvent(type) {
      if (['trade', 'binding', 'share'].includes(type)) later();
      else if (type === 'head') slow();
    },
    destroy() { gone = true; },
  };
}
