/**
 * Whether a measured loss (an accuracy drop in points, a metric difference) is within a budget,
 * judged on its confidence interval rather than on the point estimate: 300 samples put one sample
 * at 0.33 points, so "0.67 <= 1" alone proves nothing. The sentence this returns is what the
 * report, the CI gate and mixed precision print.
 */
import type { PairedTable, PrimaryMetric } from '../../protocol/metrics';
import { atLeast, atMost, budgetNoise } from '../../protocol/budget';
import { normalQuantile } from './distributions';
import { type Interval, pairedDropAt } from './statistics';

/**
 * - within-noise: the interval lies at or under the budget AND contains 0 (the loss cannot be told
 *   from none at all);
 * - within-budget: the interval lies at or under the budget;
 * - over-budget: the interval lies above the budget;
 * - cannot-tell: the interval straddles the budget; more samples would decide.
 */
export type VerdictKind = 'within-noise' | 'within-budget' | 'over-budget' | 'cannot-tell';

export interface Verdict {
  kind: VerdictKind;
  /** One sentence, e.g. "cannot tell: the 95% interval of the drop, 0.12 to 1.85 points, ...". */
  text: string;
  /** For cannot-tell: about how many samples would put the interval on one side of the budget. */
  samplesNeeded: number | null;
}

export interface VerdictInput {
  /** The loss with its interval; higher is worse (drop = reference - candidate). */
  loss: Interval;
  /** Largest acceptable loss, in the loss's unit. */
  budget: number;
  /** Samples the interval was computed from. */
  n: number;
  /**
   * How to size the sample count that would decide a cannot-tell: `intervalAt` for a paired
   * accuracy drop (pairedDropAt(table)), `sd` for a mean (MeanSummary.sd); neither: the interval's
   * half-width scaled by 1/sqrt(n).
   */
  projection?: Projection;
  /** Unit for the sentence ("points", "dB"); default "points". */
  unit?: string;
  /** What the loss is ("drop", "KL increase"); default "drop". */
  what?: string;
}

const fmt = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : x > 0 ? 'infinity' : '-infinity');

/** Round up to two significant digits: "about 1300", not "about 1287". */
function roundUpTwoDigits(m: number): number {
  if (m < 100) return Math.ceil(m);
  const scale = 10 ** (Math.floor(Math.log10(m)) - 1);
  return Math.ceil(m / scale) * scale;
}

/** How to project the interval to another sample count (see samplesToResolve). */
export interface Projection {
  /** Per-sample standard deviation of the loss: normal projection z sd / sqrt(m). */
  sd?: number;
  /** The interval recomputed at m samples with the same observed proportions (pairedDropAt). */
  intervalAt?: (samples: number) => Interval;
}

/**
 * About how many samples would put the interval on one side of the budget, if the estimate and
 * the per-sample spread stay as observed. With `intervalAt` the interval itself is recomputed at
 * growing counts (exact for score intervals, which are skewed at small counts); with `sd` the
 * normal half-width z sd / sqrt(m) must fall below the gap; otherwise the observed half-width facing
 * the budget is scaled by 1/sqrt(m). Null when no count can (estimate equal to the budget), or
 * nothing is known to project from.
 */
export function samplesToResolve(loss: Interval, budget: number, n: number, how: Projection = {}): number | null {
  const gap = Math.abs(budget - loss.estimate);
  // an estimate equal to the budget (up to rounding) cannot be separated from it by any count
  if (!(gap > budgetNoise(budget)) || !(n > 0)) return null;
  const below = loss.estimate < budget;
  if (how.intervalAt) {
    const resolved = (m: number): boolean => {
      const i = how.intervalAt!(m);
      return below ? atMost(i.high, budget) : !atMost(i.low, budget);
    };
    let lo = n;
    let hi = 2 * n;
    while (!resolved(hi)) {
      lo = hi;
      hi *= 2;
      if (hi > 1e12) return null;
    }
    while (hi - lo > Math.max(1, hi * 0.002)) {
      const mid = Math.floor((lo + hi) / 2);
      if (resolved(mid)) hi = mid;
      else lo = mid;
    }
    return roundUpTwoDigits(Math.max(hi, n + 1));
  }
  let m: number;
  if (how.sd !== undefined && how.sd > 0) {
    const z = normalQuantile(1 - (1 - loss.level) / 2);
    m = ((z * how.sd) / gap) ** 2;
  } else {
    const half = below ? loss.high - loss.estimate : loss.estimate - loss.low;
    if (!Number.isFinite(half) || half <= 0) return null;
    m = n * (half / gap) ** 2;
  }
  return roundUpTwoDigits(Math.max(m, n + 1));
}

