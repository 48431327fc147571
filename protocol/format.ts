/**
 * How a figure is written wherever it appears: the webview's table, cards and chart tooltips, and
 * the engine's hovers. One formatter per kind of figure, so one field reads the same everywhere.
 * Pure; no DOM, no Node.
 */
import type { Interval } from './metrics';

/**
 * A share (mismatch rates, clip rates) as a percentage with about three significant digits: these
 * run from a handful of codes in millions (0.00032%) to a quarter of them (24%), so fixed decimals
 * either hide the small ones behind "<0.001%" or pad the large ones ("24.000%").
 */
export function formatRate(share: number | null | undefined): string {
  if (share === null || share === undefined || Number.isNaN(share)) return 'n/a';
  if (share <= 0) return '0%';
  const pct = share * 100;
  if (pct >= 100) return '100%';
  const digits = Math.min(8, Math.max(0, 2 - Math.floor(Math.log10(pct))));
  let text = pct.toFixed(digits);
  if (text.includes('.')) text = text.replace(/0+$/, '').replace(/\.$/, '');
  // Just under 100% must not read as all of them.
  if (text === '100') text = '>99.9';
  return `${text}%`;
}

/**
 * "68.67 [62.96, 73.59]": an estimate and its interval, all multiplied by `scale` (100 turns a
 * fraction into points or percent) with `digits` decimals. Without an interval, the estimate alone.
 */
export function formatWithInterval(estimate: number | null | undefined, interval: Interval | null | undefined, scale = 1, digits = 2): string {
  if (estimate === null || estimate === undefined || Number.isNaN(estimate)) return 'n/a';
  const f = (v: number) => (v * scale).toFixed(digits).replace(/^-(0\.?0*)$/, '$1');
  if (!interval || !Number.isFinite(interval.low) || !Number.isFinite(interval.high)) return f(estimate);
  return `${f(estimate)} [${f(interval.low)}, ${f(interval.high)}]`;
}

/** "95% interval (wilson), 300 samples": what the brackets mean, for tooltips and captions. */
export function intervalNote(interval: Interval | null | undefined, samples?: number | null): string {
  const n = samples ? `, ${samples} samples` : '';
  if (!interval) return samples ? `${samples} samples (no interval)` : 'no interval';
  return `${Math.round(interval.level * 100)}% interval (${interval.method})${n}`;
}

/**
 * Top-1 agreement compares the argmax of the model's first output, a figure only where that output
 * holds class scores: a single probability (a voice detector's) always agrees with itself, and the
 * argmax along a detector map's width means nothing. A report says the output is classifier-like
 * by carrying the agreement's interval; an older report without the outputs list keeps the figure.
 */
export function agreementApplies(report: { outputs?: readonly unknown[]; accuracy: { integer: { agreementInterval?: Interval } } }): boolean {
  return report.outputs === undefined || report.accuracy.integer.agreementInterval !== undefined;
}

/**
 * The figure a sweep or plan entry is ranked by, as a reader wants it: the drop (points, or the
 * user metric's units) with its loss interval, or for a model judged by output SQNR the SQNR itself
 * in dB with its interval (the entry stores minus the SQNR as its "drop" so lower is better for
 * every kind, a sign no one should have to read).
 */
export function rankedFigure(e: { drop: number; dropBasis: string; loss?: Interval | null; value?: Interval }): {
  estimate: number;
  interval: Interval | null;
  sqnr: boolean;
} {
  if (e.dropBasis === 'sqnr') return { estimate: -e.drop, interval: e.value ?? null, sqnr: true };
  return { estimate: e.drop, interval: e.loss ?? null, sqnr: false };
}

/**
 * A sweep entry's top-1 agreement applies where its first output holds class scores: it then
 * carries the agreement's interval; an older entry without it does when it was judged by top-1 or
 * agreement (only a classifier-like output is).
 */
export function entryAgreementApplies(e: { dropBasis: string; accuracy: { integer: { agreementInterval?: Interval } } }): boolean {
  return e.accuracy.integer.agreementInterval !== undefined || e.dropBasis === 'top1' || e.dropBasis === 'agreement';
}
