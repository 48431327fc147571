/**
 * I-BERT integer-only non-linear kernels (Kim et al., "I-BERT: Integer-only BERT Quantization",
 * ICML 2021): i-GELU, i-exp, i-Softmax and i-LayerNorm, plus the two integer helpers they need
 * (an exact integer square root and an integer reciprocal in gemmlowp's fixed-point form).
 *
 * Rules kept throughout (the point of the module):
 * - Inside every per-element loop there is only integer arithmetic: +, -, *, comparisons, shifts,
 *   integer (floor) division, and the int32 fixed-point helpers of `requantize.ts`. No Math.exp,
 *   Math.sqrt, erf or float multiply touches an element.
 * - Scales are float BOOKKEEPING: each kernel turns its input scale into a handful of integer
 *   constants once per call (the paper's floor(b/S), floor(c/(a S^2)), ...), and returns the
 *   output scale. A compiler can do that once per layer; a deployment would bake the constants in.
 * - Integers are carried in JS numbers. Values that must fit int32 are kept below 2^31 by the
 *   range analysis written next to each kernel (dynamic or static power-of-two shifts, as the
 *   paper's "shift 14" step); the few wider intermediates (LayerNorm's sum of squares, the row
 *   sum before the mean is removed) are exact integers below 2^53, which is what an int64
 *   accumulator would hold on hardware. Such a value is never rounded.
 * - Typed arrays in and out; no allocation per element (one scratch row per call at most).
 *
 * Where QuantLens departs from the paper / the public reference code, and why:
 * - i-LayerNorm: the public code takes the standard deviation with a FLOAT sqrt. Here it is
 *   `isqrt` (Newton, fixed step count, exact floor). The mean is not rounded either: the row is
 *   centred as d = C*q - sum(q), exact, instead of q - round(mean).
 * - Both polynomial kernels first bring their argument to a fixed power-of-two resolution band
 *   (exact left shifts for coarse int8 inputs, rounding right shifts for very fine int32 ones),
 *   so the paper's integer constants floor(b/S), floor(c/(aS^2)) are always resolved to ~14
 *   bits and always fit int32, whatever scale the caller hands in.
 * - i-GELU's right shift of the erf term (the public code's fixed "shift 14") is chosen per call
 *   as the smallest shift that keeps x * (erf + 1) inside int32 for the declared input bound;
 *   for int16 inputs it comes out at ~14, like the paper's. The shift rounds (half away from
 *   zero) instead of flooring.
 * - The paper's scale a*S^2 of the erf polynomial is negative (a = -0.2888); the codes here are
 *   negated so every returned scale is positive.
 * - i-Softmax normalizes with an integer reciprocal of the row sum in Q31 form (31-bit precision)
 *   instead of the 32-bit floor(2^32 / sum) factor, so exp values keep ~27 bits instead of
 *   being requantized to 16 bits before the sum.
 */
import { multiplyByQuantizedMultiplier, type QuantizedMultiplier, roundingDivideByPOT } from './requantize';

/** The paper's constants (I-BERT, section 3.4-3.6). Tested to be the ones the kernels use. */
export const IBERT_CONSTANTS = {
  /** erf(x) ~ sign(x) * [a * (min(|x|, -b) + b)^2 + 1] */
  erf: { a: -0.2888, b: -1.769 },
  /** exp(p) ~ a * (p + b)^2 + c on p in (-ln2, 0] */
  exp: { a: 0.3585, b: 1.353, c: 0.344 },
} as const;

/** Integer codes with the real value each code step stands for: x = q * scale. */
export interface IntScaled {
  q: Int32Array;
  scale: number;
}

const TWO_POW_31 = 2147483648;
const INT32_MAX = 2147483647;
/** Integers below this are exact in a double. */
const EXACT = 2 ** 53;
const POW2: readonly number[] = Array.from({ length: 64 }, (_, i) => 2 ** i);

// ---------------------------------------------------------------------------------------------
// Integer helpers
// ---------------------------------------------------------------------------------------------

