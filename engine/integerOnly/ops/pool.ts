/**
 * Pooling on codes (1-D and 2-D windows, pads, strides, dilations, auto_pad):
 *   MaxPool, GlobalMaxPool   the largest code: exact, on the input's grid;
 *   AveragePool,             the exact integer sum of centred codes, then one fixed-point rescale
 *   GlobalAveragePool        by S_in / (count S_out): the 1/count folds into the multiplier (one
 *                            per distinct count, computed once).
 * ceil_mode declines (float fallback).
 */
import { attr, attrInt, attrInts, type NodeProto } from '../../onnx/graph';
import { type AutoPad, convGeometry } from '../../integer/conv';
import type { QuantParams } from '../../quantize/scheme';
import type { LowerCtx, OpLowering } from '../context';
import { Multipliers, saturate } from '../fixedPoint';
import { type Decline, type Env, type Step, decline } from '../types';
import { type Codes, codes, numel } from '../values';

interface Window {
  kernel: number[];
  strides?: number[];
  dilations?: number[];
  pads?: number[];
  autoPad: AutoPad;
}

/** 1-D or 2-D pooling over codes: `reduce(sum-or-max input, in-bounds taps)` per output. */
function pool(v: Codes, w: Window, what: string, reduce: (vals: number[]) => number): Codes {
  const rank = v.dims.length;
  if (rank !== 3 && rank !== 4) throw new RangeError(`${what}: only 1-D and 2-D pooling, got [${v.dims}]`);
  const [N, C] = v.dims;
  const spatial = v.dims.slice(2);
  const geo = convGeometry(spatial, w.kernel, { autoPad: w.autoPad, strides: w.strides, dilations: w.dilations, pads: w.pads });
  const two = <T>(a: readonly T[], d: T): [T, T] => (rank === 3 ? [d, a[0]] : [a[0], a[1]]);
  const [H, W] = two(spatial, 1);
  const [KH, KW] = two(w.kernel, 1);
  const [SH, SW] = two(geo.strides, 1);
  const [DH, DW] = two(geo.dilations, 1);
  const [PT, PL] = two(geo.pads, 0);
  const [OH, OW] = two(geo.outSpatial, 1);
  const res = new Int32Array(N * C * OH * OW);
  const vals: number[] = [];
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        vals.length = 0;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PT + kh * DH;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PL + kw * DW;
            if (iw >= 0 && iw < W) vals.push(v.data[base + ih * W + iw]);
          }
        }
        res[(nc * OH + oh) * OW + ow] = reduce(vals);
      }
    }
  }
  return codes([N, C, ...geo.outSpatial], res);
}

function windowOf(n: NodeProto): Window | Decline {
  const kernel = attrInts(n, 'kernel_shape');
  if (!kernel || (kernel.length !== 1 && kernel.length !== 2)) return decline('only 1-D and 2-D pooling windows are lowered');
  if (attrInt(n, 'ceil_mode', 0) !== 0) return decline('ceil_mode is not lowered');
  if (n.output.length > 1 && n.output[1]) return decline('MaxPool indices output');
  const a = attr(n, 'auto_pad');
  return {
    kernel,
    strides: attrInts(n, 'strides'),
    dilations: attrInts(n, 'dilations'),
    pads: attrInts(n, 'pads'),
    autoPad: (a ? new TextDecoder().decode(a.s) : 'NOTSET') as AutoPad,
  };
}

/** Multipliers S_in / (count S_out), made once per count. */
function averager(gx: QuantParams, go: QuantParams, what: string): (count: number) => Multipliers {
  const cache = new Map<number, Multipliers>();
  return (count) => {
    let m = cache.get(count);
    if (!m) cache.set(count, (m = new Multipliers([gx.scale / (count * go.scale)], what)));
    return m;
  };
}

function lowerPool(n: NodeProto, ctx: LowerCtx): Step | Step[] | Decline {
  const x = n.input[0];
  const out = n.output[0];
  if (!ctx.isCodes(x)) return decline('input is not a float activation');
  const gx = ctx.grid(x);
  const max = (vals: number[]) => {
    let m = -Infinity;
    for (const c of vals) if (c > m) m = c;
    return m;
  };
  if (n.opType === 'GlobalMaxPool') {
    return ctx.finish(n, n.opType, out, gx, (env) =>
      env.values.set(
        out,
        globalReduce(ctx.codes(env, x), (vals) => max(vals)),
      ),
    );
  }
  if (n.opType === 'GlobalAveragePool') {
    const go = ctx.target(out);
    ctx.setGrid(out, go);
    const mult = averager(gx, go, n.name);
    return ctx.step(n, n.opType, (env: Env) => {
      env.values.set(
        out,
        globalReduce(ctx.codes(env, x), (vals) => {
          let s = 0;
          for (const c of vals) s += c - gx.zeroPoint;
          return saturate(go.zeroPoint + mult(vals.length).apply(s), go, env.stats);
        }),
      );
    });
  }
  const w = windowOf(n);
  if ('decline' in w) return w;
  if (n.opType === 'MaxPool') {
    if (attrInt(n, 'storage_order', 0) !== 0) return decline('storage_order');
    return ctx.finish(n, n.opType, out, gx, (env) => env.values.set(out, pool(ctx.codes(env, x), w, n.name, max)));
  }
  const includePad = attrInt(n, 'count_include_pad', 0) === 1;
  const full = numel(w.kernel);
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const mult = averager(gx, go, n.name);
  return ctx.step(n, n.opType, (env) => {
    env.values.set(
      out,
      pool(ctx.codes(env, x), w, n.name, (vals) => {
        let s = 0;
        for (const c of vals) s += c - gx.zeroPoint;
        return saturate(go.zeroPoint + mult(includePad ? full : vals.length).apply(s), go, env.stats);
      }),
    );
  });
}

/** Reduce each (n, c) plane of an N-D tensor to one code. */
function globalReduce(v: Codes, reduce: (vals: number[]) => number): Codes {
  const [N, C] = v.dims;
  const inner = numel(v.dims.slice(2));
  const res = new Int32Array(N * C);
  const vals: number[] = new Array(inner);
  for (let i = 0; i < N * C; i++) {
    for (let k = 0; k < inner; k++) vals[k] = v.data[i * inner + k];
    res[i] = reduce(vals);
  }
  return codes([N, C, ...v.dims.slice(2).map(() => 1)], res);
}

export const poolOps: OpLowering = {
  ops: ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool'],
  lower: lowerPool,
};
