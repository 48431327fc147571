/**
 * Every calibration method's range for one activation tensor, from its streamed statistics.
 * Histogram methods (percentile, entropy, MSE) work on |x| as TensorRT does and give an amax;
 * the range is then [max(min, -amax), min(max, amax)], so one-sided tensors (after ReLU) stay
 * one-sided and asymmetric schemes keep their asymmetry.
 */
import type { CalibrationMethod, QuantConfig, Range } from '../../protocol/report';
import type { ActivationStats } from './histogram';
import { mseAmax } from './mse';
import { type CurvePoint, entropyAmax, percentileAmax } from './thresholds';

export interface TensorThresholds {
  thresholds: Record<CalibrationMethod, Range>;
  klCurve: CurvePoint[];
}

export function computeThresholds(stats: ActivationStats, config: QuantConfig): TensorThresholds {
  const minmax = { lo: stats.count ? stats.min : 0, hi: stats.count ? stats.max : 0 };
  // `ema` keeps its name for compatibility; it is onnxruntime's moving-average MinMax in one
  // collect_data call: the mean of per-batch minima and maxima (see ActivationStats).
  const ema = stats.batches ? { lo: stats.meanBatchMin, hi: stats.meanBatchMax } : minmax;
  const { counts, width } = stats.absHistogram();
  if (width === 0) {
    // Degenerate (no non-zero value): every method collapses to the observed range.
    return { thresholds: { minmax, ema, percentile: minmax, entropy: minmax, mse: minmax }, klCurve: [] };
  }
  const a = config.activations;
  const unsigned = !a.signed && minmax.lo >= 0;
  const clip = (amax: number): Range => ({ lo: Math.max(minmax.lo, -amax), hi: Math.min(minmax.hi, amax) });
  const ent = entropyAmax(counts, width, a.bits, unsigned);
  const mse = mseAmax(counts, width, a.bits, unsigned);
  return {
    thresholds: {
      minmax,
      ema,
      percentile: clip(percentileAmax(counts, width, config.percentile)),
      entropy: clip(ent.amax),
      mse: clip(mse.amax),
    },
    klCurve: ent.curve,
  };
}
