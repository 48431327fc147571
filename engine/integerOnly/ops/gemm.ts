/**
 * Conv, Gemm, MatMul: integer x integer -> exact int32 accumulation (`engine/integer` kernels:
 * ConvInteger/MatMulInteger semantics, bias added in int32) -> one fixed-point requantization
 * per output channel onto the output's grid. Weights are the plan's codes (`buildQdqModel`:
 * bits, granularity and symmetry of the configuration), biases its int32 codes at S_x * S_w.
 * A layer the plan left in float (excluded, non-constant weight, transA, ...) declines and runs
 * as a float fallback, exactly as the simulated model keeps it in float.
 */
import { attrFloat, attrInt, attrInts, attr, type NodeProto } from '../../onnx/graph';
import type { WeightQuant } from '../../quantize/qdqRewrite';
import type { QuantParams } from '../../quantize/scheme';
import { type AutoPad, convInteger } from '../../integer/conv';
import { gemmInteger, matMulInteger } from '../../integer/matmul';
import type { QuantArray } from '../../integer/types';
import type { LowerCtx, OpLowering } from '../context';
import { Multipliers, sameGrid, saturate, toQuant } from '../fixedPoint';
import { type Decline, type Env, type Step, decline } from '../types';
import { codes, numel } from '../values';

const WIDE = (g: QuantParams) => g.qmin < -32768 || g.qmax > 65535;

/** The input grid an integer layer needs: the plan's (its bias codes were made at that scale). */
function plannedInput(ctx: LowerCtx, t: string): QuantParams | Decline {
  if (!ctx.isCodes(t)) return decline(`input ${t} is not a float activation`);
  const g = ctx.grid(t);
  const p = ctx.planned(t);
  if (!p || !sameGrid(p, g)) return decline(`input ${t} is not on the plan's grid`);
  return g;
}

function weightCodes(w: WeightQuant, what: string): QuantArray {
  const qmin = Math.min(...w.params.map((p) => p.qmin));
  const qmax = Math.max(...w.params.map((p) => p.qmax));
  return toQuant(w.codes, { scale: 1, zeroPoint: 0, qmin, qmax }, what);
}

/** Requantize int32 accumulators; `channelOf(i)` picks the multiplier of element i. */
function requantize(acc: Int32Array, mult: Multipliers, go: QuantParams, channelOf: (i: number) => number, env: Env): Int32Array {
  const res = new Int32Array(acc.length);
  for (let i = 0; i < res.length; i++) res[i] = saturate(go.zeroPoint + mult.apply(acc[i], channelOf(i)), go, env.stats);
  return res;
}

function lowerConv(n: NodeProto, ctx: LowerCtx): Step | Decline {
  const [x, , b] = n.input;
  const out = n.output[0];
  const gx = plannedInput(ctx, x);
  if ('decline' in gx) return gx;
  const w = ctx.weight(n, 1);
  if (!w) return decline("the plan does not quantize this layer's weights");
  if (b && !w.bias) return decline('the bias is not quantized to int32');
  if (w.params.length > 1 && w.axis !== 0) return decline(`per-channel weights on axis ${w.axis}`);
  if (w.dims.length !== 3 && w.dims.length !== 4) return decline('only 1-D and 2-D convolutions are lowered');
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const M = w.dims[0];
  const wq = weightCodes(w, n.name);
  const wZero = w.params.map((p) => p.zeroPoint);
  const bias = w.bias ?? new Int32Array(M);
  const mult = new Multipliers(
    w.params.map((p) => (gx.scale * p.scale) / go.scale),
    n.name,
  );
  const a = attr(n, 'auto_pad');
  const attrs = {
    autoPad: (a ? new TextDecoder().decode(a.s) : 'NOTSET') as AutoPad,
    dilations: attrInts(n, 'dilations'),
    group: attrInt(n, 'group', 1),
    kernelShape: attrInts(n, 'kernel_shape'),
    pads: attrInts(n, 'pads'),
    strides: attrInts(n, 'strides'),
  };
  return ctx.step(n, 'ConvInteger+requantize', (env) => {
    const v = ctx.codes(env, x);
    const acc = convInteger(
      { dims: v.dims, data: toQuant(v.data, gx, n.name) },
      { dims: w.dims, data: wq },
      gx.zeroPoint,
      wZero.length === 1 ? wZero[0] : wZero,
      attrs,
      {},
      bias,
    );
    env.stats.overflow += acc.overflowCount;
    const inner = numel(acc.dims.slice(2));
    const per = w.params.length > 1;
    env.values.set(
      out,
      codes(
        acc.dims,
        requantize(acc.data, mult, go, (i) => (per ? Math.floor(i / inner) % M : 0), env),
      ),
    );
  });
}

