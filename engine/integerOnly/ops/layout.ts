/**
 * Data movement: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Identity, Dropout
 * (inference). Codes keep their grid (a planned output grid of its own gets one rescale); raw
 * tensors (shapes, masks) move the same way. Shape/axes operands may be constants or tensors
 * computed at run time (Shape -> Concat -> Reshape chains).
 */
import { attrInt, attrInts, type NodeProto } from '../../onnx/graph';
import { InputError } from '../../errors';
import type { LowerCtx, OpLowering } from '../context';
import { type Env, type Step, decline } from '../types';
import { type Value, axisOf, broadcastShape, broadcastStrides, gatherStrided, intsOf, numel, transposeData, withDims } from '../values';

/** A step computing `out` from input 0 by `f`, for codes (grid kept) and raw values alike. */
export function movement(n: NodeProto, ctx: LowerCtx, op: string, f: (v: Value, env: Env) => Value): Step[] {
  const x = n.input[0];
  const out = n.output[0];
  const run = (env: Env) => env.values.set(out, f(ctx.value(env, x), env));
  return ctx.isCodes(x) ? ctx.finish(n, op, out, ctx.grid(x), run) : [ctx.step(n, op, run)];
}

/** Integer operand i: a constant, a run-time raw tensor, or an attribute (older opsets). */
export function intsInput(n: NodeProto, ctx: LowerCtx, i: number, attrName?: string): ((env: Env) => number[] | undefined) | null {
  const t = n.input[i];
  if (t) {
    if (ctx.isConst(t)) {
      const v = ctx.constInts(t);
      return () => v;
    }
    if (ctx.isCodes(t)) return null;
    return (env) => intsOf(ctx.value(env, t) as { data: ArrayLike<number | bigint> });
  }
  const a = attrName ? attrInts(n, attrName) : undefined;
  return () => a;
}

function reshapeDims(v: Value, shape: number[], allowZero: boolean, what: string): number[] {
  const dims = shape.map((s, i) => (s === 0 && !allowZero ? v.dims[i] : s));
  const known = dims.reduce((a, b) => (b === -1 ? a : a * b), 1);
  const full = dims.map((d) => (d === -1 ? v.data.length / known : d));
  if (numel(full) !== v.data.length) throw new InputError(`${what}: cannot reshape [${v.dims}] to [${shape}]`);
  return full;
}

function lower(n: NodeProto, ctx: LowerCtx) {
  const op = n.opType;
  switch (op) {
    case 'Identity':
      return movement(n, ctx, op, (v) => v);
    case 'Dropout':
      if (n.output[1]) return decline('Dropout mask output');
      return movement(n, ctx, op, (v) => v);
    case 'Reshape': {
      const shape = intsInput(n, ctx, 1);
      if (!shape) return decline('shape is a float tensor');
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      return movement(n, ctx, op, (v, env) => withDims(v, reshapeDims(v, shape(env)!, allowZero, n.name)));
    }
    case 'Flatten': {
      const axis = attrInt(n, 'axis', 1);
      return movement(n, ctx, op, (v) => {
        const a = axis < 0 ? axis + v.dims.length : axis;
        return withDims(v, [numel(v.dims.slice(0, a)), numel(v.dims.slice(a))]);
      });
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const axesOf = intsInput(n, ctx, 1, 'axes');
      if (!axesOf) return decline('axes is a float tensor');
      return movement(n, ctx, op, (v, env) => {
        const axes = axesOf(env);
        if (op === 'Squeeze') {
          const ax = (axes ?? v.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => axisOf(a, v.dims.length, n.name));
          return withDims(
            v,
            v.dims.filter((_, i) => !ax.includes(i)),
          );
        }
        if (!axes) throw new InputError(`${n.name}: Unsqueeze without axes`);
        const rank = v.dims.length + axes.length;
        const ax = axes.map((a) => axisOf(a, rank, n.name));
        const dims: number[] = [];
        for (let i = 0, k = 0; i < rank; i++) dims.push(ax.includes(i) ? 1 : v.dims[k++]);
        return withDims(v, dims);
      });
    }
    case 'Transpose': {
      const perm = attrInts(n, 'perm');
      return movement(n, ctx, op, (v) => {
        const t = transposeData(v.data, v.dims, perm ?? v.dims.map((_, i) => v.dims.length - 1 - i));
        return { ...v, ...t } as Value;
      });
    }
    case 'Expand': {
      const shape = intsInput(n, ctx, 1);
      if (!shape) return decline('shape is a float tensor');
      return movement(n, ctx, op, (v, env) => {
        const dims = broadcastShape(v.dims, shape(env)!, n.name);
        return { ...v, dims, data: gatherStrided(v.data, dims, broadcastStrides(v.dims, dims)) } as Value;
      });
    }
    default:
      return decline(`${op} is not a layout op`);
  }
}

export const layoutOps: OpLowering = {
  ops: ['Identity', 'Dropout', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Expand'],
  lower,
};
