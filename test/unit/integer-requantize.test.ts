import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  multiplyByQuantizedMultiplier,
  quantizeMultiplier,
  realMultiplierF32,
  requantizeFixedPoint,
  requantizeFloat,
  roundingDivideByPOT,
  saturatingRoundingDoublingHighMul as srdhm,
} from '../../engine/integer/requantize';
import { mulberry32 as rng } from '../helpers/rng';

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

const randInt32 = (r: () => number) => Math.floor(r() * 4294967296) | 0;

/** gemmlowp's formula transcribed with BigInt (64-bit product, C truncating division). */
function srdhmBig(a: number, b: number): number {
  if (a === INT32_MIN && b === INT32_MIN) return INT32_MAX;
  const ab = BigInt(a) * BigInt(b);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  return Number((ab + nudge) / (1n << 31n)); // BigInt division truncates toward zero, like C
}

describe('quantizeMultiplier (M = M0 * 2^-31 * 2^shift, M0 in [2^30, 2^31))', () => {
  it('hand-computed values', () => {
    // 0.5 = 0.5 * 2^0: M0 = 0.5 * 2^31 = 2^30.
    assert.deepEqual(quantizeMultiplier(0.5), { multiplier: 2 ** 30, shift: 0 });
    // 0.25 = 0.5 * 2^-1.
    assert.deepEqual(quantizeMultiplier(0.25), { multiplier: 2 ** 30, shift: -1 });
    // 1.5 = 0.75 * 2^1: M0 = 0.75 * 2^31 = 1610612736; a multiplier > 1 shifts left.
    assert.deepEqual(quantizeMultiplier(1.5), { multiplier: 1610612736, shift: 1 });
    // 1 = 0.5 * 2^1.
    assert.deepEqual(quantizeMultiplier(1), { multiplier: 2 ** 30, shift: 1 });
    // 1e-4 = 0.8192 * 2^-13 (2^-13 = 1.2207e-4 > 1e-4 >= 2^-14): M0 = round(0.8192 * 2^31)
    // = round(1759218604.4416) = 1759218604.
    assert.deepEqual(quantizeMultiplier(1e-4), { multiplier: 1759218604, shift: -13 });
    // A mantissa rounding up to 2^31 is renormalized: (1 - 2^-33) -> 2^30 * 2^-31 * 2^1 = 1.
    assert.deepEqual(quantizeMultiplier(1 - 2 ** -33), { multiplier: 2 ** 30, shift: 1 });
    assert.deepEqual(quantizeMultiplier(0), { multiplier: 0, shift: 0 });
  });

  it('tiny multipliers flush to zero like TFLite, huge ones are refused', () => {
    // 2^-33 = 0.5 * 2^-32: shift -32 would move every bit of an int32 out.
    assert.deepEqual(quantizeMultiplier(2 ** -33), { multiplier: 0, shift: 0 });
    // 2^-32 = 0.5 * 2^-31 is the smallest kept.
    assert.deepEqual(quantizeMultiplier(2 ** -32), { multiplier: 2 ** 30, shift: -31 });
    assert.throws(() => quantizeMultiplier(2 ** 30), RangeError);
    assert.throws(() => quantizeMultiplier(-0.5), RangeError);
    assert.throws(() => quantizeMultiplier(Number.NaN), RangeError);
  });

  it('M0 always lies in [2^30, 2^31) and reconstructs M to 2^-31 relative', () => {
    const r = rng(7);
    for (let i = 0; i < 20000; i++) {
      const m = Math.exp((r() - 0.5) * 40); // about 2e-9 .. 5e8
      const q = quantizeMultiplier(m);
      assert.ok(q.multiplier >= 2 ** 30 && q.multiplier < 2 ** 31, `${m}: ${q.multiplier}`);
      const back = q.multiplier * 2 ** (q.shift - 31);
      assert.ok(Math.abs(back - m) <= m * 2 ** -31, `${m} -> ${back}`);
    }
  });
});

