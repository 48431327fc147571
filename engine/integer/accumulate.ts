/**
 * The one integer multiply-accumulate loop every integer op (ConvInteger, MatMulInteger, Gemm,
 * QLinearConv, QLinearMatMul) funnels into, in the shape MLAS's QGEMM uses:
 *
 *   C[m][n] = sum_k (A[m][k] - za[m]) * (B[k][n] - zb[n]) + bias[n]
 *           = sum_k A*B  - zb[n]*rowSum[m] - za[m]*colSum[n] + K*za[m]*zb[n] + bias[n]
 *
 * The raw product sum is accumulated first and the zero points enter through row/column sums,
 * exactly as MLAS does; for exact arithmetic the two forms are equal, and it is the raw sum that
 * the VPMADDUBSW emulation must saturate (the hardware sees stored codes, not code - zero point).
 *
 * Arithmetic: JS has no int64, and BigInt would allocate per element. Sums are carried in
 * doubles holding exact integers: `checkExactness` proves before the loop that no intermediate
 * can reach 2^53, so every add and multiply is exact (integer arithmetic, no rounding ever).
 * That exact sum is then compared with the int32 range (overflow count) and stored in an
 * Int32Array, whose ToInt32 conversion wraps it modulo 2^32 like two's-complement hardware.
 */
import { type AccumulateOptions, type AccumulatorStats, type IntArray, INT32_MAX, INT32_MIN, InputError, quantTypeOf } from './types';

/**
 * A GEMM problem with both operands packed K-contiguous: row m of A at a[m*K ...], column n of
 * B at b[n*K ...]. Packing copies each operand once (O(MK + NK), small next to O(MNK)) and lets
 * the inner loop read two arrays sequentially whatever the source layout (NCHW im2col,
 * transposed Gemm operands, broadcast batches). The codes are packed as doubles, the type the
 * sums are carried in (module comment), so the loop converts nothing.
 */
export interface PackedGemm {
  M: number;
  N: number;
  K: number;
  /** M*K raw stored codes (zero point not subtracted). */
  a: Float64Array;
  /** N*K raw stored codes, column-major (B transposed). */
  b: Float64Array;
  /** Zero point of each row of A (length M). */
  aZero: Int32Array;
  /** Zero point of each column of B (length N). */
  bZero: Int32Array;
  /** Int32 bias added to every row (length N), or null. */
  bias: Int32Array | null;
}

/** Where C[m][n] goes: out[outOffset + m*rowStride + n*colStride]. */
export interface OutputPlacement {
  out: Int32Array;
  offset: number;
  rowStride: number;
  colStride: number;
}

const EXACT_LIMIT = 2 ** 53;

function maxAbs(a: Int32Array | Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]); // branch-free: a ternary mispredicts on random signs
    if (v > m) m = v;
  }
  return m;
}

/** Refuse problems whose sums could leave the range where doubles represent integers exactly. */
function checkExactness(p: PackedGemm): void {
  const am = maxAbs(p.a),
    bm = maxAbs(p.b),
    zam = maxAbs(p.aZero),
    zbm = maxAbs(p.bZero);
  const biasm = p.bias ? maxAbs(p.bias) : 0;
  // Largest magnitude any partial sum or correction term can take.
  const bound = p.K * (am * bm + zbm * am + zam * bm + zam * zbm) + biasm;
  if (!(bound < EXACT_LIMIT)) {
    throw new InputError(`integer accumulation with K=${p.K} and operands up to ${am}/${bm} could exceed 2^53; not computed exactly`);
  }
}

/**
 * C = A*B (see the module comment) for every m, n; adds overflow and saturation counts to `stats`.
 * `pairwise` selects the VPMADDUBSW emulation; the caller guarantees A holds uint8 codes and B
 * int8 codes in that case (it is meaningless for other types).
 */
