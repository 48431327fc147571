/**
 * The per-layer sample plan of sensitivity (engine/analysis/sensitivitySampling.ts), against hand
 * arithmetic and against the rule it must keep on random pilots: a layer stops only when its 95%
 * interval lies wholly above the most damaging layer's, and the others get the samples that pin
 * their mean to the target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { meanDb, planAfterPilot, sampleDb, samplesFor } from '../../engine/analysis/sensitivitySampling';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}
/** t(0.975, df) for df = 1..20, from a printed table (4 decimals). */
const T975 = [
  12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.306, 2.2622, 2.2281, 2.201, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.093, 2.086,
];

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
}

describe('sensitivity sample plan', () => {
  it('mean, interval and samples needed by hand', () => {
    // 10, 12, 14: mean 12, sd 2, half = t(0.975, 2) * 2 / sqrt(3) = 4.302653 * 1.154701 = 4.968275
    const m = meanDb({ perSampleDb: [10, 12, 14, Number.NaN] });
    assert.equal(m.n, 3);
    assert.equal(m.mean, 12);
    assert.equal(m.sd, 2);
    assert.ok(Math.abs(m.half - 4.968275) < 1e-5, String(m.half));
    // (1.96 * 2 / 0.5)^2 = 61.47 -> 62
    assert.equal(samplesFor(2, 0.5), 62);
    assert.equal(samplesFor(Number.NaN, 0.5), 0);
    assert.equal(meanDb({ perSampleDb: [5] }).half, Infinity);
  });

  it('samples reproduced exactly are left out of the mean, as the report leaves them out', () => {
    assert.equal(sampleDb(100, 0), Infinity);
    assert.ok(Number.isNaN(sampleDb(Number.NaN, 1)));
    assert.ok(Math.abs(sampleDb(1000, 1) - 30) < 1e-12);
    // 10, 12, 14 and two exact samples: the same mean and interval as 10, 12, 14 alone.
    const m = meanDb({ perSampleDb: [10, Infinity, 12, 14, Infinity] });
    assert.equal(m.n, 3);
    assert.equal(m.mean, 12);
    assert.equal(m.sd, 2);
    // exact on every sample: known exactly, and above any leader
    const e = meanDb({ perSampleDb: [Infinity, Infinity] });
    assert.equal(e.mean, Infinity);
    assert.equal(e.half, 0);
    // Exact on two samples and clearly above the leader on the rest: settles. A large finite
    // stand-in for the exact samples (200 dB) would spread it over [17, 180] dB and keep it running.
    // Exact on three and overlapping the leader on the rest: goes on.
    const plan = planAfterPilot(
      [
        { perSampleDb: [20, 22, 24] },
        { perSampleDb: [Infinity, 30, Infinity, 31, 32] },
        { perSampleDb: [Infinity, Infinity, Infinity, 21, 23, 25] },
        { perSampleDb: [Infinity, Infinity] },
      ],
      0.5,
    );
    assert.equal(plan.leader, 0);
    assert.deepEqual([...plan.settled].sort(), [1, 3]);
  });

  it('hand case: the leader and its overlapping neighbour go on, a distant layer stops', () => {
    const plan = planAfterPilot(
      [
        { perSampleDb: [20, 22, 24] }, // mean 22 +- 4.97: the leader
        { perSampleDb: [23, 25, 27] }, // 25 +- 4.97: lower end 20.03 < 26.97, overlaps
        { perSampleDb: [40, 42, 44] }, // 42 +- 4.97: wholly above
        { perSampleDb: [Infinity, Infinity, Infinity] }, // reproduced exactly: settles
      ],
      0.5,
    );
    assert.equal(plan.leader, 0);
    assert.deepEqual([...plan.settled].sort(), [2, 3]);
    assert.equal(plan.need, 62);
  });

  it('on 300 random pilots: settled iff the interval is wholly above the leader', () => {
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const layers = Array.from({ length: 2 + Math.floor(r() * 30) }, () => {
        const mu = 10 + r() * 50;
        const sd = r() * 8;
        const n = 2 + Math.floor(r() * 20);
        return { perSampleDb: Array.from({ length: n }, () => mu + sd * normal(r)) };
      });
      const plan = planAfterPilot(layers, 0.5);
      const stats = layers.map((l) => {
        const v = l.perSampleDb;
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
        const half = (T975[v.length - 2] * sd) / Math.sqrt(v.length);
        return { mean, sd, lo: mean - half, hi: mean + half };
      });
      const leader = stats.reduce((b, s, i) => (s.mean < stats[b].mean ? i : b), 0);
      assert.equal(plan.leader, leader);
      assert.ok(!plan.settled.has(leader));
      let need = 0;
      stats.forEach((s, i) => {
        const above = i !== leader && s.lo > stats[leader].hi;
        assert.equal(plan.settled.has(i), above, `trial ${trial} layer ${i}`);
        if (!above) need = Math.max(need, Math.ceil(((1.96 * s.sd) / 0.5) ** 2));
      });
      assert.equal(plan.need, need);
    }
  });

  it('nothing measured: no leader, nothing settles', () => {
    const plan = planAfterPilot([{ perSampleDb: [] }, { perSampleDb: [Number.NaN] }], 0.5);
    assert.equal(plan.leader, -1);
    assert.equal(plan.settled.size, 0);
  });
});
