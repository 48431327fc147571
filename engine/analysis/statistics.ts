/**
 * Honest numbers for comparisons made on a finite set of samples: every accuracy, agreement, drop
 * and per-sample metric gets a 95% interval, and a verdict says whether a drop is within a budget,
 * over it, or whether the samples are too few to tell. Pure functions, no I/O.
 *
 * Methods (see docs/metric.md, "Statistics"):
 * - a single proportion (top-1, agreement): Wilson score interval, honest at 0/n and n/n where the
 *   textbook p +- 1.96 sqrt(p(1-p)/n) collapses to a point;
 * - the difference of two accuracies measured on the SAME samples: Newcombe's method 10 (1998,
 *   Stat Med 17:2635), Wilson intervals of both accuracies combined with the observed correlation
 *   of the pairs; closed form, defined for zero counts, coverage close to 95% from small n on;
 * - whether two classifiers differ at all: exact McNemar test, a two-sided binomial test on the
 *   discordant pairs (b = reference right / candidate wrong, c = the reverse) with p = 1/2;
 * - the mean of a per-sample metric (and of a paired difference): Student's t below 30 samples
 *   (the bootstrap is too narrow there), the BCa bootstrap from 30 to 10 000 samples (2000
 *   resamples, seeded: a run reproduces exactly; BCa corrects the skew of metrics such as KL),
 *   and the normal interval above 10 000, where the two agree to within the bootstrap's own noise.
 */
import type { Interval, MeanSummary, PairedTable, PairedAccuracy } from '../../protocol/metrics';
export type { Interval, MeanSummary, PairedTable, PairedAccuracy } from '../../protocol/metrics';
import { normalCdf, normalQuantile, seededRandom, studentTQuantile } from './distributions';

/** Confidence level of every interval QuantLens reports. */
export const LEVEL = 0.95;
export const BOOTSTRAP_RESAMPLES = 2000;
export const BOOTSTRAP_SEED = 1;
/** Below this many samples a mean gets Student's t interval. */
export const BOOTSTRAP_MIN_SAMPLES = 30;
/** Above this many samples a mean gets the normal interval (the bootstrap would cost n x 2000). */
export const BOOTSTRAP_MAX_SAMPLES = 10000;

export interface MeanOptions {
  level?: number;
  resamples?: number;
  seed?: number;
}

const zFor = (level: number): number => normalQuantile(1 - (1 - level) / 2);

/** Wilson score interval for `successes` out of `n` (fractions). n = 0 gives [0, 1] around NaN. */
export function wilsonInterval(successes: number, n: number, level = LEVEL): Interval {
  if (n <= 0) return { estimate: NaN, low: 0, high: 1, level, method: 'wilson' };
  const z = zFor(level);
  const p = successes / n;
  const z2 = z * z;
  const centre = (successes + z2 / 2) / (n + z2);
  const half = (z / (n + z2)) * Math.sqrt((successes * (n - successes)) / n + z2 / 4);
  // At 0/n and n/n the bound equals the estimate exactly; rounding must not move it past.
  const low = successes === 0 ? 0 : Math.max(0, centre - half);
  const high = successes === n ? 1 : Math.min(1, centre + half);
  return { estimate: p, low, high, level, method: 'wilson' };
}

/**
 * Exact two-sided McNemar p-value: 2 P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
 * Summed in ratios from the largest term down, so b + c in the millions neither overflows nor
 * underflows before the final scaling.
 */
export function mcnemarExactP(b: number, c: number): number {
  const n = b + c;
  const m = Math.min(b, c);
  if (n === 0 || b === c) return 1;
  // ln of the largest term C(n, m) / 2^n
  let lnTerm = -n * Math.LN2;
  for (let i = 1; i <= m; i++) lnTerm += Math.log((n - m + i) / i);
  let ratio = 1;
  let sum = 1;
  for (let k = m; k >= 1; k--) {
    ratio *= k / (n - k + 1); // C(n, k-1) / C(n, k)
    sum += ratio;
    if (ratio < 1e-17 * sum) break;
  }
  return Math.min(1, 2 * Math.exp(lnTerm) * sum);
}

