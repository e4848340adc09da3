// Slivers as the node guards report them (GET /v1/nodes/{node}/slivers,
// docs/broker.md "Slivers"): per sliver what was bought, what the guard
// enforces, and what the kernel holds, read back by the guard, with the time
// it was read. Kernel figures that differ from what was enforced are marked.
import { api, h, hasEndpoint, time } from './util.js';

// Rows for sliverColumns: every sliver of every node (nodes without a
// report yet are left out). Empty when the broker has no sliver reports.
export async function nodeSlivers(nodes) {
  if (!(await hasEndpoint('/v1/nodes/{node}/slivers'))) return [];
  const reports = await Promise.all(nodes.map((n) => api(`/v1/nodes/${encodeURIComponent(n.id)}/slivers`)));
  return reports.flatMap((r) => r.slivers);
}

// "bought / kernel", the kernel's figure marked when the guard found it
// differs from what it enforced (`diff` names the setting, as the guard does).
function pair(s, key, diffs) {
  const kernel = s.kernel ? s.kernel[key] : undefined;
  const differs = diffs.some((d) => d.startsWith(`${key}:`) || (key === 'cpu_mcores' && /^cpu_(shares|weight):/.test(d)));
  const k = kernel == null ? '—' : String(kernel);
  return h('span', {}, `${s.bought[key]} / `,
    h('span', { class: differs ? 'bad' : null, title: differs ? diffs.join('; ') : null, 'data-kernel': key }, k));
}

// "yes", or in short what is wrong (the settings that differ, else that some
// figure could not be read, else the sliver's error); the guard's notes in full
// as the tooltip.
function agrees(s) {
  if (!s.kernel) return h('span', { class: 'muted' }, s.state === 'scheduled' ? 'not yet enforced' : 'not read');
  const { differences, problems } = s.kernel;
  const notes = [s.error, ...differences, ...problems].filter(Boolean);
  if (!notes.length) return h('span', { class: 'ok' }, 'yes');
  const what = differences.length ? `differs: ${differences.map((d) => d.split(':')[0]).join(', ')}`
    : problems.length ? 'not all read' : 'error';
  return h('span', { class: 'bad', title: notes.join('; ') }, what);
}

const diffsOf = (s) => s.kernel?.differences || [];

export const sliverColumns = [
  { label: 'node', get: (s) => s.node },
  { label: 'slice', get: (s) => s.slice },
  { label: 'state', get: (s) => s.state },
  { label: 'cpu (m) bought / kernel', num: true, get: (s) => pair(s, 'cpu_mcores', diffsOf(s)) },
  { label: 'mem (MiB)', num: true, get: (s) => pair(s, 'mem_mib', diffsOf(s)) },
  { label: 'net rate (kbit/s)', num: true, get: (s) => pair(s, 'net_min_kbps', diffsOf(s)) },
  { label: 'net ceil (kbit/s)', num: true, get: (s) => pair(s, 'net_max_kbps', diffsOf(s)) },
  { label: 'disk (MiB)', num: true, get: (s) => pair(s, 'disk_mib', diffsOf(s)) },
  { label: 'read', get: (s) => (s.kernel ? time(s.kernel.read_ms) : '—') },
  { label: 'kernel agrees', get: agrees },
];
