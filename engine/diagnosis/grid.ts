/**
 * What a tensor's grid does to its values, estimated from the report alone: the 256-bin display
 * histogram of the observed values and the chosen grid (range and step). Clipping error is the
 * squared distance of values beyond the grid to its edge; rounding error is step^2 / 12 per value
 * inside it (a value closer to 0 than half a step rounds to 0 and costs x^2 at most, which keeps
 * the exact zeros of ReLU outputs from counting as rounding noise).
 */
import type { Range, TensorReport } from '../../protocol/report';

export interface ErrorEnergy {
  /** Sum of squared clipping errors (values beyond the grid), estimated from bin centres. */
  clip: number;
  /** Sum of squared rounding errors inside the grid, step^2/12 per value (x^2 near zero). */
  round: number;
  /** clip / (clip + round): the share of the tensor's quantization error that clipping makes. */
  clipShare: number;
}

/** The step of a tensor's grid (a per-tensor scale; the mean for per-channel scales). */
export function stepOf(t: TensorReport): number {
  const s = t.chosen?.scale;
  if (typeof s === 'number') return s;
  return s && s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
}

/** Bits of the grid: its number of levels is (hi - lo) / step + 1. */
export function gridBits(t: TensorReport): number {
  const step = stepOf(t);
  const r = t.chosen?.range;
  if (!r || !(step > 0)) return 0;
  return Math.ceil(Math.log2(Math.round((r.hi - r.lo) / step) + 1) - 1e-9);
}

/** Clipping vs rounding error of `range` with step `step` on a signed histogram (counts[i] in [edges[i], edges[i+1])). */
export function errorEnergy(hist: TensorReport['histogram'], range: Range, step: number): ErrorEnergy {
  let clip = 0;
  let round = 0;
  const roundEach = (step * step) / 12;
  for (let i = 0; i < hist.counts.length; i++) {
    const c = hist.counts[i];
    if (!c) continue;
    const x = (hist.edges[i] + hist.edges[i + 1]) / 2;
    if (x > range.hi) clip += c * (x - range.hi) ** 2;
    else if (x < range.lo) clip += c * (range.lo - x) ** 2;
    else round += c * Math.min(roundEach, x * x);
  }
  const total = clip + round;
  return { clip, round, clipShare: total > 0 ? clip / total : 0 };
}

/**
 * The grid another threshold range would give on the same scheme: symmetric grids (the chosen
 * range is centred on 0) span +-max|bound|, others [min(lo, 0), max(hi, 0)]; same number of levels.
 */
export function gridFor(t: TensorReport, r: Range): { range: Range; step: number } {
  const c = t.chosen!.range;
  const levels = (c.hi - c.lo) / stepOf(t);
  const symmetric = Math.abs(c.lo + c.hi) <= 1e-6 * (c.hi - c.lo);
  const a = Math.max(Math.abs(r.lo), Math.abs(r.hi));
  const range = symmetric ? { lo: -a, hi: a } : { lo: Math.min(r.lo, 0), hi: Math.max(r.hi, 0) };
  return { range, step: (range.hi - range.lo) / levels };
}

/**
 * How many times more quantization error (clipping + rounding, estimated from the histogram) the
 * chosen grid makes than the grid of the MSE method's range would: the error a better threshold
 * would remove. NaN when the report has no MSE range (nothing to compare with).
 */
export function excessOverMse(t: TensorReport): number {
  const mse = t.thresholds.mse;
  if (!t.chosen || !mse) return NaN;
  const now = errorEnergy(t.histogram, t.chosen.range, stepOf(t));
  const g = gridFor(t, mse);
  const best = errorEnergy(t.histogram, g.range, g.step);
  const a = now.clip + now.round;
  const b = best.clip + best.round;
  return b > 0 ? a / b : a > 0 ? Infinity : 1;
}
