/**
 * Run-time values of the integer-only executor and the index arithmetic every data-movement op
 * shares.
 *
 * A float32 activation is held as CODES (Int32Array) on a grid that is fixed at compile time and
 * kept beside the program, never in the value. Anything else (int64 shapes, bool masks, float
 * tensors computed only from shapes and constants) is RAW: its typed array flows untouched.
 */
import type * as ort from 'onnxruntime-node';
import { InputError } from '../errors';

export type RawArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

/** Integer codes of a float tensor; its grid is the program's `gridOf(name)`. */
export interface Codes {
  kind: 'codes';
  dims: number[];
  data: Int32Array;
}

/** A tensor that is not quantized: onnxruntime element type and data. */
export interface Raw {
  kind: 'raw';
  type: ort.Tensor.Type;
  dims: number[];
  data: RawArray;
}

export type Value = Codes | Raw;

export function codes(dims: number[], data: Int32Array): Codes {
  return { kind: 'codes', dims, data };
}

export function raw(type: ort.Tensor.Type, dims: number[], data: RawArray): Raw {
  return { kind: 'raw', type, dims, data };
}

export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A fresh array of the same element type. */
export function allocLike<A extends Int32Array | RawArray>(src: A, n: number): A {
  return new (src.constructor as new (n: number) => A)(n);
}

/** The same value with other dims (data shared: values are never written after they are made). */
export function withDims<V extends Value>(v: V, dims: number[]): V {
  return { ...v, dims };
}

/** Row-major strides. */
export function stridesOf(dims: readonly number[]): number[] {
  const st = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= dims[i];
  }
  return st;
}

/** Normalize a possibly negative axis for a tensor of rank `rank`. */
export function axisOf(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!(a >= 0 && a < rank)) throw new InputError(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** numpy broadcasting of two shapes. */
export function broadcastShape(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new InputError(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Per output axis, the stride of `dims` broadcast onto `out` (0 along broadcast axes). */
export function broadcastStrides(dims: readonly number[], out: readonly number[]): number[] {
  const r = out.length;
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    const ax = r - dims.length + i;
    st[ax] = dims[i] === 1 ? 0 : acc;
    acc *= dims[i];
  }
  return st;
}

/**
 * Walk every index of `outDims` in row-major order, with the matching flat offset in each
 * source whose per-axis strides are given: f(outIndex, offsets).
 */
export function forStrided(outDims: readonly number[], strides: readonly (readonly number[])[], f: (o: number, off: Int32Array | number[]) => void): void {
  const r = outDims.length;
  const n = numel(outDims);
  const k = strides.length;
  const idx = new Int32Array(r);
  const off = new Array<number>(k).fill(0);
  for (let o = 0; o < n; o++) {
    f(o, off);
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      for (let s = 0; s < k; s++) off[s] += strides[s][ax];
      if (idx[ax] < outDims[ax]) break;
      for (let s = 0; s < k; s++) off[s] -= strides[s][ax] * outDims[ax];
      idx[ax] = 0;
    }
  }
}

/** Copy elements: out[o] = src[offset of o under `strides`] (transpose, broadcast, slices). */
export function gatherStrided<A extends Int32Array | RawArray>(src: A, outDims: readonly number[], strides: readonly number[], base = 0): A {
  const out = allocLike(src, numel(outDims));
  const o2 = out as unknown as { [i: number]: number | bigint };
  const s2 = src as unknown as { [i: number]: number | bigint };
  forStrided(outDims, [strides], (o, off) => {
    o2[o] = s2[base + off[0]];
  });
  return out;
}

/** Permute axes. */
export function transposeData<A extends Int32Array | RawArray>(src: A, dims: readonly number[], perm: readonly number[]): { dims: number[]; data: A } {
  const st = stridesOf(dims);
  const outDims = perm.map((p) => dims[p]);
  return {
    dims: outDims,
    data: gatherStrided(
      src,
      outDims,
      perm.map((p) => st[p]),
    ),
  };
}

/** Integer values of a raw tensor (shapes, indices, axes) as numbers. */
export function intsOf(v: Raw | { data: ArrayLike<number | bigint> }): number[] {
  return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
}
