/**
 * Reductions on codes:
 *   ReduceMean, ReduceSum   the exact integer sum of centred codes (an int64 accumulator: a wide
 *                           I-LayerNorm row summed over 64 tokens needs more than 32 bits), then
 *                           one fixed-point rescale by S_in / (count S_out); the mean's 1/count
 *                           folds into the multiplier, made once per count;
 *   ReduceMax, ReduceMin    the extreme code, exact, on the input's grid.
 */
import type { OpLowering } from '../context';
import { attrInt } from '../../onnx/graph';
import type { QuantParams } from '../../quantize/scheme';
import { Multipliers, saturate } from '../fixedPoint';
import { type Env, decline } from '../types';
import { type Codes, axisOf, codes, numel, stridesOf } from '../values';
import { intsInput, movement } from './layout';

/** Reduce `axes` of v: `fold(acc, code)` from `init`, then `done(acc, count)` per output. */
function reduce(
  v: Codes,
  axesIn: number[] | undefined,
  keep: boolean,
  noop: boolean,
  what: string,
  init: number,
  fold: (a: number, c: number) => number,
  done: (a: number, count: number) => number,
): Codes {
  const r = v.dims.length;
  const list = axesIn && axesIn.length ? axesIn : noop ? [] : v.dims.map((_, i) => i);
  const axes = new Set(list.map((a) => axisOf(a, r, what)));
  const keptDims = v.dims.map((d, a) => (axes.has(a) ? 1 : d));
  const outSt = stridesOf(keptDims).map((s, a) => (axes.has(a) ? 0 : s));
  const n = numel(keptDims);
  const acc = new Float64Array(n).fill(init);
  const idx = new Int32Array(r);
  let o = 0;
  for (let i = 0; i < v.data.length; i++) {
    acc[o] = fold(acc[o], v.data[i]);
    for (let a = r - 1; a >= 0; a--) {
      idx[a]++;
      o += outSt[a];
      if (idx[a] < v.dims[a]) break;
      o -= outSt[a] * v.dims[a];
      idx[a] = 0;
    }
  }
  const count = v.data.length / Math.max(1, n);
  const res = new Int32Array(n);
  for (let k = 0; k < n; k++) res[k] = done(acc[k], count);
  return codes(keep ? keptDims : v.dims.filter((_, a) => !axes.has(a)), res);
}

export const reduceOps: OpLowering = {
  ops: ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin'],
  lower(n, ctx) {
    const x = n.input[0];
    const out = n.output[0];
    if (!ctx.isCodes(x)) return decline('input is not a float activation');
    const axesOf = intsInput(n, ctx, 1, 'axes');
    if (!axesOf) return decline('axes is a float tensor');
    const keep = attrInt(n, 'keepdims', 1) === 1;
    const noop = attrInt(n, 'noop_with_empty_axes', 0) === 1;
    const gx = ctx.grid(x);
    if (n.opType === 'ReduceMax' || n.opType === 'ReduceMin') {
      const max = n.opType === 'ReduceMax';
      return movement(n, ctx, n.opType, (v, env) =>
        reduce(v as Codes, axesOf(env), keep, noop, n.name, max ? -Infinity : Infinity, max ? Math.max : Math.min, (a) => a),
      );
    }
    const mean = n.opType === 'ReduceMean';
    const go: QuantParams = ctx.target(out);
    ctx.setGrid(out, go);
    const cache = new Map<number, Multipliers>();
    const multFor = (count: number) => {
      let m = cache.get(count);
      if (!m) cache.set(count, (m = new Multipliers([gx.scale / ((mean ? count : 1) * go.scale)], n.name)));
      return m;
    };
    return ctx.step(n, `${n.opType}(integer sum)`, (env: Env) => {
      const z = gx.zeroPoint;
      env.values.set(
        out,
        reduce(
          ctx.codes(env, x),
          axesOf(env),
          keep,
          noop,
          n.name,
          0,
          (a, c) => a + c - z,
          (a, count) => saturate(go.zeroPoint + multFor(count).apply(a), go, env.stats),
        ),
      );
    });
  },
};
