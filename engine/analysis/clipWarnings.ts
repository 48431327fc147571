/**
 * Ranges that throw away most of a tensor's values. TensorRT's entropy on a one-sided tensor far
 * from zero (values in [3.2, 12.1], logits in [-8.3, -7.5]) picks a threshold below the smallest
 * value and clips nearly everything; a model quantized that way is broken before anything runs.
 * The share is the report's clip rate (clipRate.ts: values more than half a step beyond the grid,
 * where the code saturates, read from the calibration histogram), so the warning costs nothing,
 * says what the written model does to the calibration data, and agrees with the tensor table. A
 * value ON the grid's end is not clipped: a softmax output of exactly 1.0 on the grid [-1, 1] whose
 * float32 scale puts the last code a few 1e-9 below 1 rounds to that code like any other value.
 */
import type { CalibrationMethod, Warning } from '../../protocol/report';
import { type Bits, paramsFor, representableRange } from '../quantize/scheme';
import type { WeightQuant } from '../quantize/qdqRewrite';
import { clipShare } from './clipRate';
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
    const share = clipShare(stats, params).rate;
    if (!(share >= HEAVY_CLIP_SHARE)) continue;
    // The tensor's own bits (mixed precision may differ from the configuration's): from its code count.
    const scheme = { ...q.config.activations, bits: Math.round(Math.log2(params.qmax - params.qmin + 1)) as Bits };
    const th = q.thresholds.get(tensor);
    const better = th
      ? METHODS.filter((m) => m !== q.config.calibration && clipShare(stats, paramsFor(th.thresholds[m].lo, th.thresholds[m].hi, scheme)).rate < 0.01)
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

/**
 * Layers whose int32 bias does not fit at the scale S_in * S_w the integer kernel adds it at: the
 * written file holds it clamped, so the layer adds a wrong bias (16-bit activations with 16-bit
 * weights: S_in * S_w near 1e-10 puts a bias of 0.3 at 3e9 steps). Nothing else says so: the
 * simulation runs the same clamped bias, and the layer's error just looks large.
 */
export function biasSaturationWarnings(weights: readonly WeightQuant[]): Warning[] {
  return weights
    .filter((w) => w.biasSaturated)
    .map((w) => ({
      code: 'bias-saturation',
      node: w.layer,
      message:
        `${w.layer}: ${w.biasSaturated} of ${w.bias!.length} bias values do not fit int32 at the bias scale S_in x S_w = ${w.biasScale!.toPrecision(3)} and are written clamped, ` +
        'so the layer adds a wrong bias; its input and weight grids are too fine for an int32 bias (8-bit weights, or 8-bit activations, give it room)',
    }));
}
