/**
 * numpy dtypes as they appear in .npy headers ('<f4', '|u1', '>i8'), which of them each model input
 * type accepts, and the conversion of raw little- or big-endian bytes into the typed array the
 * model input takes (f8/f2 -> f4, i4 -> i8 for int64 inputs, ...).
 */
import { float16ToFloat32 } from 'npyjs';
import { InputError } from '../errors';
import { DT } from '../onnx/tensor';

export type InputArray = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array;

export interface NpyDtype {
  /** As written in the header, e.g. '<f4'. */
  descr: string;
  /** Kind and size without byte order, e.g. 'f4'. */
  code: string;
  /** Bytes per element. */
  size: number;
  bigEndian: boolean;
}

const SIZES: Record<string, number> = { b1: 1, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, f2: 2, f4: 4, f8: 8 };
const INTEGER = new Set(['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8']);

/** Parse a header's 'descr'; only plain numeric dtypes are data QuantLens can use. */
export function parseDescr(descr: string, where: string): NpyDtype {
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const size = m ? SIZES[m[2]] : undefined;
  if (!m || size === undefined) {
    throw new InputError(`${where}: dtype '${descr}' is not supported (numeric dtypes only: ${Object.keys(SIZES).join(', ')})`);
  }
  // '=' (native order) is never written by numpy into a file: the writer's machine is unknown.
  if (m[1] === '=' && size > 1) throw new InputError(`${where}: dtype '${descr}' does not say its byte order; save with '<' (little-endian)`);
  if (m[1] === '|' && size > 1) throw new InputError(`${where}: dtype '${descr}' has no byte order but ${size}-byte elements`);
  return { descr, code: m[2], size, bigEndian: m[1] === '>' };
}

/** Signed or unsigned integers of any width (bool excluded). */
export function isIntegerDtype(d: NpyDtype): boolean {
  return INTEGER.has(d.code);
}

type Decoder = (raw: Uint8Array, n: number) => InputArray;

const view =
  <T>(C: new (b: ArrayBufferLike, o: number, n: number) => T): ((raw: Uint8Array, n: number) => T) =>
  (raw, n) =>
    new C(raw.buffer, raw.byteOffset, n);

/** Per model input type: the dtypes it accepts and how each becomes the input's typed array. */
const DECODERS: Partial<Record<DT, Record<string, Decoder>>> = {
  [DT.FLOAT]: {
    f4: view(Float32Array),
    f8: (raw, n) => Float32Array.from(view(Float64Array)(raw, n)),
    f2: (raw, n) => {
      const h = view(Uint16Array)(raw, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = float16ToFloat32(h[i]);
      return out;
    },
  },
  [DT.INT64]: {
    i8: view(BigInt64Array),
    i4: (raw, n) => BigInt64Array.from(view(Int32Array)(raw, n), (v) => BigInt(v)),
  },
  [DT.INT32]: { i4: view(Int32Array) },
  [DT.UINT8]: { u1: view(Uint8Array) },
  [DT.INT8]: { i1: view(Int8Array) },
};

/** Refuse data whose dtype the model input cannot take, naming both. */
export function checkCompatible(dtype: NpyDtype, want: DT, where: string, input: string): void {
  const table = DECODERS[want];
  if (!table) throw new InputError(`${where}: model input "${input}" has type ${DT[want] ?? want}, which QuantLens cannot feed from data files`);
  if (!table[dtype.code]) {
    throw new InputError(
      `${where}: dtype '${dtype.descr}' does not fit model input "${input}" of type ${DT[want]} (accepted: ${Object.keys(table).join(', ')})`,
    );
  }
}

/**
 * `raw` (a fresh array the caller gives up: it may be byte-swapped in place) holding `n` elements
 * of `dtype`, as the typed array of model input type `want` (checked with checkCompatible).
 */
export function decode(raw: Uint8Array, dtype: NpyDtype, want: DT): InputArray {
  const n = raw.length / dtype.size;
  let bytes = raw.byteOffset % dtype.size === 0 ? raw : raw.slice();
  if (dtype.bigEndian) bytes = swapBytes(bytes, dtype.size);
  return DECODERS[want]![dtype.code](bytes, n);
}

/** Integer values of `raw` (an integer dtype): numbers, or bigints for 8-byte elements. */
export function integers(raw: Uint8Array, dtype: NpyDtype): ArrayLike<number | bigint> {
  let bytes = raw.byteOffset % dtype.size === 0 ? raw : raw.slice();
  if (dtype.bigEndian) bytes = swapBytes(bytes, dtype.size);
  const n = bytes.length / dtype.size;
  const C = { i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array, i4: Int32Array, u4: Uint32Array, i8: BigInt64Array, u8: BigUint64Array }[
    dtype.code
  ];
  if (!C) throw new Error(`not an integer dtype: ${dtype.descr}`);
  return new C(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
}

/** Reverse the bytes of each `size`-byte element, in place. */
function swapBytes(b: Uint8Array, size: number): Uint8Array {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
  return b;
}

/** Index of the first NaN or infinite value, or -1. */
export function firstNonFinite(a: Float32Array | Float64Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}
