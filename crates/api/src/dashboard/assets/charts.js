// The four charts of a metric set (CPU, memory, network, filesystem), drawn with the vendored uPlot.
//
// Each chart writes what it drew into data attributes of its element (points per series, the last point, and how
// many pixels of the first series' colour are on the canvas), so a headless browser's DOM dump proves that a chart
// was drawn with data and not left an empty frame.

import * as fmt from './format.js';

/** Chart layout: which metrics of /api/v1/dashboard/series each chart draws, and how their values read. */
const CHARTS = [
  {
    id: 'cpu',
    title: 'CPU',
    format: fmt.cpu,
    series: [{ metric: 'cpu/usage_rate', label: 'usage', color: '#2563eb' }],
  },
  {
    id: 'memory',
    title: 'Memory',
    format: fmt.bytes,
    series: [
      { metric: 'memory/working_set', label: 'working set', color: '#16a34a' },
      { metric: 'memory/usage', label: 'usage', color: '#94a3b8' },
    ],
  },
  {
    id: 'network',
    title: 'Network',
    format: fmt.rate,
    series: [
      { metric: 'network/rx_rate', label: 'received', color: '#9333ea' },
      { metric: 'network/tx_rate', label: 'sent', color: '#f59e0b' },
    ],
  },
  {
    id: 'filesystem',
    title: 'Filesystem',
    format: fmt.bytes,
    series: [{ metric: 'filesystem/usage', label: 'used', color: '#dc2626' }],
  },
];

const HEIGHT = 170;

/** Four charts for one metric set inside `parent`; `update` redraws them from a series answer. */
export class ChartGrid {
  constructor(parent, key) {
    this.key = key;
    this.grid = document.createElement('div');
    this.grid.className = 'charts';
    parent.appendChild(this.grid);
    this.charts = CHARTS.map((def) => new Chart(this.grid, key, def));
    this.onResize = () => this.charts.forEach((c) => c.resize());
    window.addEventListener('resize', this.onResize);
  }

  update(answer) {
    this.charts.forEach((c) => c.update(answer));
  }

  destroy() {
    window.removeEventListener('resize', this.onResize);
    this.charts.forEach((c) => c.destroy());
  }
}

class Chart {
  constructor(parent, key, def) {
    this.def = def;
    this.el = document.createElement('section');
    this.el.className = 'chart';
    this.el.dataset.chart = def.id;
    this.el.dataset.key = key;
    this.el.dataset.points = '0';
    const h = document.createElement('h3');
    h.textContent = def.title;
    this.note = document.createElement('span');
    this.note.className = 'note';
    h.appendChild(this.note);
    this.body = document.createElement('div');
    this.el.append(h, this.body);
    parent.appendChild(this.el);
    this.plot = null;
  }

  width() {
    return Math.max(240, this.el.clientWidth - 16);
  }

  /** Draws the answer's series for this chart; a set without any of them shows "no data" instead of axes. */
  update(answer) {
    const columns = this.def.series.map((s) => answer.series[s.metric] || null);
    const drawn = columns.some((c) => c && c.some((v) => v !== null));
    const summed = this.def.series.filter((s) => answer.summedFromNodes.includes(s.metric));
    this.note.textContent = summed.length ? ' (sum of the nodes)' : '';
    this.describe(answer, columns);
    if (!drawn) {
      this.destroyPlot();
      this.body.className = 'empty';
      this.body.textContent = 'no data for this set';
      this.el.dataset.ink = '0';
      return;
    }
    const data = [answer.timestamps, ...columns.map((c) => c || answer.timestamps.map(() => null))];
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    this.body.className = '';
    this.body.textContent = '';
    this.plot = new uPlot(this.options(), data, this.body);
  }

  /** The data attributes the browser test reads: what this chart holds, per series. */
  describe(answer, columns) {
    const first = columns[0] || [];
    const present = first.map((v, i) => [answer.timestamps[i], v]).filter(([, v]) => v !== null);
    this.el.dataset.points = String(present.length);
    this.el.dataset.series = this.def.series
      .map((s, i) => `${s.metric}=${(columns[i] || []).filter((v) => v !== null).length}`)
      .join(';');
    const last = present[present.length - 1];
    this.el.dataset.lastTs = last ? String(last[0]) : '';
    this.el.dataset.lastValue = last ? String(last[1]) : '';
  }

  options() {
    const format = this.def.format;
    return {
      width: this.width(),
      height: HEIGHT,
      ms: 1,
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [{}, { size: 90, values: (u, ticks) => ticks.map(format) }],
      series: [
        {},
        ...this.def.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: `${s.color}18`,
          spanGaps: false,
          value: (u, v) => format(v),
        })),
      ],
      hooks: {
        draw: [(u) => (this.el.dataset.ink = String(ink(u, this.def.series[0].color)))],
        // The legend shows the newest values until the pointer picks another time.
        setData: [(u) => u.cursor.left < 0 && u.setLegend({ idx: u.data[0].length - 1 })],
        ready: [(u) => u.setLegend({ idx: u.data[0].length - 1 })],
      },
    };
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: HEIGHT });
  }

  destroyPlot() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  destroy() {
    this.destroyPlot();
    this.el.remove();
  }
}

/** Opaque pixels of `color` inside the plot area: a line drawn with data leaves hundreds, an empty frame none. */
function ink(u, color) {
  const { left, top, width, height } = u.bbox;
  if (width <= 0 || height <= 0) return 0;
  const px = u.ctx.getImageData(left, top, width, height).data;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i + 3] > 160 && Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 90) n++;
  }
  return n;
}
