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
