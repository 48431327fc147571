/**
 * The expected quantization error of a tensor on a grid, from its histogram alone: what a threshold
 * costs before anything is re-run. Two parts, the classic split behind every calibration method:
 *
 *   clip      values beyond the grid's ends are clamped to them: their squared distance to the end;
 *   rounding  values inside round to the nearest code: step^2 / 12 each (uniform within a step).
 *
 * Each histogram bin is taken as uniform over its width, so a bin cut by the threshold contributes
 * exactly its clipped part, integrated. Pure (no I/O, no DOM): the webview's what-if computes with it
 * as the user drags a threshold, and the engine can rank thresholds with it.
 *
 * The rounding part is an upper bound on tensors with many EXACT zeros (ReLU outputs): zero is
 * always a code, so those values round without error, but a histogram bin cannot tell an exact
 * zero from a small value.
 */
import { type TensorScheme, paramsFor, representableRange } from '../quantize/scheme';

export interface HistogramBins {
  /** counts[i] covers [edges[i], edges[i+1]). */
  edges: readonly number[];
  counts: readonly number[];
}

/** A uniform grid: its representable range and step (the scale). */
export interface GridSpan {
  lo: number;
  hi: number;
  step: number;
}

export interface ErrorSplit {
  /** Mean squared error per value from clamping beyond the grid (real units squared). */
  clip: number;
  /** Mean squared error per value from rounding inside the grid. */
  rounding: number;
  total: number;
  /** Share of the values beyond the grid's ends. */
  clippedShare: number;
  /** Mean of x^2 (the signal power the SQNR compares with). */
  signalPower: number;
  /** 10 log10(signalPower / total); Infinity when the expected error is 0. */
  sqnrDb: number;
  /** Values the histogram holds. */
  count: number;
}

/** Integral of (x - t)^2 dx over [a, b]. */
function sqDistIntegral(a: number, b: number, t: number): number {
  return ((b - t) ** 3 - (a - t) ** 3) / 3;
}

/**
 * Expected MSE per value of quantizing the histogram's values on `grid`: clip + rounding, see the
 * file comment. `observed` (the tensor's exact min and max) trims the outer bins, whose edges are
 * rounded outwards: no value lies beyond it. Empty histograms give zeros.
 */
export function expectedError(h: HistogramBins, grid: GridSpan, observed?: { min: number; max: number }): ErrorSplit {
  let count = 0;
  let clipSum = 0;
  let clippedMass = 0;
  let insideMass = 0;
  let power = 0;
  const n = Math.min(h.counts.length, h.edges.length - 1);
  for (let i = 0; i < n; i++) {
    const c = h.counts[i];
    if (!(c > 0)) continue;
    let a = h.edges[i];
    let b = h.edges[i + 1];
    if (observed && observed.min <= observed.max) {
      a = Math.min(Math.max(a, observed.min), observed.max);
      b = Math.min(Math.max(b, observed.min), observed.max);
    }
    count += c;
    const w = b - a;
    if (!(w > 0)) {
      // A zero-width bin is a point mass at a.
      power += c * a * a;
      if (a < grid.lo) {
        clippedMass += c;
        clipSum += c * (a - grid.lo) ** 2;
      } else if (a > grid.hi) {
        clippedMass += c;
        clipSum += c * (a - grid.hi) ** 2;
      } else insideMass += c;
      continue;
    }
    power += (c * (b ** 3 - a ** 3)) / 3 / w;
    let inside = c;
    if (a < grid.lo) {
      const e = Math.min(b, grid.lo);
      const m = (c * (e - a)) / w;
      clippedMass += m;
      inside -= m;
      clipSum += (c * sqDistIntegral(a, e, grid.lo)) / w;
    }
    if (b > grid.hi) {
      const s = Math.max(a, grid.hi);
      const m = (c * (b - s)) / w;
      clippedMass += m;
      inside -= m;
      clipSum += (c * sqDistIntegral(s, b, grid.hi)) / w;
    }
    insideMass += Math.max(0, inside);
  }
  if (count === 0) return { clip: 0, rounding: 0, total: 0, clippedShare: 0, signalPower: 0, sqnrDb: Infinity, count: 0 };
  const clip = clipSum / count;
  const rounding = ((insideMass / count) * grid.step * grid.step) / 12;
  const total = clip + rounding;
  const signalPower = power / count;
  return { clip, rounding, total, clippedShare: clippedMass / count, signalPower, sqnrDb: total > 0 ? 10 * Math.log10(signalPower / total) : Infinity, count };
}

/** The grid a range gets under a scheme: widened to include 0, symmetric when the scheme is (as quantize does). */
export function gridFor(range: { lo: number; hi: number }, scheme: TensorScheme): GridSpan {
  const p = paramsFor(range.lo, range.hi, scheme);
  return { ...representableRange(p), step: p.scale };
}
