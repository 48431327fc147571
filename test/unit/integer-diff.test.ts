/**
 * LayerDiff: the three-way code diff (simulation, onnxruntime, integer reference) and its root
 * causes, on hand-built layers whose expected labels and counts are derived here independently
 * (BigInt gemmlowp pipeline, Math.fround float32 requantization, counts by hand), and on a real
 * onnxruntime QDQ Conv.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { roundFixedExact } from '../../engine/integer/diffArith';
import { qlinearConv } from '../../engine/integer/qlinear';
import { type Codes, type IntegerLayerSpec, LayerDiff, type LayerDiffResult } from '../../engine/integer/layerDiff';
import { encodeModel, loadModel } from '../../engine/onnx/model';
import { buildModel, DT, makeNode, makeTensor, randn, rng, tempDir, valueInfo } from '../helpers/tinyModels';

/**
 * These tests pin gemmlowp's classic double-rounding requantization (the reference's
 * 'double-rounding' option); the default single rounding is checked against onnxruntime below.
 */
const gemmlowpDiff = (spec: ConstructorParameters<typeof LayerDiff>[0]) => new LayerDiff(spec, { requantization: 'double-rounding' });

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Independent arithmetic (BigInt / Math.fround), not the engine's.

/** frexp-based (M0, shift) for a multiplier in (0, 1): M = M0 * 2^(shift - 31), M0 in [2^30, 2^31). */
function multiplierOf(m: number): { m0: number; shift: number } {
  let e = 0,
    q = m;
  while (q < 0.5) {
    q *= 2;
    e--;
  }
  while (q >= 1) {
    q /= 2;
    e++;
  }
  let m0 = Math.round(q * 2 ** 31);
  if (m0 === 2 ** 31) {
    m0 /= 2;
    e++;
  }
  return { m0, shift: e };
}

/** gemmlowp SaturatingRoundingDoublingHighMul + RoundingDivideByPOT with 64-bit BigInt products. */
function bigFixed(acc: number, m0: number, shift: number): number {
  const left = BigInt(Math.max(shift, 0)),
    right = BigInt(Math.max(-shift, 0));
  const a = BigInt.asIntN(32, BigInt(acc) << left);
  const ab = a * BigInt(m0);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  const hi = (ab + nudge) / (1n << 31n); // BigInt division truncates like C
  const mask = (1n << right) - 1n;
  const rem = hi & mask;
  const threshold = (mask >> 1n) + (hi < 0n ? 1n : 0n);
  return Number((hi >> right) + (rem > threshold ? 1n : 0n));
}

function halfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** onnxruntime's requantization: float32((s_in*s_w)/s_out), float32 product, ties to even. */
function f32Code(acc: number, sIn: number, sW: number, sOut: number): number {
  const m = Math.fround(Math.fround(Math.fround(sIn) * Math.fround(sW)) / Math.fround(sOut));
  return halfEven(Math.fround(Math.fround(acc) * m));
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const causesOf = (s: { causes: { cause: string; count: number }[] }) => Object.fromEntries(s.causes.map((c) => [c.cause, c.count]));
const codes = (c: ArrayLike<number>, zeroPoint: number, dims: number[]): Codes => ({ codes: c, zeroPoint, dims });

function matmulSpec(over: Partial<IntegerLayerSpec> & Pick<IntegerLayerSpec, 'weight' | 'input' | 'output'>): IntegerLayerSpec {
  return { op: 'MatMul', attrs: {}, ...over };
}

// ---------------------------------------------------------------------------------------------

describe('roundFixedExact', () => {
  it('equals a BigInt single rounding of acc * M0 * 2^(shift-31) for both tie rules', () => {
    const r = rng(5);
    const accs = [0, 1, -1, 2147483647, -2147483648, 1 << 30, -(1 << 30), 12345, -12345];
    for (let i = 0; i < 3000; i++) accs.push(Math.floor((r() - 0.5) * 2 ** (1 + Math.floor(r() * 32))));
    const ms: { m0: number; shift: number }[] = [
      { m0: 2 ** 30, shift: -2 },
      { m0: 2 ** 31 - 1, shift: 0 },
      { m0: 2 ** 30, shift: -30 },
    ];
    for (let i = 0; i < 40; i++) ms.push({ m0: 2 ** 30 + Math.floor(r() * 2 ** 30), shift: -Math.floor(r() * 30) + (i % 7 === 0 ? 3 : 0) });
    for (const { m0, shift } of ms)
      for (const acc of accs) {
        const R = 31n - BigInt(shift);
        const p = BigInt(acc) * BigInt(m0);
        const mag = p < 0n ? -p : p;
        const q = mag >> R;
        const rem = mag - (q << R),
          half = 1n << (R - 1n);
        const even = rem > half || (rem === half && (q & 1n) === 1n) ? q + 1n : q;
        const away = rem >= half ? q + 1n : q;
        for (const [tie, expectMag] of [
          ['half-even', even],
          ['half-away', away],
        ] as const) {
          let expect = Number(p < 0n ? -expectMag : expectMag);
          if (Math.abs(expect) >= 2 ** 40) expect = Math.sign(expect) * 2 ** 40;
          assert.equal(roundFixedExact(acc, m0, shift, tie), expect, `acc ${acc} m0 ${m0} shift ${shift} ${tie}`);
        }
      }
  });
});

describe('requantization: float32 (onnxruntime) vs fixed point (reference)', () => {
  it('M = 1/8: ties and gemmlowp double rounding, 32 of 256 codes, all "requantization"', () => {
    // K = 1, weight 1: the accumulator IS the input code x in [-128, 127]; v = x / 8.
    const x = Int8Array.from({ length: 256 }, (_, i) => i - 128);
    const spec = matmulSpec({
      weight: { codes: Int8Array.of(1), dims: [1, 1], scale: [0.25], zeroPoint: [0], axis: null },
      input: { scale: 0.5, zeroPoint: 0, type: 'int8' },
      output: { scale: 1, zeroPoint: 0, type: 'int8' },
    });
    const { m0, shift } = multiplierOf(0.125);
    assert.deepEqual({ m0, shift }, { m0: 2 ** 30, shift: -2 });
    const ortCodes = Array.from(x, (v) => f32Code(v, 0.5, 0.25, 1));
    const refCodes = Array.from(x, (v) => bigFixed(v, m0, shift));
    const differ = x.filter((_, i) => ortCodes[i] !== refCodes[i]);
    // By hand. (1) Ties x = 8j + 4, v = j + 1/2: ONNX rounds to even, gemmlowp away from zero;
    // they differ when |v| - 1/2 is even: j in {0, 2, ..., 14} and {-1, -3, ..., -15}: 16.
    // (2) Double rounding: SaturatingRoundingDoublingHighMul(x, 2^30) = round(x / 2), ties up,
    // then RoundingDivideByPOT(., 2). For x = 8j + 3 >= 0, x/2 = 4j + 1.5 rounds to 4j + 2, which
    // is a tie again and goes to j + 1 while v = j + 0.375 rounds to j: 16 more (x = 3, ..., 123).
    // (For x < 0 the first rounding goes up, towards zero, and the two agree.)
    const byHand = [
      ...[0, 2, 4, 6, 8, 10, 12, 14].map((j) => 8 * j + 4),
      ...[-1, -3, -5, -7, -9, -11, -13, -15].map((j) => 8 * j + 4),
      ...Array.from({ length: 16 }, (_, j) => 8 * j + 3),
    ].sort((p, q) => p - q);
    assert.deepEqual(Array.from(differ), byHand);
    const d = gemmlowpDiff(spec);
    // Simulation: exact math, ties to even (equal to onnxruntime here: M is exact in float32).
    d.add(codes(x, 0, [256, 1]), codes(ortCodes, 0, [256, 1]), codes(ortCodes, 0, [256, 1]));
    const res = d.result();
    assert.equal(res.elements, 256);
    assert.deepEqual(causesOf(res.referenceVsOrt), { requantization: 32 });
    assert.equal(res.referenceVsOrt.mismatchRate, 32 / 256);
    assert.equal(res.referenceVsOrt.maxLsb, 1);
    // reference - onnxruntime: +1 for the 24 positive cases, -1 for the 8 negative ties.
    const h = res.referenceVsOrt.lsbHistogram;
    assert.deepEqual(h.lsb, [-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(h.counts[h.lsb.indexOf(1)], 24);
    assert.equal(h.counts[h.lsb.indexOf(-1)], 8);
    assert.equal(h.counts[h.lsb.indexOf(0)], 224);
    assert.equal(res.simulatedVsOrt.mismatchRate, 0);
    // Against the reference, the simulation (exact, ties to even) differs at the 16 ties by the
    // tie rule and at the 16 double roundings by the fixed-point requantization itself.
    assert.deepEqual(causesOf(res.simulatedVsReference), { 'rounding-mode': 16, requantization: 16 });
    assert.equal(res.roundingModes.halfEven, 0);
    assert.equal(res.roundingModes.halfAwayFromZero, 16 / 256);
    assert.equal(res.u8s8.applicable, false);
  });

  it('float32 precision: int16 codes, M ~ 0.9, every float32-vs-fixed difference is "requantization"', () => {
    const x = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
    const sIn = 0.0123,
      sW = 0.00731,
      sOut = (0.0123 * 0.00731) / 0.9137;
    const spec = matmulSpec({
      weight: { codes: Int8Array.of(1), dims: [1, 1], scale: [sW], zeroPoint: [0], axis: null },
      input: { scale: sIn, zeroPoint: 0, type: 'int16' },
      output: { scale: sOut, zeroPoint: 0, type: 'int16' },
    });
    const { m0, shift } = multiplierOf((Math.fround(sIn) * Math.fround(sW)) / Math.fround(sOut));
    const ortCodes = Array.from(x, (v) => clamp(f32Code(v, sIn, sW, sOut), -32768, 32767));
    const refCodes = Array.from(x, (v) => clamp(bigFixed(v, m0, shift), -32768, 32767));
    const expected = ortCodes.filter((c, i) => c !== refCodes[i]).length;
    assert.ok(expected > 20, `only ${expected} differences`);
    const d = gemmlowpDiff(spec);
    d.add(codes(x, 0, [65536, 1]), codes(ortCodes, 0, [65536, 1]), codes(ortCodes, 0, [65536, 1]));
    const res = d.result();
    assert.deepEqual(causesOf(res.referenceVsOrt), { requantization: expected });
    assert.equal(res.referenceVsOrt.maxLsb, 1);
  });
});

describe('zero points', () => {
  // K = 1, weight 1, int16 input; v = x * 0.01.
  const spec = matmulSpec({
    weight: { codes: Int8Array.of(1), dims: [1, 1], scale: [0.01], zeroPoint: [0], axis: null },
    input: { scale: 1, zeroPoint: 0, type: 'int16' },
    output: { scale: 1, zeroPoint: 0, type: 'int8' },
  });

  it('narrow range (-127 vs -128), onnxruntime on a uint8 grid with zero point 128, and an unexplained +3', () => {
    const x = Int16Array.of(-20000, -12800, 500, 1000, -300);
    // Exact: -200 -> -128 (saturated), -128, 5, 10, -3.
    const ortRel = [-127, -127, 8, 10, -3]; // narrow range twice, then +3 (no arithmetic explains it)
    const ortCodes = Uint8Array.from(ortRel, (v) => v + 128);
    const d = gemmlowpDiff(spec);
    d.add(codes(x, 0, [5, 1]), codes(ortCodes, 128, [5, 1]), codes(Int8Array.of(-128, -128, 5, 10, -3), 0, [5, 1]));
    const res = d.result();
    assert.deepEqual(causesOf(res.referenceVsOrt), { 'zero-point': 2, unexplained: 1 });
    assert.equal(res.referenceVsOrt.maxLsb, 3);
    assert.equal(res.simulatedVsReference.mismatchRate, 0);
    // Simulation vs onnxruntime: the bound -128 vs -127 is "saturation" (one side clamped).
    assert.equal(causesOf(res.simulatedVsOrt).saturation, 2);
  });

  it('input codes carry zero point 3 while onnxruntime subtracted the spec\'s 0: "zero-point"', () => {
    const x = Int16Array.of(503, 1003, 3);
    // Weight 100 at scale 0.01: one output LSB per input code. Reference (zero point 3): x - 3;
    // onnxruntime (zero point 0): x; both saturate at 127 except for x = 3: 0 vs 3.
    const spec2: IntegerLayerSpec = { ...spec, weight: { ...spec.weight, codes: Int8Array.of(100) } };
    const ortRel = Array.from(x, (v) => clamp(v, -128, 127));
    const d = gemmlowpDiff(spec2);
    d.add(codes(x, 3, [3, 1]), codes(ortRel, 0, [3, 1]), codes(ortRel, 0, [3, 1]));
    const res = d.result();
    assert.deepEqual(causesOf(res.referenceVsOrt), { 'zero-point': 1 });
  });
});

describe('u8s8 pairwise int16 saturation (VPMADDUBSW without VNNI)', () => {
  // Conv, 2 input channels, 3x3 kernel, pads 1 on a 3x3 image; onnxruntime's reduction order
  // pairs the two input channels of each kernel tap.
  const convSpec = (w: number[]): IntegerLayerSpec => ({
    op: 'Conv',
    attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] },
    weight: { codes: Int8Array.from(w), dims: [w.length / 18, 2, 3, 3], scale: [0.01], zeroPoint: [0], axis: null },
    input: { scale: 0.04, zeroPoint: 0, type: 'uint8' },
    output: { scale: 1.6, zeroPoint: 0, type: 'uint8' }, // M = 1/4000
  });
  const W0 = new Array(18).fill(127); // filter 0: both channels 127
  const W1 = [...new Array(9).fill(127), ...new Array(9).fill(-127)]; // filter 1: 127 and -127

  it('activations 255 on both channels x weights 127: 49 saturated pairs, 9 changed outputs', () => {
    const x = new Uint8Array(2 * 9).fill(255);
    const spec = convSpec([...W0, ...W1]);
    // By hand: output pixel (i, j) sees taps = rows in bounds x columns in bounds: corners 2x2,
    // edges 2x3, centre 3x3; each tap's pair 255*127 + 255*127 = 64770 > 32767 saturates in
    // filter 0 (4*4 + 4*6 + 9 = 49 pairs); filter 1's pairs are 255*127 - 255*127 = 0.
    const taps = [4, 6, 4, 6, 9, 6, 4, 6, 4];
    const M = (0.04 * 0.01) / 1.6;
    const exact = [...taps.map((t) => t * 64770), ...taps.map(() => 0)];
    const sat = [...taps.map((t) => t * 32767), ...taps.map(() => 0)];
    const { m0, shift } = multiplierOf(M);
    const exactCodes = exact.map((a) => clamp(bigFixed(a, m0, shift), 0, 255));
    const satCodes = sat.map((a) => clamp(bigFixed(a, m0, shift), 0, 255));
    const changed = exactCodes.filter((c, i) => c !== satCodes[i]).length;
    assert.equal(changed, 9); // 64.8 -> 32.8, 97.2 -> 49.1, 145.7 -> 73.7: all differ
    // onnxruntime on an AVX2 machine without VNNI: requantizes the saturated sums (float32).
    const ortCodes = sat.map((a) => clamp(f32Code(a, 0.04, 0.01, 1.6), 0, 255));
    const d = gemmlowpDiff(spec);
    d.add(codes(x, 0, [1, 2, 3, 3]), codes(ortCodes, 0, [1, 2, 3, 3]), codes(exactCodes, 0, [1, 2, 3, 3]));
    const res = d.result();
    assert.deepEqual(res.u8s8, { applicable: true, saturatedPairs: 49, changedOutputs: 9, elements: 18 });
    assert.deepEqual(causesOf(res.referenceVsOrt), { 'u8s8-saturation': 9 });
    assert.deepEqual(causesOf(res.simulatedVsOrt), { 'u8s8-saturation': 9 });
    assert.equal(res.simulatedVsReference.mismatchRate, 0);
  });

  it('pairs are adjacent CHANNELS (HWC order): 255 on channel 0 only never saturates', () => {
    // In ONNX's CHW order adjacent K would be two taps of channel 0: 255*127*2 would saturate.
    const x = new Uint8Array(18);
    x.fill(255, 0, 9);
    const w = [...new Array(9).fill(127), ...new Array(9).fill(0)];
    const d = gemmlowpDiff(convSpec(w));
    const out = new Array(9).fill(0);
    d.add(codes(x, 0, [1, 2, 3, 3]), codes(out, 0, [1, 1, 3, 3]), codes(out, 0, [1, 1, 3, 3]));
    const res = d.result();
    assert.equal(res.u8s8.applicable, true);
    assert.equal(res.u8s8.saturatedPairs, 0);
    assert.equal(res.u8s8.changedOutputs, 0);
  });

  it('small values (<= 100 x <= 100) never saturate; int8 activations are not applicable', () => {
    const r = rng(3);
    const K = 16,
      N = 4,
      rows = 32;
    const w = Int8Array.from({ length: K * N }, () => Math.floor(r() * 201) - 100);
    const x = Uint8Array.from({ length: rows * K }, () => Math.floor(r() * 101));
    const spec = matmulSpec({
      weight: { codes: w, dims: [K, N], scale: [0.01], zeroPoint: [0], axis: null },
      input: { scale: 0.02, zeroPoint: 0, type: 'uint8' },
      output: { scale: 0.5, zeroPoint: 0, type: 'int8' },
    });
    const out = new Array(rows * N).fill(0);
    const d = gemmlowpDiff(spec);
    d.add(codes(x, 0, [rows, K]), codes(out, 0, [rows, N]), codes(out, 0, [rows, N]));
    assert.deepEqual(d.result().u8s8, { applicable: true, saturatedPairs: 0, changedOutputs: 0, elements: rows * N });
    const d8 = gemmlowpDiff({ ...spec, input: { ...spec.input, type: 'int8' } });
    d8.add(
      codes(
        Int8Array.from(x, (v) => v - 128),
        -128,
        [rows, K],
      ),
      codes(out, 0, [rows, N]),
      codes(out, 0, [rows, N]),
    );
    assert.deepEqual(d8.result().u8s8, { applicable: false, saturatedPairs: 0, changedOutputs: 0, elements: 0 });
  });
});

describe('accumulator overflow', () => {
  it('int16 x int16, K = 4: two rows leave int32 and are labelled "accumulator-overflow"', () => {
    const x = Int16Array.from([
      32767,
      32767,
      0,
      0, // 2 * 32767^2 = 2147352578: fits (INT32_MAX = 2147483647)
      32767,
      32767,
      1000,
      0, // 2180119578: overflows
      -32768,
      -32768,
      -32768,
      -32768, // -4 * 32768 * 32767 = -4294836224: overflows
      1,
      2,
      3,
      4, // 327670
    ]);
    const spec = matmulSpec({
      weight: { codes: Int16Array.from([32767, 32767, 32767, 32767]), dims: [4, 1], scale: [1], zeroPoint: [0], axis: null },
      input: { scale: 1, zeroPoint: 0, type: 'int16' },
      output: { scale: 131072, zeroPoint: 0, type: 'int16' },
    });
    const exact = [2147352578, 2180119578, -4294836224, 327670];
    // onnxruntime-like codes from a 64-bit accumulator: round(exact / 2^17).
    const ortCodes = exact.map((a) => halfEven(a / 131072));
    assert.deepEqual(ortCodes, [16383, 16633, -32767, 2]);
    // The reference keeps the int32 the hardware keeps: wrapped modulo 2^32.
    const wrapped = exact.map((a) => a - 2 ** 32 * Math.round(a / 2 ** 32));
    const { m0, shift } = multiplierOf(1 / 131072);
    const refCodes = wrapped.map((a) => clamp(bigFixed(a, m0, shift), -32768, 32767));
    assert.deepEqual(refCodes, [16383, -16135, 1, 2]);
    const d = gemmlowpDiff(spec);
    d.add(codes(x, 0, [4, 4]), codes(ortCodes, 0, [4, 1]), codes(ortCodes, 0, [4, 1]));
    const res = d.result();
    assert.equal(res.accumulatorOverflows, 2);
    assert.deepEqual(causesOf(res.referenceVsOrt), { 'accumulator-overflow': 2 });
    assert.equal(res.referenceVsOrt.maxLsb, 32768); // 1 - (-32767), unclamped
    const h = res.referenceVsOrt.lsbHistogram;
    assert.equal(h.counts[0], 1); // -16135 - 16633 = -32768, counted in the -8 bin
    assert.equal(h.counts[16], 1); // 1 - (-32767) = +32768, counted in the +8 bin
    assert.deepEqual(causesOf(res.simulatedVsReference), { 'accumulator-overflow': 2 });
  });
});

describe('layout and attributes', () => {
  it('Gemm transA/transB and MatMul give the same diff; grouped strided Conv matches a direct loop', () => {
    const r = rng(21);
    const M = 6,
      K = 10,
      N = 3;
    const a = Uint8Array.from({ length: M * K }, () => Math.floor(r() * 256));
    const b = Int8Array.from({ length: K * N }, () => Math.floor(r() * 256) - 128);
    const base = {
      input: { scale: 0.02, zeroPoint: 7, type: 'uint8' as const },
      output: { scale: 0.9, zeroPoint: 3, type: 'int8' as const },
    };
    const zps = [1, -2, 0],
      scales = [0.01, 0.02, 0.015];
    const bias = Int32Array.of(100, -50, 7);
    const aT = new Uint8Array(M * K),
      bT = new Int8Array(K * N);
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) aT[k * M + m] = a[m * K + k];
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) bT[n * K + k] = b[k * N + n];
    // Independent exact sums -> reference codes.
    const ref: number[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = bias[n];
        for (let k = 0; k < K; k++) s += (a[m * K + k] - 7) * (b[k * N + n] - zps[n]);
        const q = multiplierOf((Math.fround(0.02) * Math.fround(scales[n])) / Math.fround(0.9));
        ref.push(clamp(bigFixed(s, q.m0, q.shift) + 3, -128, 127));
      }
    const mm = gemmlowpDiff({ op: 'MatMul', attrs: {}, weight: { codes: b, dims: [K, N], scale: scales, zeroPoint: zps, axis: 1 }, bias, ...base });
    mm.add(codes(a, 7, [M, K]), codes(ref, 3, [M, N]), codes(ref, 3, [M, N]));
    const gm = gemmlowpDiff({
      op: 'Gemm',
      attrs: { transA: 1, transB: 1 },
      weight: { codes: bT, dims: [N, K], scale: scales, zeroPoint: zps, axis: 0 },
      bias,
      ...base,
    });
    gm.add(codes(aT, 7, [K, M]), codes(ref, 3, [M, N]), codes(ref, 3, [M, N]));
    for (const res of [mm.result(), gm.result()]) {
      assert.equal(res.referenceVsOrt.mismatchRate, 0);
      assert.equal(res.elements, M * N);
    }
    // Half of the rows, sampled: each still lines up with its own output row (transposed or not).
    const mmHalf = gemmlowpDiff({ op: 'MatMul', attrs: {}, weight: { codes: b, dims: [K, N], scale: scales, zeroPoint: zps, axis: 1 }, bias, ...base });
    mmHalf.add(codes(a, 7, [M, K]), codes(ref, 3, [M, N]), codes(ref, 3, [M, N]), 0.5);
    const gmHalf = gemmlowpDiff({
      op: 'Gemm',
      attrs: { transA: 1, transB: 1 },
      weight: { codes: bT, dims: [N, K], scale: scales, zeroPoint: zps, axis: 0 },
      bias,
      ...base,
    });
    gmHalf.add(codes(aT, 7, [K, M]), codes(ref, 3, [M, N]), codes(ref, 3, [M, N]), 0.5);
    for (const res of [mmHalf.result(), gmHalf.result()]) {
      assert.equal(res.referenceVsOrt.mismatchRate, 0);
      assert.equal(res.elements, (M / 2) * N);
    }
    assert.throws(() => gemmlowpDiff({ op: 'MatMul', attrs: {}, weight: { codes: b, dims: [K, N], scale: scales, zeroPoint: zps, axis: 0 }, ...base }), /axis/);
    assert.throws(
      () => gemmlowpDiff({ op: 'Gemm', attrs: { alpha: 2 }, weight: { codes: b, dims: [K, N], scale: [1], zeroPoint: [0], axis: null }, ...base }),
      /alpha/,
    );
  });

  it('grouped, strided, dilated, SAME_UPPER Conv: reference equals a direct convolution', () => {
    const r = rng(8);
    const [N, C, H, W] = [2, 4, 7, 6],
      M = 6,
      group = 2,
      Cg = 2,
      KH = 3,
      KW = 2;
    const x = Uint8Array.from({ length: N * C * H * W }, () => Math.floor(r() * 256));
    const w = Int8Array.from({ length: M * Cg * KH * KW }, () => Math.floor(r() * 256) - 128);
    const wz = [0, 1, -1, 2, 0, 3];
    const sW = [0.01, 0.011, 0.012, 0.013, 0.014, 0.015];
    const strides = [2, 1],
      dil = [1, 2];
    // SAME_UPPER: out = ceil(in / stride); total pad = (out-1)*s + (k-1)*d + 1 - in, extra at the end.
    const OH = Math.ceil(H / 2),
      OW = W;
    const padT = Math.floor(Math.max(0, (OH - 1) * 2 + (KH - 1) + 1 - H) / 2);
    const padL = Math.floor(Math.max(0, (OW - 1) * 1 + (KW - 1) * 2 + 1 - W) / 2);
    const xz = 128;
    const ref: number[] = [];
    for (let n = 0; n < N; n++)
      for (let m = 0; m < M; m++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            const g = Math.floor(m / (M / group));
            let s = 0;
            for (let c = 0; c < Cg; c++)
              for (let kh = 0; kh < KH; kh++)
                for (let kw = 0; kw < KW; kw++) {
                  const ih = oh * strides[0] - padT + kh * dil[0],
                    iw = ow * strides[1] - padL + kw * dil[1];
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  s += (x[((n * C + g * Cg + c) * H + ih) * W + iw] - xz) * (w[((m * Cg + c) * KH + kh) * KW + kw] - wz[m]);
                }
            const q = multiplierOf((Math.fround(0.03) * Math.fround(sW[m])) / Math.fround(0.7));
            ref.push(clamp(bigFixed(s, q.m0, q.shift) + 100, 0, 255));
          }
    const spec: IntegerLayerSpec = {
      op: 'Conv',
      attrs: { group, strides, dilations: dil, auto_pad: 'SAME_UPPER', kernel_shape: [KH, KW] },
      weight: { codes: w, dims: [M, Cg, KH, KW], scale: sW, zeroPoint: wz, axis: 0 },
      input: { scale: 0.03, zeroPoint: xz, type: 'uint8' },
      output: { scale: 0.7, zeroPoint: 100, type: 'uint8' },
    };
    const d = gemmlowpDiff(spec);
    const dims = [N, M, OH, OW];
    d.add(codes(x, xz, [N, C, H, W]), codes(ref, 100, dims), codes(ref, 100, dims));
    const res = d.result();
    assert.equal(res.elements, ref.length);
    assert.equal(res.referenceVsOrt.mismatchRate, 0);
    // A share of the output positions: as many as asked, each compared with its own code (a
    // position mixed up with another would differ on these random inputs), and every shifted code seen.
    for (const [ortCodes, rate] of [
      [ref, 0],
      [ref.map((v) => (v === 255 ? 254 : v + 1)), 1],
    ] as const) {
      const part = gemmlowpDiff(spec);
      part.add(codes(x, xz, [N, C, H, W]), codes(ortCodes, 100, dims), codes(ref, 100, dims), 0.4);
      assert.equal(part.result().elements, Math.round(OH * OW * 0.4) * M * N);
      assert.equal(part.result().referenceVsOrt.mismatchRate, rate);
    }
    assert.throws(() => d.add(codes(x, xz, [N, C, H, W]), codes(ref.slice(1), 100, dims), codes(ref, 100, dims)), /expected/);
  });
});

