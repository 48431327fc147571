/**
 * Shape arithmetic on raw (non-activation) tensors, computed at run time from the batch's real
 * dims: Shape, Size, ConstantOfShape, and Cast between integer, bool and float types. A Cast of
 * an activation to float32 is the identity on its codes; any other Cast of an activation
 * declines (float fallback).
 */
import type * as ort from 'onnxruntime-node';
import { attr, attrInt } from '../../onnx/graph';
import { DT, readTensor } from '../../onnx/tensor';
import { ORT_TYPE_OF_DT, type OpLowering } from '../context';
import { decline } from '../types';
import { type RawArray, numel, raw } from '../values';
import { movement, intsInput } from './layout';

const ARRAY: Partial<Record<ort.Tensor.Type, new (n: number) => RawArray>> = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  bool: Uint8Array,
};

/** Element conversion with onnxruntime's static_cast semantics (floats truncate toward zero). */
export function castArray(src: ArrayLike<number | bigint>, to: ort.Tensor.Type): RawArray {
  const C = ARRAY[to];
  if (!C) throw new RangeError(`Cast to ${to} is not supported`);
  const out = new C(src.length);
  const o = out as unknown as { [i: number]: number | bigint };
  const isFloat = to === 'float32' || to === 'float64';
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (to === 'bool') o[i] = Number(v) !== 0 ? 1 : 0;
    else if (to === 'int64') o[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
    else o[i] = isFloat ? Number(v) : typeof v === 'bigint' ? Number(BigInt.asIntN(32, v)) : Math.trunc(v);
  }
  return out;
}

export const shapeOps: OpLowering = {
  ops: ['Shape', 'Size', 'ConstantOfShape', 'Cast'],
  lower(n, ctx) {
    const x = n.input[0];
    const out = n.output[0];
    switch (n.opType) {
      case 'Shape': {
        const start = attrInt(n, 'start', 0);
        const endAttr = attr(n, 'end');
        return ctx.step(n, 'Shape', (env) => {
          const dims = ctx.value(env, x).dims;
          const r = dims.length;
          const clampAx = (a: number) => Math.max(0, Math.min(r, a < 0 ? a + r : a));
          const sel = dims.slice(clampAx(start), endAttr ? clampAx(Number(endAttr.i)) : r);
          env.values.set(out, raw('int64', [sel.length], BigInt64Array.from(sel, BigInt)));
        });
      }
      case 'Size':
        return ctx.step(n, 'Size', (env) => env.values.set(out, raw('int64', [], BigInt64Array.of(BigInt(numel(ctx.value(env, x).dims))))));
      case 'ConstantOfShape': {
        const shape = intsInput(n, ctx, 0);
        if (!shape || ctx.isCodes(out)) return decline('shape is a float tensor');
        const t = attr(n, 'value')?.t;
        const fill = t ? readTensor(t, ctx.spec.dir) : { dataType: DT.FLOAT, data: Float32Array.of(0) };
        const type = ORT_TYPE_OF_DT[fill.dataType as DT];
        if (!type) return decline(`value of type ${DT[fill.dataType as DT]}`);
        return ctx.step(n, 'ConstantOfShape', (env) => {
          const dims = shape(env)!;
          const data = castArray(new Array(numel(dims)).fill(fill.data[0]), type);
          env.values.set(out, raw(type, dims, data));
        });
      }
      default: {
        const to = ORT_TYPE_OF_DT[attrInt(n, 'to', 0) as DT];
        if (!to) return decline('Cast to an unsupported type');
        if (ctx.isCodes(x))
          return to === 'float32' ? movement(n, ctx, 'Cast(float32: identity)', (v) => v) : decline('Cast of an activation to a non-float type');
        return ctx.step(n, `Cast(${to})`, (env) => {
          const v = ctx.value(env, x);
          env.values.set(out, raw(to, v.dims, castArray(v.data as ArrayLike<number | bigint>, to)));
        });
      }
    }
  },
};
