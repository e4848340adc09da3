// Per node: capacity, what is sold (held by others than the broker, from the
// broker's grants), what is free (still in the broker's pool), what is bound
// to slices and what the node guards report as enforced. Read from
// /v1/nodes, /v1/pools, /v1/rcaps/{id} and /v1/slices/{s}/bindings.
import { api, h } from './util.js';

const MAX_LOOKUPS = 200;  // rcaps looked up per refresh, at most

const zero = () => ({ cpu_mcores: 0, mem_mib: 0 });
function add(a, res, sign = 1) {
  a.cpu_mcores += sign * (res?.cpu_mcores || 0);
  a.mem_mib += sign * (res?.mem_mib || 0);
}
export function fmtRes(r) {
  if (!r) return '—';
  return `${r.cpu_mcores} m · ${r.mem_mib} MiB`;
}

async function poolsByNode() {
  const { pools } = await api('/v1/pools');
  const held = new Map();  // rcap id → rcap, held by the broker
  for (const p of pools) for (const r of p.rcaps) held.set(r.id, r);
  const out = new Map();
  let lookups = 0;
  for (const r of held.values()) {
    // An escrow of someone else's capacity (a sell order's, a quote's: a
    // child of an rcap the broker does not hold) is not the broker's.
    if (r.parent && !held.has(r.parent)) continue;
    const n = out.get(r.node) || { granted: zero(), free: zero() };
    out.set(r.node, n);
    // A broker-held rcap split off another is already inside its parent's amount.
    if (!r.parent) {
      add(n.granted, r.res);
      add(n.free, r.res);
    }
    if (lookups++ >= MAX_LOOKUPS) continue;
    const { children = [] } = await api(`/v1/rcaps/${encodeURIComponent(r.id)}`);
    for (const c of children) {
      if (held.has(c) || lookups++ >= MAX_LOOKUPS) continue;
      const child = await api(`/v1/rcaps/${encodeURIComponent(c)}`);
      add(n.free, child.rcap.res, -1);
    }
  }
  return out;
}

async function bindingsByNode() {
  const { slices } = await api('/v1/slices');
  const out = new Map();
  const all = await Promise.all(slices.map((s) => api(`/v1/slices/${encodeURIComponent(s.name)}/bindings`)));
  for (const { bindings } of all) {
    for (const b of bindings) {
      const n = out.get(b.node) || { bound: zero(), enforced: zero(), reported: 0 };
      out.set(b.node, n);
      const leaf = b.chain[b.chain.length - 1];
      // Live: bound and not yet redeemed (scheduled, active) or redeemed by
      // the node's guard; enforced: redeemed and reported active by it.
      if (['active', 'scheduled', 'redeemed'].includes(b.state)) add(n.bound, leaf.res);
      if (b.report) {
        n.reported++;
        if (b.state === 'redeemed' && b.report.state === 'active') add(n.enforced, leaf.res);
      }
    }
  }
  return out;
}

// Rows for capacityColumns, one per node.
export async function nodeCapacity(nodes) {
  const [pools, bindings] = await Promise.all([poolsByNode(), bindingsByNode()]);
  return nodes.map((n) => {
    const p = pools.get(n.id);
    const b = bindings.get(n.id);
    const sold = p ? zero() : null;
    if (p) {
      add(sold, p.granted);
      add(sold, p.free, -1);
    }
    return { ...n, granted: p?.granted, free: p?.free, sold, bound: b?.bound, enforced: b?.reported ? b.enforced : null };
  });
}

export const capacityColumns = [
  { label: 'node', get: (n) => n.id },
  { label: 'site', get: (n) => n.site },
  { label: 'capacity', num: true, get: (n) => fmtRes(n.capacity) },
  { label: 'sold', num: true, get: (n) => fmtRes(n.sold) },
  { label: 'free', num: true, get: (n) => fmtRes(n.free) },
  { label: 'bound', num: true, get: (n) => fmtRes(n.bound) },
  { label: 'enforced', num: true, get: (n) => (n.enforced ? fmtRes(n.enforced) : h('span', { class: 'muted', title: 'no guard report yet' }, 'not reported')) },
];
