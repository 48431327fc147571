/**
 * Reading what a quantized model stores: integer codes (int4 packed two per byte, int8, int16,
 * int32), scales (float32 or float16) and zero points, turned into the grids (`QuantParams`) the
 * rest of QuantLens works with. A grid's code range comes from the element type the model stores
 * codes in: that is what QuantizeLinear saturates to, whatever range the quantizer had in mind.
 */
import type { TensorProto } from 'onnx-buf';
import { InputError } from '../errors';
import { floatValues } from '../onnx/weightCheck';
import { DT, readTensor } from '../onnx/tensor';
import type { QuantParams } from '../quantize/scheme';

/** Integer element types that hold quantization codes, with their code range. */
const CODE_RANGE: Partial<Record<DT, { qmin: number; qmax: number }>> = {
  [DT.INT4]: { qmin: -8, qmax: 7 },
  [DT.UINT4]: { qmin: 0, qmax: 15 },
  [DT.INT8]: { qmin: -128, qmax: 127 },
  [DT.UINT8]: { qmin: 0, qmax: 255 },
  [DT.INT16]: { qmin: -32768, qmax: 32767 },
  [DT.UINT16]: { qmin: 0, qmax: 65535 },
  [DT.INT32]: { qmin: -(2 ** 31), qmax: 2 ** 31 - 1 },
};

/** The code range of an integer element type, or undefined for types that do not hold codes. */
export function codeRange(dt: number): { qmin: number; qmax: number } | undefined {
  return CODE_RANGE[dt as DT];
}

export function isCodeType(dt: number): boolean {
  return CODE_RANGE[dt as DT] !== undefined;
}

export function typeName(dt: number): string {
  return DT[dt as DT]?.toLowerCase() ?? `type ${dt}`;
}

/** int4/uint4 hold two codes per byte, low nibble first (ONNX spec). */
function unpackInt4(raw: Uint8Array, n: number, signed: boolean): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const nib = (raw[i >> 1] >> ((i & 1) * 4)) & 0x0f;
    out[i] = signed && nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

/** A constant's integer codes; `what` names it in errors. */
export function readCodes(t: TensorProto, what: string): Int32Array {
  const n = t.dims.reduce((a, d) => a * Number(d), 1);
  if (t.dataType === DT.INT4 || t.dataType === DT.UINT4) {
    if (t.rawData.length < Math.ceil(n / 2)) throw new InputError(`${what}: holds ${t.rawData.length} bytes for ${n} packed 4-bit codes`);
    return unpackInt4(t.rawData, n, t.dataType === DT.INT4);
  }
  if (!isCodeType(t.dataType)) throw new InputError(`${what}: element type ${typeName(t.dataType)} does not hold quantization codes`);
  const h = readTensor(t, '');
  return h.data instanceof Int32Array ? h.data : Int32Array.from(h.data as ArrayLike<number>);
}

/** A constant's float values (float32, float16, bfloat16, double); `what` names it in errors. */
export function readFloats(t: TensorProto, what: string): Float64Array {
  const v = floatValues(t);
  if (!v) throw new InputError(`${what}: expected a float tensor, got ${typeName(t.dataType)}`);
  return Float64Array.from(v);
}

/**
 * Grids from a scale tensor and a zero-point tensor (either may be per channel). Scales must be
 * positive and finite; a zero point outside its type's range is malformed.
 */
export function gridsFrom(scale: TensorProto, zeroPoint: TensorProto | undefined, codeType: number, what: string): QuantParams[] {
  const range = codeRange(codeType);
  if (!range) throw new InputError(`${what}: codes of type ${typeName(codeType)} are not a quantization grid`);
  const s = readFloats(scale, `${what}: scale ${scale.name}`);
  const z = zeroPoint ? readCodes(zeroPoint, `${what}: zero point ${zeroPoint.name}`) : new Int32Array(s.length);
  if (z.length !== s.length && z.length !== 1 && s.length !== 1) {
    throw new InputError(`${what}: ${s.length} scales but ${z.length} zero points`);
  }
  const n = Math.max(s.length, z.length);
  if (n === 0) throw new InputError(`${what}: the scale ${scale.name} is empty`);
  return Array.from({ length: n }, (_, i) => {
    const scaleI = Math.fround(s[s.length === 1 ? 0 : i]);
    const zp = z[z.length === 1 ? 0 : i];
    if (!(scaleI > 0) || !Number.isFinite(scaleI)) throw new InputError(`${what}: scale ${scaleI} of ${scale.name} is not a positive finite number`);
    if (zp < range.qmin || zp > range.qmax) throw new InputError(`${what}: zero point ${zp} lies outside ${typeName(codeType)}`);
    return { scale: scaleI, zeroPoint: zp, ...range };
  });
}

/** Same grid: the same scale (as float32), zero point and code range. */
export function sameGrid(a: QuantParams, b: QuantParams): boolean {
  return a.scale === b.scale && a.zeroPoint === b.zeroPoint && a.qmin === b.qmin && a.qmax === b.qmax;
}

/** Real value codes stand for, per channel along `axis` of `dims` (axis null: one grid). */
export function dequantize(codes: Int32Array, dims: readonly number[], params: readonly QuantParams[], axis: number | null): Float32Array {
  const out = new Float32Array(codes.length);
  const channels = axis === null || params.length === 1 ? 1 : dims[axis];
  const inner = axis === null || params.length === 1 ? codes.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let i = 0; i < codes.length; i++) {
    const p = params[channels === 1 ? 0 : Math.floor(i / inner) % channels];
    out[i] = (codes[i] - p.zeroPoint) * p.scale;
  }
  return out;
}

/** The element type whose code range a grid spans (grids read from a file span exactly one). */
export function typeOfGrid(p: Pick<QuantParams, 'qmin' | 'qmax'>): number {
  for (const [dt, r] of Object.entries(CODE_RANGE)) if (r.qmin === p.qmin && r.qmax === p.qmax) return Number(dt);
  return p.qmin < 0 ? DT.INT8 : DT.UINT8;
}

/**
 * Blocked dequantization (DequantizeLinear with block_size, opset 21): along `axis`, every
 * `block` consecutive codes share one scale and zero point; scales have the codes' shape with
 * that axis divided (rounded up) by the block size.
 */
export function dequantizeBlocked(
  codes: Int32Array,
  dims: readonly number[],
  scales: ArrayLike<number>,
  zeroPoints: ArrayLike<number> | null,
  axis: number,
  block: number,
): Float32Array {
  const out = new Float32Array(codes.length);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const along = dims[axis];
  const blocks = Math.ceil(along / block);
  for (let i = 0; i < codes.length; i++) {
    const outer = Math.floor(i / (inner * along));
    const k = Math.floor(i / inner) % along;
    const j = i % inner;
    const s = (outer * blocks + Math.floor(k / block)) * inner + j;
    out[i] = (codes[i] - (zeroPoints ? zeroPoints[s] : 0)) * Math.fround(scales[s]);
  }
  return out;
}
