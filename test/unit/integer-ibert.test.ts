/**
 * I-BERT integer kernels: exactness of the integer helpers, and each kernel against the float op
 * it replaces on realistic int8-quantized inputs, with error bounds derived below each test.
 *
 * The float references here are written independently of engine/integer/ibertReference.ts: erf
 * uses the all-positive series erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!!, which
 * has no cancellation, so it is accurate to a few ulps everywhere it is used (|x| <= 6).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  IBERT_CONSTANTS,
  ISQRT_STEPS,
  bitLength,
  expPlan,
  floorDiv,
  geluPlan,
  iExp,
  iGelu,
  iLayerNorm,
  iSoftmax,
  isqrt,
  quantizeLayerNormAffine,
  reciprocalMultiplier,
  softmaxPlan,
} from '../../engine/integer/ibert';
import { erf as engineErf } from '../../engine/integer/ibertReference';
import { mulberry32 } from '../helpers/rng';

// ----------------------------------------------------------------------------------------------
// Float references
// ----------------------------------------------------------------------------------------------

function erfRef(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  const x2 = ax * ax;
  let term = ax; // 2^n x^(2n+1) / (2n+1)!!
  let sum = ax;
  for (let n = 1; n < 400; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return (Math.sign(x) * 2 * Math.exp(-x2) * sum) / Math.sqrt(Math.PI);
}
const geluRef = (x: number) => 0.5 * x * (1 + erfRef(x / Math.SQRT2));

/** The paper's float polynomials with the paper's constants: what the integer kernels approximate. */
const A = -0.2888,
  B = -1.769;
const erfPoly = (x: number) => Math.sign(x) * (A * (Math.min(Math.abs(x), -B) + B) ** 2 + 1);
const geluPoly = (x: number) => 0.5 * x * (1 + erfPoly(x / Math.SQRT2));
const expPoly = (p: number) => 0.3585 * (p + 1.353) ** 2 + 0.344;

/** int8 codes of values in [-4, 4] at scale 8/255: every code once. */
const S8 = 8 / 255;
const allInt8 = () => Int32Array.from({ length: 255 }, (_, i) => i - 127);

function maxOver(n: number, f: (i: number) => number): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, f(i));
  return m;
}

// ----------------------------------------------------------------------------------------------
// Integer helpers
// ----------------------------------------------------------------------------------------------

/** floor(sqrt(n)) by definition (r^2 <= n < (r+1)^2), checked in BigInt. */
function isFloorSqrt(n: number, r: number): boolean {
  const N = BigInt(n),
    R = BigInt(r);
  return R * R <= N && (R + 1n) * (R + 1n) > N;
}

describe('isqrt (integer Newton, fixed steps)', () => {
  it(`uses ${ISQRT_STEPS} steps and is exact for every n < 2^20`, () => {
    for (let n = 0; n < 2 ** 20; n++) {
      const r = isqrt(n);
      if (r !== Math.floor(Math.sqrt(n))) assert.fail(`isqrt(${n}) = ${r}`);
    }
  });

  it('matches Math.floor(Math.sqrt(n)) wherever that is exact, and the definition everywhere, up to 2^53', () => {
    const r = mulberry32(11);
    const cases: number[] = [2 ** 53 - 1, 2 ** 53 - 2, 2 ** 52, 2 ** 52 - 1];
    for (let b = 1; b <= 53; b++) cases.push(2 ** b - 1, 2 ** (b - 1), 2 ** (b - 1) + 1);
    // Perfect squares and their neighbours over the whole range, including the largest k.
    const kMax = 94906265; // floor(sqrt(2^53 - 1))
    const ks = [1, 2, 3, 46340, 46341, 65535, 65536, 2 ** 26 - 1, 2 ** 26, 2 ** 26 + 1, kMax - 1, kMax];
    for (let i = 0; i < 20000; i++) ks.push(1 + Math.floor(r() * kMax));
    for (const k of ks) for (const n of [k * k - 1, k * k, k * k + 1]) if (n < 2 ** 53) cases.push(n);
    for (let i = 0; i < 100000; i++) cases.push(Math.floor(r() * 2 ** 53));
    for (let i = 0; i < 20000; i++) cases.push(Math.floor(r() * 2 ** (1 + Math.floor(r() * 53))));
    let floatWrong = 0;
    for (const n of cases) {
      const got = isqrt(n);
      assert.ok(isFloorSqrt(n, got), `isqrt(${n}) = ${got}`);
      const f = Math.floor(Math.sqrt(n));
      if (isFloorSqrt(n, f)) assert.equal(got, f, `n = ${n}`);
      else floatWrong++;
    }
    // The float shortcut is NOT exact above ~2^52: sqrt(k^2 - 1) rounds up to k once 1/(2k) is
    // below half an ulp of k (k > 2^26). isqrt stays exact there.
    const k = 2 ** 26 + 1;
    assert.equal(Math.floor(Math.sqrt(k * k - 1)), k);
    assert.equal(isqrt(k * k - 1), k - 1);
    assert.ok(floatWrong > 0, 'expected the random perfect-square neighbours above 2^52 to expose the float shortcut');
  });

  it('refuses non-integers, negatives and n >= 2^53', () => {
    assert.throws(() => isqrt(-1), RangeError);
    assert.throws(() => isqrt(1.5), RangeError);
    assert.throws(() => isqrt(2 ** 53), RangeError);
  });
});

