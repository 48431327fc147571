/**
 * Ranges that throw away most of a tensor's values. TensorRT's entropy on a one-sided tensor far
 * from zero (values in [3.2, 12.1], logits in [-8.3, -7.5]) picks a threshold below the smallest
 * value and clips nearly everything; a model quantized that way is broken before anything runs.
 * The share is computed from the calibration histogram on the grid the file gets, so the warning
 * costs nothing and says what the written model does to the calibration data.
 */
import type { CalibrationMethod, Warning } from '../../protocol/report';
import { expectedError, gridFor } from '../calibration/expectedError';
import { displayHistogram } from '../calibration/histogram';
import { type Bits, type QuantParams, representableRange } from '../quantize/scheme';
import type { Prepared, Quantized } from './types';

/** Above this share of clipped calibration values a range is called out (the demo's entropy culprit clips 26.7%). */
export const HEAVY_CLIP_SHARE = 0.1;

const METHODS: CalibrationMethod[] = ['minmax', 'ema', 'percentile', 'entropy', 'mse'];

/** One warning per activation whose quantized grid clips at least HEAVY_CLIP_SHARE of its calibration values. */
export function clippingWarnings(p: Prepared, q: Quantized): Warning[] {
  const out: Warning[] = [];
  for (const [tensor, params] of q.actParams) {
    const stats = p.stats.get(tensor);
    if (!stats?.count) continue;
    // Full resolution: the share is interpolated inside the bin the grid's end cuts, so finer is truer.
    const hist = displayHistogram(stats, 2 * stats.pos.length);
    const observed = { min: stats.min, max: stats.max };
    const share = clippedShare(hist, params, observed);
    if (!(share >= HEAVY_CLIP_SHARE)) continue;
    // The tensor's own bits (mixed precision may differ from the configuration's): from its code count.
    const scheme = { ...q.config.activations, bits: Math.round(Math.log2(params.qmax - params.qmin + 1)) as Bits };
    const th = q.thresholds.get(tensor);
    const better = th
      ? METHODS.filter((m) => m !== q.config.calibration && expectedError(hist, gridFor(th.thresholds[m], scheme), observed).clippedShare < 0.01)
      : [];
    const r = representableRange(params);
    out.push({
      code: 'heavy-clipping',
      tensor,
      message:
        `${tensor}: the quantized range [${r.lo.toPrecision(4)}, ${r.hi.toPrecision(4)}] clips ${(100 * share).toFixed(1)}% of its calibration values ` +
        `(observed [${stats.min.toPrecision(4)}, ${stats.max.toPrecision(4)}])` +
        (better.length ? `; ${orList(better)} calibration would clip under 1%` : ''),
    });
  }
  return out;
}

/** "a", "a or b", "a, b or c". */
function orList(xs: string[]): string {
  return xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;
}

function clippedShare(hist: { edges: number[]; counts: number[] }, params: QuantParams, observed: { min: number; max: number }): number {
  const r = representableRange(params);
  return expectedError(hist, { ...r, step: params.scale }, observed).clippedShare;
}
