// The pages of the dashboard. Each view builds its elements once and has `refresh()` (fetch and redraw in place,
// called every resolution) and `destroy()`.

import { API, getJSON } from './api.js';
import { ChartGrid } from './charts.js';
import * as fmt from './format.js';
import { ListTable } from './table.js';

const TITLES = { nodes: 'Nodes', namespaces: 'Namespaces', pods: 'Pods', containers: 'Containers' };

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The cluster: counts, newest usage, charts over the window, top consumers. */
export class OverviewView {
  constructor(root) {
    this.root = root;
    root.appendChild(el('h1', '', 'Cluster'));
    this.cards = el('div', 'cards');
    root.appendChild(this.cards);
    this.charts = new ChartGrid(root, 'cluster');
    this.tops = el('div', 'tops');
    root.appendChild(this.tops);
    this.topKind = null;
  }

  /** `o` is the overview the app just read for its clock; read again only when called alone. */
  async refresh(o) {
    const [overview, series] = await Promise.all([
      o || getJSON(`${API}/overview`),
      getJSON(`${API}/series`, { key: 'cluster' }).catch(() => null),
    ]);
    o = overview;
    this.drawCards(o);
    if (series) this.charts.update(series);
    // Pods in a cluster; a standalone heapster has only system containers (cgroups) to rank.
    const kind = o.pods > 0 ? 'pods' : 'containers';
    if (kind !== this.topKind) this.makeTops(kind);
    await Promise.all(this.topTables.map((t) => t.refresh()));
    return o;
  }

  drawCards(o) {
    const card = (label, value, sub, href) => {
      const c = el(href ? 'a' : 'div', 'card');
      if (href) c.href = href;
      c.dataset.card = label.toLowerCase();
      c.append(el('div', 'label', label), el('div', 'value', value), el('div', 'sub', sub || ''));
      return c;
    };
    const c = o.cluster;
    this.cards.replaceChildren(
      card('Nodes', fmt.count(o.nodes), '', '#/nodes'),
      card('Namespaces', fmt.count(o.namespaces), '', '#/namespaces'),
      card('Pods', fmt.count(o.pods), '', '#/pods'),
      card('Containers', fmt.count(o.containers), '', '#/containers'),
      card('CPU', fmt.cpu(c.cpu), c.cpuLimit ? `${fmt.share(c.cpu, c.cpuLimit)} of ${fmt.cpu(c.cpuLimit)}` : ''),
      card(
        'Memory',
        fmt.bytes(c.memory),
        c.memoryLimit ? `${fmt.share(c.memory, c.memoryLimit)} of ${fmt.bytes(c.memoryLimit)}` : '',
      ),
    );
    this.cards.dataset.nodes = String(o.nodes);
    this.cards.dataset.pods = String(o.pods);
    this.cards.dataset.containers = String(o.containers);
    this.cards.dataset.namespaces = String(o.namespaces);
  }

  makeTops(kind) {
    this.topKind = kind;
    this.tops.textContent = '';
    const opts = (sort, what) => ({
      state: { sort, order: 'desc' },
      perPage: 10,
      search: false,
      pager: false,
      title: `Top ${kind} by ${what}`,
      columns: ['name', kind === 'pods' ? 'namespace' : 'node', sort],
    });
    this.topTables = [
      new ListTable(this.tops, kind, opts('cpu', 'CPU')),
      new ListTable(this.tops, kind, opts('memory', 'memory')),
    ];
  }

  destroy() {
    this.charts.destroy();
  }
}

/** One list, its search, sort and page kept in the address bar so a view can be bookmarked and shared. */
export class ListView {
  constructor(root, kind, params) {
    root.appendChild(el('h1', '', TITLES[kind]));
    const state = {
      q: params.get('q') || '',
      sort: params.get('sort') || 'name',
      order: params.get('order') || '',
      page: Math.max(1, Math.floor(Number(params.get('page'))) || 1),
    };
    this.table = new ListTable(root, kind, {
      state,
      onState: (s) => {
        const qs = new URLSearchParams();
        for (const [k, v] of Object.entries(s)) if (v && !(k === 'page' && v === 1)) qs.set(k, v);
        history.replaceState(null, '', `#/${kind}${qs.toString() ? `?${qs}` : ''}`);
      },
    });
  }

  refresh() {
    return this.table.refresh();
  }

  destroy() {}
}

/** The parts of a key: `namespace:NS/pod:P/container:C` or `node:N/container:C`. */
function parseKey(key) {
  const out = {};
  let m = key.match(/^namespace:([^/]*)(?:\/pod:([^/]*)(?:\/container:(.*))?)?$/);
  if (m) [, out.namespace, out.pod, out.container] = m;
  m = key.match(/^node:([^/]*)(?:\/container:(.*))?$/);
  if (m) [, out.node, out.container] = m;
  return out;
}

/** One metric set: its labels, its charts, and what it holds (a node's or namespace's pods, a pod's containers). */
export class SetView {
  constructor(root, key) {
    this.key = key;
    const parts = parseKey(key);
    this.title = el('h1', '', key);
    root.appendChild(this.title);
    this.labels = el('details', 'labels');
    root.appendChild(this.labels);
    this.charts = new ChartGrid(root, key);
    this.children = [];
    const child = (kind, filters, title) =>
      this.children.push(new ListTable(root, kind, { filters, title, perPage: 20, hideWhenNone: true }));
    if (key === 'cluster') child('nodes', {}, 'Nodes');
    else if (parts.pod && !parts.container)
      child('containers', { namespace: parts.namespace, pod: parts.pod }, 'Containers');
    else if (parts.namespace && !parts.pod) child('pods', { namespace: parts.namespace }, 'Pods');
    else if (parts.node && !parts.container) {
      child('pods', { node: parts.node }, 'Pods on this node');
      child('containers', { node: parts.node }, 'Containers on this node');
    }
  }

  async refresh() {
    const [set, series] = await Promise.all([
      getJSON(`${API}/set`, { key: this.key }),
      getJSON(`${API}/series`, { key: this.key }),
    ]);
    this.drawLabels(set);
    this.charts.update(series);
    await Promise.all(this.children.map((t) => t.refresh()));
    return set;
  }

  drawLabels(set) {
    const open = this.labels.open;
    this.labels.textContent = '';
    this.labels.open = open;
    this.labels.appendChild(
      el(
        'summary',
        '',
        `${set.type || 'set'} · ${Object.keys(set.labels).length} labels · ${set.metrics.length} metrics · last seen ${fmt.time(set.lastSeen)}`,
      ),
    );
    const t = el('table', 'kv');
    for (const [k, v] of Object.entries(set.labels)) {
      const tr = t.insertRow();
      tr.insertCell().textContent = k;
      tr.insertCell().textContent = v;
    }
    const tr = t.insertRow();
    tr.insertCell().textContent = 'metrics';
    tr.insertCell().textContent = set.metrics.join(', ');
    this.labels.appendChild(t);
  }

  destroy() {
    this.charts.destroy();
  }
}
