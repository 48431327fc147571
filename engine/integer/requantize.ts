/**
 * Requantization: turning an int32 accumulator (scale s_in * s_w) into an output code (scale
 * s_out, zero point z_out). Deployments do it in one of two ways and the difference is visible as
 * 1-LSB mismatches, so both are here, named after who uses them:
 *
 * - FIXED POINT (gemmlowp, TFLite, most NPUs/DSPs): the real multiplier M = s_in*s_w/s_out is
 *   stored as an int32 mantissa M0 in [2^30, 2^31) and a power-of-two shift; the output is
 *   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << left, M0), right). Integer only.
 * - FLOAT (ONNX QLinearConv/QLinearMatMul, onnxruntime's MLAS): acc * M in float, rounded half to
 *   even, plus the zero point, saturated. ONNX conformance data is produced this way.
 *
 * The fixed-point helpers take and return int32 values held in JS numbers and reproduce the C
 * int32 semantics exactly (tested against a BigInt model for all edge values).
 */
import { roundHalfEven } from '../quantize/rounding';
import { INT32_MAX, INT32_MIN } from './types';

export interface QuantizedMultiplier {
  /** Q0.31 mantissa M0 in [2^30, 2^31), or 0 for a zero (or flushed tiny) multiplier. */
  multiplier: number;
  /** Power of two: M = M0 * 2^-31 * 2^shift. Positive shifts left (M > 1), negative right. */
  shift: number;
}

const TWO_POW_31 = 2147483648;

/**
 * Split a real multiplier into (M0, shift) as TFLite's QuantizeMultiplier does: frexp gives
 * M = q * 2^e with q in [0.5, 1); M0 = round(q * 2^31) (half away from zero); a mantissa that
 * rounds up to 2^31 is halved and the exponent bumped so M0 stays an int32.
 *
 * Tiny multipliers (shift < -31) would shift every accumulator bit out; like TFLite they are
 * flushed to {0, 0} (every output becomes the zero point) instead of using shifts > 31, which
 * C and JS both reduce modulo 32. Multipliers >= 2^30 are refused: their left shift would push
 * any accumulator above 1 out of int32.
 */
export function quantizeMultiplier(realMultiplier: number): QuantizedMultiplier {
  if (!Number.isFinite(realMultiplier) || realMultiplier < 0) {
    throw new RangeError(`quantizeMultiplier: multiplier must be finite and >= 0, got ${realMultiplier}`);
  }
  if (realMultiplier === 0) return { multiplier: 0, shift: 0 };
  if (realMultiplier >= 2 ** 30) throw new RangeError(`quantizeMultiplier: multiplier ${realMultiplier} >= 2^30 is out of range`);
  // frexp. log2 only gives a first guess (it may be off by one near powers of two); scaling by a
  // power of two is exact, and the loops settle q into [0.5, 1).
  let e = Math.ceil(Math.log2(realMultiplier));
  let q = realMultiplier / 2 ** e;
  while (q >= 1) {
    q /= 2;
    e++;
  }
  while (q < 0.5) {
    q *= 2;
    e--;
  }
  let m = Math.round(q * TWO_POW_31); // q * 2^31 is exact; q > 0 so Math.round is half away from zero
  if (m === TWO_POW_31) {
    m = TWO_POW_31 / 2;
    e++;
  }
  if (e < -31) return { multiplier: 0, shift: 0 };
  return { multiplier: m, shift: e };
}

/**
 * gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b, rounded to nearest.
 * gemmlowp adds a nudge (2^30, or 1 - 2^30 for a negative product) and divides by 2^31 with C's
 * truncation; the net effect is floor((a*b + 2^30) / 2^31): ties go UP (0.5 -> 1, -0.5 -> 0,
 * -1.5 -> -1), like ARM's VQRDMULH, not away from zero. Only INT32_MIN * INT32_MIN overflows,
 * and saturates to INT32_MAX.
 *
 * The 64-bit product is never formed. Why not BigInt: it allocates, and this runs once per output
 * element; measured on Node 20, a BigInt version takes ~100-200 ns per call, this one ~6-10 ns. Instead, with P = |a|*|b| and the nudge c folded into magnitude
 * form (c = 2^30 for a non-negative product, 2^30 - 1 for a negative one),
 *   result = sign * floor((P + c) / 2^31),
 * and |b| is split into 16-bit halves bh, bl so that with X = |a|*bl + c:
 *   floor((P + c) / 2^31) = floor((|a|*bh + floor(X / 2^16)) / 2^15)
 * (the dropped X mod 2^16 < 2^16 can never carry into bit 31). Every intermediate is an exact
 * integer below 2^48, so no rounding happens anywhere: this is integer arithmetic carried in
 * doubles, not float math.
 */