// ---------------------------------------------------------------------------------------------
// Real onnxruntime.

interface QdqConv {
  bytes: Uint8Array;
  spec: IntegerLayerSpec;
}

/** x -> Q(uint8) -> DQ -> Conv(DQ(int8 per-channel w), DQ(int32 bias)) -> Q(uint8) -> DQ, exposing both Q outputs. */
function qdqConv(r: () => number, C: number, M: number, xScale: number, xZero: number, yScale: number, yZero: number): QdqConv {
  const KH = 3,
    KW = 3;
  // |w| <= 64: a u8 x s8 pair stays below 2 * 255 * 64 = 32640, so even an AVX2 machine without
  // VNNI accumulates exactly and the assertions below hold on any CPU.
  const wq = Int8Array.from({ length: M * C * KH * KW }, () => clamp(Math.round(randn(r) * 20), -64, 64));
  const sW = Array.from({ length: M }, () => Math.fround(0.002 + r() * 0.01));
  const sB = sW.map((s) => Math.fround(Math.fround(xScale) * s));
  const bq = Int32Array.from({ length: M }, () => Math.round((r() - 0.5) * 4000));
  const model = buildModel({
    opset: 13,
    nodes: [
      makeNode('QuantizeLinear', ['x', 'sx', 'zx'], ['xq'], 'qx'),
      makeNode('DequantizeLinear', ['xq', 'sx', 'zx'], ['xdq'], 'dqx'),
      makeNode('DequantizeLinear', ['wq', 'sw', 'zw'], ['wdq'], 'dqw', { axis: 0 }),
      makeNode('DequantizeLinear', ['bq', 'sb', 'zb'], ['bdq'], 'dqb', { axis: 0 }),
      makeNode('Conv', ['xdq', 'wdq', 'bdq'], ['y'], 'conv', { pads: [1, 1, 1, 1], kernel_shape: [KH, KW] }),
      makeNode('QuantizeLinear', ['y', 'sy', 'zy'], ['yq'], 'qy'),
      makeNode('DequantizeLinear', ['yq', 'sy', 'zy'], ['out'], 'dqy'),
    ],
    inputs: [valueInfo('x', ['N', C, 'H', 'W'])],
    outputs: [valueInfo('xq', ['N', C, 'H', 'W'], DT.UINT8), valueInfo('yq', ['N', M, 'H', 'W'], DT.UINT8), valueInfo('out', ['N', M, 'H', 'W'])],
    initializers: [
      makeTensor('sx', DT.FLOAT, [], [xScale]),
      makeTensor('zx', DT.UINT8, [], [xZero]),
      makeTensor('wq', DT.INT8, [M, C, KH, KW], wq),
      makeTensor('sw', DT.FLOAT, [M], sW),
      makeTensor('zw', DT.INT8, [M], new Array(M).fill(0)),
      makeTensor('bq', DT.INT32, [M], bq),
      makeTensor('sb', DT.FLOAT, [M], sB),
      makeTensor('zb', DT.INT32, [M], new Array(M).fill(0)),
      makeTensor('sy', DT.FLOAT, [], [yScale]),
      makeTensor('zy', DT.UINT8, [], [yZero]),
    ],
  });
  return {
    bytes: encodeModel(model),
    spec: {
      op: 'Conv',
      attrs: { pads: [1, 1, 1, 1], kernel_shape: [KH, KW], strides: [1, 1], dilations: [1, 1], group: 1, auto_pad: 'NOTSET' },
      weight: { codes: wq, dims: [M, C, KH, KW], scale: sW, zeroPoint: new Array(M).fill(0), axis: 0 },
      bias: bq,
      input: { scale: xScale, zeroPoint: xZero, type: 'uint8' },
      output: { scale: yScale, zeroPoint: yZero, type: 'uint8' },
    },
  };
}

