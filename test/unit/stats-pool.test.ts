/**
 * Calibration statistics on several threads (calibration/statsPool.ts) must be exactly the
 * statistics one thread computes: each tensor belongs to one thread and sees its batches in order,
 * so histograms, ranges, NaN/Inf counts and the per-batch sums of `ema` are bit-identical.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivationStats } from '../../engine/calibration/histogram';
import { POOL_MIN_VALUES, StatsPool, assignThreads, poolThreads } from '../../engine/calibration/statsPool';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

/** Batches of four tensors: a growing range, a signed one with NaN/Inf, an all-zero start, ReLU-like. */
function batchOf(b: number, r: () => number): Record<string, Float32Array> {
  const n = 5000;
  const grow = Float32Array.from({ length: n }, () => (r() - 0.2) * (1 + b * 3));
  const dirty = Float32Array.from({ length: n }, () => (r() - 0.5) * 7);
  dirty[b] = NaN;
  if (b % 2) dirty[n - 1] = -Infinity;
  const late = b < 2 ? new Float32Array(n) : Float32Array.from({ length: n }, () => r() * 0.01);
  const relu = Float32Array.from({ length: n }, () => Math.max(0, r() - 0.5) * 40);
  return { grow, dirty, late, relu };
}

function plain(s: ActivationStats) {
  return { ...s, pos: Array.from(s.pos), neg: Array.from(s.neg) };
}

describe('statistics pool', () => {
  it('gives every tensor exactly the statistics of one thread, with tensors on the main thread and on two workers', async () => {
    const owner = new Map([
      ['grow', 1],
      ['dirty', 2],
      ['late', 0],
      ['relu', 1],
    ]);
    const pool = new StatsPool(owner, 2);
    const single = new Map<string, ActivationStats>();
    const r = rng(7);
    try {
      for (let b = 0; b < 6; b++) {
        const batch = batchOf(b, r);
        for (const [name, data] of Object.entries(batch)) {
          let s = single.get(name);
          if (!s) single.set(name, (s = new ActivationStats()));
          s.add(data);
        }
        // `relu` is not owned by the caller: it is copied to its worker instead of moved.
        for (const [name, data] of Object.entries(batch)) pool.add(name, data, name !== 'relu');
        await pool.endBatch();
      }
      const got = await pool.close();
      assert.deepEqual([...got.keys()].sort(), [...single.keys()].sort());
      for (const [name, s] of single) {
        const g = got.get(name)!;
        assert.ok(g instanceof ActivationStats, `${name} is revived as ActivationStats`);
        assert.deepEqual(plain(g), plain(s), name);
        assert.equal(g.degenerate, s.degenerate);
      }
      assert.equal(single.get('dirty')!.nanCount, 6);
      assert.equal(single.get('dirty')!.infCount, 3);
    } finally {
      await pool.dispose();
    }
  });

  it('moves an owned onnxruntime-style buffer to its worker without a copy, and copies what it does not own or shares', async () => {
    const pool = new StatsPool(
      new Map([
        ['a', 1],
        ['b', 1],
        ['c', 1],
      ]),
      1,
    );
    try {
      const owned = new Float32Array([1, 2, 3]);
      const kept = new Float32Array([4, 5, 6]);
      const whole = new Float32Array([7, 8, 9, 10]);
      const view = whole.subarray(1, 3); // part of a buffer: never moved
      pool.add('a', owned, true);
      pool.add('b', kept, false);
      pool.add('c', view, true);
      await pool.endBatch();
      assert.equal(owned.length, 0, 'the owned buffer moved (detached here)');
      assert.deepEqual(Array.from(kept), [4, 5, 6]);
      assert.deepEqual(Array.from(whole), [7, 8, 9, 10]);
      const got = await pool.close();
      assert.equal(got.get('a')!.max, 3);
      assert.equal(got.get('b')!.min, 4);
      assert.equal(got.get('c')!.count, 2);
      assert.equal(got.get('c')!.max, 9);
    } finally {
      await pool.dispose();
    }
  });

  it('balances tensors by bytes (no thread above the lightest by more than the largest tensor) and keeps small jobs on one thread', () => {
    const r = rng(3);
    const sizes = new Map(Array.from({ length: 40 }, (_, i) => [`t${i}`, Math.floor(r() * 1e6) + 1] as [string, number]));
    for (const threads of [1, 2, 3]) {
      const owner = assignThreads(sizes, threads);
      const load = Array.from({ length: threads + 1 }, () => 0);
      for (const [t, k] of owner) load[k] += sizes.get(t)!;
      assert.equal(owner.size, sizes.size);
      assert.ok(Math.max(...load) - Math.min(...load) <= Math.max(...sizes.values()), `loads ${load}`);
    }
    assert.equal(poolThreads(POOL_MIN_VALUES - 1, 8), 0);
    assert.equal(poolThreads(POOL_MIN_VALUES, 2), 1);
    assert.equal(poolThreads(POOL_MIN_VALUES, 1), 0);
    assert.equal(poolThreads(1e12, 64), 7);
  });
});
