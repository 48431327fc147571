/**
 * Integer matrix products: ONNX MatMulInteger (numpy-style batch broadcasting) and a Gemm-style
 * 2-D product with transA/transB and an int32 bias (the integer core of QGemm/FC layers).
 * Both pack their operands and run `accumulateGemm`.
 */
import { accumulateGemm, pairwiseRequested, type PackedGemm } from './accumulate';
import {
  type AccumulateOptions,
  type AccumulatorResult,
  emptyStats,
  expandParam,
  InputError,
  type IntTensor,
  type QuantArray,
  QRANGE,
  requireQuantType,
} from './types';

export type ZeroPointInput = ArrayLike<number> | number | undefined;

/** Batch dimensions broadcast numpy-style, with each output batch's source batch in A and B. */
export interface BatchBroadcast {
  dims: number[];
  count: number;
  aIndex: Int32Array;
  bIndex: Int32Array;
}

export function broadcastBatches(aBatch: readonly number[], bBatch: readonly number[], what: string): BatchBroadcast {
  const rank = Math.max(aBatch.length, bBatch.length);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new InputError(`${what}: batch dimensions [${aBatch}] and [${bBatch}] do not broadcast`);
    }
    dims.push(da === 1 ? db : da);
  }
  const count = dims.reduce((x, y) => x * y, 1);
  const aIndex = new Int32Array(count);
  const bIndex = new Int32Array(count);
  // Row-major strides of each operand's own batch dims, 0 where it is broadcast.
  const strideOf = (own: readonly number[]): number[] => {
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let i = rank - 1; i >= 0; i--) {
      const d = own[own.length - rank + i] ?? 1;
      s[i] = d === 1 ? 0 : acc;
      acc *= d;
    }
    return s;
  };
  const sa = strideOf(aBatch);
  const sb = strideOf(bBatch);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < count; o++) {
    let ia = 0,
      ib = 0;
    for (let i = 0; i < rank; i++) {
      ia += idx[i] * sa[i];
      ib += idx[i] * sb[i];
    }
    aIndex[o] = ia;
    bIndex[o] = ib;
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < dims[i]) break;
      idx[i] = 0;
    }
  }
  return { dims, count, aIndex, bIndex };
}

/**
 * Zero points of a MatMulInteger operand: per tensor (1 value), per row of A / column of B
 * (`perMatrix` values, shared by every batch), or one set per batch matrix of the operand
 * (shape [..., M, 1] for A, [..., 1, N] for B). Returned as batches x perMatrix.
 */
function batchedZeroPoints(zp: ZeroPointInput, perMatrix: number, batches: number, operand: QuantArray, what: string): Int32Array {
  const qt = requireQuantType(operand, what);
  const n = zp === undefined || typeof zp === 'number' ? 1 : zp.length;
  const out = new Int32Array(batches * perMatrix);
  let flat: Float64Array;
  if (n === batches * perMatrix && n !== perMatrix && n !== 1) {
    flat = expandParam(zp, n, what);
  } else {
    const one = expandParam(zp, perMatrix, what);
    flat = new Float64Array(batches * perMatrix);
    for (let bi = 0; bi < batches; bi++) flat.set(one, bi * perMatrix);
  }
  const [lo, hi] = QRANGE[qt];
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new InputError(`${what} ${v} is not a ${qt} value`);
    out[i] = v;
  }
  return out;
}

/**
 * ONNX MatMulInteger: Y = (A - a_zero_point) @ (B - b_zero_point) in int32, with MatMul's shape
 * rules (1-D operands promoted then squeezed, batch dims broadcast). With
 * `u8s8PairwiseSaturation`, A plays MLAS's uint8 activation operand and B its int8 weight.
 */
