/**
 * The per-layer sample plan of sensitivity (engine/analysis/sensitivitySampling.ts), against hand
 * arithmetic and against the rule it must keep on random pilots: a layer stops only when the 95%
 * interval of its per-sample SQNR minus the most damaging layer's, on the same samples, lies wholly
 * above 3 dB, and the others get the samples that pin their mean to the target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { meanDb, pairedDiffDb, planAfterPilot, sampleDb, samplesFor } from '../../engine/analysis/sensitivitySampling';

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
    // Exact on two samples and clearly above the leader on the others (paired over samples 1, 3, 4:
    // 8, 10, 9 dB): settles. A large finite stand-in for the exact samples (200 dB) would spread the
    // differences over 8-180 dB and keep it running. Exact on three and level with the leader on the
    // others (+1, -1 dB): goes on. Exact on every sample: settles.
    const layers = [
      { perSampleDb: [20, 22, 24, 21, 23] },
      { perSampleDb: [Infinity, 30, Infinity, 31, 32] },
      { perSampleDb: [Infinity, Infinity, Infinity, 22, 22] },
      { perSampleDb: [Infinity, Infinity, Infinity, Infinity, Infinity] },
    ];
    const plan = planAfterPilot(layers, 0.5);
    assert.equal(plan.leader, 0);
    assert.deepEqual([...plan.settled.keys()].sort(), [1, 3]);
    // 8, 10, 9: mean 9, sd 1, half = t(0.975, 2) / sqrt(3) = 2.484138
    const d = plan.settled.get(1)!;
    assert.equal(d.n, 3);
    assert.equal(d.mean, 9);
    assert.ok(Math.abs(d.half - 2.484138) < 1e-5, String(d.half));
    assert.equal(plan.settled.get(3)!.mean, Infinity);
    const standIn = planAfterPilot([layers[0], { perSampleDb: [200, 30, 200, 31, 32] }], 0.5);
    assert.equal(standIn.settled.size, 0);
  });

  it('hand case: pairing separates a layer whose own interval overlaps the leader, by more than 3 dB', () => {
    const plan = planAfterPilot(
      [
        { perSampleDb: [20, 22, 24] }, // mean 22 +- 4.97: the leader
        // 28 +- 6.57 overlaps the leader's [17.03, 26.97], but it is above it on every sample:
        // differences 6, 5, 7, mean 6 +- 4.3027 * 1 / sqrt(3) = 2.48: [3.52, 8.48], above 3 dB
        { perSampleDb: [26, 27, 31] },
        // differences 5, -1, 3: mean 2.33 +- 4.3027 * 3.055 / sqrt(3) = 7.59: includes 0, goes on
        { perSampleDb: [25, 21, 27] },
        { perSampleDb: [40, 42, 44] }, // 20 dB above on every sample
        { perSampleDb: [Infinity, Infinity, Infinity] }, // reproduced exactly: settles
        // differences 4, 3, 5: [1.52, 6.48], above 0 but not above 3 dB (it may make more than
        // half the leader's noise): goes on
        { perSampleDb: [24, 25, 29] },
      ],
      0.5,
    );
    assert.equal(plan.leader, 0);
    assert.deepEqual([...plan.settled.keys()].sort(), [1, 3, 4]);
    assert.ok(Math.abs(plan.settled.get(1)!.mean - 6) < 1e-12);
    assert.ok(Math.abs(plan.settled.get(1)!.mean - plan.settled.get(1)!.half - 3.515862) < 1e-5);
    // the contenders' samples: the widest spread among them, sd 3.055 of layer 2:
    // (1.96 * 3.0551 / 0.5)^2 = 143.43 -> 144
    assert.equal(plan.need, 144);
  });

  it('at a look level of 97.5% (two looks sharing 5%) the intervals widen: t(0.9875, 2) in closed form', () => {
    // Student t with 2 degrees of freedom: F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so the quantile of
    // p is a sqrt(2 / (1 - a^2)) with a = 2p - 1: for p = 0.9875, 6.2053.
    const a = 2 * 0.9875 - 1;
    const t2 = a * Math.sqrt(2 / (1 - a * a));
    const layers = [{ perSampleDb: [20, 22, 24] }, { perSampleDb: [26, 27, 31] }, { perSampleDb: [40, 42, 44] }];
    const d = pairedDiffDb(layers[1], layers[0], 0.975);
    assert.ok(Math.abs(d.half - t2 / Math.sqrt(3)) < 1e-6, `${d.half} vs ${t2 / Math.sqrt(3)}`);
    // differences 6, 5, 7: above 3 dB at 95% (half 2.48), not at 97.5% (half 3.58)
    assert.deepEqual([...planAfterPilot(layers, 0.5).settled.keys()], [1, 2]);
    assert.deepEqual([...planAfterPilot(layers, 0.5, 0.975).settled.keys()], [2]);
    assert.ok(Math.abs(meanDb(layers[0], 0.975).half - (t2 * 2) / Math.sqrt(3)) < 1e-6);
  });

  it('on 300 random pilots: settled iff the paired interval against the leader lies above 3 dB', () => {
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      // Samples share a difficulty (an offset common to every layer, as real samples do), and a
      // few samples are reproduced exactly by some layer.
      const n = 2 + Math.floor(r() * 19);
      const difficulty = Array.from({ length: n }, () => 30 * normal(r));
      const layers = Array.from({ length: 2 + Math.floor(r() * 30) }, () => {
        const mu = 10 + r() * 50;
        const sd = r() * 8;
        return { perSampleDb: difficulty.map((c) => (r() < 0.05 ? Infinity : mu + c + sd * normal(r))) };
      });
      const plan = planAfterPilot(layers, 0.5);
      const meanSd = (v: number[]) => {
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        return { mean, sd: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) };
      };
      const finite = layers.map((l) => l.perSampleDb.filter(Number.isFinite));
      const means = finite.map((v) => (v.length ? meanSd(v).mean : Infinity));
      const leader = means.reduce((b, m, i) => (m < means[b] ? i : b), 0);
      assert.equal(plan.leader, leader);
      assert.ok(!plan.settled.has(leader));
      let need = 0;
      layers.forEach((l, i) => {
        let above: boolean;
        if (i === leader) above = false;
        else if (finite[i].length === 0) above = true;
        else {
          const d = l.perSampleDb.map((x, k) => x - layers[leader].perSampleDb[k]).filter(Number.isFinite);
          if (d.length < 2) above = false;
          else {
            const { mean, sd } = meanSd(d);
            above = mean - (T975[d.length - 2] * sd) / Math.sqrt(d.length) > 3;
          }
        }
        assert.equal(plan.settled.has(i), above, `trial ${trial} layer ${i}`);
        if (!above && finite[i].length >= 2) need = Math.max(need, Math.ceil(((1.96 * meanSd(finite[i]).sd) / 0.5) ** 2));
      });
      assert.equal(plan.need, need);
    }
  });

  it('the paired difference leaves out samples either layer reproduced exactly', () => {
    const d = pairedDiffDb({ perSampleDb: [Infinity, 31, 33, 30] }, { perSampleDb: [20, Infinity, 21, 22] });
    // pairs (33, 21) and (30, 22): 12 and 8, mean 10, sd 2.828, half = 12.7062 * 2.828 / sqrt(2) = 25.41
    assert.equal(d.n, 2);
    assert.equal(d.mean, 10);
    assert.ok(Math.abs(d.half - 25.41) < 0.01, String(d.half));
  });

  it('nothing measured: no leader, nothing settles', () => {
    const plan = planAfterPilot([{ perSampleDb: [] }, { perSampleDb: [Number.NaN] }], 0.5);
    assert.equal(plan.leader, -1);
    assert.equal(plan.settled.size, 0);
  });
});