describe('integer helpers', () => {
  it('bitLength', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 255, 256].map(bitLength), [0, 1, 2, 2, 3, 8, 9]);
    for (let b = 1; b <= 53; b++) {
      assert.equal(bitLength(2 ** (b - 1)), b);
      assert.equal(bitLength(2 ** b - 1), b);
    }
  });

  it('floorDiv is exact integer division below 2^53 (checked in BigInt)', () => {
    const r = mulberry32(5);
    for (let i = 0; i < 50000; i++) {
      const n = Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 53)));
      const d = 1 + Math.floor(r() * 2 ** (1 + Math.floor(r() * 31)));
      const N = BigInt(n),
        D = BigInt(d);
      let q = N / D;
      if (N % D !== 0n && N < 0n) q -= 1n; // floor for negatives
      assert.equal(floorDiv(n, d), Number(q), `${n} / ${d}`);
    }
  });

  it('reciprocalMultiplier(d) = round(2^(31 - shift) / d), M0 in [2^30, 2^31)', () => {
    const r = mulberry32(9);
    const ds = [1, 2, 3, 5, 7, 255, 256, 257, 65535, 65536, 2 ** 30, 2 ** 30 + 1, 2 ** 31 - 1];
    for (let i = 0; i < 20000; i++) ds.push(1 + Math.floor(r() * 2 ** (1 + Math.floor(r() * 31))));
    for (const d of ds) {
      if (d >= 2 ** 31) continue;
      const { multiplier: m, shift } = reciprocalMultiplier(d);
      assert.ok(m >= 2 ** 30 && m < 2 ** 31, `d=${d}: M0 ${m}`);
      // Exact: M0 = round(2^(31 - shift) / d), with 31 - shift = 30 + bitLength(d) (or one less for 2^k).
      const e = BigInt(31 - shift);
      const num = 1n << e;
      const D = BigInt(d);
      const q = num / D,
        rem = num % D;
      const want = 2n * rem >= D ? q + 1n : q;
      assert.equal(BigInt(m), want, `d=${d}`);
    }
    assert.throws(() => reciprocalMultiplier(0), RangeError);
    assert.throws(() => reciprocalMultiplier(2 ** 31), RangeError);
  });

  it('the engine erf reference agrees with an independent series to 1e-14', () => {
    for (let x = -6; x <= 6; x += 0.001) assert.ok(Math.abs(engineErf(x) - erfRef(x)) < 1e-14, `x=${x}`);
    // Known values (Abramowitz & Stegun table 7.1).
    assert.ok(Math.abs(erfRef(0.5) - 0.5204998778130465) < 1e-15);
    assert.ok(Math.abs(erfRef(1) - 0.8427007929497149) < 1e-15);
    assert.ok(Math.abs(erfRef(2) - 0.9953222650189527) < 1e-15);
  });
});

