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

/** One figure in milliseconds, with the digits that matter. */
function ms(v) {
  if (v === null || v === undefined) return '–';
  return v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(1)} ms` : `${v.toFixed(3)} ms`;
}

/** heapster's own bill (`/api/v1/cost`): CPU by stage, per round and per node; memory per series; the sinks. */
export class CostView {
  constructor(root, params) {
    root.appendChild(el('h1', '', "heapster's own bill"));
    this.rounds = params.get('rounds') || '20';
    const pick = el('p', 'note');
    pick.append('Over ');
    const select = el('select');
    for (const [v, label] of [
      ['5', 'the last 5 rounds'],
      ['20', 'the last 20 rounds'],
      ['240', 'the last 240 rounds'],
      ['all', 'every round since start'],
    ]) {
      const o = el('option', '', label);
      o.value = v;
      o.selected = v === this.rounds;
      select.appendChild(o);
    }
    select.addEventListener('change', () => (location.hash = `#/cost?rounds=${select.value}`));
    pick.append(select, '. CPU is each stage’s thread CPU time; “other” is the rest of the process’s, so the stages sum to what the kernel bills heapster.');
    root.appendChild(pick);
    this.section = el('section', 'cost');
    root.appendChild(this.section);
    this.cards = el('div', 'cards');
    this.stages = el('div', 'list');
    this.sinks = el('div', 'list');
    this.section.append(this.cards, this.stages, this.sinks);
  }

  async refresh() {
    const c = await getJSON('/api/v1/cost', { rounds: this.rounds });
    const card = (label, value, sub) => {
      const d = el('div', 'card');
      d.dataset.card = label.toLowerCase();
      d.append(el('div', 'label', label), el('div', 'value', value), el('div', 'sub', sub || ''));
      return d;
    };
    const per = c.nodesMean > 0 ? c.cpuSecondsPerRound / c.nodesMean : 0;
    this.cards.replaceChildren(
      card('CPU', fmt.cpu(c.cores * 1000), `${c.cpuSeconds.toFixed(2)} s in ${c.rounds} rounds`),
      card('Per round', ms(c.cpuSecondsPerRound * 1000), `${fmt.count(c.nodes)} ${c.nodes === 1 ? 'node' : 'nodes'} in the newest`),
      card('Per node', ms(per * 1000), 'CPU per node per round'),
      card('Store', fmt.bytes(c.store.bytes), `${fmt.count(c.store.series)} series`),
      card('Per series', fmt.bytes(c.store.bytesPerSeries), 'store bytes'),
      card('Per node', fmt.bytes(c.store.bytesPerNode), 'store bytes'),
    );
    // Figures the browser test compares with the API's.
    Object.assign(this.section.dataset, {
      rounds: String(c.rounds),
      stages: String(c.stages.length),
      cpuSeconds: String(c.cpuSeconds),
      sinks: String(c.sinks.length),
    });

    const table = (parent, title, heads, rows) => {
      parent.replaceChildren(el('h2', '', title));
      const t = el('table');
      const h = t.createTHead().insertRow();
      heads.forEach((name, i) => {
        const th = el('th', i ? 'num' : '', name);
        h.appendChild(th);
      });
      const body = t.createTBody();
      for (const [data, cells] of rows) {
        const tr = body.insertRow();
        Object.assign(tr.dataset, data);
        cells.forEach((v, i) => {
          const td = tr.insertCell();
          if (i) td.className = 'num';
          if (v instanceof Node) td.appendChild(v);
          else td.textContent = v;
        });
      }
      if (!rows.length) {
        const td = body.insertRow().insertCell();
        td.colSpan = heads.length;
        td.className = 'empty';
        td.textContent = 'none';
      }
      parent.appendChild(t);
    };
    const bar = (share) => {
      const b = el('span', 'bar');
      b.style.width = `${Math.round(share * 120)}px`;
      const w = el('span', '', `${(100 * share).toFixed(1)} %`);
      w.prepend(b);
      return w;
    };
    table(
      this.stages,
      'CPU by stage',
      ['stage', 'share', 'CPU seconds', 'per round', 'per node per round'],
      c.stages.map((s) => [
        { stage: s.stage, cpuSeconds: String(s.cpuSeconds) },
        [s.stage, bar(s.share), s.cpuSeconds.toFixed(3), ms(s.cpuMsPerRound), ms(s.cpuMsPerNodePerRound)],
      ]),
    );
    table(
      this.sinks,
      'Sinks',
      ['sink', 'points per second', 'queued batches', 'spool'],
      c.sinks.map((s) => [
        { sink: s.sink },
        [
          s.sink,
          fmt.count(Math.round(s.pointsPerSecond)),
          fmt.count(s.queuedBatches),
          s.spooled ? fmt.bytes(s.spoolBytes) : 'memory only',
        ],
      ]),
    );
    return c;
  }

  destroy() {}
}
