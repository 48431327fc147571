/**
 * Add, Sub, Mul, Div with numpy broadcasting.
 *
 *   x * c, x / c (c a positive scalar constant)   the codes do not change, only the grid's scale
 *                                                 (attention's 1/sqrt(d), hard-swish's /6): exact;
 *   x + y, x - y     TFLite's scheme: each operand rescaled by a fixed-point multiplier (< 1) onto a
 *                    common fine grid of 2 max(S_x, S_y) / 2^L (L <= 20, as large as int32 allows),
 *                    summed, then one fixed-point rescale onto the output grid. A constant operand
 *                    (bias, positional embedding) is put on the fine grid directly at compile time;
 *   x * y            the exact product of centred codes, one rescale by S_x S_y / S_out (the
 *                    product of two 16-bit codes needs 33 bits: an int64 intermediate);
 *   x * C, x / C     a constant tensor (or a scalar <= 0) is quantized symmetric on 16 bits
 *                    (1/C for Div) and multiplied as above.
 * Division by an activation, or an operand that is not an activation or constant, declines.
 */
import type { NodeProto } from '../../onnx/graph';
import type { QuantParams } from '../../quantize/scheme';
import type { LowerCtx, OpLowering } from '../context';
import { Multipliers, centredBound, saturate } from '../fixedPoint';
import { type Decline, type Step, decline } from '../types';
import { broadcastShape, broadcastStrides, codes, forStrided, numel } from '../values';

/** An operand: run-time codes on a grid, or a constant already on the operation's integer grid. */
interface Operand {
  name: string;
  grid?: QuantParams;
  constDims?: number[];
  constInt?: Float64Array;
}

function isPositiveScalar(ctx: LowerCtx, t: string): number | undefined {
  const c = ctx.scalar(t);
  return c !== undefined && c > 0 && Number.isFinite(c) ? c : undefined;
}

/** x * c or x / c with c > 0: the same codes on a rescaled grid. */
function lowerScalar(n: NodeProto, ctx: LowerCtx): Step[] | Decline | undefined {
  const [a, b] = n.input;
  let x: string, f: number;
  const cb = isPositiveScalar(ctx, b);
  if (cb !== undefined && ctx.isCodes(a)) {
    x = a;
    f = n.opType === 'Div' ? 1 / cb : cb;
  } else if (n.opType === 'Mul' && ctx.isCodes(b) && isPositiveScalar(ctx, a) !== undefined) {
    x = b;
    f = isPositiveScalar(ctx, a)!;
  } else return undefined;
  const g = ctx.grid(x);
  const out = n.output[0];
  return ctx.finish(n, `${n.opType}(scalar, folded into the scale)`, out, { ...g, scale: g.scale * f }, (env) => {
    env.values.set(out, ctx.codes(env, x));
  });
}

/** Both operands on a common fine grid, added, rescaled once. */
function lowerAddSub(n: NodeProto, ctx: LowerCtx, operands: Operand[], constF: ({ dims: number[]; data: Float32Array } | null)[]): Step {
  const out = n.output[0];
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const grids = operands.flatMap((o) => (o.grid ? [o.grid] : []));
  const twiceMax = 2 * Math.max(...grids.map((g) => g.scale));
  // Largest L <= 20 keeping |fine A| + |fine B| below 2^31.
  const boundAt = (L: number) =>
    operands.reduce((s, o, k) => {
      if (o.grid) return s + centredBound(o.grid) * 2 ** L * (o.grid.scale / twiceMax);
      let m = 0;
      for (const v of constF[k]!.data) m = Math.max(m, Math.abs(v));
      return s + (m * 2 ** L) / twiceMax;
    }, 0);
  let L = 20;
  while (L > 0 && boundAt(L) >= 2 ** 31) L--;
  operands.forEach((o, k) => {
    if (!o.grid) o.constInt = Float64Array.from(constF[k]!.data, (v) => Math.round((v * 2 ** L) / twiceMax));
  });
  // (q - z) 2^L S / (2 max S) as ONE multiplier: the same mantissa as S / (2 max S) with the
  // shift raised by L, so the product stays small enough for the exact fast path.
  const mIn = operands.map((o) => new Multipliers([o.grid ? (o.grid.scale / twiceMax) * 2 ** L : 0], n.name));
  const mOut = new Multipliers([twiceMax / (2 ** L * go.scale)], n.name);
  const sign = n.opType === 'Sub' ? -1 : 1;
  return ctx.step(n, `${n.opType}(rescaled)`, (env) => {
    const vals = operands.map((o) => (o.grid ? ctx.codes(env, o.name) : null));
    const dimsOf = (k: number) => vals[k]?.dims ?? operands[k].constDims!;
    const dims = broadcastShape(dimsOf(0), dimsOf(1), n.name);
    const res = new Int32Array(numel(dims));
    const fine = (k: number, i: number) => {
      const v = vals[k];
      return v ? mIn[k].apply(v.data[i] - operands[k].grid!.zeroPoint) : operands[k].constInt![i];
    };
    forStrided(dims, [broadcastStrides(dimsOf(0), dims), broadcastStrides(dimsOf(1), dims)], (o, off) => {
      res[o] = saturate(go.zeroPoint + mOut.apply(fine(0, off[0]) + sign * fine(1, off[1])), go, env.stats);
    });
    env.values.set(out, codes(dims, res));
  });
}