// ----------------------------------------------------------------------------------------------
// Constants
// ----------------------------------------------------------------------------------------------

describe("the kernels use the paper's constants", () => {
  it('declared constants are the paper values', () => {
    assert.deepEqual(IBERT_CONSTANTS.erf, { a: -0.2888, b: -1.769 });
    assert.deepEqual(IBERT_CONSTANTS.exp, { a: 0.3585, b: 1.353, c: 0.344 });
  });

  it("i-GELU reproduces the paper's polynomial (not exact erf) to integer precision", () => {
    // On a fine int16 grid the integer rounding is ~1e-4, far below the polynomial's own
    // deviation from GELU (up to 1.8e-2): the kernel must track geluPoly, not geluRef.
    const S = 4 / 32767;
    const q = Int32Array.from({ length: 2001 }, (_, i) => (i - 1000) * 32);
    const g = iGelu(q, S, { maxAbs: 32767 });
    const vsPoly = maxOver(q.length, (i) => Math.abs(g.q[i] * g.scale - geluPoly(q[i] * S)));
    const vsTrue = maxOver(q.length, (i) => Math.abs(g.q[i] * g.scale - geluRef(q[i] * S)));
    assert.ok(vsPoly < 2e-4, `vs polynomial ${vsPoly}`);
    assert.ok(vsTrue > 0.017, `vs exact GELU ${vsTrue}: the polynomial's signature error should show`);
    // Saturation point of the paper's erf: |x| / sqrt2 >= -b gives erf = sign(x) exactly, GELU(x) = x (x > 0).
    const big = iGelu(Int32Array.of(32767, -32767), S, { maxAbs: 32767 });
    assert.ok(Math.abs(big.q[0] * big.scale - 4) < 1e-3 && Math.abs(big.q[1] * big.scale) < 1e-3);
  });

  it('i-exp(0) is 0.3585 * 1.353^2 + 0.344 = 1.00027, and i-exp(-ln2) is half of it', () => {
    const S = 2 ** -14; // on the kernel's own grid: no shift
    const e = iExp(Int32Array.of(0, -Math.floor(Math.LN2 / S), -3 * Math.floor(Math.LN2 / S)), S);
    // floor(b / S) moves b by < S = 6.1e-5, i.e. exp(0) by < 2 a b S = 6e-5: the kernel must sit
    // within that of the polynomial's 1.00027, visibly away from the true e^0 = 1.
    const e0 = e.q[0] * e.scale;
    assert.ok(Math.abs(expPoly(0) - 1.000273) < 1e-6);
    assert.ok(Math.abs(e0 - expPoly(0)) < 6e-5, `${e0}`);
    assert.ok(e0 - 1 > 1.5e-4, `${e0} should show the polynomial's +2.7e-4 at 0`);
    assert.ok(Math.abs(e.q[1] * e.scale - e0 / 2) < 1e-6);
    assert.ok(Math.abs(e.q[2] * e.scale - e0 / 8) < 1e-6);
    assert.equal(expPlan(S).qb, Math.floor(1.353 / S));
    assert.equal(expPlan(S).qc, Math.floor(0.344 / (0.3585 * S * S)));
  });

  it('i-GELU integer constants are floor(b/S_erf) and floor(1/(a S_erf^2))', () => {
    const S = 4 / 32767;
    const p = geluPlan(S, 32767);
    const sErf = S / Math.SQRT2 / 2 ** p.argShift;
    assert.equal(p.qb, Math.floor(-1.769 / sErf));
    assert.equal(p.negQc, -Math.floor(1 / (-0.2888 * sErf * sErf)));
    // For int16 inputs the overflow-avoiding right shift lands on the public code's 14.
    assert.equal(p.erfShift, 14);
  });
});

// ----------------------------------------------------------------------------------------------
// i-GELU
// ----------------------------------------------------------------------------------------------