export function matMulInteger(
  a: IntTensor<QuantArray>,
  b: IntTensor<QuantArray>,
  aZeroPoint?: ZeroPointInput,
  bZeroPoint?: ZeroPointInput,
  opts?: AccumulateOptions,
): AccumulatorResult {
  const what = 'MatMulInteger';
  requireQuantType(a.data, `${what} A`);
  requireQuantType(b.data, `${what} B`);
  if (a.dims.length === 0 || b.dims.length === 0) throw new InputError(`${what}: operands must have rank >= 1`);
  const aDims = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bDims = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const M = aDims[aDims.length - 2],
    K = aDims[aDims.length - 1];
  const Kb = bDims[bDims.length - 2],
    N = bDims[bDims.length - 1];
  if (K !== Kb) throw new InputError(`${what}: inner dimensions differ (A [${a.dims}], B [${b.dims}])`);
  const aBatch = aDims.slice(0, -2),
    bBatch = bDims.slice(0, -2);
  const bc = broadcastBatches(aBatch, bBatch, what);
  const aBatches = aBatch.reduce((x, y) => x * y, 1);
  const bBatches = bBatch.reduce((x, y) => x * y, 1);
  const za = batchedZeroPoints(aZeroPoint, M, aBatches, a.data, `${what} a_zero_point`);
  const zb = batchedZeroPoints(bZeroPoint, N, bBatches, b.data, `${what} b_zero_point`);
  const pairwise = pairwiseRequested(opts, a.data, b.data, what);

  const out = new Int32Array(bc.count * M * N);
  const stats = emptyStats();
  const pa = new Float64Array(M * K);
  const pb = new Float64Array(N * K);
  const p: PackedGemm = { M, N, K, a: pa, b: pb, aZero: za, bZero: zb, bias: null };
  for (let o = 0; o < bc.count; o++) {
    const ai = bc.aIndex[o],
      bi = bc.bIndex[o];
    pa.set(a.data.subarray(ai * M * K, (ai + 1) * M * K));
    const src = b.data,
      bOff = bi * K * N;
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) pb[n * K + k] = src[bOff + k * N + n];
    p.aZero = za.subarray(ai * M, (ai + 1) * M);
    p.bZero = zb.subarray(bi * N, (bi + 1) * N);
    accumulateGemm(p, { out, offset: o * M * N, rowStride: N, colStride: 1 }, pairwise, stats);
  }
  const dims = [...bc.dims];
  if (a.dims.length > 1) dims.push(M);
  if (b.dims.length > 1) dims.push(N);
  return { dims, data: out, ...stats };
}

export interface GemmIntegerParams {
  transA?: boolean;
  transB?: boolean;
  /** Per tensor or per row of op(A) (length M). */
  aZeroPoint?: ZeroPointInput;
  /** Per tensor or per column of op(B) (length N): per-output-channel weights. */
  bZeroPoint?: ZeroPointInput;
  /** Int32 bias, per tensor or per column (length N), added to the exact sum. */
  bias?: ArrayLike<number>;
}

/** Y[M,N] = (op(A) - za) @ (op(B) - zb) + bias in int32, op = optional transpose (ONNX Gemm layout). */
export function gemmInteger(a: IntTensor<QuantArray>, b: IntTensor<QuantArray>, params: GemmIntegerParams = {}, opts?: AccumulateOptions): AccumulatorResult {
  const what = 'GemmInteger';
  if (a.dims.length !== 2 || b.dims.length !== 2) throw new InputError(`${what}: A and B must be 2-D (got [${a.dims}], [${b.dims}])`);
  const qa = requireQuantType(a.data, `${what} A`);
  const qb = requireQuantType(b.data, `${what} B`);
  const [M, K] = params.transA ? [a.dims[1], a.dims[0]] : [a.dims[0], a.dims[1]];
  const [Kb, N] = params.transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (K !== Kb) throw new InputError(`${what}: inner dimensions differ (op(A) is ${M}x${K}, op(B) is ${Kb}x${N})`);
  const pa = new Float64Array(M * K);
  const pb = new Float64Array(N * K);
  const ad = a.data,
    bd = b.data;
  for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) pa[m * K + k] = params.transA ? ad[k * M + m] : ad[m * K + k];
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) pb[n * K + k] = params.transB ? bd[n * K + k] : bd[k * N + n];
  let bias: Int32Array | null = null;
  if (params.bias !== undefined) {
    const f = expandParam(params.bias, N, `${what} bias`);
    bias = new Int32Array(N);
    for (let n = 0; n < N; n++) {
      if (!Number.isInteger(f[n]) || f[n] < -2147483648 || f[n] > 2147483647) throw new InputError(`${what} bias ${f[n]} is not an int32`);
      bias[n] = f[n];
    }
  }
  const p: PackedGemm = {
    M,
    N,
    K,
    a: pa,
    b: pb,
    bias,
    aZero: batchedZeroPoints(params.aZeroPoint, M, 1, a.data, `${what} a_zero_point (${qa})`),
    bZero: batchedZeroPoints(params.bZeroPoint, N, 1, b.data, `${what} b_zero_point (${qb})`),
  };
  const out = new Int32Array(M * N);
  const stats = emptyStats();
  accumulateGemm(p, { out, offset: 0, rowStride: N, colStride: 1 }, pairwiseRequested(opts, a.data, b.data, what), stats);
  return { dims: [M, N], data: out, ...stats };
}