/** Number of bits of a non-negative integer below 2^53 (0 -> 0, 1 -> 1, 2^k -> k + 1). */
export function bitLength(n: number): number {
  if (n < 4294967296) return 32 - Math.clz32(n);
  return 64 - Math.clz32(Math.floor(n / 4294967296));
}

/**
 * floor(n / d) for integers |n| < 2^53, 1 <= d < 2^53: integer division carried in doubles.
 * Exact: if d does not divide n, the true quotient lies at least 1/d from every integer, while
 * the correctly rounded double quotient is off by at most |n/d| * 2^-53 < 1/d, so it can neither
 * reach nor cross the integer floor() decides on.
 */
export function floorDiv(n: number, d: number): number {
  return Math.floor(n / d);
}

/** Round x / 2^r half away from zero, for integers x up to 2^53 (the int64 analogue of roundingDivideByPOT). */
export function roundShiftWide(x: number, r: number): number {
  if (r <= 0) return x;
  const h = POW2[r - 1];
  const p = POW2[r];
  // Division by a power of two is exact in doubles; floor makes it an arithmetic shift.
  return x >= 0 ? Math.floor((x + h) / p) : -Math.floor((h - x) / p);
}

/** Newton steps of `isqrt`; see its comment for why 6 suffice below 2^53. */
export const ISQRT_STEPS = 6;

/**
 * floor(sqrt(n)) for integers 0 <= n < 2^53, by integer Newton iteration with a FIXED number of
 * steps (no data-dependent loop, as a hardware pipeline would run it):
 *   x0 = 2^ceil(bits(n)/2) >= sqrt(n),  x <- floor((x + floor(n/x)) / 2)  (6 times),
 *   then one correction: if x > floor(n/x) (i.e. x*x > n) then x - 1.
 * Why 6: x0 <= 2 sqrt(n), so the relative error e = x/sqrt(n) - 1 starts at e0 <= 1, and the
 * real Newton map gives e' = e^2 / (2(1+e)): 1, .25, .025, 3.1e-4, 4.7e-8, 1.1e-15, 5.9e-31.
 * While the integer iterate is above sqrt(n) it stays below the real iterate (the map is
 * increasing there and floor only lowers it) and never below r = floor(sqrt(n)) (AM-GM), so after
 * 6 steps it is r, or r + 1 when n = (r+1)^2 - 1 (where the integer map alternates r <-> r + 1,
 * as floor(n/r) = r + 2). The final comparison removes that case. `floorDiv` keeps n/x exact.
 */
export function isqrt(n: number): number {
  if (!(Number.isInteger(n) && n >= 0 && n < EXACT)) throw new RangeError(`isqrt: ${n} is not an integer in [0, 2^53)`);
  if (n < 2) return n;
  let x = POW2[(bitLength(n) + 1) >> 1];
  for (let i = 0; i < ISQRT_STEPS; i++) x = Math.floor((x + floorDiv(n, x)) / 2);
  if (x > floorDiv(n, x)) x -= 1;
  return x;
}

/**
 * The reciprocal 1/d of an integer 1 <= d < 2^31 as a gemmlowp multiplier: M0 in [2^30, 2^31)
 * and a shift with M0 * 2^-31 * 2^shift = 1/d to within 2^-31 relative (M0 rounded to nearest).
 * Computed with integer long division (three 15-bit quotient digits), so a divisor known only at
 * run time (a softmax row sum, a standard deviation) gets the same fixed-point treatment as a
 * scale ratio known at compile time. Feed it to `multiplyByQuantizedMultiplier`.
 */
