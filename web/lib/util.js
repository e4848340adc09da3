// Small helpers shared by the views: fetching the API, building elements,
// formatting numbers, keys and times.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET a JSON document from the broker; throws ApiError with its message.
export async function api(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  const doc = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, doc?.error?.message || `${r.status} on ${path}`);
  return doc;
}

let openapi = null;
// Whether the broker serves GET `pattern` (as written in its /openapi.json),
// so optional endpoints are asked for only when they exist.
export async function hasEndpoint(pattern) {
  openapi ??= api('/openapi.json').catch(() => ({ paths: {} }));
  const doc = await openapi;
  return Boolean(doc.paths?.[pattern]?.get);
}

// h('td', {class: 'num'}, 'text', child...) → an element.
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// A table: columns [{label, num, get(row) → text or Node}], one row per item;
// `key(row)`, when given, is each row's data-key (what tests and links find it by).
export function table(columns, rows, { caption, empty = 'none', testid, key } = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)));
  const body = rows.length
    ? rows.map((r) => h('tr', { 'data-key': key ? key(r) : null },
      columns.map((c) => h('td', { class: c.num ? 'num' : c.cls || null }, c.get(r)))))
    : [h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, empty))];
  return h('table', { 'data-testid': testid }, caption ? h('caption', {}, caption) : null,
    h('thead', {}, head), h('tbody', {}, body));
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

// A card spanning the whole grid row.
export function wideCard(title, ...children) {
  const c = card(title, ...children);
  c.classList.add('wide');
  return c;
}

// "0.500000000" → "0.5"
export function price(s) {
  if (s == null) return '—';
  const t = String(s);
  return t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t;
}

export function num(n) {
  return n == null ? '—' : Number(n).toLocaleString('en-US');
}

export function shortKey(k) {
  if (!k) return '—';
  return k.length > 20 ? `${k.slice(0, 14)}…${k.slice(-4)}` : k;
}

// Key → name of every registered principal (GET /v1/principals), for who().
export async function principalNames() {
  const { principals } = await api('/v1/principals');
  return new Map(principals.map((p) => [p.key, p.name]));
}

// A principal as a newcomer reads it: its name when registered with one,
// else its key shortened; the whole key on hover.
export function who(names, key) {
  if (!key) return '—';
  return h('span', { title: key }, names.get(key) || shortKey(key));
}

export function time(ms) {
  if (ms == null) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

// Calls fn at most once per `ms`, `ms` after the first call of a burst: a
// steady flow of events still refreshes the view every `ms`.
export function throttle(fn, ms) {
  let t = null;
  return () => {
    t ??= setTimeout(() => {
      t = null;
      fn();
    }, ms);
  };
}

// Replaces the children of `e` with `children`.
export function fill(e, ...children) {
  e.replaceChildren(...children.flat().filter((c) => c != null));
  return e;
}

export function errorBox(err) {
  return h('p', { class: 'bad', role: 'alert' }, String(err.message || err));
}
