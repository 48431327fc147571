/**
 * The float <-> integer boundary ops, exactly as ONNX defines them (float32 arithmetic, the same
 * operation order as onnxruntime's CPU kernels):
 *   QuantizeLinear:   y = saturate(round_half_even(x / scale) + zero_point)   (x / scale in float32)
 *   DequantizeLinear: y = float32(x - zero_point) * scale                      (product in float32)
 *   DynamicQuantizeLinear: uint8, scale and zero point from the data's range extended to 0.
 * Float32 steps are modelled with Math.fround: a double result of one +, -, *, / on float32
 * operands rounded once to float32 equals the float32 operation (double has > 2*24+2 bits).
 * The boundary ops are float by definition; the integer kernels never call them.
 */
import { roundHalfEven } from '../quantize/rounding';
import {
  allocQuant,
  elementCount,
  expandParam,
  type FloatTensor,
  InputError,
  type IntArray,
  type IntTensor,
  type QuantArray,
  type QuantType,
  QRANGE,
  quantTypeOf,
} from './types';

/** Per-tensor (1 value) or per-axis quantization parameters laid out for the loops below. */
interface AxisLayout {
  outer: number;
  channels: number;
  inner: number;
  scale: Float64Array;
  zeroPoint: Float64Array;
}

function axisLayout(dims: readonly number[], scale: ArrayLike<number>, zeroPoint: ArrayLike<number> | undefined, axis: number, what: string): AxisLayout {
  const n = elementCount(dims);
  if (scale.length === 0) throw new InputError(`${what}: empty scale`);
  if (zeroPoint !== undefined && zeroPoint.length !== scale.length) {
    throw new InputError(`${what}: scale has ${scale.length} values but zero point ${zeroPoint.length}`);
  }
  if (scale.length === 1) {
    // Per tensor (a scalar or a 1-element vector, as onnxruntime treats it).
    return { outer: 1, channels: 1, inner: n, scale: Float64Array.of(Math.fround(scale[0])), zeroPoint: expandParam(zeroPoint, 1, what) };
  }
  const rank = dims.length;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax < 0 || ax >= rank) throw new InputError(`${what}: axis ${axis} out of range for rank ${rank}`);
  const channels = dims[ax];
  if (scale.length !== channels) throw new InputError(`${what}: ${scale.length} scales for axis ${ax} of size ${channels}`);
  const s = new Float64Array(channels);
  for (let c = 0; c < channels; c++) s[c] = Math.fround(scale[c]);
  return {
    outer: elementCount(dims.slice(0, ax)),
    channels,
    inner: elementCount(dims.slice(ax + 1)),
    scale: s,
    zeroPoint: expandParam(zeroPoint, channels, what),
  };
}

function checkZeroPoints(zp: Float64Array, type: QuantType | 'int32', what: string): void {
  const [lo, hi] = type === 'int32' ? [-2147483648, 2147483647] : QRANGE[type];
  for (const v of zp) if (!Number.isInteger(v) || v < lo || v > hi) throw new InputError(`${what}: zero point ${v} is not a ${type} value`);
}

/**
 * ONNX QuantizeLinear (per tensor or per axis; int8/uint8/int16/uint16 outputs). NaN inputs,
 * which ONNX leaves undefined, store as 0 (the typed-array conversion, like numpy's cast).
 */
export function quantizeLinear(
  x: FloatTensor,
  scale: ArrayLike<number>,
  zeroPoint: ArrayLike<number> | undefined,
  outType: QuantType,
  axis = 1,
): IntTensor<QuantArray> {
  const what = 'QuantizeLinear';
  const L = axisLayout(x.dims, scale, zeroPoint, axis, what);
  checkZeroPoints(L.zeroPoint, outType, what);
  const [qmin, qmax] = QRANGE[outType];
  const out = allocQuant(outType, x.data.length);
  const xd = x.data;
  let i = 0;
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < L.channels; c++) {
      const s = L.scale[c],
        z = L.zeroPoint[c];
      for (const end = i + L.inner; i < end; i++) {
        const v = roundHalfEven(Math.fround(xd[i] / s)) + z;
        out[i] = v < qmin ? qmin : v > qmax ? qmax : v;
      }
    }
  }
  return { dims: [...x.dims], data: out };
}

/**
 * ONNX DequantizeLinear (per tensor or per axis). The integer difference x - zero_point is exact;
 * converting it to float32 rounds only for int32 inputs above 2^24, as onnxruntime's
 * static_cast<float>(x - zp) does.
 */
export function dequantizeLinear(x: IntTensor<IntArray>, scale: ArrayLike<number>, zeroPoint: ArrayLike<number> | undefined, axis = 1): FloatTensor {
  const what = 'DequantizeLinear';
  const L = axisLayout(x.dims, scale, zeroPoint, axis, what);
  const type = quantTypeOf(x.data);
  checkZeroPoints(L.zeroPoint, type, what);
  if (type === 'int32' && L.zeroPoint.some((z) => z !== 0)) throw new InputError(`${what}: int32 input requires a zero point of 0`);
  const out = new Float32Array(x.data.length);
  const xd = x.data;
  let i = 0;
  for (let o = 0; o < L.outer; o++) {
    for (let c = 0; c < L.channels; c++) {
      const s = L.scale[c],
        z = L.zeroPoint[c];
      for (const end = i + L.inner; i < end; i++) out[i] = Math.fround(xd[i] - z) * s; // the store rounds to float32
    }
  }
  return { dims: [...x.dims], data: out };
}

export interface DynamicQuantized {
  y: IntTensor<Uint8Array>;
  /** float32 value */
  scale: number;
  zeroPoint: number;
}

/**
 * ONNX DynamicQuantizeLinear (uint8):
 *   x_min = min(0, min(x)), x_max = max(0, max(x))           (the range always contains 0)
 *   scale = (x_max - x_min) / 255                             (float32)
 *   zero_point = round_half_even(saturate(0 - x_min / scale)) (saturate to [0, 255] first)
 *   y = saturate(round_half_even(x / scale) + zero_point)
 * ONNX leaves an all-zero x (scale 0, 0/0) undefined; like onnxruntime we then use scale 1, so
 * y is all zero points (0) instead of NaN-derived codes.
 */
export function dynamicQuantizeLinear(x: FloatTensor): DynamicQuantized {
  const xd = x.data;
  let lo = 0,
    hi = 0;
  for (let i = 0; i < xd.length; i++) {
    const v = xd[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi === lo ? 1 : Math.fround(Math.fround(hi - lo) / 255);
  const zpf = Math.fround(0 - Math.fround(lo / scale));
  const zeroPoint = roundHalfEven(zpf < 0 ? 0 : zpf > 255 ? 255 : zpf);
  const q = quantizeLinear(x, [scale], [zeroPoint], 'uint8') as IntTensor<Uint8Array>;
  return { y: q, scale, zeroPoint };
}