describe('i-GELU vs exact GELU', () => {
  // The float polynomial's own worst error over the reals: the floor of what any integer
  // implementation of it can reach (the paper reports 1.8e-2 for i-GELU).
  let polyMax = 0;
  for (let x = -8; x <= 8; x += 1e-4) polyMax = Math.max(polyMax, Math.abs(geluPoly(x) - geluRef(x)));

  it("the paper's polynomial itself is ~1.8e-2 from GELU at worst", () => {
    assert.ok(polyMax > 0.0175 && polyMax < 0.0185, `${polyMax}`);
  });

  it('int8 inputs in [-4, 4] (scale 8/255): max error <= polynomial error + integer rounding', () => {
    const q = allInt8();
    const g = iGelu(q, S8);
    const err = Array.from(q, (v, i) => Math.abs(g.q[i] * g.scale - geluRef(v * S8)));
    const max = Math.max(...err);
    const mean = err.reduce((a, b) => a + b, 0) / err.length;
    // Integer rounding on top of the polynomial, with S_erf ~ 2^-14 after the exact left shift:
    //   floor(b/S_erf): <= S_erf in the argument -> erf off by <= 2|a||b| S_erf ~ 6.2e-5;
    //   floor(c) and the rounding shift: <= 1.5 erf LSBs (erfScale); floor(1/erfScale): 1 LSB;
    // all multiplied by |x|/2 <= 2 -> < 2 * (6.2e-5 + 2.5 * erfScale) ~ 1.3e-4. Bound: 2e-4.
    const p = geluPlan(S8, 127);
    const integerPart = 2 * (2 * 0.2888 * 1.769 * (S8 / Math.SQRT2 / 2 ** p.argShift) + 2.5 * p.erfScale);
    assert.ok(integerPart < 2e-4, `${integerPart}`);
    assert.ok(max <= polyMax + 2e-4, `max ${max} vs polynomial ${polyMax}`);
    assert.ok(max >= 0.017, 'int8 grid contains x near -2.35 where the polynomial is worst');
    // Mean over the uniform int8 grid: the polynomial error averaged over [-4, 4] (measured 5.6e-3).
    let polyMean = 0;
    for (const v of q) polyMean += Math.abs(geluPoly(v * S8) - geluRef(v * S8)) / q.length;
    assert.ok(Math.abs(mean - polyMean) < 2e-4 && mean < 8e-3, `mean ${mean} (polynomial ${polyMean})`);
  });

  it('int32 accumulator inputs (input right shift) and saturation at maxAbs', () => {
    const S = 3e-7; // an int32 accumulator scale; |x| <= 4 means codes up to 1.3e7 (24 bits)
    const r = mulberry32(3);
    const q = Int32Array.from({ length: 20000 }, () => Math.round(((r() - 0.5) * 8) / S));
    const p = geluPlan(S, 13333334);
    assert.ok(p.inShift > 0, 'the input is brought down to 16 bits first');
    const g = iGelu(q, S, { maxAbs: 13333334 });
    const max = maxOver(q.length, (i) => Math.abs(g.q[i] * g.scale - geluRef(q[i] * S)));
    // Extra input rounding: half a step of S 2^inShift, times GELU' <= 1.13.
    assert.ok(max <= polyMax + 2e-4 + 1.13 * 0.5 * S * 2 ** p.inShift, `${max}`);
    for (let i = 0; i < g.q.length; i++) assert.ok(Math.abs(g.q[i]) <= 2147483647);
    // Values beyond the declared bound saturate instead of overflowing.
    const sat = iGelu(Int32Array.of(1000, 5000), 0.01, { maxAbs: 1000 });
    assert.equal(sat.q[1], sat.q[0]);
  });
});

// ----------------------------------------------------------------------------------------------
// i-exp and i-Softmax
// ----------------------------------------------------------------------------------------------

/** Worst relative error of the paper's exp polynomial on (-ln2, 0]: measured 3.1e-3. */
let expRel = 0;
for (let p = -Math.LN2; p <= 0; p += 1e-6) expRel = Math.max(expRel, Math.abs(expPoly(p) / Math.exp(p) - 1));

