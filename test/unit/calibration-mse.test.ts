import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MSE_WORK_BUDGET, mseAmax, searchWork } from '../../engine/calibration/mse';
import { mulberry32 } from '../helpers/rng';

/** torch.round: half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * TensorRT's MSE calibration (pytorch-quantization `_compute_amax_mse`) written literally, in
 * float64: centres from the edges, for every candidate from `startBin` fake_tensor_quant of every
 * centre (scale = bound / amax, round half to even, clamp, divide back), the count-weighted mean
 * squared error, np.argmin (the first minimum).
 */
function referenceMse(hist: ArrayLike<number>, width: number, numBits: number, unsigned: boolean, startBin = 128) {
  const n = hist.length;
  const edges = Array.from({ length: n + 1 }, (_, k) => k * width);
  const centers = Array.from({ length: n }, (_, k) => (edges[k] + edges[k + 1]) / 2);
  const maxBound = 2 ** (numBits - 1 + (unsigned ? 1 : 0)) - 1;
  const minBound = unsigned ? 0 : -maxBound;
  const mses: number[] = [];
  for (let i = startBin; i < n; i++) {
    const amax = centers[i];
    const scale = maxBound / amax;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const q = Math.min(maxBound, Math.max(minBound, roundHalfEven(centers[k] * scale))) / scale;
      sum += (q - centers[k]) ** 2 * hist[k];
    }
    mses.push(sum / n);
  }
  let arg = 0;
  for (let k = 1; k < mses.length; k++) if (mses[k] < mses[arg]) arg = k;
  return { amax: centers[arg + startBin], index: arg + startBin, mses };
}

function localMinima(v: number[]): number {
  let count = 0;
  for (let k = 1; k + 1 < v.length; k++) if (v[k] < v[k - 1] && v[k] < v[k + 1]) count++;
  return count;
}

/** Bin index of an amax that is a bin centre. */
const index = (amax: number, width: number) => Math.round(amax / width - 0.5);

describe('MSE calibration: exhaustive search over TensorRT candidates', () => {
  it('finds the global minimum on a comb histogram whose MSE curve has many local minima', () => {
    // A few heavy spikes: each spike's rounding error falls to ~0 whenever a grid point crosses
    // it, so the curve zig-zags.
    const hist = new Float64Array(2048);
    // (Over 100 local minima for int8; a search of every 8th candidate then refined picks bin 1714.)
    const spikes: [number, number][] = [
      [298, 40510],
      [309, 1917],
      [632, 26832],
      [703, 11286],
      [2047, 1],
    ];
    for (const [k, c] of spikes) hist[k] += c;
    const width = 0.01;
    for (const [bits, unsigned] of [
      [8, false],
      [8, true],
      [7, false],
      [4, false],
    ] as const) {
      const ref = referenceMse(hist, width, bits, unsigned);
      if (bits === 8 && !unsigned) assert.ok(localMinima(ref.mses) > 100, `only ${localMinima(ref.mses)} local minima`);
      const got = mseAmax(hist, width, bits, unsigned);
      assert.equal(index(got.amax, width), ref.index, `bits=${bits} unsigned=${unsigned}`);
      assert.ok(Math.abs(got.amax - ref.amax) < 1e-9);
    }
  });

  it('equals the literal scan on seeded random histograms', () => {
    const r = mulberry32(20240611);
    for (let t = 0; t < 16; t++) {
      const n = 129 + Math.floor(r() * 1900);
      const hist = new Float64Array(n);
      const scale = 10 + r() * 400;
      for (let k = 0; k < n; k++) {
        if (t % 4 === 0)
          hist[k] = Math.round(1e4 * Math.exp(-k / scale) * r()); // decaying, noisy
        else if (t % 4 === 1)
          hist[k] = r() < 0.03 ? Math.floor(1 + r() * 1000) : 0; // sparse spikes
        else if (t % 4 === 2) hist[k] = Math.floor(r() * 50); // flat noise
      }
      // combs: 4-15 spikes of 10 to 1e5 counts anywhere (a coarse-to-fine search often misses here)
      if (t % 4 === 3) for (let s = 4 + Math.floor(r() * 12); s > 0; s--) hist[Math.floor(r() * n)] += Math.round(10 ** (1 + 4 * r()));
      hist[n - 1] += 1; // the histogram's top bin holds the max
      const width = 0.001 + r() * 0.05;
      for (const [bits, unsigned] of [
        [8, false],
        [8, true],
        [4, false],
      ] as const) {
        const ref = referenceMse(hist, width, bits, unsigned);
        const got = mseAmax(hist, width, bits, unsigned);
        assert.equal(index(got.amax, width), ref.index, `t=${t} n=${n} bits=${bits} unsigned=${unsigned}`);
      }
    }
  });

  it('returns curve values equal to the literal MSE at those candidates', () => {
    const r = mulberry32(7);
    const hist = Float64Array.from({ length: 700 }, (_, k) => Math.round(5000 * Math.exp(-k / 60) * (0.5 + r())));
    const width = 0.02;
    const ref = referenceMse(hist, width, 8, false);
    const got = mseAmax(hist, width, 8, false);
    assert.ok(got.curve.length > 100);
    for (const p of got.curve) {
      const expected = ref.mses[index(p.threshold, width) - 128];
      assert.ok(Math.abs(p.value - expected) <= 1e-9 * expected, `${p.threshold}: ${p.value} vs ${expected}`);
    }
  });

  it('16-bit activations: every candidate, no merging at 2048 bins', () => {
    const r = mulberry32(11);
    const hist = Float64Array.from({ length: 2048 }, (_, k) => (k % 97 === 0 ? 1e6 : 0) + Math.floor(r() * 3));
    assert.ok(searchWork(2048, 32767, 128) <= MSE_WORK_BUDGET);
    const got = mseAmax(hist, 0.5, 16, false);
    assert.equal(got.merged, 1);
    // The literal scan over 2048 x 1920 is slow-ish in float64 but fine once.
    assert.equal(index(got.amax, 0.5), referenceMse(hist, 0.5, 16, false).index);
  });

  it('over the work budget, merges bin pairs and searches the merged histogram exactly', () => {
    // int16 on 8192 bins needs ~3.4e7 evaluations: merged once (4096 bins of twice the width),
    // candidates from the merged bin holding original bin 128, i.e. merged bin 64.
    const r = mulberry32(3);
    const n = 8192;
    const hist = Float64Array.from({ length: n }, (_, k) => Math.round(2000 * Math.exp(-k / 900) * r()) + (k % 611 === 5 ? 5000 : 0));
    hist[n - 1] += 1;
    assert.ok(searchWork(n, 32767, 128) > MSE_WORK_BUDGET);
    const got = mseAmax(hist, 0.01, 16, false);
    assert.equal(got.merged, 2);
    const merged = new Float64Array(n / 2);
    for (let k = 0; k < n; k++) merged[k >> 1] += hist[k];
    const ref = referenceMse(merged, 0.02, 16, false, 64);
    assert.equal(index(got.amax, 0.02), ref.index);
  });

  it('keeps the first of equal minima, as np.argmin does', () => {
    // All mass in bin 0: every candidate from 128 on quantizes it to 0 (|0.5 * 127 / a| < 0.5),
    // so every MSE is the same and the first candidate wins.
    const hist = new Float64Array(300);
    hist[0] = 10;
    assert.equal(mseAmax(hist, 1, 8, false).amax, 128.5);
  });
});