/** Judge a loss interval against a budget. */
export function budgetVerdict(input: VerdictInput): Verdict {
  const { loss, budget, n } = input;
  const unit = input.unit ?? 'points';
  const what = input.what ?? 'drop';
  const pct = `${Math.round(loss.level * 100)}%`;
  const range = `${pct} interval ${fmt(loss.low)} to ${fmt(loss.high)} ${unit}`;
  const point = `${what} ${fmt(loss.estimate)} ${unit} (${range})`;
  const containsZero = loss.low <= 0 && loss.high >= 0;
  if (!atMost(loss.low, budget)) {
    return { kind: 'over-budget', text: `over budget: ${point} is above the budget of ${fmt(budget)} ${unit}`, samplesNeeded: null };
  }
  if (atMost(loss.high, budget)) {
    if (containsZero) {
      return {
        kind: 'within-noise',
        text: `within noise: ${point} cannot be told from 0 on ${n} samples, and is within the budget of ${fmt(budget)} ${unit}`,
        samplesNeeded: null,
      };
    }
    return { kind: 'within-budget', text: `within budget: ${point} is within the budget of ${fmt(budget)} ${unit}`, samplesNeeded: null };
  }
  const needed = samplesToResolve(loss, budget, n, input.projection);
  const zero = containsZero ? ' and contains 0' : '';
  const more =
    needed === null
      ? Number.isFinite(loss.low) && Number.isFinite(loss.high)
        ? `a ${what} equal to the budget cannot be separated from it by more samples`
        : `${samplesText(n)} too few to estimate how many would`
      : `${samplesText(n)} too few, about ${needed} would resolve it`;
  return {
    kind: 'cannot-tell',
    text: `cannot tell: the ${what} ${fmt(loss.estimate)} ${unit} has a ${range} that straddles the budget of ${fmt(budget)} ${unit}${zero}; ${more}`,
    samplesNeeded: needed,
  };
}

/**
 * Default SQNR floor (dB) for models judged by output SQNR (no labels, no classifier output, no
 * user metric): the quantization noise stays under 1/1000 of the output's power. PPQ's maintainer
 * calls 10% noise (10 dB) fine for classification and 0.1% (30 dB) the level for outputs read as
 * values (super-resolution, maps); without a task metric QuantLens takes the stricter one.
 */
export const DEFAULT_SQNR_FLOOR_DB = 30;

/** The budget used when the user names none, in the primary metric's unit, and why. */
export function defaultBudget(pm: PrimaryMetric): { budget: number; why: string } {
  if (pm.kind === 'top1' || pm.kind === 'agreement') return { budget: 1, why: 'the default budget: 1 point' };
  if (pm.kind === 'sqnr') return { budget: DEFAULT_SQNR_FLOOR_DB, why: `the default SQNR floor: ${DEFAULT_SQNR_FLOOR_DB} dB` };
  const ref = Math.abs(pm.floatValue ?? 0);
  return ref > 0
    ? { budget: 0.01 * ref, why: `the default budget: 1% of the float model's score ${fmt(ref)}` }
    : { budget: 0.01, why: 'the default budget: 0.01 metric units (the float score is 0)' };
}

/** What the user asked for: a loss budget (--max-drop) and, for SQNR-judged models, a floor (--min-sqnr). */
export interface BudgetOptions {
  maxDrop?: number;
  minSqnrDb?: number;
}