export function reciprocalMultiplier(d: number): QuantizedMultiplier {
  if (!(Number.isInteger(d) && d >= 1 && d < TWO_POW_31)) throw new RangeError(`reciprocalMultiplier: ${d} is not an integer in [1, 2^31)`);
  const m = bitLength(d); // d in [2^(m-1), 2^m)
  // M0 = round(2^(30+m) / d), in [2^30, 2^31]: long division of 2^m * 2^15 * 2^15 by d.
  let r = POW2[m];
  const q0 = floorDiv(r, d);
  r -= q0 * d;
  let t = r * 32768; // r < d < 2^31: t < 2^46, exact
  const q1 = floorDiv(t, d);
  r = t - q1 * d;
  t = r * 32768;
  const q2 = floorDiv(t, d);
  r = t - q2 * d;
  let q = q0 * 1073741824 + q1 * 32768 + q2;
  if (2 * r >= d) q += 1;
  let shift = 1 - m; // 1/d = q / 2^(30+m) = q * 2^-31 * 2^(1-m)
  if (q >= TWO_POW_31) {
    q = 1073741824;
    shift += 1;
  }
  return { multiplier: q, shift };
}

/** Largest |q| of an integer array (one integer pass). */
export function maxAbsInt(q: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < q.length; i++) {
    const v = Math.abs(q[i]); // branch-free: a ternary mispredicts on random signs
    if (v > m) m = v;
  }
  return m;
}

/**
 * Power-of-two exponent k with scale / 2^k in [2^lo, 2^(lo+1)): codes shifted LEFT by k (k > 0,
 * exact) or rounded RIGHT by -k (k < 0) land on that resolution band. Bookkeeping on the scale.
 */
function bandShift(scale: number, lo: number): number {
  let k = 0;
  let s = scale;
  while (s >= 2 ** (lo + 1)) {
    s /= 2;
    k++;
  }
  while (s < 2 ** lo) {
    s *= 2;
    k--;
  }
  return k;
}

function checkScale(scale: number, what: string): void {
  if (!(Number.isFinite(scale) && scale > 0)) throw new RangeError(`${what}: scale must be finite and > 0, got ${scale}`);
}

// ---------------------------------------------------------------------------------------------
// i-GELU
// ---------------------------------------------------------------------------------------------

/** Integer constants of one i-GELU call (computed once from the input scale and bound). */
export interface GeluPlan {
  /** Rounding right shift applied to the input first, so its bound fits 16 bits. */
  inShift: number;
  /** Bound on |q| after `inShift` (inputs beyond it saturate). */
  maxAbs: number;
  /** Left (> 0) or rounding right (< 0) shift taking |q| to the erf polynomial's resolution. */
  argShift: number;
  /** floor(b / S_erf) (negative); |arg| is clipped at -qb. */
  qb: number;
  /** -floor(1 / (a S_erf^2)): the erf polynomial's "+1" term, positive. */
  negQc: number;
  /** Right shift of the erf polynomial before the final product (the paper's "shift 14"). */
  erfShift: number;
  /** floor(1 / S_erfOut): the integer "1" of 1 + erf. */
  q1: number;
  /** Scale of erf's integer value after the shift: S_erfOut = -a S_erf^2 2^erfShift. */
  erfScale: number;
  /** Output scale S_in 2^inShift * S_erfOut / 2. */
  outScale: number;
}

/**
 * Plan i-GELU for inputs at `scale` with |q| <= maxAbs. The erf argument x/sqrt(2) is put on a
 * grid of S_erf in [2^-14, 2^-13): then qb^2 <= 8.4e8 and -qc <= 9.3e8, so the polynomial
 * (|x| + qb)^2 + qc and its negation stay below 2^31, and b is resolved to 2^-14.
 */
