/**
 * Alternative requantization arithmetic used by `LayerDiff` to explain why two sources disagree:
 * the exact rational value of a fixed-point multiplication rounded ONCE (the gemmlowp pipeline
 * rounds twice), and the float32 / float64 ONNX formulas with either tie rule. Plus the seeded
 * PRNG of the stochastic rounding mode.
 *
 * Everything returns a code RELATIVE to the output zero point and saturated to the output type's
 * range, so results can be compared directly with (code - zero point) of any source.
 */
import { roundHalfAway, roundHalfEven } from '../quantize/rounding';

/** Tie rule of a single rounding. */
export type TieRule = 'half-even' | 'half-away';

/** Magnitudes at or above this saturate every output type (16-bit codes plus any zero point). */
const SATURATED = 2 ** 40;
/** 2^k for the shifts a requantization can have (`2 ** k` with a variable k is a slow call in V8). */
const POW2 = Float64Array.from({ length: 64 }, (_, k) => 2 ** k);

/**
 * round(acc * m0 * 2^(shift - 31)) computed exactly (a single rounding of the exact rational
 * product), ties by `tie`. Below 2^53 the product acc*m0 is an exact double and used as it is;
 * past that it is not formed: m0 is split into 16-bit halves so every intermediate is an exact
 * integer below 2^48, and the discarded remainder is compared with one half in two pieces.
 * Results of magnitude >= 2^40 are returned as +-2^40 (they saturate any output type anyway).
 * For shift > 0 the exact value acc * 2^shift is used, not the int32-wrapped `acc << shift` of
 * the C pipeline.
 */
export function roundFixedExact(acc: number, m0: number, shift: number, tie: TieRule): number {
  if (m0 === 0 || acc === 0) return 0;
  const R = 31 - shift; // total right shift, >= 1 because m0 < 2^31 and shift <= 30
  const neg = acc < 0;
  const a = neg ? -acc : acc;
  const p = a * m0;
  const div = R < POW2.length ? POW2[R] : 2 ** R;
  if (p / div >= SATURATED) return neg ? -SATURATED : SATURATED;
  let q: number;
  let cmp: number; // sign of (remainder - half)
  if (p <= Number.MAX_SAFE_INTEGER) {
    // The usual case (|acc| < 2^22): the product is an exact double, and so are its quotient by
    // a power of two, floored, and the remainder.
    q = Math.floor(p / div);
    const rem = p - q * div;
    const half = div / 2;
    cmp = rem > half ? 1 : rem < half ? -1 : 0;
  } else [q, cmp] = splitProduct(a, m0, R);
  let mag = q;
  if (cmp > 0 || (cmp === 0 && (tie === 'half-away' || q % 2 === 1))) mag = q + 1;
  return neg && mag !== 0 ? -mag : mag;
}

/** floor(a m0 / 2^R) and the sign of the remainder minus one half, for products past 2^53. */
function splitProduct(a: number, m0: number, R: number): [number, number] {
  const mh = Math.floor(m0 / 65536),
    ml = m0 - mh * 65536;
  const hi = a * mh,
    lo = a * ml; // exact: < 2^47 each; product = hi * 2^16 + lo
  let q: number;
  let cmp: number; // sign of (remainder - half)
  if (R >= 16) {
    const t = hi + Math.floor(lo / 65536); // product = t * 2^16 + lo16
    const lo16 = lo % 65536;
    const Rp = R - 16;
    const div = 2 ** Rp;
    q = Math.floor(t / div);
    const r1 = t - q * div;
    if (Rp === 0) {
      cmp = lo16 > 32768 ? 1 : lo16 < 32768 ? -1 : 0;
    } else {
      const half = div / 2;
      cmp = r1 > half ? 1 : r1 < half ? -1 : lo16 > 0 ? 1 : 0;
    }
  } else {
    const div = 2 ** R;
    const fl = Math.floor(lo / div);
    q = hi * 2 ** (16 - R) + fl;
    const rem = lo - fl * div;
    const half = div / 2;
    cmp = rem > half ? 1 : rem < half ? -1 : 0;
  }
  return [q, cmp];
}

/** Saturate a relative code r (output zero point z) to [qmin, qmax] and make it relative again. */
export function clampRel(r: number, z: number, qmin: number, qmax: number): number {
  const v = r + z;
  return (v < qmin ? qmin : v > qmax ? qmax : v) - z;
}

/** ONNX float requantization of an int32 accumulator in float32 (onnxruntime's order). */
export function floatRel32(acc: number, m32: number, tie: TieRule): number {
  const x = Math.fround(Math.fround(acc) * m32);
  return tie === 'half-even' ? roundHalfEven(x) : roundHalfAway(x);
}

/** The same in float64 (ONNX's numpy reference promotes int32 * float32 to float64). */
export function floatRel64(acc: number, m: number, tie: TieRule): number {
  const x = acc * m;
  return tie === 'half-even' ? roundHalfEven(x) : roundHalfAway(x);
}

/**
 * Seeded uniform numbers in [0, 1): Marsaglia's xorshift32 (shifts 13, 17, 5). Statistical
 * quality is ample for stochastic rounding; what matters here is that a seed reproduces a run.
 */
export function seededUniform(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