/** Exact product of centred codes (a constant on a symmetric 16-bit grid), one rescale. */
function lowerMul(n: NodeProto, ctx: LowerCtx, operands: Operand[], constF: ({ dims: number[]; data: Float32Array } | null)[]): Step | Decline {
  const out = n.output[0];
  const scales: number[] = [];
  for (let k = 0; k < 2; k++) {
    const o = operands[k];
    if (o.grid) {
      scales.push(o.grid.scale);
      continue;
    }
    let data = constF[k]!.data;
    if (n.opType === 'Div') {
      if (data.some((v) => v === 0)) return decline('division by a constant holding 0');
      data = data.map((v) => 1 / v);
    }
    let m = 0;
    for (const v of data) m = Math.max(m, Math.abs(v));
    const s = m > 0 ? m / 32767 : 1;
    o.constInt = Float64Array.from(data, (v) => Math.round(v / s));
    scales.push(s);
  }
  const go = ctx.target(out);
  ctx.setGrid(out, go);
  const m = new Multipliers([(scales[0] * scales[1]) / go.scale], n.name);
  return ctx.step(n, `${n.opType}(integer product)`, (env) => {
    const vals = operands.map((o) => (o.grid ? ctx.codes(env, o.name) : null));
    const dimsOf = (k: number) => vals[k]?.dims ?? operands[k].constDims!;
    const dims = broadcastShape(dimsOf(0), dimsOf(1), n.name);
    const res = new Int32Array(numel(dims));
    const centred = (k: number, i: number) => {
      const v = vals[k];
      return v ? v.data[i] - operands[k].grid!.zeroPoint : operands[k].constInt![i];
    };
    forStrided(dims, [broadcastStrides(dimsOf(0), dims), broadcastStrides(dimsOf(1), dims)], (o, off) => {
      res[o] = saturate(go.zeroPoint + m.apply(centred(0, off[0]) * centred(1, off[1])), go, env.stats);
    });
    env.values.set(out, codes(dims, res));
  });
}

export const arithOps: OpLowering = {
  ops: ['Add', 'Sub', 'Mul', 'Div'],
  lower(n, ctx) {
    if (n.opType === 'Mul' || n.opType === 'Div') {
      const s = lowerScalar(n, ctx);
      if (s) return s;
    }
    const operands: Operand[] = [];
    const constF: ({ dims: number[]; data: Float32Array } | null)[] = [];
    for (const t of n.input.slice(0, 2)) {
      if (ctx.isCodes(t)) {
        operands.push({ name: t, grid: ctx.grid(t) });
        constF.push(null);
      } else if (ctx.isConst(t) && ctx.typeOf(t) === 'float32') {
        const c = ctx.constFloat(t);
        operands.push({ name: t, constDims: c.dims });
        constF.push(c);
      } else return decline(`operand ${t} is neither a float activation nor a float constant`);
    }
    if (!operands.some((o) => o.grid)) return decline('both operands are constants');
    if (n.opType === 'Div' && !operands[1].constDims) return decline('division by an activation has no integer form here');
    return n.opType === 'Add' || n.opType === 'Sub' ? lowerAddSub(n, ctx, operands, constF) : lowerMul(n, ctx, operands, constF);
  },
};