export function geluPlan(scale: number, maxAbs: number): GeluPlan {
  checkScale(scale, 'iGelu');
  if (!(Number.isInteger(maxAbs) && maxAbs >= 0 && maxAbs <= INT32_MAX)) throw new RangeError(`iGelu: maxAbs ${maxAbs} is not an int32 bound`);
  const { a, b } = IBERT_CONSTANTS.erf;
  const bits = bitLength(maxAbs);
  const inShift = bits > 16 ? bits - 16 : 0;
  const inScale = scale * 2 ** inShift;
  const bound = inShift ? Math.floor((maxAbs + 2 ** (inShift - 1)) / 2 ** inShift) : maxAbs;
  const sErfIn = inScale / Math.SQRT2;
  const argShift = bandShift(sErfIn, -14);
  const sErf = sErfIn / 2 ** argShift;
  const qb = Math.floor(b / sErf);
  const negQc = -Math.floor(1 / (a * sErf * sErf));
  const sP = -a * sErf * sErf;
  // Smallest shift keeping bound * (erf + q1) <= 2^31 - 1 (the product of the last step).
  let erfShift = 0;
  for (; erfShift < 31; erfShift++) {
    const pMax = roundingDivideByPOT(negQc, erfShift);
    const q1 = Math.floor(1 / (sP * 2 ** erfShift));
    if (bound * (pMax + q1) <= INT32_MAX) break;
  }
  const erfScale = sP * 2 ** erfShift;
  const q1 = Math.floor(1 / erfScale);
  return { inShift, maxAbs: bound, argShift, qb, negQc, erfShift, q1, erfScale, outScale: (inScale * erfScale) / 2 };
}

/**
 * i-GELU: GELU(x) = x/2 * (1 + erf(x / sqrt2)) with erf by the paper's second-order polynomial,
 * all in integers (Algorithm 2 of the paper):
 *   arg  = clip(|q| on the S_erf grid, max = -qb);  P = -qc - (arg + qb)^2      (= -L, >= 0)
 *   erf  = sign(q) * round(P / 2^erfShift)                                     (scale erfScale)
 *   out  = q * (erf + q1)                                                      (scale outScale)
 * `maxAbs` bounds |q| (default: measured on q); it fixes the shifts and so the output scale, so
 * a compiled graph passes the static bound of its input type (32767 for int16 codes).
 */
export function iGelu(q: Int32Array, scale: number, opts: { maxAbs?: number; out?: Int32Array } = {}): IntScaled {
  const p = geluPlan(scale, opts.maxAbs ?? maxAbsInt(q));
  const out = opts.out ?? new Int32Array(q.length);
  const { inShift, maxAbs, argShift, qb, negQc, erfShift, q1 } = p;
  const clip = -qb;
  const left = argShift > 0 ? POW2[argShift] : 1;
  const right = argShift < 0 ? -argShift : 0;
  for (let i = 0; i < q.length; i++) {
    let v = inShift ? roundingDivideByPOT(q[i], inShift) : q[i];
    if (v > maxAbs) v = maxAbs;
    else if (v < -maxAbs) v = -maxAbs;
    const m = Math.abs(v);
    // |q| on the erf grid; a left shift is exact and is clipped before it can leave int32.
    let arg = right ? roundingDivideByPOT(m, right) : m * left;
    if (arg > clip) arg = clip;
    const t = arg + qb; // in [qb, 0]
    const pe = roundingDivideByPOT(negQc - t * t, erfShift);
    const erf = v > 0 ? pe : v < 0 ? -pe : 0;
    out[i] = v * (erf + q1);
  }
  return { q: out, scale: p.outScale };
}

// ---------------------------------------------------------------------------------------------
// i-exp and i-Softmax
// ---------------------------------------------------------------------------------------------

/** Integer constants of i-exp for one input scale. */
export interface ExpPlan {
  /** Left (> 0, exact) or rounding right (< 0) shift putting inputs on the S' grid. */
  inShift: number;
  /** floor(ln2 / S'). */
  qLn2: number;
  /** floor(b / S'). */
  qb: number;
  /** floor(c / (a S'^2)). */
  qc: number;
  /** Inputs below this (on the S' grid) give exp = 0 exactly: z would exceed 31. */
  minArg: number;
  /** a S'^2: the scale of i-exp's output. */
  outScale: number;
}

/**
 * Plan i-exp for inputs at `scale`. The argument grid S' lies in [2^-14, 2^-13): qb <= 22168,
 * qc <= 2.6e8, so L = (p + qb)^2 + qc <= 7.5e8 < 2^31 for every p in (-ln2, 0].
 */
