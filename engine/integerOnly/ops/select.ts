/**
 * Selection: Slice (any steps, negative included; starts/ends/axes/steps as attributes, constants
 * or run-time tensors) and Gather. Codes keep their grid; raw tensors move as they are. Gather
 * from a constant float table (an embedding looked up by token ids) quantizes the table onto the
 * output grid once at compile time and then gathers codes.
 */
import { attrInt } from '../../onnx/graph';
import { InputError } from '../../errors';
import { quantize } from '../../quantize/scheme';
import type { LowerCtx, OpLowering } from '../context';
import { decline } from '../types';
import { type Value, allocLike, axisOf, codes, gatherStrided, intsOf, numel, stridesOf } from '../values';
import { intsInput, movement } from './layout';

/** ONNX Slice of a value (clamping rules of the spec). */
export function sliceValue(v: Value, starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined, what: string): Value {
  const r = v.dims.length;
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => axisOf(a, r, what));
  const st = stridesOf(v.dims);
  const dims = [...v.dims];
  const strides = [...st];
  let base = 0;
  ax.forEach((a, i) => {
    const d = v.dims[a];
    const step = steps?.[i] ?? 1;
    if (step === 0) throw new InputError(`${what}: step 0`);
    let s = starts[i],
      e = ends[i];
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = Math.max(0, Math.min(d, s));
      e = Math.max(0, Math.min(d, e));
    } else {
      s = Math.max(0, Math.min(d - 1, s));
      e = Math.max(-1, Math.min(d - 1, e));
    }
    dims[a] = Math.max(0, Math.ceil((e - s) / step));
    strides[a] = st[a] * step;
    base += s * st[a];
  });
  return { ...v, dims, data: gatherStrided(v.data, dims, strides, base) } as Value;
}

/** ONNX Gather along `axis` (negative indices count from the end). */
export function gatherValue(v: Value, indices: number[], indexDims: number[], axis: number, what: string): Value {
  const a = axisOf(axis, v.dims.length, what);
  const outer = numel(v.dims.slice(0, a));
  const d = v.dims[a];
  const inner = numel(v.dims.slice(a + 1));
  const dims = [...v.dims.slice(0, a), ...indexDims, ...v.dims.slice(a + 1)];
  const out = allocLike(v.data, numel(dims)) as unknown as { [i: number]: number | bigint };
  const src = v.data as unknown as { [i: number]: number | bigint };
  let o = 0;
  for (let p = 0; p < outer; p++) {
    for (const raw of indices) {
      const k = raw < 0 ? raw + d : raw;
      if (!(k >= 0 && k < d)) throw new InputError(`${what}: index ${raw} is out of range for axis of ${d}`);
      const from = (p * d + k) * inner;
      for (let i = 0; i < inner; i++) out[o++] = src[from + i];
    }
  }
  return { ...v, dims, data: out } as unknown as Value;
}

export const selectOps: OpLowering = {
  ops: ['Slice', 'Gather'],
  lower(n, ctx: LowerCtx) {
    const [x, i1] = n.input;
    const out = n.output[0];
    if (n.opType === 'Slice') {
      const old = ctx.opset < 10;
      const starts = intsInput(n, ctx, old ? 99 : 1, 'starts');
      const ends = intsInput(n, ctx, old ? 99 : 2, 'ends');
      const axes = intsInput(n, ctx, old ? 99 : 3, 'axes');
      const steps = intsInput(n, ctx, old ? 99 : 4);
      if (!starts || !ends || !axes || !steps) return decline('slice bounds are float tensors');
      return movement(n, ctx, 'Slice', (v, env) => sliceValue(v, starts(env)!, ends(env)!, axes(env), steps(env), n.name));
    }
    const axis = attrInt(n, 'axis', 0);
    if (ctx.isCodes(i1)) return decline('indices are float');
    const indexOf = (env: Parameters<typeof ctx.value>[0]) => {
      const iv = ctx.value(env, i1);
      return { idx: intsOf(iv as { data: ArrayLike<number | bigint> }), dims: iv.dims };
    };
    if (ctx.isConst(x) && ctx.isCodes(out)) {
      const table = ctx.constFloat(x);
      const go = ctx.target(out);
      ctx.setGrid(out, go);
      const q = codes(
        table.dims,
        Int32Array.from(table.data, (v) => quantize(v, go)),
      );
      return ctx.step(n, 'Gather(quantized table)', (env) => {
        const { idx, dims } = indexOf(env);
        env.values.set(out, gatherValue(q, idx, dims, axis, n.name));
      });
    }
    return movement(n, ctx, 'Gather', (v, env) => {
      const { idx, dims } = indexOf(env);
      return gatherValue(v, idx, dims, axis, n.name);
    });
  },
};
