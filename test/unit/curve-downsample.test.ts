import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { downsampleKeepingMinima, nearestIndex, type CurvePoint } from '../../engine/analysis/curveDownsample';
import { entropyAmax } from '../../engine/calibration/thresholds';

/** A smooth bowl with a narrow dip (3 points wide) far below it, at an index no fixed stride hits. */
function bowlWithDip(n = 2000, dipAt = 1337): CurvePoint[] {
  return Array.from({ length: n }, (_, i) => {
    const x = i / n;
    let value = 1 + 4 * (x - 0.3) ** 2;
    if (Math.abs(i - dipAt) <= 1) value = 0.38 + Math.abs(i - dipAt) * 0.05;
    return { threshold: (i + 1) * 0.01, value };
  });
}

describe('KL curve downsampling keeps minima', () => {
  it('keeps a narrow dip that every-k-th sampling loses, within the point budget and in order', () => {
    const curve = bowlWithDip();
    // The old way: 256 evenly strided points miss index 1337 (stride 7.8125 lands on 1335 and 1343).
    const strided = Array.from({ length: 256 }, (_, i) => curve[Math.floor((i * curve.length) / 256)]);
    assert.ok(Math.min(...strided.map((p) => p.value)) > 0.9, 'the strided curve has lost the dip');

    const out = downsampleKeepingMinima(curve, 256);
    assert.ok(out.length <= 256, `${out.length} points`);
    const min = Math.min(...out.map((p) => p.value));
    assert.equal(min, 0.38);
    assert.equal(out.find((p) => p.value === 0.38)!.threshold, curve[1337].threshold);
    for (let i = 1; i < out.length; i++) assert.ok(out[i].threshold > out[i - 1].threshold, 'increasing thresholds');
    for (const p of out) assert.ok(curve.includes(p), 'only points of the input');
    assert.equal(out[0], curve[0]);
    assert.equal(out[out.length - 1], curve[curve.length - 1]);
  });

  it('keeps the lower envelope: every input point has a kept point at most one bucket away that is as low', () => {
    // A noisy curve with many local minima.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const curve = Array.from({ length: 1999 }, (_, i) => ({ threshold: i, value: Math.sin(i / 37) + rand() }));
    const max = 200;
    const out = downsampleKeepingMinima(curve, max);
    assert.ok(out.length <= max);
    const kept = out.map((p) => curve.indexOf(p));
    const span = Math.ceil(curve.length / Math.floor((max - 3) / 2));
    for (let i = 0; i < curve.length; i++) {
      const ok = kept.some((k) => Math.abs(k - i) <= span && curve[k].value <= curve[i].value);
      assert.ok(ok, `point ${i} (${curve[i].value}) has no kept point as low within ${span}`);
    }
  });

  it('keeps the LAST argmin on a flat minimum (the threshold TensorRT picks) and the indices asked for', () => {
    const curve = Array.from({ length: 1000 }, (_, i) => ({ threshold: i, value: i >= 400 && i <= 420 ? 0.1 : 1 + Math.abs(i - 410) / 100 }));
    const out = downsampleKeepingMinima(curve, 64, [777]);
    assert.ok(out.some((p) => p.threshold === 420));
    assert.ok(out.some((p) => p.threshold === 777));
    assert.ok(out.length <= 64);
  });

  it('does not bridge a run of infinite values silently, and returns short curves whole', () => {
    const curve = Array.from({ length: 600 }, (_, i) => ({ threshold: i, value: i < 100 ? Infinity : 1 / i }));
    const out = downsampleKeepingMinima(curve, 50);
    assert.ok(
      out.some((p) => p.value === Infinity),
      'the infinite stretch is represented',
    );
    assert.equal(
      out.filter((p) => Number.isFinite(p.value)).reduce((m, p) => Math.min(m, p.value), Infinity),
      1 / 599,
    );
    const short = curve.slice(0, 10);
    assert.deepEqual(downsampleKeepingMinima(short, 50), short);
  });

  it('on a real entropy search: the kept curve holds the chosen amax with the minimum KL', () => {
    // A ReLU-like |x| histogram: a spike of near-zero values and a long exponential tail.
    const bins = new Float64Array(2048);
    for (let k = 0; k < bins.length; k++) bins[k] = Math.round(1e6 * Math.exp(-k / 60)) + (k === 0 ? 5e6 : 0) + (k % 97 === 0 ? 300 : 0);
    const { amax, curve } = entropyAmax(bins, 0.01, 8, true);
    assert.ok(curve.length > 1000);
    const out = downsampleKeepingMinima(curve, 256, [nearestIndex(curve, amax)]);
    const minKl = Math.min(...curve.filter((p) => Number.isFinite(p.value)).map((p) => p.value));
    const atAmax = out.find((p) => Math.abs(p.threshold - amax) < 1e-12);
    assert.ok(atAmax, 'the point at the chosen threshold is kept');
    assert.equal(atAmax.value, minKl);
  });

  it('nearestIndex finds the closest threshold', () => {
    const curve = [0, 1, 2, 3].map((t) => ({ threshold: t, value: 0 }));
    assert.equal(nearestIndex(curve, 2.4), 2);
    assert.equal(nearestIndex(curve, 9), 3);
    assert.equal(nearestIndex([], 1), -1);
  });
});