function ortCodes(t: ort.Tensor, zeroPoint: number): Codes {
  return { codes: t.data as Uint8Array, zeroPoint, dims: [...t.dims] };
}

interface QdqRun {
  res: LayerDiffResult;
  /** Expected reference-vs-onnxruntime mismatch rate from gemmlowp's double rounding (see below). */
  predicted: number;
}

/**
 * Runs the QDQ Conv in onnxruntime twice (integer session: fused QLinearConv; simulation:
 * disable_quant_qdq keeps Q/DQ around a float Conv) on two batches and feeds LayerDiff.
 *
 * Prediction: gemmlowp rounds twice. SaturatingRoundingDoublingHighMul rounds acc*M0/2^31 to an
 * integer, i.e. to a multiple of 2^shift output LSB, then RoundingDivideByPOT rounds again.
 * onnxruntime rounds once (float32). They disagree when the exact value lies within half of
 * that first step below a rounding boundary (the first rounding lands on the boundary, which the
 * second resolves away from zero): probability 0.5 * 2^shift per element whose output is not
 * saturated (2^shift lies in [M, 2M), M = s_in*s_w/s_out).
 */
async function runQdq(seed: number, [N, C, H, W, M]: number[], yScale: number): Promise<QdqRun> {
  const r = rng(seed);
  const xScale = Math.fround(0.0213),
    xZero = 118,
    yZero = 131;
  const { bytes, spec } = qdqConv(r, C, M, xScale, xZero, Math.fround(yScale), yZero);
  const optPath = path.join(dir, `conv-${seed}.opt.onnx`);
  const base = { graphOptimizationLevel: 'all' as const, executionProviders: ['cpu'], logSeverityLevel: 3 as const };
  const integer = await ort.InferenceSession.create(bytes, { ...base, optimizedModelFilePath: optPath });
  const ops = loadModel(optPath).proto.graph!.node.map((n) => n.opType);
  assert.ok(ops.includes('QLinearConv'), `onnxruntime fused the Conv: ${ops.join(',')}`);
  assert.ok(!ops.includes('Conv'), 'no float Conv left in the integer session');
  const sim = await ort.InferenceSession.create(bytes, { ...base, extra: { session: { disable_quant_qdq: '1' } } });

  const shifts = spec.weight.scale.map((sw) => multiplierOf((xScale * Math.fround(sw)) / Math.fround(yScale)).shift);
  const diff = gemmlowpDiff(spec);
  let predicted = 0,
    count = 0;
  for (let batch = 0; batch < 2; batch++) {
    const x = Float32Array.from({ length: N * C * H * W }, () => randn(r) * 1.2);
    const feeds = { x: new ort.Tensor('float32', x, [N, C, H, W]) };
    const ri = await integer.run(feeds);
    const rs = await sim.run(feeds);
    // Both sessions quantize the same float input with the same Q: identical input codes.
    assert.deepEqual(rs.xq.data, ri.xq.data);
    diff.add(ortCodes(ri.xq, xZero), ortCodes(ri.yq, yZero), ortCodes(rs.yq, yZero));
    const y = ri.yq.data as Uint8Array;
    for (let i = 0; i < y.length; i++, count++) {
      if (y[i] !== 0 && y[i] !== 255) predicted += 0.5 * 2 ** shifts[Math.floor(i / (H * W)) % M];
    }
  }
  return { res: diff.result(), predicted: predicted / count };
}