/** Count a paired table from per-sample correctness (truthy = correct). */
export function pairedTable(reference: ArrayLike<unknown>, candidate: ArrayLike<unknown>): PairedTable {
  if (reference.length !== candidate.length) throw new RangeError(`paired series differ in length: ${reference.length} vs ${candidate.length}`);
  const t = { both: 0, referenceOnly: 0, candidateOnly: 0, neither: 0 };
  for (let i = 0; i < reference.length; i++) {
    if (reference[i]) {
      if (candidate[i]) t.both++;
      else t.referenceOnly++;
    } else if (candidate[i]) t.candidateOnly++;
    else t.neither++;
  }
  return t;
}

/**
 * Newcombe's method 10: interval for p_reference - p_candidate from paired outcomes (fractions).
 * The Wilson limits of both proportions are combined like variances, corrected by phi, the
 * correlation of the paired outcomes (0 when a margin is empty; a positive cross-product
 * difference ad - bc is first reduced by n/2, which is what distinguishes method 10 from 8).
 */
export function newcombePairedDifference(t: PairedTable, level = LEVEL): Interval {
  const n = t.both + t.referenceOnly + t.candidateOnly + t.neither;
  const method = 'newcombe-10';
  if (n === 0) return { estimate: NaN, low: -1, high: 1, level, method };
  const r = wilsonInterval(t.both + t.referenceOnly, n, level);
  const c = wilsonInterval(t.both + t.candidateOnly, n, level);
  const margins = (t.both + t.referenceOnly) * (t.candidateOnly + t.neither) * (t.both + t.candidateOnly) * (t.referenceOnly + t.neither);
  // Method 10 shrinks a positive cross-product difference by n/2 (a continuity correction of phi
  // only: without it, method 8, the interval is too narrow for small tables).
  const cross = t.both * t.neither - t.referenceOnly * t.candidateOnly;
  const corrected = cross > 0 ? Math.max(0, cross - n / 2) : cross;
  const phi = margins === 0 ? 0 : corrected / Math.sqrt(margins);
  const d = r.estimate - c.estimate;
  const below = Math.sqrt(Math.max(0, (r.estimate - r.low) ** 2 - 2 * phi * (r.estimate - r.low) * (c.high - c.estimate) + (c.high - c.estimate) ** 2));
  const above = Math.sqrt(Math.max(0, (r.high - r.estimate) ** 2 - 2 * phi * (r.high - r.estimate) * (c.estimate - c.low) + (c.estimate - c.low) ** 2));
  return { estimate: d, low: Math.max(-1, d - below), high: Math.min(1, d + above), level, method };
}

export function pairedAccuracyFromTable(t: PairedTable, level = LEVEL): PairedAccuracy {
  for (const [k, v] of Object.entries(t))
    if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`paired table count ${k} must be a non-negative integer, got ${v}`);
  const n = t.both + t.referenceOnly + t.candidateOnly + t.neither;
  const diff = newcombePairedDifference(t, level);
  const discordant = n ? (t.referenceOnly + t.candidateOnly) / n : 0;
  const meanDiff = n ? (t.referenceOnly - t.candidateOnly) / n : 0;
  const variance = n > 1 ? ((discordant - meanDiff * meanDiff) * n) / (n - 1) : 0;
  return {
    n,
    table: t,
    reference: wilsonInterval(t.both + t.referenceOnly, n, level),
    candidate: wilsonInterval(t.both + t.candidateOnly, n, level),
    // the estimate from the counts: exact where r/n - c/n is not (193/200 - 192/200)
    dropPoints: { ...diff, estimate: n ? (100 * (t.referenceOnly - t.candidateOnly)) / n : NaN, low: diff.low * 100, high: diff.high * 100 },
    mcnemarP: mcnemarExactP(t.referenceOnly, t.candidateOnly),
    sdPoints: Math.sqrt(Math.max(0, variance)) * 100,
  };
}

/**
 * The drop interval (points) recomputed at m samples with this table's proportions (counts scaled,
 * not rounded: the score formulas accept real counts): how the verdict sizes "about M samples".
 */
export function pairedDropAt(t: PairedTable, level = LEVEL): (samples: number) => Interval {
  const n = t.both + t.referenceOnly + t.candidateOnly + t.neither;
  return (m) => {
    const k = m / n;
    const d = newcombePairedDifference(
      { both: t.both * k, referenceOnly: t.referenceOnly * k, candidateOnly: t.candidateOnly * k, neither: t.neither * k },
      level,
    );
    return { ...d, estimate: d.estimate * 100, low: d.low * 100, high: d.high * 100 };
  };
}