export function expPlan(scale: number): ExpPlan {
  checkScale(scale, 'iExp');
  const { a, b, c } = IBERT_CONSTANTS.exp;
  const inShift = bandShift(scale, -14); // > 0: the scale is coarser than the band, shift left
  const s = scale / 2 ** inShift;
  const qLn2 = Math.floor(Math.LN2 / s);
  return {
    inShift,
    qLn2,
    qb: Math.floor(b / s),
    qc: Math.floor(c / (a * s * s)),
    minArg: -31 * qLn2,
    outScale: a * s * s,
  };
}

/**
 * exp of one integer x <= 0 (exact integer held in a double, at the input grid). The paper's
 * decomposition x = -ln2 * z + p: z = floor(-x / qLn2), p = x + z qLn2 in (-qLn2, 0];
 * exp(p) ~ a (p + b)^2 + c -> L = (p + qb)^2 + qc; exp(x) = L >> z (extra right shift `extra`).
 */
function expCode(x: number, p: ExpPlan, extra: number): number {
  let v = p.inShift > 0 ? x * POW2[p.inShift] : p.inShift < 0 ? roundShiftWide(x, -p.inShift) : x;
  if (v < p.minArg) v = p.minArg;
  const z = floorDiv(-v, p.qLn2); // 0..31
  const t = v + z * p.qLn2 + p.qb; // p + qb > 0
  const sh = z + extra;
  return sh >= 31 ? 0 : (t * t + p.qc) >> sh;
}

/**
 * i-exp on integers q <= 0 at `scale` (i-Softmax subtracts the row maximum first). Returns exp
 * codes at scale a S'^2 (about 2^-28): exp(0) is 0.3585 * 1.353^2 + 0.344 = 1.00027, not 1, as
 * the paper's polynomial gives.
 */
export function iExp(q: Int32Array, scale: number): IntScaled {
  const p = expPlan(scale);
  const out = new Int32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    if (q[i] > 0) throw new RangeError(`iExp: input ${q[i]} at index ${i} is positive; i-exp is defined for x <= 0`);
    out[i] = expCode(q[i], p, 0);
  }
  return { q: out, scale: p.outScale };
}

/** Constants of one i-Softmax call. */
export interface SoftmaxPlan {
  exp: ExpPlan;
  /** Right shift of exp codes so a row of `cols` of them sums below 2^31. */
  sumShift: number;
  outBits: number;
  outScale: number;
}

export function softmaxPlan(scale: number, cols: number, outBits = 16): SoftmaxPlan {
  if (!(Number.isInteger(outBits) && outBits >= 2 && outBits <= 30)) throw new RangeError(`iSoftmax: outBits ${outBits} not in [2, 30]`);
  if (!(Number.isInteger(cols) && cols >= 1 && cols < 2 ** 22)) throw new RangeError(`iSoftmax: cols ${cols} out of range`);
  const exp = expPlan(scale);
  const l0 = exp.qb * exp.qb + exp.qc; // largest exp code (x = 0)
  const bits = bitLength(cols * l0);
  return { exp, sumShift: bits > 31 ? bits - 31 : 0, outBits, outScale: 2 ** -outBits };
}

/**
 * i-Softmax over the last axis of a rows x cols int32 tensor at `scale`:
 *   d = q - rowmax (<= 0, exact); e = i-exp(d) >> sumShift; sum = sum(e) < 2^31;
 *   out = round(e * 2^outBits / sum) through the integer reciprocal of sum (Q31 multiplier),
 *   saturated to [0, 2^outBits - 1].
 * Output: probabilities at scale 1 / 2^outBits (uint16 codes for the default 16 bits). Only a
 * one-hot row reaches 2^outBits and is clamped, an error of 2^-outBits.
 */
