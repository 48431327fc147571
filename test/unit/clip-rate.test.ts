/**
 * The clip rate read from the calibration histogram against a direct count over the same values:
 * the count must lie within the stated bounds, the estimate must be no further from it than the
 * edge bins allow, and a grid covering the observed range must give exactly 0.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clipShare } from '../../engine/analysis/clipRate';
import { ActivationStats } from '../../engine/calibration/histogram';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

/** Values shaped like real activations: ReLU outputs, heavy tails, image-like lattices, constants. */
function dataset(kind: number, r: () => number, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
    if (kind === 0) x[i] = Math.max(0, g);
    else if (kind === 1) x[i] = g * (r() < 0.01 ? 30 : 1);
    else if (kind === 2) x[i] = Math.round(r() * 255) / 255;
    else if (kind === 3) x[i] = 2 + g * 0.1;
    else x[i] = -Math.abs(g) * 4;
  }
  return x;
}

function exactShare(values: Float32Array[], lo: number, hi: number): number {
  let c = 0;
  let n = 0;
  for (const v of values) {
    for (const x of v) if (x < lo || x > hi) c++;
    n += v.length;
  }
  return c / n;
}

describe('clip rate from the calibration histogram', () => {
  it('bounds the directly counted share, and the estimate stays within the edge bins', () => {
    const r = rng(7);
    let exactCases = 0;
    let errEstimate = 0;
    let errLow = 0;
    for (let trial = 0; trial < 200; trial++) {
      const kind = trial % 5;
      const stats = new ActivationStats();
      // Several batches, the later ones wider: the histogram grows with same-width bins.
      const batches = [dataset(kind, r, 3000), dataset(kind, r, 3000).map((v) => v * 1.7)];
      for (const b of batches) stats.add(b);
      const signed = r() < 0.5;
      const [qmin, qmax] = signed ? [-128, 127] : [0, 255];
      const amax = Math.max(Math.abs(stats.min), Math.abs(stats.max));
      // Thresholds from 5% to 110% of the observed range; asymmetric grids get a zero point.
      const t = amax * (0.05 + 1.05 * r());
      const scale = signed ? t / 127 : (t - Math.min(0, stats.min) * r()) / 255;
      const zeroPoint = signed ? 0 : Math.round(r() * 60);
      const lo = (qmin - 0.5 - zeroPoint) * scale;
      const hi = (qmax + 0.5 - zeroPoint) * scale;
      const want = exactShare(batches, lo, hi);
      const got = clipShare(stats, { scale, zeroPoint, qmin, qmax });
      assert.ok(got.low <= want + 1e-12 && want <= got.high + 1e-12, `trial ${trial}: ${want} not in [${got.low}, ${got.high}]`);
      assert.ok(got.low <= got.rate && got.rate <= got.high, `trial ${trial}: estimate ${got.rate} outside its bounds`);
      // Only the bins at the two grid edges are uncertain: a few thousandths of the data at most here.
      assert.ok(got.high - got.low <= 0.01, `trial ${trial}: bounds ${got.low}..${got.high} too wide`);
      if (got.high === got.low) exactCases++;
      errEstimate += Math.abs(got.rate - want);
      errLow += Math.abs(got.low - want);
    }
    // Splitting the edge bin in proportion beats counting it all inside by far.
    assert.ok(errEstimate < 0.25 * errLow, `estimate error ${errEstimate} vs ${errLow} counting edge bins as inside`);
    assert.ok(exactCases > 20, `grids beyond the data are exact (${exactCases} cases)`);
  });

  it('a MinMax grid clips nothing, exactly; infinities always clip; no data clips nothing', () => {
    const stats = new ActivationStats();
    const x = dataset(1, rng(3), 5000);
    stats.add(x);
    const scale = Math.max(Math.abs(stats.min), Math.abs(stats.max)) / 127;
    assert.deepEqual(clipShare(stats, { scale, zeroPoint: 0, qmin: -127, qmax: 127 }), { rate: 0, low: 0, high: 0 });
    const withInf = new ActivationStats();
    withInf.add(Float32Array.of(1, 2, Infinity, -Infinity, 3, 4, 5, 6));
    const s = clipShare(withInf, { scale: 10 / 127, zeroPoint: 0, qmin: -127, qmax: 127 });
    assert.equal(s.rate, 2 / 8);
    assert.deepEqual(clipShare(new ActivationStats(), { scale: 1, zeroPoint: 0, qmin: -127, qmax: 127 }), { rate: 0, low: 0, high: 0 });
  });

  it('a tensor of zeros only, and a grid that ends below all the data', () => {
    const zeros = new ActivationStats();
    zeros.add(new Float32Array(100));
    assert.equal(clipShare(zeros, { scale: 0.1, zeroPoint: 0, qmin: -128, qmax: 127 }).rate, 0);
    const high = new ActivationStats();
    high.add(Float32Array.from({ length: 1000 }, (_, i) => 10 + i / 100));
    const all = clipShare(high, { scale: 1 / 127, zeroPoint: 0, qmin: -127, qmax: 127 });
    assert.deepEqual(all, { rate: 1, low: 1, high: 1 });
  });
});
