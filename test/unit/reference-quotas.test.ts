/**
 * The integer reference's part of the detail samples per layer (engine/analysis/integerDiffs.ts
 * referenceQuotas): hand-computed splits of a budget, and the properties every split must keep.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commonSamples, leastShare, referenceQuotas } from '../../engine/analysis/integerDiffs';

const costsOf = (xs: number[]) => new Map(xs.map((c, i) => [`L${i}`, c]));
const values = (m: Map<string, number>) => [...m.values()];
/** Multiply-accumulates a plan spends: samples x share x cost per layer. */
const spent = (costs: Map<string, number>, p: ReturnType<typeof referenceQuotas>) =>
  [...costs].reduce((a, [k, c]) => a + c * p.samples.get(k)! * p.share.get(k)!, 0);

describe('referenceQuotas', () => {
  it('a sample of every layer fits: the common count for all, then the cheap layers the rest, cheapest first', () => {
    // total 1,010 a sample: 2 samples of every layer fit in 2,500 (2,020), 480 are left.
    // L0 (cost 10) may take an equal part of 480 over 2 layers (24 samples), capped at 8 - 2 = 6
    // (60 spent, 420 left); L1 (cost 1,000) then gets floor(420 / 1000) = 0 more.
    const p = referenceQuotas(costsOf([10, 1000]), 2500, 8);
    assert.deepEqual(values(p.samples), [8, 2]);
    assert.deepEqual(values(p.share), [1, 1]);
  });
  it('splits what is left evenly among layers that can all use it', () => {
    // total 300: 3 samples of each (900), 100 left: L0 floor(100 / 3 / 100) = 0, L1 floor(100 / 2 / 100) = 0,
    // L2 floor(100 / 1 / 100) = 1.
    const p = referenceQuotas(costsOf([100, 100, 100]), 1000, 10);
    assert.deepEqual(values(p.samples), [3, 3, 4]);
  });
  it('one sample of every layer over the budget, no cheap layer: one sample of each, the same share of rows', () => {
    // half of 2,000 for cheap layers: L1 (1,000) may take 1000 / 2 / 1000 = 0.5 samples, not one; none is cheap.
    const p = referenceQuotas(costsOf([3000, 1000]), 2000, 5);
    assert.deepEqual(values(p.samples), [1, 1]);
    assert.deepEqual(values(p.share), [0.5, 0.5]);
  });
  it('one sample of every layer over the budget: a cheap layer still gets every detail sample', () => {
    // 3 layers, budget 1e6, half of it for cheap layers: L0 (cost 600) takes min(7, floor(5e5 / 3 / 600) = 277) = 7
    // samples (4,200); L1 (9e5) and L2 (4e6) get no whole sample: the other 1e6 - 4,200 over 4.9e6.
    const p = referenceQuotas(costsOf([600, 9e5, 4e6]), 1e6, 7);
    assert.deepEqual(values(p.samples), [7, 1, 1]);
    const part = (1e6 - 4200) / 4.9e6;
    assert.equal(p.share.get('L0'), 1);
    assert.ok(Math.abs(p.share.get('L1')! - part) < 1e-12 && Math.abs(p.share.get('L2')! - part) < 1e-12);
  });
  it('never more than the detail samples; a layer of unknown cost gets the common part', () => {
    assert.deepEqual(values(referenceQuotas(costsOf([1, 0, 5]), 1e9, 7).samples), [7, 7, 7]);
    assert.deepEqual(values(referenceQuotas(costsOf([100, 0]), 250, 7).samples), [2, 2]);
  });
  it('keeps within the budget and the detail samples; with a whole sample of all, every layer gets the common count (random cases)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let k = 0; k < 1000; k++) {
      const costs = costsOf(Array.from({ length: 1 + Math.floor(rnd() * 20) }, () => 1 + Math.floor(rnd() ** 3 * 1e6)));
      const budget = 1 + Math.floor(rnd() * 2e7);
      const limit = 1 + Math.floor(rnd() * 50);
      const p = referenceQuotas(costs, budget, limit);
      const total = [...costs.values()].reduce((a, b) => a + b, 0);
      assert.ok(spent(costs, p) <= budget * (1 + 1e-12), `spent ${spent(costs, p)} of ${budget}`);
      for (const [layer, n] of p.samples) {
        assert.ok(n >= 1 && n <= limit, `${layer}: ${n} samples, limit ${limit}`);
        if (budget >= total) assert.ok(n >= Math.min(limit, Math.floor(budget / total)) && p.share.get(layer) === 1);
        else assert.ok(p.share.get(layer)! > 0 && p.share.get(layer)! <= 1);
      }
    }
  });
  it("the report's common count leaves out a layer that had no codes (an If branch not taken); the least share is the smallest", () => {
    assert.equal(
      commonSamples(
        new Map([
          ['a', 7],
          ['b', 0],
          ['c', 3],
        ]),
      ),
      3,
    );
    assert.equal(commonSamples(new Map()), 0);
    assert.equal(
      leastShare(
        new Map([
          ['a', 1],
          ['b', 0.25],
        ]),
      ),
      0.25,
    );
    assert.equal(leastShare(new Map()), 1);
  });
});