describe('i-exp', () => {
  it('x in [-10, 0]: |i-exp - e^x| <= e^x * (polynomial rel. error + rounding)', () => {
    for (const S of [S8, 0.05, 1e-3, 2e-6]) {
      const n = Math.min(20000, Math.floor(10 / S));
      const q = Int32Array.from({ length: n }, (_, i) => -Math.round((i * 10) / S / n));
      const e = iExp(q, S);
      const p = expPlan(S);
      for (let i = 0; i < n; i++) {
        const x = q[i] * S,
          want = Math.exp(x),
          got = e.q[i] * e.scale;
        // Rounding on the S' grid (<= 2^-13): floor(ln2/S') undershoots ln2 by < S', so the
        // remainder p is off by < z S'; floor(b/S') and the argument rounding add < 2 S'. The
        // polynomial's log-derivative 2a(p+b)/poly is < 1, so exp is off by < (z + 2) S'
        // relative, on top of the polynomial's own error; floor(c) and the final >> z: 2 LSBs.
        const sP = S / 2 ** p.inShift;
        const z = Math.floor(-x / Math.LN2);
        const bound = want * (expRel + (z + 3) * sP) + 2 * e.scale;
        assert.ok(Math.abs(got - want) <= bound, `S=${S} x=${x}: ${got} vs ${want}`);
      }
    }
  });

  it('refuses positive inputs', () => {
    assert.throws(() => iExp(Int32Array.of(0, 1), 0.1), RangeError);
  });
});

describe('i-Softmax vs float softmax', () => {
  function check(rows: number, cols: number, S: number, gen: () => number) {
    const q = Int32Array.from({ length: rows * cols }, () => Math.max(-127, Math.min(127, Math.round(gen() / S))));
    const sm = iSoftmax(q, S, rows, cols);
    assert.equal(sm.scale, 2 ** -16);
    let maxErr = 0,
      maxSumErr = 0,
      sumAbs = 0;
    for (let r = 0; r < rows; r++) {
      let m = -Infinity;
      for (let j = 0; j < cols; j++) m = Math.max(m, q[r * cols + j] * S);
      let z = 0;
      for (let j = 0; j < cols; j++) z += Math.exp(q[r * cols + j] * S - m);
      let s = 0;
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        const p = Math.exp(q[i] * S - m) / z;
        const got = sm.q[i] * sm.scale;
        // Each exp is off by <= expRel relative (plus tiny rounding), the sum likewise, so
        // p_hat / p lies within (1 +- delta)/(1 -+ delta): |err| <= p * 2 delta / (1 - delta),
        // plus the output rounding (1 LSB of 2^-16, reciprocal error 2^-30 included).
        // delta = expRel + (z_max + 3) S' with the exp bound above (z_max = 11 for logits >= -8).
        const delta = expRel + 14 * (S / 2 ** expPlan(S).inShift);
        const bound = (p * 2 * delta) / (1 - delta) + 2 ** -16;
        const e = Math.abs(got - p);
        assert.ok(e <= bound, `row ${r} col ${j}: ${got} vs ${p}`);
        assert.ok(sm.q[i] >= 0 && sm.q[i] <= 65535);
        maxErr = Math.max(maxErr, e);
        sumAbs += e;
        s += got;
      }
      maxSumErr = Math.max(maxSumErr, Math.abs(s - 1));
    }
    // A row sums to 1 up to each output's rounding: every code is round(e_j 2^16 / sum) with a
    // Q31 reciprocal, so |sum - 1| <= cols * (0.5 + ~1e-4) LSB.
    assert.ok(maxSumErr <= (cols * 0.51) / 65536, `row sum off by ${maxSumErr}`);
    return { maxErr, meanErr: sumAbs / (rows * cols), maxSumErr };
  }

  it('16 columns (attention rows), int8 logits in [-4, 4] at scale 8/255', () => {
    const r = mulberry32(21);
    const res = check(2000, 16, S8, () => (r() - 0.5) * 8);
    assert.ok(res.maxErr < 2e-3 && res.meanErr < 2e-4, JSON.stringify(res));
  });

  it('128 columns, peaked logits', () => {
    const r = mulberry32(22);
    check(200, 128, S8, () => (r() < 0.05 ? 4 : (r() - 0.5) * 3));
  });

  it('one-hot rows clamp to 2^16 - 1 and far-away logits give exactly 0', () => {
    const q = Int32Array.of(0, -100000, -100000, -100000);
    const sm = iSoftmax(q, 0.01, 1, 4);
    assert.deepEqual(Array.from(sm.q), [65535, 0, 0, 0]);
  });

  it('fine int32 accumulator scales keep every intermediate in int32', () => {
    const p = softmaxPlan(1e-7, 1024);
    assert.ok(p.exp.inShift < 0, 'input rounded onto the 2^-14 grid');
    const l0 = p.exp.qb * p.exp.qb + p.exp.qc;
    assert.ok(l0 < 2 ** 31 && 1024 * Math.floor(l0 / 2 ** p.sumShift) < 2 ** 31);
    const r = mulberry32(4);
    const q = Int32Array.from({ length: 4 * 1024 }, () => Math.round(((r() - 0.5) * 10) / 1e-7));
    const sm = iSoftmax(q, 1e-7, 4, 1024);
    for (let row = 0; row < 4; row++) {
      let s = 0;
      for (let j = 0; j < 1024; j++) s += sm.q[row * 1024 + j];
      assert.ok(Math.abs(s / 65536 - 1) < (1024 * 0.51) / 65536);
    }
  });
});