function lowerGemm(n: NodeProto, ctx: LowerCtx): Step | Decline {
  const [a, bName, c] = n.input;
  const out = n.output[0];
  if (attrInt(n, 'transA', 0) !== 0) return decline('Gemm with transA is not quantized by the plan');
  const ga = plannedInput(ctx, a);
  if ('decline' in ga) return ga;
  const transB = attrInt(n, 'transB', 0) === 1;
  const alpha = attrFloat(n, 'alpha', 1);
  if (!(alpha > 0)) return decline('Gemm alpha <= 0');
  if (ctx.isConst(bName)) {
    const w = ctx.weight(n, 1);
    if (!w) return decline("the plan does not quantize this layer's weights");
    if (c && !w.bias) return decline('the bias C is not quantized to int32 (non-constant C, or alpha/beta != 1)');
    const chanAxis = transB ? 0 : 1;
    if (w.params.length > 1 && w.axis !== chanAxis) return decline(`per-channel weights on axis ${w.axis} are not the output channels`);
    const go = ctx.target(out);
    ctx.setGrid(out, go);
    const wq = weightCodes(w, n.name);
    const wZero = w.params.map((p) => p.zeroPoint);
    const mult = new Multipliers(
      w.params.map((p) => (alpha * ga.scale * p.scale) / go.scale),
      n.name,
    );
    const per = w.params.length > 1;
    return ctx.step(n, 'GemmInteger+requantize', (env) => {
      const v = ctx.codes(env, a);
      const acc = gemmInteger(
        { dims: v.dims, data: toQuant(v.data, ga, n.name) },
        { dims: w.dims, data: wq },
        { transB, aZeroPoint: ga.zeroPoint, bZeroPoint: wZero.length === 1 ? wZero[0] : wZero, bias: w.bias },
      );
      env.stats.overflow += acc.overflowCount;
      const N = acc.dims[1];
      env.values.set(
        out,
        codes(
          acc.dims,
          requantize(acc.data, mult, go, (i) => (per ? i % N : 0), env),
        ),
      );
    });
  }
  // B is an activation too: both on their planned grids, no bias.
  if (c) return decline('Gemm of two activations with a bias');
  const gb = plannedInput(ctx, bName);
  if ('decline' in gb) return gb;
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const mult = new Multipliers([(alpha * ga.scale * gb.scale) / go.scale], n.name);
  return ctx.step(n, 'GemmInteger+requantize', (env) => {
    const va = ctx.codes(env, a),
      vb = ctx.codes(env, bName);
    const acc = gemmInteger(
      { dims: va.dims, data: toQuant(va.data, ga, n.name) },
      { dims: vb.dims, data: toQuant(vb.data, gb, n.name) },
      { transB, aZeroPoint: ga.zeroPoint, bZeroPoint: gb.zeroPoint },
    );
    env.stats.overflow += acc.overflowCount;
    env.values.set(
      out,
      codes(
        acc.dims,
        requantize(acc.data, mult, go, () => 0, env),
      ),
    );
  });
}

function lowerMatMul(n: NodeProto, ctx: LowerCtx): Step | Decline {
  const [a, b] = n.input;
  const out = n.output[0];
  if (ctx.isConst(a)) return decline('a constant first operand is not lowered');
  const ga = plannedInput(ctx, a);
  if ('decline' in ga) return ga;
  if (WIDE(ga)) return decline('first operand wider than 16 bits');
  if (ctx.isConst(b)) {
    const w = ctx.weight(n, 1);
    if (!w) return decline("the plan does not quantize this layer's weights");
    if (w.dims.length !== 2) return decline('only 2-D constant weights are lowered');
    const [K, N] = w.dims;
    if (w.params.length > 1 && w.axis !== 1) return decline(`per-channel weights on axis ${w.axis}`);
    const go = ctx.target(out);
    ctx.setGrid(out, go);
    const wq = weightCodes(w, n.name);
    const wZero = w.params.map((p) => p.zeroPoint);
    const mult = new Multipliers(
      w.params.map((p) => (ga.scale * p.scale) / go.scale),
      n.name,
    );
    const per = w.params.length > 1;
    return ctx.step(n, 'MatMulInteger+requantize', (env) => {
      const v = ctx.codes(env, a);
      const rows = v.data.length / K;
      if (v.dims[v.dims.length - 1] !== K) throw new RangeError(`${n.name}: inner dimension ${v.dims[v.dims.length - 1]} vs weight ${K}`);
      const acc = gemmInteger(
        { dims: [rows, K], data: toQuant(v.data, ga, n.name) },
        { dims: [K, N], data: wq },
        { aZeroPoint: ga.zeroPoint, bZeroPoint: wZero.length === 1 ? wZero[0] : wZero },
      );
      env.stats.overflow += acc.overflowCount;
      const dims = v.dims.length === 1 ? [N] : [...v.dims.slice(0, -1), N];
      env.values.set(
        out,
        codes(
          dims,
          requantize(acc.data, mult, go, (i) => (per ? i % N : 0), env),
        ),
      );
    });
  }
  const gb = plannedInput(ctx, b);
  if ('decline' in gb) return gb;
  if (WIDE(gb)) return decline('second operand wider than 16 bits');
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const mult = new Multipliers([(ga.scale * gb.scale) / go.scale], n.name);
  return ctx.step(n, 'MatMulInteger+requantize', (env) => {
    const va = ctx.codes(env, a),
      vb = ctx.codes(env, b);
    const acc = matMulInteger(
      { dims: va.dims, data: toQuant(va.data, ga, n.name) },
      { dims: vb.dims, data: toQuant(vb.data, gb, n.name) },
      ga.zeroPoint,
      gb.zeroPoint,
    );
    env.stats.overflow += acc.overflowCount;
    env.values.set(
      out,
      codes(
        acc.dims,
        requantize(acc.data, mult, go, () => 0, env),
      ),
    );
  });
}

export const gemmOps: OpLowering = {
  ops: ['Conv', 'Gemm', 'MatMul'],
  lower(n, ctx) {
    if (n.opType === 'Conv') return lowerConv(n, ctx);
    if (n.opType === 'Gemm') return lowerGemm(n, ctx);
    return lowerMatMul(n, ctx);
  },
};