/** The budget that applies to `pm`: the user's for its kind, else the default; and why. */
export function budgetFor(pm: PrimaryMetric, o: BudgetOptions = {}): { budget: number; why: string; ignored?: string } {
  const sqnr = pm.kind === 'sqnr';
  // SQNR is judged against a floor (--min-sqnr), every other metric against a loss budget (--max-drop).
  const [given, other] = sqnr ? [o.minSqnrDb, o.maxDrop] : [o.maxDrop, o.minSqnrDb];
  const set =
    given === undefined
      ? defaultBudget(pm)
      : { budget: given, why: sqnr ? `the SQNR floor set: ${fmt(given)} dB` : `the budget set: ${fmt(given)} ${pm.lossUnit}` };
  if (other === undefined) return set;
  // The option for the other kind of metric is not silently dropped: `ignored` says so and why.
  const [otherFlag, flag, what] = sqnr ? ['--max-drop', '--min-sqnr', 'floor'] : ['--min-sqnr', '--max-drop', 'budget'];
  const use = given !== undefined ? `${flag} sets its ${what}` : `set ${sqnr ? 'a' : 'the'} ${what} with ${flag}`;
  const ignored = `${otherFlag} does not apply: the model is judged by ${pm.description}; ${use}`;
  return { ...set, why: `${set.why} (${ignored})`, ignored };
}

/**
 * The primary metric judged against a budget: its loss (top-1 drop, agreement lost, the user
 * metric's loss) must stay at or under `budget`; SQNR, which has no loss, must stay at or above
 * `budget` taken as a floor in dB. `table` (the labelled paired table) sizes "about M samples" for
 * a top-1 drop exactly; otherwise the loss's per-sample spread does.
 */
export function primaryVerdict(pm: PrimaryMetric, budget: number, table?: PairedTable | null): Verdict {
  if (pm.loss) {
    const projection: Projection | undefined = table ? { intervalAt: pairedDropAt(table) } : pm.lossSd ? { sd: pm.lossSd } : undefined;
    return budgetVerdict({ loss: pm.loss, budget, n: pm.n, projection, unit: pm.lossUnit, what: pm.kind === 'user' ? 'loss' : 'drop' });
  }
  return floorVerdict(pm.value, budget, pm.n);
}

/** A value that must stay at or above a floor (SQNR in dB): the floor's mirror of budgetVerdict. */
export function floorVerdict(value: Interval, floor: number, n: number, unit = 'dB', what = 'SQNR'): Verdict {
  const pct = `${Math.round(value.level * 100)}%`;
  const point = `${what} ${fmt(value.estimate)} ${unit} (${pct} interval ${fmt(value.low)} to ${fmt(value.high)} ${unit})`;
  if (atLeast(value.low, floor))
    return { kind: 'within-budget', text: `within budget: ${point} is above the floor of ${fmt(floor)} ${unit}`, samplesNeeded: null };
  if (!atLeast(value.high, floor))
    return { kind: 'over-budget', text: `over budget: ${point} is below the floor of ${fmt(floor)} ${unit}`, samplesNeeded: null };
  // Mirror the value into a loss (floor - value) so the sample-size projection applies unchanged.
  const mirrored: Interval = { ...value, estimate: -value.estimate, low: -value.high, high: -value.low };
  const needed = samplesToResolve(mirrored, -floor, n);
  const more = needed === null ? `${samplesOf(n)} cannot separate it from the floor` : `${samplesText(n)} too few, about ${needed} would resolve it`;
  return { kind: 'cannot-tell', text: `cannot tell: ${point} straddles the floor of ${fmt(floor)} ${unit}; ${more}`, samplesNeeded: needed };
}

/** "1 sample" / "40 samples". */
function samplesOf(n: number): string {
  return n === 1 ? '1 sample' : `${n} samples`;
}

/** "1 sample is" / "40 samples are". */
function samplesText(n: number): string {
  return `${samplesOf(n)} ${n === 1 ? 'is' : 'are'}`;
}

/** Within budget with confidence (the whole interval on the right side). */
export function certified(v: Verdict): boolean {
  return v.kind === 'within-budget' || v.kind === 'within-noise';
}