describe('against onnxruntime (QDQ Conv fused into QLinearConv)', () => {
  it('multipliers <= 1.3e-3: reference vs onnxruntime mismatch rate <= 0.1%, every mismatch explained', async () => {
    const { res, predicted } = await runQdq(2024, [16, 128, 16, 16, 32], 0.2);
    assert.equal(res.elements, 2 * 16 * 32 * 16 * 16);
    console.log(
      `onnxruntime QLinearConv, K=1152: reference vs onnxruntime ${res.referenceVsOrt.mismatchRate} (predicted ${predicted.toFixed(6)}) ${JSON.stringify(res.referenceVsOrt.causes)}; simulated vs onnxruntime ${JSON.stringify(res.simulatedVsOrt.causes)}; simulated vs reference ${JSON.stringify(res.simulatedVsReference.causes)}`,
    );
    assert.ok(res.u8s8.applicable && res.u8s8.saturatedPairs === 0);
    assert.equal(res.accumulatorOverflows, 0);
    assert.ok(res.referenceVsOrt.mismatchRate <= 0.001, `reference vs onnxruntime: ${res.referenceVsOrt.mismatchRate}`);
    assert.ok(
      res.referenceVsOrt.mismatchRate > 0.5 * predicted && res.referenceVsOrt.mismatchRate < 1.5 * predicted,
      `${res.referenceVsOrt.mismatchRate} vs predicted ${predicted}`,
    );
    assert.equal(res.referenceVsOrt.maxLsb, 1);
    // onnxruntime requantizes in float32 (MLAS), the reference in fixed point: only 'requantization'.
    assert.deepEqual(
      res.referenceVsOrt.causes.map((c) => c.cause),
      ['requantization'],
    );
    // The simulation (float32 conv) and onnxruntime (exact int32 sum, float32 requantization):
    // rare 1-LSB differences, each within the float32 error bound of a rounding boundary.
    for (const s of [res.simulatedVsOrt, res.simulatedVsReference]) {
      assert.ok(s.maxLsb <= 1);
      assert.equal(causesOf(s).unexplained, undefined, JSON.stringify(s.causes));
    }
    for (const c of res.simulatedVsOrt.causes) assert.equal(c.cause, 'float-accumulation');
    // onnxruntime rounds half to even from exact accumulators: the float64 recomputation agrees.
    assert.ok(res.roundingModes.halfEven <= 1e-4, JSON.stringify(res.roundingModes));
    assert.ok(res.roundingModes.stochastic > 0.1, JSON.stringify(res.roundingModes));
  });

  it("larger multipliers (up to 5e-3): the rate follows gemmlowp's double rounding, 0.5 * 2^shift", async () => {
    const { res, predicted } = await runQdq(7, [16, 16, 16, 16, 32], 0.05);
    const rate = res.referenceVsOrt.mismatchRate;
    console.log(
      `onnxruntime QLinearConv, K=144: reference vs onnxruntime ${rate} (predicted ${predicted.toFixed(6)}) ${JSON.stringify(res.referenceVsOrt.causes)}`,
    );
    assert.ok(rate > 0.001, `${rate}`);
    assert.ok(rate > 0.8 * predicted && rate < 1.2 * predicted, `${rate} vs predicted ${predicted}`);
    assert.deepEqual(
      res.referenceVsOrt.causes.map((c) => c.cause),
      ['requantization'],
    );
    assert.equal(causesOf(res.simulatedVsOrt).unexplained, undefined);
    // Rounding once (TFLite single-rounding mode) instead of twice brings the same fixed-point
    // multiplier within 0.1% of onnxruntime's float32 requantization.
    assert.equal(res.requantization.reference, 'double-rounding');
    assert.ok(res.requantization.otherVsOrt <= 0.001, `single rounding vs onnxruntime: ${res.requantization.otherVsOrt}`);
    console.log(`  single rounding vs onnxruntime: ${res.requantization.otherVsOrt}`);
  });
});

