// The dashboard's entry point: picks the view from the address (#/, #/pods?q=web, #/set?key=...) and refreshes it
// every metric resolution, when heapster has a new batch.

import { API, getJSON } from './api.js';
import * as fmt from './format.js';
import { CostView, ListView, OverviewView, SetView } from './views.js';

const LISTS = ['nodes', 'namespaces', 'pods', 'containers'];
const view = document.getElementById('view');
const status = document.getElementById('status');

let current = null;
let timer = null;
let period = 15000;
let refreshes = 0;

/** Builds the view the address names. */
function route() {
  const [path, query] = (location.hash.slice(1) || '/').split('?');
  const params = new URLSearchParams(query || '');
  if (current) current.destroy();
  view.textContent = '';
  const root = document.createElement('div');
  view.appendChild(root);
  const name = path.replace(/^\//, '') || 'overview';
  root.dataset.view = name;
  if (name === 'overview') current = new OverviewView(root);
  else if (LISTS.includes(name)) current = new ListView(root, name, params);
  else if (name === 'set' && params.get('key')) current = new SetView(root, params.get('key'));
  else if (name === 'cost') current = new CostView(root, params);
  else {
    root.textContent = `Nothing at ${location.hash}.`;
    current = { refresh: async () => {}, destroy() {} };
  }
  for (const a of document.querySelectorAll('nav a'))
    a.classList.toggle('active', a.dataset.nav === (name === 'set' ? '' : name));
  clearTimeout(timer);
  tick();
}

/** One refresh: the overview (for the clock and the status line), then the view; then the next one is scheduled. */
async function tick() {
  const shown = current;
  try {
    // A hidden tab costs the server nothing; it catches up when shown again.
    if (!document.hidden) {
      const o = await getJSON(`${API}/overview`);
      period = Math.max(1000, o.resolutionMs);
      status.textContent = o.timestamp
        ? `batch of ${fmt.time(o.timestamp)} · refreshed every ${fmt.duration(period)} · charts show the last ${fmt.duration(o.windowMs)}`
        : 'waiting for the first batch…';
      await shown.refresh(o);
      if (shown !== current) return;
      refreshes++;
      document.body.dataset.refreshes = String(refreshes);
      document.body.dataset.ready = '1';
      delete document.body.dataset.error;
      status.classList.remove('error');
    }
  } catch (e) {
    if (shown !== current) return;
    status.textContent = e.message;
    status.classList.add('error');
    document.body.dataset.error = e.message;
  }
  if (shown === current) timer = setTimeout(tick, period);
}

// Errors that escape a refresh (in a chart library callback, say) are kept on the page, where a user's bug
// report and the browser test both find them.
window.addEventListener('error', (e) => (document.body.dataset.jsError = String(e.message)));
window.addEventListener('unhandledrejection', (e) => (document.body.dataset.jsError = String(e.reason)));
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) {
    clearTimeout(timer);
    tick();
  }
});
route();
