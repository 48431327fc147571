/**
 * A measured candidate (measure.ts) and paired comparisons between two candidates measured on the
 * same samples: whether one is better than the other, or the samples cannot tell them apart. Pure.
 */
import type { ModelOutputMetrics } from '../../protocol/report';
import type { OutputSummary, PairedTable, PrimaryMetric } from '../../protocol/metrics';
import { type Interval, LEVEL, pairedAccuracy, pairedMeanDifference } from './statistics';

export interface Measurement {
  /** Every float output compared, with intervals. */
  outputs: OutputSummary[];
  primary: PrimaryMetric;
  /** Whole-model figures in the older shape (labelled top-1 and agreement of the first output, SQNR over all outputs). */
  metrics: ModelOutputMetrics;
  /**
   * Per sample, the candidate's quality on the primary metric, higher is better: correct (1/0)
   * for top-1, agreement for agreement, the score (negated when lower is better) for a user
   * metric, the primary output's SQNR in dB for sqnr.
   */
  perSample: Float64Array;
  /** Per-sample SQNR (dB) of the primary output (the user metric's: the first output): a continuous tie-breaker. */
  perSampleSqnr: Float64Array;
  /** The labelled paired table of the primary output (sizes "about M samples would decide"). */
  table: PairedTable | null;
  samples: number;
}

/**
 * A look partway through a measurement: once `samples` samples (at a batch boundary, before the
 * last batch) are measured, `stop` sees the measurement so far and may end it there. The
 * measurement returned then covers those first samples only (its `samples` says how many).
 */
export interface Look {
  samples: number;
  stop: (partial: Measurement) => boolean;
}

/**
 * How much worse `b` is than `a` on the primary metric, paired over the same samples, in the
 * primary loss's unit (points, metric units, dB): positive = b is worse. Top-1: Newcombe's paired
 * interval on the two candidates' correctness; otherwise the paired mean difference (agreement in
 * points). "Within noise" = the interval contains 0. Every measurement covers the first samples
 * of the same data; one stopped early (a fix-search candidate clearly worse at a look) is paired
 * on the samples both cover.
 */
export function compareMeasurements(a: Measurement, b: Measurement, level = LEVEL): Interval {
  const n = Math.min(a.perSample.length, b.perSample.length);
  const x = a.perSample.subarray(0, n);
  const y = b.perSample.subarray(0, n);
  if (a.primary.kind === 'top1') return pairedAccuracy(x, y, level).dropPoints;
  const d = pairedMeanDifference(x, y, { level });
  const k = a.primary.kind === 'agreement' ? 100 : 1;
  return { estimate: d.estimate * k, low: d.low * k, high: d.high * k, level: d.level, method: `paired ${d.method}` };
}

/** The interval of a paired difference contains 0: the two cannot be told apart on these samples. */
export function withinNoise(d: Interval): boolean {
  return !(d.low > 0) && !(d.high < 0);
}

/** Mean of the finite per-sample SQNRs of the primary output: a continuous tie-breaker for coarse metrics like top-1. */
export function meanSqnr(m: Measurement): number {
  let s = 0;
  let n = 0;
  for (const v of m.perSampleSqnr) if (Number.isFinite(v)) (s += v), n++;
  return n ? s / n : -Infinity;
}

/** The primary metric's loss as one comparable number, higher is worse (SQNR: its negative mean). */
export function lossValue(m: Measurement): number {
  return m.primary.loss ? m.primary.loss.estimate : -m.primary.value.estimate;
}
