// How values read: millicores as cores, bytes in binary units, times in the viewer's zone.

const DASH = '–';

/** CPU in millicores (heapster's cpu/usage_rate unit). */
export function cpu(m) {
  if (m === null || m === undefined) return DASH;
  if (m === 0) return '0';
  if (Math.abs(m) >= 1000) {
    const cores = trim((m / 1000).toFixed(2));
    return `${cores} ${cores === '1' ? 'core' : 'cores'}`;
  }
  return `${trim(m.toFixed(Math.abs(m) < 10 ? 1 : 0))} m`;
}

/** `2.50` as `2.5`, `10.00` as `10`: axis labels stay short. */
function trim(s) {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes, in the largest binary unit that keeps the number at least 1. */
export function bytes(b) {
  if (b === null || b === undefined) return DASH;
  let v = Math.abs(b);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const sign = b < 0 ? '-' : '';
  // Whole bytes stay whole; fractions (rates of a few bytes a second) and scaled units keep one decimal.
  const digits = v >= 100 || (i === 0 && Number.isInteger(v)) ? 0 : 1;
  return `${sign}${trim(v.toFixed(digits))} ${UNITS[i]}`;
}

/** Bytes per second. */
export function rate(b) {
  return b === null || b === undefined ? DASH : `${bytes(b)}/s`;
}

/** A count with thousands separators. */
export function count(n) {
  return n === null || n === undefined ? DASH : n.toLocaleString('en-US');
}

/** A share of a limit in percent, or nothing when there is no limit to speak of. */
export function share(v, limit) {
  if (v === null || v === undefined || !limit) return '';
  return `${((100 * v) / limit).toFixed(1)}%`;
}

/** A wall-clock time, with seconds: batches arrive every few seconds. */
export function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString('en-GB') : DASH;
}

/** A duration in milliseconds, as people say it. */
export function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