// ----------------------------------------------------------------------------------------------
// i-LayerNorm
// ----------------------------------------------------------------------------------------------

describe('i-LayerNorm vs float LayerNorm', () => {
  const cols = 64;

  /** int8 rows of realistic activations: per-row offset and spread, values in [-4, 4]. */
  function rowsInt8(n: number, seed: number): Int32Array {
    const r = mulberry32(seed);
    const q = new Int32Array(n * cols);
    for (let row = 0; row < n; row++) {
      const mu = (r() - 0.5) * 2,
        sd = 0.3 + r() * 1.2;
      for (let j = 0; j < cols; j++) {
        const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
        q[row * cols + j] = Math.max(-127, Math.min(127, Math.round((mu + sd * g) / S8)));
      }
    }
    return q;
  }

  function floatLn(q: ArrayLike<number>, S: number, row: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): number[] {
    const x = Array.from({ length: cols }, (_, j) => q[row * cols + j] * S);
    const mu = x.reduce((a, b) => a + b, 0) / cols;
    const v = x.reduce((a, b) => a + (b - mu) ** 2, 0) / cols;
    return x.map((xi, j) => ((xi - mu) / Math.sqrt(v + eps)) * gamma[j] + beta[j]);
  }

  it('gamma = 1, beta = 0: every row has mean ~0 and variance ~1', () => {
    const n = 500;
    const q = rowsInt8(n, 31);
    const aff = quantizeLayerNormAffine(new Float32Array(cols).fill(1), new Float32Array(cols), cols);
    const out = iLayerNorm(q, S8, n, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits, eps: 0 });
    for (let row = 0; row < n; row++) {
      let m = 0,
        v = 0;
      for (let j = 0; j < cols; j++) m += out.q[row * cols + j] * out.scale;
      m /= cols;
      for (let j = 0; j < cols; j++) v += (out.q[row * cols + j] * out.scale - m) ** 2;
      v /= cols;
      // The mean is removed exactly (d = C q - sum), so only the output rounding (2^-fracBits)
      // shifts it; the variance is off by 2x the relative error of s = isqrt(.) (< 2^-20 after
      // the 4^t scaling) plus rounding of n: far below 1e-3.
      assert.ok(Math.abs(m) < 2 ** -aff.fracBits, `row ${row} mean ${m}`);
      assert.ok(Math.abs(v - 1) < 1e-3, `row ${row} variance ${v}`);
    }
  });

  it('random gamma/beta, eps 1e-5: max error within the derived bound', () => {
    const n = 500;
    const q = rowsInt8(n, 32);
    const r = mulberry32(33);
    const gamma = Float32Array.from({ length: cols }, () => 0.5 + r());
    const beta = Float32Array.from({ length: cols }, () => r() - 0.5);
    const aff = quantizeLayerNormAffine(gamma, beta, cols);
    const out = iLayerNorm(q, S8, n, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits, eps: 1e-5 });
    // Bound: normalized value n = x_hat 2^F rounded (0.5 LSB) with x_hat's relative error from
    // s (isqrt floor: 1/s < 2^-20) and the Q31 reciprocal (2^-30): |x_hat| <= 8 -> < 1e-5;
    // gamma rounding: |x_hat| * 0.5 gammaScale; beta rounding: 0.5 output LSB.
    const gmax = Math.max(...gamma);
    const outLsb = out.scale;
    const bound = gmax * (0.5 * 2 ** -aff.fracBits + 8 * 2 ** -19) + 8 * 0.5 * aff.gammaScale + outLsb;
    let max = 0,
      sum = 0;
    for (let row = 0; row < n; row++) {
      const ref = floatLn(q, S8, row, gamma, beta, 1e-5);
      for (let j = 0; j < cols; j++) {
        const e = Math.abs(out.q[row * cols + j] * out.scale - ref[j]);
        max = Math.max(max, e);
        sum += e;
      }
    }
    assert.ok(max <= bound, `max ${max} > bound ${bound}`);
    assert.ok(sum / (n * cols) < bound / 2, `mean ${sum / (n * cols)}`);
  });

  it('int32 inputs with a huge spread take the dynamic right shift and stay accurate', () => {
    const r = mulberry32(34);
    const n = 50;
    const q = Int32Array.from({ length: n * cols }, () => Math.round((r() - 0.5) * 2 ** 31 * 0.999));
    const S = 1e-9;
    const aff = quantizeLayerNormAffine(new Float32Array(cols).fill(1), new Float32Array(cols), cols);
    const out = iLayerNorm(q, S, n, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits });
    let max = 0;
    for (let row = 0; row < n; row++) {
      const ref = floatLn(q, S, row, new Float32Array(cols).fill(1), new Float32Array(cols), 1e-5);
      for (let j = 0; j < cols; j++) max = Math.max(max, Math.abs(out.q[row * cols + j] * out.scale - ref[j]));
    }
    // The shift keeps 22 bits of d: relative error ~2^-21 on values <= 8, plus output rounding.
    assert.ok(max < 1e-3, `${max}`);
  });

  it('a constant row gives beta; epsilon dominates tiny variances like the float op', () => {
    const aff = quantizeLayerNormAffine(new Float32Array(4).fill(1), Float32Array.of(0.1, 0.2, 0.3, 0.4), 4);
    const out = iLayerNorm(Int32Array.of(5, 5, 5, 5, 1, 0, 0, 0), 1e-4, 2, 4, aff.gammaInt, aff.betaInt, {
      gammaScale: aff.gammaScale,
      fracBits: aff.fracBits,
      eps: 1e-5,
    });
    const got = Array.from(out.q, (v) => v * out.scale);
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(got[j] - (j + 1) / 10) < 1e-4);
    // Row 2: x = [1e-4, 0, 0, 0], var = 1.875e-9 << eps: output ~ (x - mu)/sqrt(1e-5) + beta.
    const mu = 0.25e-4,
      v = (0.75e-4 ** 2 + 3 * 0.25e-4 ** 2) / 4;
    const ref = [1e-4 - mu, -mu, -mu, -mu].map((d, j) => d / Math.sqrt(v + 1e-5) + (j + 1) / 10);
    for (let j = 0; j < 4; j++) assert.ok(Math.abs(got[4 + j] - ref[j]) < 1e-3, `${got[4 + j]} vs ${ref[j]}`);
  });

  it('refuses a fracBits that could overflow int32', () => {
    const aff = quantizeLayerNormAffine(new Float32Array(cols).fill(1), new Float32Array(cols), cols);
    assert.throws(
      () => iLayerNorm(new Int32Array(cols), 1, 1, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits + 3 }),
      RangeError,
    );
  });
});