export function iSoftmax(q: Int32Array, scale: number, rows: number, cols: number, outBits = 16): IntScaled {
  if (q.length !== rows * cols) throw new RangeError(`iSoftmax: ${q.length} values for ${rows} x ${cols}`);
  const plan = softmaxPlan(scale, cols, outBits);
  const out = new Int32Array(q.length);
  const top = 2 ** outBits - 1;
  const { exp, sumShift } = plan;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let mx = q[base];
    for (let j = 1; j < cols; j++) if (q[base + j] > mx) mx = q[base + j];
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = expCode(q[base + j] - mx, exp, sumShift);
      out[base + j] = e;
      sum += e;
    }
    const { multiplier, shift } = reciprocalMultiplier(sum);
    const sh = shift + outBits; // e <= sum, so e << sh stays below 2^(outBits + 1)
    for (let j = 0; j < cols; j++) {
      const v = multiplyByQuantizedMultiplier(out[base + j], multiplier, sh);
      out[base + j] = v > top ? top : v < 0 ? 0 : v;
    }
  }
  return { q: out, scale: plan.outScale };
}

// ---------------------------------------------------------------------------------------------
// i-LayerNorm
// ---------------------------------------------------------------------------------------------

/** Integer affine parameters of an i-LayerNorm (see `quantizeLayerNormAffine`). */
export interface LayerNormAffine {
  /** gamma / gammaScale, rounded (per channel). */
  gammaInt: Int32Array;
  /** beta at the output scale gammaScale * 2^-fracBits, rounded (int32). */
  betaInt: Int32Array;
  gammaScale: number;
  /** Fractional bits of the normalized value (x - mean) / std before gamma. */
  fracBits: number;
}

export interface LayerNormOptions {
  gammaScale: number;
  fracBits: number;
  /** Added to the variance (real units), as ONNX LayerNormalization's epsilon. Default 1e-5. */
  eps?: number;
}

/** Largest |normalized value| a row of `cols` values can reach: sqrt(cols - 1) < sqrt(cols). */
function normBound(cols: number, fracBits: number): number {
  return Math.ceil(Math.sqrt(cols) * 2 ** fracBits) + 1;
}

/**
 * Quantize LayerNorm's gamma/beta for `iLayerNorm`: gamma per tensor symmetric on `gammaBits`
 * bits; fracBits = the largest (<= 20) for which n * gamma + beta provably fits int32, with
 * |n| <= sqrt(cols) 2^fracBits the normalized value; beta at the output scale. Weight
 * quantization: float work done once, outside inference.
 */
export function quantizeLayerNormAffine(gamma: ArrayLike<number>, beta: ArrayLike<number>, cols: number, gammaBits = 16): LayerNormAffine {
  if (gamma.length !== cols || beta.length !== cols) throw new RangeError(`LayerNorm affine: gamma/beta must have ${cols} values`);
  let gmax = 0;
  for (let i = 0; i < cols; i++) gmax = Math.max(gmax, Math.abs(gamma[i]));
  const qmax = 2 ** (gammaBits - 1) - 1;
  const gammaScale = gmax > 0 ? gmax / qmax : 1;
  const gammaInt = Int32Array.from(gamma, (g) => Math.round(g / gammaScale));
  for (let fracBits = 20; fracBits >= 0; fracBits--) {
    const outScale = gammaScale * 2 ** -fracBits;
    const betaF = Array.from(beta, (b) => Math.round(b / outScale));
    const bmax = betaF.reduce((m, b) => Math.max(m, Math.abs(b)), 0);
    if (normBound(cols, fracBits) * maxAbsInt(gammaInt) + bmax <= INT32_MAX) {
      return { gammaInt, betaInt: Int32Array.from(betaF), gammaScale, fracBits };
    }
  }
  throw new RangeError('LayerNorm affine: beta is too large next to gamma to share an int32 output scale');
}

