import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectedError, gridFor, type GridSpan, type HistogramBins } from '../../engine/calibration/expectedError';

/**
 * The independent expectation: spread each bin's count over `per` evenly spaced points inside it
 * (midpoints of equal sub-intervals), then quantize each point for real: clamp to the grid (clip
 * error) and round to the nearest code (rounding error).
 */
function bruteForce(h: HistogramBins, g: GridSpan, per = 4000): { clip: number; rounding: number; clippedShare: number; power: number } {
  let total = 0,
    clip = 0,
    rounding = 0,
    clipped = 0,
    power = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const a = h.edges[i],
      b = h.edges[i + 1],
      w = h.counts[i] / per;
    for (let k = 0; k < per; k++) {
      const x = a + ((k + 0.5) * (b - a)) / per;
      total += w;
      power += w * x * x;
      if (x < g.lo || x > g.hi) {
        const c = Math.min(g.hi, Math.max(g.lo, x));
        clip += w * (x - c) ** 2;
        clipped += w;
      } else {
        const q = g.lo + Math.round((x - g.lo) / g.step) * g.step;
        rounding += w * (x - q) ** 2;
      }
    }
  }
  return { clip: clip / total, rounding: rounding / total, clippedShare: clipped / total, power: power / total };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('expected quantization error from a histogram', () => {
  it('hand-computed: one bin [0, 2) of 10 values on a grid [-1, 1] with step 0.1', () => {
    const e = expectedError({ edges: [0, 2], counts: [10] }, { lo: -1, hi: 1, step: 0.1 });
    // Half the values lie in (1, 2): mean of (x - 1)^2 over them is 1/3, over all values 1/6.
    assert.ok(Math.abs(e.clip - 1 / 6) < 1e-12, String(e.clip));
    assert.ok(Math.abs(e.clippedShare - 0.5) < 1e-12);
    assert.ok(Math.abs(e.rounding - (0.5 * 0.01) / 12) < 1e-15, String(e.rounding));
    assert.ok(Math.abs(e.signalPower - 4 / 3) < 1e-12);
    assert.equal(e.total, e.clip + e.rounding);
    assert.ok(Math.abs(e.sqnrDb - 10 * Math.log10(4 / 3 / e.total)) < 1e-9);
  });

  it('matches a brute-force quantization of a synthetic skewed histogram, for thresholds cutting bins', () => {
    // A signed, skewed activation: a narrow core and a long positive tail over 200 bins.
    const edges = Array.from({ length: 201 }, (_, i) => -2 + i * 0.06);
    const counts = edges.slice(0, -1).map((x, i) => Math.round(5000 * Math.exp(-Math.abs(x) * (x < 0 ? 3 : 0.8))) + (i % 17 === 0 ? 40 : 0));
    const h = { edges, counts };
    for (const g of [
      { lo: -1.013, hi: 3.517, step: 0.0173 },
      { lo: -0.5, hi: 0.5, step: 1 / 254 },
      { lo: -2.5, hi: 10.5, step: 0.05 },
    ]) {
      const e = expectedError(h, g);
      const b = bruteForce(h, g);
      assert.ok(rel(e.clip, b.clip) < 1e-5 || (b.clip === 0 && e.clip === 0), `clip ${e.clip} vs ${b.clip}`);
      assert.ok(rel(e.clippedShare, b.clippedShare) < 1e-4, `share ${e.clippedShare} vs ${b.clippedShare}`);
      // Real rounding is uniform only on average: within 2% on this many steps.
      assert.ok(rel(e.rounding, b.rounding) < 0.02, `rounding ${e.rounding} vs ${b.rounding}`);
      assert.ok(rel(e.signalPower, b.power) < 1e-6);
    }
  });

  it('the split moves the right way: a tighter threshold clips more and rounds less', () => {
    const edges = Array.from({ length: 101 }, (_, i) => i * 0.1);
    const counts = edges.slice(0, -1).map((x) => Math.round(1e4 * Math.exp(-x)));
    const scheme = { bits: 8 as const, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false };
    const wide = expectedError({ edges, counts }, gridFor({ lo: 0, hi: 10.5 }, scheme));
    const tight = expectedError({ edges, counts }, gridFor({ lo: 0, hi: 2 }, scheme));
    assert.ok(tight.clip > wide.clip && tight.rounding < wide.rounding);
    assert.equal(wide.clip, 0);
  });

  it('gridFor follows the scheme: int8 narrow symmetric amax 1.27 has step 0.01 and ends at -1.27 and 1.27', () => {
    const g = gridFor({ lo: 0, hi: 1.27 }, { bits: 8, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false });
    assert.ok(Math.abs(g.step - 0.01) < 1e-8);
    assert.ok(Math.abs(g.hi - 1.27) < 1e-6 && Math.abs(g.lo + 1.27) < 1e-6);
    // uint8 asymmetric [0, 2.55]: step 0.01, zero point 0.
    const u = gridFor({ lo: 0, hi: 2.55 }, { bits: 8, signed: false, symmetric: false, narrowRange: false, powerOfTwo: false });
    assert.ok(Math.abs(u.step - 0.01) < 1e-8 && u.lo === 0 && Math.abs(u.hi - 2.55) < 1e-6);
  });

  it('trims the outer bins to the observed range: no value lies past the exact min and max', () => {
    // One bin [0, 2) whose values really lie in [0, 1] (the bin edge was rounded outwards).
    const h = { edges: [0, 2], counts: [10] };
    const g = { lo: -1, hi: 1, step: 0.1 };
    const e = expectedError(h, g, { min: 0, max: 1 });
    assert.equal(e.clip, 0);
    assert.equal(e.clippedShare, 0);
    assert.ok(Math.abs(e.signalPower - 1 / 3) < 1e-12, 'uniform on [0, 1]: mean x^2 = 1/3');
    assert.ok(Math.abs(e.rounding - 0.01 / 12) < 1e-15);
  });

  it('an empty histogram has no error', () => {
    const e = expectedError({ edges: [0, 0], counts: [0] }, { lo: -1, hi: 1, step: 0.1 });
    assert.equal(e.total, 0);
    assert.equal(e.count, 0);
  });
});