export function saturatingRoundingDoublingHighMul(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const negative = (a < 0 && b > 0) || (a > 0 && b < 0);
  const ua = a < 0 ? -a : a; // <= 2^31
  const ub = b < 0 ? -b : b;
  const bh = ub >>> 16; // ToUint32 keeps 2^31 intact
  const bl = ub & 0xffff;
  const x = ua * bl + (negative ? 0x3fffffff : 0x40000000);
  const q = Math.floor((ua * bh + Math.floor(x / 65536)) / 32768);
  return negative ? -q | 0 : q;
}

/**
 * gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties AWAY from zero
 * (5 >> 1 = 3, -5 >> 1 = -3), using only int32 operations: an arithmetic shift (floor) plus one
 * when the discarded remainder exceeds half, where "half" is raised by one for negative x so a
 * negative tie also moves away from zero.
 */
export function roundingDivideByPOT(x: number, exponent: number): number {
  if (exponent < 0 || exponent > 31) throw new RangeError(`roundingDivideByPOT: exponent ${exponent} not in [0, 31]`);
  const mask = ((1 << exponent) - 1) | 0; // exponent 31: (INT32_MIN - 1) | 0 = INT32_MAX
  const remainder = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/**
 * TFLite's MultiplyByQuantizedMultiplier: round(acc * M0 * 2^(shift - 31)) with the two
 * roundings above. A positive shift is applied to acc BEFORE the multiply (keeps precision for
 * M > 1); like the C code on real hardware it wraps modulo 2^32 if acc << shift leaves int32.
 */
export function multiplyByQuantizedMultiplier(acc: number, multiplier: number, shift: number): number {
  const left = shift > 0 ? shift : 0;
  const right = shift > 0 ? 0 : -shift;
  return roundingDivideByPOT(saturatingRoundingDoublingHighMul(acc << left, multiplier), right);
}

/** Fixed-point requantization of one accumulator to an output code in [qmin, qmax]. */
export function requantizeFixedPoint(acc: number, multiplier: number, shift: number, zeroPoint: number, qmin: number, qmax: number): number {
  const v = multiplyByQuantizedMultiplier(acc, multiplier, shift) + zeroPoint;
  return v < qmin ? qmin : v > qmax ? qmax : v;
}

/**
 * Which float arithmetic the ONNX-style requantization uses:
 * - 'float32': onnxruntime/MLAS (MlasRequantizeOutput): float(acc) * M in float32. Note float(acc)
 *   itself rounds once |acc| > 2^24.
 * - 'float64': the ONNX numpy reference (int32 array * float32 scale promotes to float64).
 * Both round half to even. They can differ only on accumulators above 2^24 or on ties that the
 * float32 product creates or destroys.
 */
export type FloatRequantPrecision = 'float32' | 'float64';

/** The real multiplier in onnxruntime's order and precision: (s_in * s_w) / s_out in float32. */
export function realMultiplierF32(sIn: number, sW: number, sOut: number): number {
  return Math.fround(Math.fround(sIn * sW) / sOut);
}

/** ONNX QLinear requantization: saturate(round_half_even(acc * M) + zeroPoint). */
export function requantizeFloat(
  acc: number,
  multiplier: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
  precision: FloatRequantPrecision = 'float32',
): number {
  const scaled = precision === 'float32' ? Math.fround(Math.fround(acc) * multiplier) : acc * multiplier;
  const v = roundHalfEven(scaled) + zeroPoint;
  // NaN (a NaN scale) fails both tests and would store as 0; ONNX leaves it undefined.
  return v < qmin ? qmin : v > qmax ? qmax : v;
}
