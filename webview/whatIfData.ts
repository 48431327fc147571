// The numbers behind the what-if threshold: the grid a tensor is on now, the grid a new threshold
// would give under the same scheme, and the expected clip / rounding error of each, from the
// tensor's histogram (engine/calibration/expectedError.ts, the same function the engine can use).
// No DOM here so unit tests can import it.
import { type ErrorSplit, expectedError, gridFor, type GridSpan } from '../engine/calibration/expectedError';
import type { TensorScheme } from '../engine/quantize/scheme';
import type { QuantConfig, Range, TensorReport } from '../protocol/report';

const BITS = [4, 8, 16] as const;

/**
 * The scheme this tensor is quantized with: the configuration's activation scheme, with the bits
 * read back from the tensor's own grid (a tensor or layer override may have changed them).
 */
export function tensorScheme(config: QuantConfig, t: TensorReport): TensorScheme {
  const base = config.activations;
  const c = t.chosen;
  if (!c || Array.isArray(c.scale) || !(c.scale > 0)) return { ...base };
  const levels = Math.round((c.range.hi - c.range.lo) / c.scale);
  const bits = BITS.find((b) => levels <= 2 ** b - 1 && levels >= 2 ** b - 2) ?? base.bits;
  return { ...base, bits };
}

/** The grid the tensor is on now (its chosen range and scale), or null for per-channel or unquantized tensors. */
export function currentGrid(t: TensorReport): GridSpan | null {
  const c = t.chosen;
  if (!c || Array.isArray(c.scale)) return null;
  return { lo: c.range.lo, hi: c.range.hi, step: c.scale };
}

/** A what-if is offered for quantized activations with one scale (weights are min/max per channel). */
export function whatIfApplies(t: TensorReport): boolean {
  return t.kind === 'activation' && currentGrid(t) !== null && t.histogram.counts.some((c) => c > 0);
}

/**
 * The range the user means by a threshold: symmetric schemes use one |x| threshold on both sides;
 * asymmetric ones take lo and hi as given (widened to include 0, as every ONNX grid must).
 */
export function rangeFor(scheme: TensorScheme, lo: number, hi: number): Range {
  if (scheme.symmetric) {
    const t = Math.max(Math.abs(lo), Math.abs(hi));
    return { lo: -t, hi: t };
  }
  return { lo: Math.min(lo, 0), hi: Math.max(hi, 0) };
}

export interface WhatIfResult {
  range: Range;
  grid: GridSpan;
  error: ErrorSplit;
}

/** Expected error of the tensor on the grid a range would give. */
export function whatIf(t: TensorReport, scheme: TensorScheme, range: Range): WhatIfResult {
  const grid = gridFor(range, scheme);
  return { range, grid, error: expectedError(t.histogram, grid, t) };
}

/** Expected error of the tensor on its current grid (null when it has none). */
export function currentError(t: TensorReport): ErrorSplit | null {
  const g = currentGrid(t);
  return g ? expectedError(t.histogram, g, t) : null;
}

/** Slider bounds for a threshold: from a small positive value to a little past the observed extreme. */
export function thresholdBounds(t: TensorReport): { min: number; max: number } {
  const amax = Math.max(Math.abs(t.min), Math.abs(t.max), t.chosen ? Math.max(Math.abs(t.chosen.range.lo), Math.abs(t.chosen.range.hi)) : 0);
  const max = amax > 0 ? amax * 1.1 : 1;
  return { min: max / 1000, max };
}

/**
 * The KL curve's point at the entropy threshold, for marking it ON the curve: the curve point
 * nearest to `amax` when it lies within one curve step of it (the engine keeps that point when it
 * downsamples), else null rather than a point that is not the one picked.
 */
export function klPointAt(
  curve: readonly { threshold: number; value: number }[],
  amax: number,
): { threshold: number; value: number; isMinimum: boolean } | null {
  const finite = curve.filter((p) => Number.isFinite(p.threshold) && Number.isFinite(p.value));
  if (finite.length === 0) return null;
  let best = 0;
  for (let i = 1; i < finite.length; i++) if (Math.abs(finite[i].threshold - amax) < Math.abs(finite[best].threshold - amax)) best = i;
  const p = finite[best];
  const neighbours = [finite[best - 1], finite[best + 1]].filter((q) => q !== undefined).map((q) => Math.abs(q.threshold - p.threshold));
  const step = neighbours.length ? Math.min(...neighbours) : Infinity;
  if (Math.abs(p.threshold - amax) > step) return null;
  const min = Math.min(...finite.map((q) => q.value));
  return { threshold: p.threshold, value: p.value, isMinimum: p.value <= min };
}