/** Paired accuracy from per-sample correctness of the reference and the candidate (truthy = correct). */
export function pairedAccuracy(reference: ArrayLike<unknown>, candidate: ArrayLike<unknown>, level = LEVEL): PairedAccuracy {
  return pairedAccuracyFromTable(pairedTable(reference, candidate), level);
}

function quantileSorted(sorted: Float64Array, q: number): number {
  const pos = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

/** BCa bootstrap limits of the mean (Efron 1987): bias correction z0, acceleration from the jackknife. */
function bcaMeanLimits(x: Float64Array, mean: number, level: number, resamples: number, seed: number): [number, number] {
  const n = x.length;
  const rand = seededRandom(seed);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[Math.floor(rand() * n)];
    means[b] = s / n;
  }
  means.sort();
  let below = 0;
  for (const m of means) below += m < mean ? 1 : m === mean ? 0.5 : 0;
  const z0 = normalQuantile(Math.min(Math.max(below / resamples, 0.5 / resamples), 1 - 0.5 / resamples));
  // Jackknife means are mean - (x_i - mean)/(n - 1): the acceleration reduces to the skewness sums.
  let s2 = 0;
  let s3 = 0;
  for (const v of x) {
    const d = v - mean;
    s2 += d * d;
    s3 += d * d * d;
  }
  const a = s2 > 0 ? s3 / (6 * s2 ** 1.5) : 0;
  const adjusted = (z: number): number => normalCdf(z0 + (z0 + z) / (1 - a * (z0 + z)));
  const z = zFor(level);
  return [quantileSorted(means, adjusted(-z)), quantileSorted(means, adjusted(z))];
}

/** Mean of the finite values with a 95% interval (method by sample count, see the file header). */
export function meanInterval(values: ArrayLike<number>, opts: MeanOptions = {}): MeanSummary {
  const level = opts.level ?? LEVEL;
  const resamples = opts.resamples ?? BOOTSTRAP_RESAMPLES;
  const seed = opts.seed ?? BOOTSTRAP_SEED;
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]);
  const x = Float64Array.from(finite);
  const n = x.length;
  const nonFinite = values.length - n;
  if (n === 0) return { estimate: NaN, low: NaN, high: NaN, level, method: 'none', n, sd: 0, nonFinite };
  let sum = 0;
  for (const v of x) sum += v;
  const mean = sum / n;
  if (n === 1) return { estimate: mean, low: -Infinity, high: Infinity, level, method: 'none (1 sample)', n, sd: 0, nonFinite };
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  const sd = Math.sqrt(ss / (n - 1));
  const base = { estimate: mean, level, n, sd, nonFinite };
  // Every value equal: every resample and every t interval is that value.
  if (sd === 0) return { ...base, low: mean, high: mean, method: 'constant' };
  const se = sd / Math.sqrt(n);
  if (n < BOOTSTRAP_MIN_SAMPLES) {
    const t = studentTQuantile(1 - (1 - level) / 2, n - 1);
    return { ...base, low: mean - t * se, high: mean + t * se, method: 'student-t' };
  }
  if (n > BOOTSTRAP_MAX_SAMPLES) {
    const z = zFor(level);
    return { ...base, low: mean - z * se, high: mean + z * se, method: 'normal' };
  }
  const [low, high] = bcaMeanLimits(x, mean, level, resamples, seed);
  return { ...base, low, high, method: `bca-bootstrap ${resamples} seed ${seed}` };
}

/**
 * Mean of reference_i - candidate_i over samples with both values finite, with its interval:
 * the paired difference of two per-sample series measured on the same samples.
 */
export function pairedMeanDifference(reference: ArrayLike<number>, candidate: ArrayLike<number>, opts: MeanOptions = {}): MeanSummary {
  if (reference.length !== candidate.length) throw new RangeError(`paired series differ in length: ${reference.length} vs ${candidate.length}`);
  const d = new Float64Array(reference.length);
  for (let i = 0; i < d.length; i++) d[i] = reference[i] - candidate[i];
  return meanInterval(d, opts);
}