describe('SaturatingRoundingDoublingHighMul', () => {
  it('edge cases', () => {
    // The only overflow: (-1) * (-1) in Q31 is +1, not representable; saturates.
    assert.equal(srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    // (2^31-1)^2 / 2^31 = 2^31 - 2 + 2^-31 -> 2147483646.
    assert.equal(srdhm(INT32_MAX, INT32_MAX), 2147483646);
    // -2^31 (2^31-1) / 2^31 = -(2^31 - 1) exactly.
    assert.equal(srdhm(INT32_MIN, INT32_MAX), -2147483647);
    assert.equal(srdhm(INT32_MIN, 1), -1); // -2^31 / 2^31 = -1 exactly
    assert.equal(srdhm(0, INT32_MIN), 0);
    assert.equal(srdhm(12345, 0), 0);
    // Ties go up (toward +infinity), the net effect of gemmlowp's nudge + truncation:
    assert.equal(srdhm(2 ** 30, 1), 1); // 2^30 / 2^31 = 0.5 -> 1
    assert.equal(srdhm(-(2 ** 30), 1), 0); // -0.5 -> 0 (not -1)
    assert.equal(srdhm(-1610612736, 2), -1); // -3*2^30 / 2^31 = -1.5 -> -1
    assert.ok(Object.is(srdhm(-1, 1), 0)); // -2^-31 -> 0, and never -0
  });

  it('equals the 64-bit BigInt formula on edge values and 200k random pairs', () => {
    const edges = [
      INT32_MIN,
      INT32_MIN + 1,
      -(2 ** 30) - 1,
      -(2 ** 30),
      -65537,
      -65536,
      -65535,
      -2,
      -1,
      0,
      1,
      2,
      65535,
      65536,
      2 ** 30,
      INT32_MAX - 1,
      INT32_MAX,
    ];
    for (const a of edges) for (const b of edges) assert.equal(srdhm(a, b), srdhmBig(a, b), `${a} * ${b}`);
    const r = rng(1);
    for (let i = 0; i < 200000; i++) {
      const a = randInt32(r),
        b = randInt32(r);
      const got = srdhm(a, b),
        want = srdhmBig(a, b);
      if (got !== want) assert.fail(`srdhm(${a}, ${b}) = ${got}, expected ${want}`);
    }
  });
});

describe('RoundingDivideByPOT (round half away from zero)', () => {
  it('ties, worked by hand', () => {
    // -5 / 2 = -2.5. mask = 1, remainder = -5 & 1 = 1, threshold = (1 >> 1) + 1 (x < 0) = 1,
    // -5 >> 1 = -3 (floor); 1 > 1 is false so no correction: -3, away from zero.
    assert.equal(roundingDivideByPOT(-5, 1), -3);
    // 5 / 2 = 2.5: remainder 1 > threshold 0, so 5 >> 1 = 2 becomes 3.
    assert.equal(roundingDivideByPOT(5, 1), 3);
    assert.equal(roundingDivideByPOT(-3, 1), -2); // -1.5 -> -2
    assert.equal(roundingDivideByPOT(-1, 1), -1); // -0.5 -> -1
    // -6 / 4 = -1.5: remainder -6 & 3 = 2, threshold 1 + 1 = 2, -6 >> 2 = -2; 2 > 2 false: -2.
    assert.equal(roundingDivideByPOT(-6, 2), -2);
    // -5 / 4 = -1.25: remainder 3 > 2, so -5 >> 2 = -2 becomes -1.
    assert.equal(roundingDivideByPOT(-5, 2), -1);
    assert.equal(roundingDivideByPOT(-4, 1), -2); // exact
  });

  it('extreme exponents', () => {
    assert.equal(roundingDivideByPOT(123, 0), 123);
    assert.equal(roundingDivideByPOT(INT32_MAX, 31), 1); // 0.99999 -> 1
    assert.equal(roundingDivideByPOT(INT32_MIN, 31), -1); // exactly -1
    assert.equal(roundingDivideByPOT(2 ** 30, 31), 1); // 0.5 -> 1
    assert.equal(roundingDivideByPOT(-(2 ** 30), 31), -1); // -0.5 -> -1
    assert.throws(() => roundingDivideByPOT(1, 32), RangeError);
  });

  it('equals round-half-away-from-zero of x / 2^e for random values', () => {
    const r = rng(3);
    for (let i = 0; i < 100000; i++) {
      const x = randInt32(r),
        e = Math.floor(r() * 32);
      const q = x / 2 ** e; // exact in double
      const want = q < 0 ? -Math.round(-q) : Math.round(q);
      assert.equal(roundingDivideByPOT(x, e), want + 0, `${x} / 2^${e}`);
    }
  });
});

describe('MultiplyByQuantizedMultiplier', () => {
  it('hand-computed', () => {
    const half = quantizeMultiplier(0.5);
    // 0.5 * 5 = 2.5: SRDHM(5, 2^30) = round-up(2.5) = 3.
    assert.equal(multiplyByQuantizedMultiplier(5, half.multiplier, half.shift), 3);
    const quarter = quantizeMultiplier(0.25);
    // 0.25 * -10 = -2.5: SRDHM gives -5 exactly, then RoundingDivideByPOT(-5, 1) = -3.
    assert.equal(multiplyByQuantizedMultiplier(-10, quarter.multiplier, quarter.shift), -3);
    const oneHalf = quantizeMultiplier(1.5);
    // 1.5 * 1000 = 1500: left shift 1 then 0.75 in Q31.
    assert.equal(multiplyByQuantizedMultiplier(1000, oneHalf.multiplier, oneHalf.shift), 1500);
    // Saturate to the output range after adding the zero point.
    assert.equal(requantizeFixedPoint(1000, oneHalf.multiplier, oneHalf.shift, 10, -128, 127), 127);
    assert.equal(requantizeFixedPoint(-20, half.multiplier, half.shift, 3, -128, 127), -7);
  });

  it('property: for random int32 accumulators and M in (1e-6, 1), |fixed - round(acc*M)| <= 1', () => {
    const r = rng(11);
    let worst = 0;
    let differ = 0;
    const n = 200000;
    for (let i = 0; i < n; i++) {
      const acc = randInt32(r);
      const M = Math.exp(Math.log(1e-6) * r()); // log-uniform in (1e-6, 1]
      if (!(M > 1e-6 && M < 1)) continue;
      const q = quantizeMultiplier(M);
      const fixed = multiplyByQuantizedMultiplier(acc, q.multiplier, q.shift);
      const exact = Math.round(acc * M);
      const d = Math.abs(fixed - exact);
      if (d > worst) worst = d;
      if (d !== 0) differ++;
      if (d > 1) assert.fail(`acc ${acc}, M ${M}: fixed ${fixed}, round ${exact}`);
    }
    assert.ok(worst <= 1);
    // Two roundings (SRDHM, then the shift) disagree with one rounding only near ties.
    assert.ok(differ < n / 10, `${differ} of ${n} differ`);
  });
});

describe('float requantization (ONNX QLinear*)', () => {
  it('rounds half to even, adds the zero point, saturates', () => {
    assert.equal(requantizeFloat(5, 0.5, 0, 0, 255), 2); // 2.5 -> 2
    assert.equal(requantizeFloat(7, 0.5, 0, 0, 255), 4); // 3.5 -> 4
    assert.equal(requantizeFloat(-5, 0.5, 10, 0, 255), 8); // -2.5 -> -2, + 10
    assert.equal(requantizeFloat(1000, 1, 0, -128, 127), 127);
    assert.equal(requantizeFloat(-1000, 1, 0, -128, 127), -128);
  });

  it('float32 and float64 products differ where float(acc) rounds (|acc| > 2^24)', () => {
    // float32(16777217) = 16777216: onnxruntime's float32 path loses the last unit.
    assert.equal(requantizeFloat(16777217, 1, 0, -(2 ** 31), 2 ** 31 - 1, 'float32'), 16777216);
    assert.equal(requantizeFloat(16777217, 1, 0, -(2 ** 31), 2 ** 31 - 1, 'float64'), 16777217);
  });

  it('the multiplier is (s_in * s_w) / s_out in float32, in that order', () => {
    const [a, b, c] = [0.0066, 0.00705, 0.0107].map(Math.fround);
    assert.equal(realMultiplierF32(a, b, c), Math.fround(Math.fround(a * b) / c));
  });
});
