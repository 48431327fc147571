/**
 * Shared types of the integer-only reference executor.
 *
 * Tensors here are plain `{dims, data}` pairs over typed arrays, so a kernel's element type is
 * visible in its signature and the hot loops see one array class each (V8 keeps them monomorphic).
 */
import { InputError } from '../onnx/model';

export { InputError };

/** Storage of quantized values: the element types ONNX quantization ops produce and consume. */
export type QuantArray = Int8Array | Uint8Array | Int16Array | Uint16Array;
/** Quantized values or int32 accumulators. */
export type IntArray = QuantArray | Int32Array;

export type QuantType = 'int8' | 'uint8' | 'int16' | 'uint16';

export interface Tensor<A> {
  dims: number[];
  data: A;
}
export type IntTensor<A extends IntArray = IntArray> = Tensor<A>;
export type FloatTensor = Tensor<Float32Array>;

/** Inclusive value range of each quantized type: the saturation bounds of every requantization. */
export const QRANGE: Readonly<Record<QuantType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
};

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

export function quantTypeOf(a: IntArray): QuantType | 'int32' {
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  return 'int32';
}

/** The quantized type of an operand that must not be an int32 accumulator. */
export function requireQuantType(a: IntArray, what: string): QuantType {
  const t = quantTypeOf(a);
  if (t === 'int32') throw new InputError(`${what}: int32 is not a quantized operand type (int8/uint8/int16/uint16)`);
  return t;
}

export function allocQuant(type: QuantType, n: number): QuantArray {
  switch (type) {
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
      return new Uint8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint16':
      return new Uint16Array(n);
  }
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * What an integer accumulation observed. Counts, not flags, so a report can say how often a layer
 * overflowed, not only that it did.
 */
export interface AccumulatorStats {
  /**
   * Outputs whose exact accumulated value (bias included) lies outside [-2^31, 2^31 - 1]. The
   * stored int32 is that value wrapped modulo 2^32, which is what two's-complement SIMD adds
   * (VPADDD, NEON ADD) produce: with wrapping adds the final int32 is correct exactly when the
   * final sum fits, whatever the partial sums did, so the final sum is the precise criterion.
   */
  overflowCount: number;
  /** Pair sums clamped to int16 by the `u8s8PairwiseSaturation` emulation (0 when it is off). */
  pairSaturationCount: number;
}

export function emptyStats(): AccumulatorStats {
  return { overflowCount: 0, pairSaturationCount: 0 };
}

/** Int32 accumulators of an integer op plus what happened while computing them. */
export interface AccumulatorResult extends AccumulatorStats {
  dims: number[];
  data: Int32Array;
}

export interface AccumulateOptions {
  /**
   * Emulate x86 AVX2 without VNNI (onnxruntime's MLAS U8S8 QGEMM kernel): VPMADDUBSW multiplies
   * uint8 activations by int8 weights and adds each PAIR of adjacent products (reduction indices
   * 2j and 2j+1) with saturation to int16 before VPMADDWD/VPADDD widen them into int32. Only
   * meaningful, and only accepted, when the activation operand is uint8 and the weight int8.
   * Zero points are applied afterwards through exact row/column sums, as MLAS does, so the
   * saturation acts on the RAW stored values.
   *
   * Scope: this models the QGEMM (im2col + GEMM) path. Which kernel onnxruntime actually picks
   * depends on the CPU (VNNI and ARM do not saturate) and on the layer (depthwise convolutions
   * and some symmetric-weight paths use dedicated kernels); the emulation is applied wherever it
   * is requested, so it answers "what would the AVX2 QGEMM kernel produce here".
   */
  u8s8PairwiseSaturation?: boolean;
}

/** A zero point or scale given per tensor (1 value) or per channel; normalized to `n` values. */
export function expandParam(values: ArrayLike<number> | number | undefined, n: number, what: string, dflt = 0): Float64Array {
  const out = new Float64Array(n);
  if (values === undefined) {
    out.fill(dflt);
  } else if (typeof values === 'number') {
    out.fill(values);
  } else if (values.length === 1) {
    out.fill(values[0]);
  } else if (values.length === n) {
    for (let i = 0; i < n; i++) out[i] = values[i];
  } else {
    throw new InputError(`${what} has ${values.length} values; expected ${n === 1 ? '1 (per tensor only)' : `1 (per tensor) or ${n} (per channel)`}`);
  }
  return out;
}

/** Int32 version of `expandParam` for zero points, checked against the operand type's range. */
export function expandZeroPoint(values: ArrayLike<number> | number | undefined, n: number, type: QuantType, what: string): Int32Array {
  const f = expandParam(values, n, what);
  const [lo, hi] = QRANGE[type];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = f[i];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new InputError(`${what} ${v} is not a ${type} value`);
    out[i] = v;
  }
  return out;
}
