/**
 * Thresholds computed on the statistics workers (calibration/thresholdPool.ts) must equal the
 * main thread's, bit for bit, whichever thread each tensor lands on; the work estimate must follow
 * the entropy search's real cost (strided candidates times levels).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QuantConfig } from '../../protocol/report';
import { computeThresholds } from '../../engine/calibration/choose';
import { ActivationStats } from '../../engine/calibration/histogram';
import { thresholdWork, thresholdsOf } from '../../engine/calibration/thresholdPool';
import { resolveConfig } from '../../engine/quantize/presets';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

function stats(seed: number, widen: number): ActivationStats {
  const r = rng(seed);
  const s = new ActivationStats();
  for (let b = 0; b < 3; b++) {
    // Later batches reach further: the histogram grows with same-width bins (up to ~widen x 2048).
    const scale = 1 + (widen - 1) * (b / 2);
    s.add(Float32Array.from({ length: 4000 }, () => (r() - 0.3) * scale * (r() < 0.02 ? 6 : 1)));
  }
  return s;
}

describe('thresholds on the statistics workers', () => {
  it('equal the main thread, bit for bit, for signed and unsigned schemes', async () => {
    const signed = resolveConfig('tensorrt', { calibration: 'entropy' });
    const unsigned: QuantConfig = { ...signed, activations: { ...signed.activations, signed: false, symmetric: false } };
    const items: [string, ActivationStats, QuantConfig][] = [];
    for (let k = 0; k < 6; k++) items.push([`t${k}`, stats(k + 1, 1 + k), k % 2 ? unsigned : signed]);
    const pooled = await thresholdsOf(items, 1);
    assert.equal(pooled.size, items.length);
    for (const [key, s, c] of items) assert.deepEqual(pooled.get(key), computeThresholds(s, c), key);
  });

  it('estimate the entropy search: candidates strided past 4,096, times the levels', () => {
    const c = resolveConfig('tensorrt', {});
    const small = stats(3, 1);
    const m = small.pos.length;
    assert.ok(m >= 2048 && m < 8192, `${m} bins: every candidate searched`);
    assert.equal(thresholdWork(small, c), (m - 128 + 1) * 128 + m);
    const wide = stats(4, 8);
    const n = wide.pos.length;
    assert.ok(n > 8192, `widened to ${n} bins`);
    const stride = Math.floor(n / 4096);
    assert.equal(thresholdWork(wide, c), (Math.floor((n - 128) / stride) + 1) * 128 + n);
  });
});