export function accumulateGemm(p: PackedGemm, place: OutputPlacement, pairwise: boolean, stats: AccumulatorStats): void {
  const { M, N, K, a, b, aZero, bZero, bias } = p;
  checkExactness(p);
  const rowSum = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let s = 0;
    const base = m * K;
    for (let k = 0; k < K; k++) s += a[base + k];
    rowSum[m] = s;
  }
  const colSum = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    const base = n * K;
    for (let k = 0; k < K; k++) s += b[base + k];
    colSum[n] = s;
  }
  const { out, offset, rowStride, colStride } = place;
  let overflow = 0;
  let saturated = 0;
  const kEven = K & ~1;
  /** The raw sum of C[m][n] with the zero points and bias, counted and stored. */
  const store = (m: number, n: number, raw: number, za: number, rs: number) => {
    const zb = bZero[n];
    let s = raw + K * za * zb - zb * rs - za * colSum[n];
    if (bias !== null) s += bias[n];
    if (s > INT32_MAX || s < INT32_MIN) overflow++;
    out[offset + m * rowStride + n * colStride] = s; // ToInt32: wraps modulo 2^32
  };
  // Four columns of B at a time: each element of A's row is read once for four sums kept in
  // registers. With the packing as doubles, the bench's 3x3 QLinearConv (271M multiply-adds) runs
  // in 660-780 ms instead of 1,020-1,110 ms.
  const n4 = N & ~3;
  for (let m = 0; m < M; m++) {
    const aBase = m * K;
    const za = aZero[m];
    const rs = rowSum[m];
    let n = 0;
    for (; n < n4; n += 4) {
      const b0 = n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      if (pairwise) {
        // VPMADDUBSW: u8*s8 + u8*s8 of reduction indices (2j, 2j+1), saturated to int16.
        for (let k = 0; k < kEven; k += 2) {
          const x0 = a[aBase + k];
          const x1 = a[aBase + k + 1];
          const p0 = x0 * b[b0 + k] + x1 * b[b0 + k + 1];
          const p1 = x0 * b[b1 + k] + x1 * b[b1 + k + 1];
          const p2 = x0 * b[b2 + k] + x1 * b[b2 + k + 1];
          const p3 = x0 * b[b3 + k] + x1 * b[b3 + k + 1];
          s0 += p0 > 32767 ? 32767 : p0 < -32768 ? -32768 : p0;
          s1 += p1 > 32767 ? 32767 : p1 < -32768 ? -32768 : p1;
          s2 += p2 > 32767 ? 32767 : p2 < -32768 ? -32768 : p2;
          s3 += p3 > 32767 ? 32767 : p3 < -32768 ? -32768 : p3;
          if (p0 > 32767 || p0 < -32768) saturated++;
          if (p1 > 32767 || p1 < -32768) saturated++;
          if (p2 > 32767 || p2 < -32768) saturated++;
          if (p3 > 32767 || p3 < -32768) saturated++;
        }
        // MLAS pads K with zeros; a single u8*s8 product is within [-32640, 32385] and never saturates.
        if (kEven !== K) {
          const x = a[aBase + kEven];
          s0 += x * b[b0 + kEven];
          s1 += x * b[b1 + kEven];
          s2 += x * b[b2 + kEven];
          s3 += x * b[b3 + kEven];
        }
      } else {
        for (let k = 0; k < K; k++) {
          const x = a[aBase + k];
          s0 += x * b[b0 + k];
          s1 += x * b[b1 + k];
          s2 += x * b[b2 + k];
          s3 += x * b[b3 + k];
        }
      }
      store(m, n, s0, za, rs);
      store(m, n + 1, s1, za, rs);
      store(m, n + 2, s2, za, rs);
      store(m, n + 3, s3, za, rs);
    }
    // The last N mod 4 columns one at a time (a depthwise convolution has a single one).
    for (; n < N; n++) {
      const b0 = n * K;
      let s = 0;
      if (pairwise) {
        for (let k = 0; k < kEven; k += 2) {
          let pair = a[aBase + k] * b[b0 + k] + a[aBase + k + 1] * b[b0 + k + 1];
          if (pair > 32767) {
            pair = 32767;
            saturated++;
          } else if (pair < -32768) {
            pair = -32768;
            saturated++;
          }
          s += pair;
        }
        if (kEven !== K) s += a[aBase + kEven] * b[b0 + kEven];
      } else {
        for (let k = 0; k < K; k++) s += a[aBase + k] * b[b0 + k];
      }
      store(m, n, s, za, rs);
    }
  }
  stats.overflowCount += overflow;
  stats.pairSaturationCount += saturated;
}

/**
 * Whether onnxruntime runs this convolution with its depthwise kernel (one input and one output
 * channel per group: weights [group, 1, ...]) instead of QGEMM; that kernel does not sum u8 x s8
 * pairs in int16, so the VPMADDUBSW emulation does not apply to it.
 */
export function depthwiseKernel(group: number, weightDims: readonly number[]): boolean {
  return group > 1 && weightDims[1] === 1 && weightDims[0] === group;
}

/**
 * Whether to run the VPMADDUBSW emulation. Asking for it on other operand types is an error, not
 * a silent no-op: a user who enables it wants to know the saturation count really was measured.
 */
export function pairwiseRequested(opts: AccumulateOptions | undefined, a: IntArray, b: IntArray, what: string): boolean {
  if (!opts?.u8s8PairwiseSaturation) return false;
  if (!(a instanceof Uint8Array) || !(b instanceof Int8Array)) {
    throw new InputError(`${what}: u8s8PairwiseSaturation emulates uint8 activations x int8 weights; got ${quantTypeOf(a)} x ${quantTypeOf(b)}`);
  }
  return true;
}