/**
 * i-LayerNorm over the last axis of a rows x cols int32 tensor at `scale`:
 *   sum = sum(q);  d = cols*q - sum                 (exact: cols * (q - mean), no rounded mean)
 *   r   = dynamic right shift so that |d| < 2^dBits (sum of squares < 2^52; zero for int16 inputs)
 *   X   = sum((d >> r)^2) + epsInt[r];  V = floor(X * 4^t / cols) with t filling 53 bits
 *   s   = isqrt(V)                                  (~ 2^t * cols * std, >= 13 bits of precision)
 *   n   = round(d * 2^(t + fracBits) / s)           (integer reciprocal of s, Q31)
 *   out = n * gammaInt + betaInt                    (scale gammaScale * 2^-fracBits)
 * The input scale only enters through epsilon (eps / S^2 in code units, one table per call):
 * normalization is scale-free.
 */
export function iLayerNorm(
  q: Int32Array | Int16Array | Int8Array,
  scale: number,
  rows: number,
  cols: number,
  gammaInt: Int32Array,
  betaInt: Int32Array,
  opts: LayerNormOptions,
): IntScaled {
  checkScale(scale, 'iLayerNorm');
  if (q.length !== rows * cols) throw new RangeError(`iLayerNorm: ${q.length} values for ${rows} x ${cols}`);
  if (gammaInt.length !== cols || betaInt.length !== cols) throw new RangeError(`iLayerNorm: gamma/beta must have ${cols} values`);
  const F = opts.fracBits;
  if (!(Number.isInteger(F) && F >= 0 && F <= 24)) throw new RangeError(`iLayerNorm: fracBits ${F} not in [0, 24]`);
  if (normBound(cols, F) * maxAbsInt(gammaInt) + maxAbsInt(betaInt) > INT32_MAX) {
    throw new RangeError('iLayerNorm: gamma * normalized value + beta could leave int32; lower fracBits');
  }
  const eps = opts.eps ?? 1e-5;
  const cBits = bitLength(cols);
  // |d| < 2^dBits  =>  cols * d^2 < 2^(cBits + 2 dBits) <= 2^51: the sum of squares plus an
  // epsilon term capped at 2^52 stays below 2^53.
  const dBits = (51 - cBits) >> 1;
  // epsilon in units of the summed squares: var + eps = S^2 4^r / cols^3 * (X), so the eps term
  // is eps * cols^3 / (S^2 4^r). One small table per call (bookkeeping).
  const epsInt = new Float64Array(32);
  for (let r = 0; r < 32; r++) epsInt[r] = Math.min(2 ** 52, Math.round((eps * cols * cols * cols) / (scale * scale * 4 ** r)));
  const out = new Int32Array(q.length);
  const d = new Int32Array(cols); // scratch row
  for (let row = 0; row < rows; row++) {
    const base = row * cols;
    let sum = 0;
    let mn = q[base];
    let mx = q[base];
    for (let j = 0; j < cols; j++) {
      const v = q[base + j];
      sum += v;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    // |d_j| = cols |q_j - mean| <= cols (max - min).
    const dMax = cols * (mx - mn);
    const lb = bitLength(dMax);
    const r = lb > dBits ? lb - dBits : 0;
    let ss = 0;
    for (let j = 0; j < cols; j++) {
      const dj = roundShiftWide(cols * q[base + j] - sum, r);
      d[j] = dj;
      ss += dj * dj;
    }
    const x = ss + epsInt[r];
    if (x === 0) {
      for (let j = 0; j < cols; j++) out[base + j] = betaInt[j];
      continue;
    }
    const t = (53 - bitLength(x)) >> 1; // x * 4^t < 2^53
    const s = isqrt(floorDiv(x * POW2[2 * t], cols));
    if (s === 0) {
      for (let j = 0; j < cols; j++) out[base + j] = betaInt[j];
      continue;
    }
    const { multiplier, shift } = reciprocalMultiplier(s);
    const sh = shift + t + F;
    for (let j = 0; j < cols; j++) {
      const n = multiplyByQuantizedMultiplier(d[j], multiplier, sh);
      out[base + j] = n * gammaInt[j] + betaInt[j];
    }
  }
  return { q: out, scale: opts.gammaScale * 2 ** -F };
}
