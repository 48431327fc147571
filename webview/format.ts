// Number formatting shared by the summary, the table and the detail view. Kept free of DOM types so
// unit tests can import it under the Node tsconfig.

const DASH = '–';

/** dB with one decimal; exact matches carry an infinite SQNR, shown as ∞ rather than "Infinity". */
export function formatDb(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  if (value === Infinity) return '∞';
  if (value === -Infinity) return '−∞';
  return value.toFixed(digits);
}

/** A share in [0, 1] as a percentage; tiny non-zero shares keep a visible digit so they do not read as 0. */
export function formatPercent(share: number | null | undefined, digits = 2): string {
  if (share === null || share === undefined || Number.isNaN(share)) return 'n/a';
  if (!Number.isFinite(share)) return share > 0 ? '∞' : '−∞';
  const pct = share * 100;
  if (pct !== 0 && Math.abs(pct) < 10 ** -digits) return `${pct < 0 ? '>−' : '<'}${(10 ** -digits).toFixed(digits)}%`;
  return `${pct.toFixed(digits)}%`;
}

export function formatFixed(value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  if (value === Infinity) return '∞';
  if (value === -Infinity) return '−∞';
  return value.toFixed(digits);
}

/** Compact general-purpose number: scales, ranges and MSEs span many orders of magnitude. */
export function formatNumber(value: number | null | undefined, significant = 4): string {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  if (value === Infinity) return '∞';
  if (value === -Infinity) return '−∞';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(significant - 1).replace('e+', 'e');
  return Number(value.toPrecision(significant)).toString();
}

export function formatRange(lo: number, hi: number, significant = 4): string {
  return `[${formatNumber(lo, significant)}, ${formatNumber(hi, significant)}]`;
}

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Accuracy-drop severity thresholds in points: under 1 is noise for most tasks, 3+ usually blocks shipping. */
export type Severity = 'good' | 'warn' | 'bad';
export function dropSeverity(points: number): Severity {
  if (points < 1) return 'good';
  if (points < 3) return 'warn';
  return 'bad';
}

export function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

/** Scale / zero point of per-channel weights are arrays; a summary beats printing hundreds of numbers. */
export function formatScalarOrChannels(value: number | number[], significant = 4): string {
  if (!Array.isArray(value)) return formatNumber(value, significant);
  if (value.length === 0) return DASH;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of value) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) return `${formatNumber(lo, significant)} (all ${value.length} channels)`;
  return `${formatNumber(lo, significant)} … ${formatNumber(hi, significant)} (${value.length} channels)`;
}
