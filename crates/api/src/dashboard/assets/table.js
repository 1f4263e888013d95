// A list of nodes, namespaces, pods or containers: one page at a time, searched and sorted by the server, so a
// cluster of 150,000 pods costs the browser one page of rows.

import { API, getJSON } from './api.js';
import * as fmt from './format.js';

const COLUMNS = {
  name: { title: 'Name', sort: 'name', cell: (i) => link(i) },
  namespace: { title: 'Namespace', cell: (i) => i.namespace },
  pod: { title: 'Pod', cell: (i) => i.pod },
  node: { title: 'Node', cell: (i) => i.node },
  cpu: { title: 'CPU', sort: 'cpu', num: true, cell: (i) => fmt.cpu(i.cpu) },
  memory: { title: 'Memory', sort: 'memory', num: true, cell: (i) => fmt.bytes(i.memory) },
  rx: { title: 'Net in', num: true, cell: (i) => fmt.rate(i.rxRate) },
  tx: { title: 'Net out', num: true, cell: (i) => fmt.rate(i.txRate) },
  fs: { title: 'Filesystem', num: true, cell: (i) => fmt.bytes(i.filesystem) },
};

const KIND_COLUMNS = {
  nodes: ['name', 'cpu', 'memory', 'rx', 'tx', 'fs'],
  namespaces: ['name', 'cpu', 'memory', 'rx', 'tx', 'fs'],
  pods: ['name', 'namespace', 'node', 'cpu', 'memory', 'rx', 'tx', 'fs'],
  containers: ['name', 'namespace', 'pod', 'node', 'cpu', 'memory', 'fs'],
};

/** A link to a set's detail view. */
export function link(item) {
  const a = document.createElement('a');
  a.href = `#/set?key=${encodeURIComponent(item.key)}`;
  a.textContent = item.name;
  a.title = item.key;
  return a;
}

/**
 * A paged table of `kind` inside `parent`.
 * options: `filters` (exact namespace/node/pod), `state` ({q, sort, order, page}), `perPage`, `search` (show the
 * search box), `pager`, `columns`, `onState` (told of every change, so a view can keep it in the address bar),
 * `title`, `hideWhenNone` (hide the table while the store holds nothing of its kind).
 */
export class ListTable {
  constructor(parent, kind, options = {}) {
    this.kind = kind;
    this.filters = options.filters || {};
    this.state = { q: '', sort: 'name', order: '', page: 1, ...options.state };
    this.perPage = options.perPage || 50;
    this.onState = options.onState || (() => {});
    this.hideWhenNone = options.hideWhenNone || false;
    this.columns = (options.columns || KIND_COLUMNS[kind]).map((c) => [c, COLUMNS[c]]);
    this.el = document.createElement('section');
    this.el.className = 'list';
    this.el.dataset.kind = kind;
    if (options.title) {
      const h = document.createElement('h2');
      h.textContent = options.title;
      this.el.appendChild(h);
    }
    if (options.search !== false) this.el.appendChild(this.searchBox());
    this.table = document.createElement('table');
    this.head = this.table.createTHead().insertRow();
    this.body = this.table.createTBody();
    this.el.appendChild(this.table);
    this.pager = document.createElement('div');
    this.pager.className = 'pager';
    if (options.pager !== false) this.el.appendChild(this.pager);
    parent.appendChild(this.el);
    this.drawHead();
  }

  searchBox() {
    const input = document.createElement('input');
    input.type = 'search';
    input.placeholder = `search ${this.kind} by name, namespace, pod or node`;
    input.value = this.state.q;
    let timer = null;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.set({ q: input.value.trim(), page: 1 }), 250);
    });
    return input;
  }

  drawHead() {
    this.head.textContent = '';
    for (const [, col] of this.columns) {
      const th = document.createElement('th');
      if (col.num) th.className = 'num';
      if (col.sort) {
        const b = document.createElement('button');
        const active = this.state.sort === col.sort;
        const desc = active && this.order() === 'desc';
        b.textContent = col.title + (active ? (desc ? ' ▼' : ' ▲') : '');
        b.title = `sort by ${col.title.toLowerCase()}`;
        b.addEventListener('click', () => {
          // A second click on the active column flips it; a new column starts in its natural order.
          const order = active ? (desc ? 'asc' : 'desc') : '';
          this.set({ sort: col.sort, order, page: 1 });
        });
        th.appendChild(b);
      } else {
        th.textContent = col.title;
      }
      this.head.appendChild(th);
    }
  }

  /** The effective order: the server sorts names ascending and usage descending unless told. */
  order() {
    return this.state.order || (this.state.sort === 'name' ? 'asc' : 'desc');
  }

  set(change) {
    Object.assign(this.state, change);
    this.onState(this.state);
    this.drawHead();
    // The next refresh tries again; until then the pager says what went wrong.
    this.refresh().catch((e) => (this.pager.textContent = e.message));
  }

  /** Fetches the current page and redraws the rows; called again every refresh. */
  async refresh() {
    const s = this.state;
    const answer = await getJSON(`${API}/${this.kind}`, {
      ...this.filters,
      q: s.q,
      sort: s.sort,
      order: s.order,
      page: s.page,
      per_page: this.perPage,
    });
    this.draw(answer);
    return answer;
  }

  draw(answer) {
    this.el.dataset.total = String(answer.total);
    this.el.dataset.rows = String(answer.items.length);
    // A node's pods in standalone mode, say: there are none of this kind at all, so the section says nothing.
    this.el.classList.toggle('none', this.hideWhenNone && answer.all === 0);
    const rows = document.createDocumentFragment();
    for (const item of answer.items) {
      const tr = document.createElement('tr');
      tr.dataset.key = item.key;
      for (const [, col] of this.columns) {
        const td = document.createElement('td');
        if (col.num) td.className = 'num';
        const v = col.cell(item);
        if (v instanceof Node) td.appendChild(v);
        else td.textContent = v ?? '–';
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    }
    if (!answer.items.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = this.columns.length;
      td.className = 'empty';
      td.textContent = answer.all ? `no ${this.kind} match` : `no ${this.kind} in the store`;
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    this.body.replaceChildren(rows);
    this.drawPager(answer);
  }

  drawPager(answer) {
    const pages = Math.max(1, Math.ceil(answer.total / answer.perPage));
    const first = answer.total ? (answer.page - 1) * answer.perPage + 1 : 0;
    const last = Math.min(answer.total, answer.page * answer.perPage);
    const text = document.createElement('span');
    const of = answer.total === answer.all ? '' : ` (${fmt.count(answer.all)} in all)`;
    text.textContent = `${fmt.count(first)}–${fmt.count(last)} of ${fmt.count(answer.total)}${of} · page ${fmt.count(answer.page)} of ${fmt.count(pages)}`;
    const button = (label, page, enabled) => {
      const b = document.createElement('button');
      b.textContent = label;
      b.disabled = !enabled;
      b.addEventListener('click', () => this.set({ page }));
      return b;
    };
    this.pager.replaceChildren(
      button('« first', 1, answer.page > 1),
      button('‹ prev', answer.page - 1, answer.page > 1),
      text,
      button('next ›', answer.page + 1, answer.page < pages),
      button('last »', pages, answer.page < pages),
    );
  }
}
