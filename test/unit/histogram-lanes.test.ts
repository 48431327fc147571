/**
 * The calibration histogram's fast loop (four interleaved counter copies, calibration/histogram.ts)
 * must count exactly what the definition says: bin k of the positive half holds v >= 0 with
 * floor(v / w) = k, the negative half the same for -v, the top edge and beyond in the last bin.
 * The reference below is that definition, written out plainly; batches straddle the size at which
 * the fast loop starts, end on every remainder mod 4, sit exactly on bin edges, hold -0, and grow
 * the histogram after the first batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivationStats, DEFAULT_BINS, LANE_MIN_VALUES_PER_BIN } from '../../engine/calibration/histogram';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

/** The definition, for one batch into half-histograms of the given width and length. */
function reference(batches: Float32Array[]): { pos: number[]; neg: number[]; width: number } {
  let width = 0;
  let pos: number[] = [];
  let neg: number[] = [];
  for (const x of batches) {
    let amax = 0;
    for (const v of x) amax = Math.max(amax, Math.abs(v));
    if (amax === 0) continue; // (these tests never start with an all-zero batch)
    if (width === 0) {
      width = amax / DEFAULT_BINS;
      pos = new Array(DEFAULT_BINS).fill(0);
      neg = new Array(DEFAULT_BINS).fill(0);
    }
    const need = Math.ceil(amax / width);
    while (pos.length < need) {
      pos.push(0);
      neg.push(0);
    }
    for (const v of x) {
      const k = Math.min(Math.floor(Math.abs(v) / width), pos.length - 1);
      if (v < 0) neg[k]++;
      else pos[k]++;
    }
  }
  return { pos, neg, width };
}

function check(batches: Float32Array[], what: string) {
  const s = new ActivationStats();
  for (const b of batches) s.add(b);
  const r = reference(batches);
  assert.equal(s.width, r.width, what);
  assert.deepEqual(Array.from(s.pos), r.pos, `${what}: positive half`);
  assert.deepEqual(Array.from(s.neg), r.neg, `${what}: negative half`);
}

describe('calibration histogram: the four-copy loop counts as the definition', () => {
  const threshold = LANE_MIN_VALUES_PER_BIN * DEFAULT_BINS;

  it('random signed data around the size where the fast loop starts, every remainder mod 4', () => {
    const r = rng(3);
    for (const n of [threshold - 1, threshold, threshold + 1, threshold + 2, threshold + 3, 3 * threshold + 5]) {
      const x = Float32Array.from({ length: n }, () => (r() - 0.46) * 7 * (r() < 0.05 ? 10 : 1));
      check([x], `n=${n}`);
    }
  });

  it('values exactly on bin edges, -0 and the top edge', () => {
    // amax 2048 gives width 1: every integer is a bin edge; -0 belongs to the positive half's bin 0.
    const x = new Float32Array(threshold + 7);
    for (let i = 0; i < x.length; i++) x[i] = i % 5 === 0 ? -0 : ((i * 37) % 4097) - 2048;
    x[11] = 2048;
    x[12] = -2048;
    check([x], 'edges');
    assert.equal(new ActivationStats().width, 0);
  });

  it('later batches that grow the histogram, neighbouring values that repeat a bin', () => {
    const r = rng(11);
    const smooth = (n: number, scale: number) => {
      // neighbouring activations close together, as in a feature map
      const x = new Float32Array(n);
      let v = 0;
      for (let i = 0; i < n; i++) x[i] = v = 0.97 * v + (r() - 0.5) * scale;
      return x;
    };
    check([smooth(threshold * 2, 1), smooth(threshold * 4 + 1, 1.6), smooth(999, 1), smooth(threshold * 5 + 2, 1.8)], 'growing');
  });
});
