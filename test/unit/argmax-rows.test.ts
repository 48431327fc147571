/**
 * argmaxRows (four interleaved running maxima) against the definition: the first index of the
 * row's largest value, NaN never winning, 0 for a row with nothing above -Infinity. Rows of every
 * width from 1 to 13 (every remainder mod 4) and a 6,625-class row, with ties placed in different
 * stripes, NaN, +-Infinity and rows of nothing but NaN or -Infinity.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argmaxRows } from '../../engine/analysis/metrics';

function firstMax(row: ArrayLike<number>): number {
  let arg = 0;
  let best = -Infinity;
  for (let c = 0; c < row.length; c++) {
    if (row[c] > best) {
      best = row[c];
      arg = c;
    }
  }
  return arg;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

describe('argmaxRows', () => {
  it('gives the first index of each row maximum, on every width', () => {
    const r = rng(3);
    const pool = [0, 1, 1, 2, 2, 2, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5];
    for (const cols of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 6625]) {
      const rows = 60;
      const x = new Float32Array(rows * cols);
      // few distinct values: ties everywhere, in every stripe
      for (let i = 0; i < x.length; i++) x[i] = pool[Math.floor(r() * (i % 3 === 0 ? pool.length : 7))];
      // a row of NaN only, and one of -Infinity only
      x.fill(Number.NaN, 0, cols);
      x.fill(Number.NEGATIVE_INFINITY, cols, 2 * cols);
      const got = argmaxRows(x, cols);
      for (let k = 0; k < rows; k++) assert.equal(got[k], firstMax(x.subarray(k * cols, (k + 1) * cols)), `cols ${cols}, row ${k}`);
      assert.equal(got[0], 0);
      assert.equal(got[1], 0);
    }
  });

  it('picks the earlier of equal maxima held by different stripes', () => {
    // the maximum 5 at indices 6 (stripe 2) and 3 (stripe 3), and at 9 (stripe 1)
    const row = Float32Array.from([0, 1, 0, 5, 0, 0, 5, 0, 0, 5, 0]);
    assert.deepEqual(Array.from(argmaxRows(row, row.length)), [3]);
    // the maximum only in the tail past the last group of four
    assert.deepEqual(Array.from(argmaxRows(Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 2]), 9)), [8]);
  });
});
