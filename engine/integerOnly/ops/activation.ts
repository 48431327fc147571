/**
 * Piecewise-linear activations on codes, on the input's own grid:
 *   Relu, Clip   a clamp of the codes. Quantization is monotone, so clamping codes at
 *                quantize(min) and quantize(max) equals quantizing the clipped float: exact.
 *   LeakyRelu,   negatives multiplied by the slope as a fixed-point multiplier (one rounding);
 *   PRelu        positives untouched. PRelu needs a constant slope (broadcast per element).
 * If the plan gives the output a grid of its own, one integer rescale follows (Relu/Clip clamp
 * on that grid after it).
 */
import { attr, attrFloat, type NodeProto } from '../../onnx/graph';
import { roundHalfEven } from '../../quantize/rounding';
import { type QuantParams, quantize } from '../../quantize/scheme';
import type { LowerCtx, OpLowering } from '../context';
import { Multipliers, clampCounted, sameGrid } from '../fixedPoint';
import { type Decline, type Step, decline } from '../types';
import { broadcastShape, broadcastStrides, codes, forStrided, numel } from '../values';

/** The clip interval [min, max] in real units (Relu: [0, inf)). */
function clipRange(n: NodeProto, ctx: LowerCtx): { min: number; max: number } | Decline {
  if (n.opType === 'Relu') return { min: 0, max: Infinity };
  let min = -Infinity,
    max = Infinity;
  if (ctx.opset < 11) {
    if (attr(n, 'min')) min = attrFloat(n, 'min', -Infinity);
    if (attr(n, 'max')) max = attrFloat(n, 'max', Infinity);
    return { min, max };
  }
  for (const i of [1, 2]) {
    const t = n.input[i];
    if (!t) continue;
    const v = ctx.scalar(t);
    if (v === undefined) return decline(`Clip bound ${t} is not a constant scalar`);
    if (i === 1) min = v;
    else max = v;
  }
  return { min, max };
}

/** Code bounds of [min, max] on grid g (quantize is monotone: clamping codes is exact). */
function codeBounds(r: { min: number; max: number }, g: QuantParams): { lo: number; hi: number } {
  return { lo: Number.isFinite(r.min) ? quantize(r.min, g) : g.qmin, hi: Number.isFinite(r.max) ? quantize(r.max, g) : g.qmax };
}

/**
 * Relu / Clip. On the input's grid a clamp of codes. When the plan fixes another output grid,
 * one rescale onto it and the clamp at the bounds quantized on THAT grid, so hitting the clip
 * bound is not mistaken for saturation.
 */
function lowerClamp(n: NodeProto, ctx: LowerCtx): Step[] | Decline {
  const x = n.input[0];
  const out = n.output[0];
  if (!ctx.isCodes(x)) return decline('input is not a float activation');
  const r = clipRange(n, ctx);
  if ('decline' in r) return r;
  const g = ctx.grid(x);
  const want = ctx.planned(out);
  if (!want || sameGrid(want, g)) {
    const { lo, hi } = codeBounds(r, g);
    return ctx.finish(n, n.opType, out, g, (env) => {
      const v = ctx.codes(env, x);
      const res = new Int32Array(v.data.length);
      for (let i = 0; i < res.length; i++) {
        const c = v.data[i];
        res[i] = c < lo ? lo : c > hi ? hi : c;
      }
      env.values.set(out, codes(v.dims, res));
    });
  }
  ctx.setGrid(out, want);
  const { lo, hi } = codeBounds(r, want);
  const m = new Multipliers([g.scale / want.scale], n.name);
  // A bound inside the grid is the clip itself; otherwise values past it saturate the grid.
  const raw = (x: number) => roundHalfEven(x / want.scale) + want.zeroPoint;
  const loClips = Number.isFinite(r.min) && raw(r.min) >= want.qmin;
  const hiClips = Number.isFinite(r.max) && raw(r.max) <= want.qmax;
  return [
    ctx.step(n, `${n.opType}(rescaled)`, (env) => {
      const v = ctx.codes(env, x);
      const res = new Int32Array(v.data.length);
      for (let i = 0; i < res.length; i++) {
        const c = want.zeroPoint + m.apply(v.data[i] - g.zeroPoint);
        res[i] = c < lo ? (loClips ? lo : clampCounted(c, want, env.stats)) : c > hi ? (hiClips ? hi : clampCounted(c, want, env.stats)) : c;
      }
      env.stats.codes += res.length;
      env.values.set(out, codes(v.dims, res));
    }),
  ];
}

function lowerLeaky(n: NodeProto, ctx: LowerCtx): Step[] | Decline {
  const x = n.input[0];
  const out = n.output[0];
  if (!ctx.isCodes(x)) return decline('input is not a float activation');
  let slope: { dims: number[]; data: Float32Array };
  if (n.opType === 'LeakyRelu') slope = { dims: [], data: Float32Array.of(attrFloat(n, 'alpha', 0.01)) };
  else if (ctx.isConst(n.input[1])) slope = ctx.constFloat(n.input[1]);
  else return decline('PRelu slope is not a constant');
  const g = ctx.grid(x);
  const mult = new Multipliers(Array.from(slope.data, Math.abs), n.name);
  const sign = Int32Array.from(slope.data, (s) => (s < 0 ? -1 : 1));
  return ctx.finish(n, n.opType, out, g, (env) => {
    const v = ctx.codes(env, x);
    const dims = broadcastShape(v.dims, slope.dims, n.name);
    if (numel(dims) !== v.data.length) throw new RangeError(`${n.name}: slope [${slope.dims}] would broadcast the input [${v.dims}]`);
    const res = new Int32Array(v.data.length);
    const z = g.zeroPoint;
    forStrided(dims, [broadcastStrides(slope.dims, dims)], (o, off) => {
      const c = v.data[o] - z;
      const k = off[0];
      res[o] = c >= 0 ? v.data[o] : clampCounted(z + sign[k] * mult.apply(c, k), g, env.stats);
    });
    env.stats.codes += res.length;
    env.values.set(out, codes(v.dims, res));
  });
}

export const activationOps: OpLowering = {
  ops: ['Relu', 'Clip', 'LeakyRelu', 'PRelu'],
  lower(n, ctx) {
    return n.opType === 'Relu' || n.opType === 'Clip' ? lowerClamp(n, ctx) : lowerLeaky(n, ctx);
  },
};