describe('speed', () => {
  it('a layer-sized Conv (300 samples, 32x14x14 outputs, K = 288) diffs within a few seconds', () => {
    const r = rng(77);
    const [N, C, H, W, M] = [300, 32, 14, 14, 32];
    const x = Uint8Array.from({ length: N * C * H * W }, () => Math.floor(r() * 256));
    const w = Int8Array.from({ length: M * C * 9 }, () => Math.floor(r() * 256) - 128);
    const sW = Array.from({ length: M }, () => 0.004 + r() * 0.002);
    const spec: IntegerLayerSpec = {
      op: 'Conv',
      attrs: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] },
      weight: { codes: w, dims: [M, C, 3, 3], scale: sW, zeroPoint: new Array(M).fill(0), axis: 0 },
      input: { scale: 0.02, zeroPoint: 128, type: 'uint8' },
      output: { scale: 0.5, zeroPoint: 128, type: 'uint8' },
    };
    // onnxruntime-like codes (float32 requantization, exact sums) from the engine's QLinearConv.
    const y = qlinearConv(
      {
        x: { dims: [N, C, H, W], data: x },
        xScale: [0.02],
        xZeroPoint: [128],
        w: { dims: [M, C, 3, 3], data: w },
        wScale: sW,
        wZeroPoint: new Array(M).fill(0),
        yScale: [0.5],
        yZeroPoint: [128],
        yType: 'uint8',
      },
      { pads: [1, 1, 1, 1] },
    ).y.data;
    const run = (out: ArrayLike<number>) => {
      const d = gemmlowpDiff(spec);
      const t0 = performance.now();
      for (let b = 0; b < N; b += 100) {
        const xs = x.subarray(b * C * H * W, (b + 100) * C * H * W);
        const os = Array.prototype.slice.call(out, b * M * H * W, (b + 100) * M * H * W) as number[];
        d.add(codes(xs, 128, [100, C, H, W]), codes(os, 128, [100, M, H, W]), codes(os, 128, [100, M, H, W]));
      }
      return { ms: performance.now() - t0, res: d.result() };
    };
    const typical = run(y);
    assert.equal(typical.res.elements, N * M * H * W);
    assert.ok(typical.res.referenceVsOrt.mismatchRate < 0.001);
    assert.ok(typical.ms < 20000, `${typical.ms.toFixed(0)} ms`);
    // Worst case: every element mismatches and goes through the cause attribution.
    const worst = run(new Uint8Array(N * M * H * W).fill(0));
    assert.ok(worst.res.referenceVsOrt.mismatchRate > 0.9);
    console.log(
      `layer-sized diff (${typical.res.elements} outputs, K=288): ${(typical.ms / 1000).toFixed(2)} s typical, ${(worst.ms / 1000).toFixed(2)} s with every element mismatching`,
    );
  });
});
