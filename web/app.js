// The dashboard's shell: hash routing, the event stream, the theme toggle.
// Each view module exports mount(root, arg) → {onEvent(type, data), refresh(), destroy()}.
import { Stream } from './lib/stream.js';
import { api, h, fill, errorBox } from './lib/util.js';
import * as overview from './views/overview.js';
import * as market from './views/market.js';
import * as nodes from './views/nodes.js';
import * as rounds from './views/rounds.js';
import * as slices from './views/slices.js';
import * as ledger from './views/ledger.js';

const VIEWS = { '': overview, market, nodes, rounds, slices, ledger };
const POLL_MS = 5000;  // while the stream is down, views refresh this often
const root = document.getElementById('view');
let current = null;
let poll = null;

function route() {
  const [name = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const view = VIEWS[name] || null;
  current?.destroy?.();
  current = null;
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').replace(/^#\/?/, '');
    a.toggleAttribute('aria-current', target === (name === 'market' ? '' : name));
    if (a.hasAttribute('aria-current')) a.setAttribute('aria-current', 'page');
  }
  if (!view) {
    fill(root, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the overview')));
    return;
  }
  try {
    current = view.mount(root, rest.map(decodeURIComponent).join('/'));
  } catch (err) {
    fill(root, errorBox(err));
  }
}

function setStreamState(state, was) {
  const pill = document.getElementById('stream-state');
  pill.dataset.state = state;
  pill.textContent = { live: 'live', down: 'reconnecting…', connecting: 'connecting…' }[state];
  const banner = document.getElementById('banner');
  banner.hidden = state !== 'down';
  banner.textContent = 'The live event stream dropped: reconnecting. The page refreshes every few seconds meanwhile.';
  if (state === was) return;
  clearInterval(poll);
  if (state === 'down') poll = setInterval(() => current?.refresh?.(), POLL_MS);
  if (state === 'live' && was === 'down') current?.refresh?.();  // catch up, in case
}

function initTheme() {
  const btn = document.getElementById('theme');
  const saved = localStorage.getItem('bourse-theme');
  const apply = (t) => {
    if (t) document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
    const dark = t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    btn.setAttribute('aria-pressed', String(dark));
  };
  apply(saved);
  btn.addEventListener('click', () => {
    const dark = btn.getAttribute('aria-pressed') === 'true';
    const t = dark ? 'light' : 'dark';
    localStorage.setItem('bourse-theme', t);
    apply(t);
    route();  // charts take their colours when drawn
  });
}

initTheme();
window.addEventListener('hashchange', route);
// The stream resumes from the ledger's size when the page loaded, so nothing
// committed between the view's first reads and the stream's start is missed.
const head = await api('/v1/ledger/head').catch(() => null);
route();
window.bourseStream = new Stream({
  onEvent: (type, data) => current?.onEvent?.(type, data),
  onState: setStreamState,
  after: head?.size,
});
