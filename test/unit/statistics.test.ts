import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { incompleteBeta, logGamma, normalCdf, normalQuantile, studentTQuantile } from '../../engine/analysis/distributions';
import {
  mcnemarExactP,
  meanInterval,
  newcombePairedDifference,
  pairedAccuracy,
  pairedAccuracyFromTable,
  pairedDropAt,
  pairedMeanDifference,
  wilsonInterval,
} from '../../engine/analysis/statistics';
import { budgetVerdict, samplesToResolve } from '../../engine/analysis/verdict';
import { mulberry32 } from '../helpers/rng';

const close = (a: number, b: number, tol: number, what = ''): void => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tolerance ${tol})`);
const table = (both: number, referenceOnly: number, candidateOnly: number, neither: number) => ({ both, referenceOnly, candidateOnly, neither });

describe('distributions against printed tables', () => {
  it('standard normal CDF and quantile', () => {
    close(normalCdf(1), 0.8413447461, 1e-10);
    close(normalCdf(1.96), 0.9750021049, 1e-10);
    close(normalCdf(-3), 0.001349898032, 1e-12);
    close(normalCdf(-8) / 6.22096057e-16, 1, 1e-7, 'deep tail, relative');
    close(normalQuantile(0.975), 1.959963985, 1e-9);
    close(normalQuantile(0.001), -3.090232306, 1e-9);
    close(normalQuantile(0.5), 0, 1e-12);
  });

  it("Student's t 97.5% quantiles", () => {
    // t tables: df 1, 2, 5, 10, 30, 100
    const table: [number, number][] = [
      [1, 12.7062],
      [2, 4.3027],
      [5, 2.5706],
      [10, 2.2281],
      [30, 2.0423],
      [100, 1.984],
    ];
    for (const [df, t] of table) close(studentTQuantile(0.975, df), t, 1e-4, `df ${df}`);
  });

  it('log-gamma and the incomplete beta function agree with factorials and binomial tails', () => {
    close(logGamma(10), Math.log(362880), 1e-12);
    close(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12);
    // I_x(a, n - a + 1) = P(Binomial(n, x) >= a), summed here term by term
    const n = 12;
    const x = 0.37;
    for (const a of [1, 4, 9]) {
      let tail = 0;
      for (let k = a; k <= n; k++) {
        let c = 1;
        for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
        tail += c * x ** k * (1 - x) ** (n - k);
      }
      close(incompleteBeta(x, a, n - a + 1), tail, 1e-13, `a ${a}`);
    }
  });
});

describe('Wilson score interval', () => {
  it("matches Newcombe's (1998) published examples", () => {
    // Stat Med 17:857, Table I, method 3 (score, no continuity correction), 4 decimals
    const published: [number, number, number, number][] = [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
      [1, 29, 0.0061, 0.1718],
    ];
    for (const [k, n, lo, hi] of published) {
      const w = wilsonInterval(k, n);
      close(w.low, lo, 5e-5, `${k}/${n} low`);
      close(w.high, hi, 5e-5, `${k}/${n} high`);
    }
  });

  it('its bounds are where the score test is exactly significant (0/10, 5/10, 95/100)', () => {
    // Independent formulation: solve |k/n - p| = z sqrt(p (1 - p) / n) for p by bisection.
    const z = 1.959963985;
    const solve = (k: number, n: number, side: -1 | 1): number => {
      const phat = k / n;
      let lo = side < 0 ? 0 : phat;
      let hi = side < 0 ? phat : 1;
      const f = (p: number) => Math.abs(phat - p) - z * Math.sqrt((p * (1 - p)) / n);
      for (let i = 0; i < 200; i++) {
        const mid = (lo + hi) / 2;
        // f < 0 inside the interval (near phat), > 0 outside
        if (f(mid) < 0 === side < 0) hi = mid;
        else lo = mid;
      }
      return (lo + hi) / 2;
    };
    for (const [k, n] of [
      [0, 10],
      [5, 10],
      [95, 100],
    ]) {
      const w = wilsonInterval(k, n);
      if (k > 0) close(w.low, solve(k, n, -1), 1e-9, `${k}/${n} low`);
      else assert.equal(w.low, 0);
      close(w.high, solve(k, n, 1), 1e-9, `${k}/${n} high`);
    }
    // and the familiar printed values
    close(wilsonInterval(0, 10).high, 0.2775, 5e-5);
    close(wilsonInterval(5, 10).low, 0.2366, 5e-5);
    close(wilsonInterval(95, 100).low, 0.8882, 5e-5);
    close(wilsonInterval(95, 100).high, 0.9785, 5e-5);
  });
});

describe('exact McNemar test', () => {
  it('equals twice the binomial tail on the discordant pairs, summed by hand', () => {
    assert.equal(mcnemarExactP(0, 5), 2 / 32);
    close(mcnemarExactP(1, 9), (2 * (1 + 10)) / 1024, 1e-15);
    // Fagerland et al. (2013) airway example, b = 1, c = 7: exact p = 0.070
    close(mcnemarExactP(1, 7), (2 * (1 + 8)) / 256, 1e-15);
    assert.equal(mcnemarExactP(7, 1), mcnemarExactP(1, 7));
    assert.equal(mcnemarExactP(4, 4), 1);
    assert.equal(mcnemarExactP(0, 0), 1);
  });

  it('matches exact rational arithmetic at b = 13, c = 31', () => {
    const n = 44n;
    let sum = 0n;
    let c = 1n; // C(44, 0)
    for (let k = 0n; k <= 13n; k++) {
      sum += c;
      c = (c * (n - k)) / (k + 1n);
    }
    const exact = Number((2n * sum * 10n ** 18n) / 2n ** n) / 1e18;
    close(mcnemarExactP(13, 31), exact, 1e-15);
  });

  it('approaches the continuity-corrected normal test for large counts', () => {
    const b = 5000;
    const c = 5200;
    const z = (Math.abs(b - c) - 1) / Math.sqrt(b + c);
    close(mcnemarExactP(b, c), 2 * (1 - normalCdf(z)), 5e-4);
  });
});

describe("Newcombe's method 10 for a paired difference", () => {
  it('matches published worked examples', () => {
    // (a, b, c, d) -> [low, high] of p1 - p2, as published (Newcombe 1998b; Fagerland et al. 2014;
    // Tang et al. 2010; Chang 2024), rounded as printed
    const published: [[number, number, number, number], number, number, number][] = [
      [[20, 12, 2, 16], 0.0562, 0.3292, 4],
      [[1, 1, 7, 12], -0.507, -0.026, 3],
      [[8, 3, 1, 2], -0.1574, 0.4136, 4],
      [[7, 25, 2, 68], 0.133, 0.318, 3],
    ];
    for (const [[a, b, c, d], lo, hi, digits] of published) {
      const iv = newcombePairedDifference(table(a, b, c, d));
      close(iv.estimate, (b - c) / (a + b + c + d), 1e-15);
      close(iv.low, lo, 0.5 * 10 ** -digits, `(${a},${b},${c},${d}) low`);
      close(iv.high, hi, 0.5 * 10 ** -digits, `(${a},${b},${c},${d}) high`);
    }
  });

  it('all pairs concordant: the interval holds 0, is symmetric and narrow, but not a point', () => {
    const r = pairedAccuracyFromTable(table(290, 0, 0, 10));
    assert.equal(r.dropPoints.estimate, 0);
    assert.ok(r.dropPoints.low < 0 && r.dropPoints.high > 0);
    close(r.dropPoints.low, -r.dropPoints.high, 1e-12);
    // no discordant pair in 300: the discordance rate is plausibly up to about 3/300 (rule of three)
    assert.ok(r.dropPoints.high > 0.5 && r.dropPoints.high < 1.5, `${r.dropPoints.high}`);
    assert.equal(r.mcnemarP, 1);
    assert.equal(r.sdPoints, 0);
  });

  it('large n: close to the normal (Wald) interval for a paired difference', () => {
    const n = 100000;
    const b = 3000;
    const c = 2000;
    const d = (b - c) / n;
    const se = Math.sqrt((b + c) / n - d * d) / Math.sqrt(n);
    const iv = newcombePairedDifference(table(90000, b, c, 5000));
    close(iv.low, d - 1.959964 * se, 2e-5);
    close(iv.high, d + 1.959964 * se, 2e-5);
  });

  it('covers the true difference about 95% of the time (seeded simulation)', () => {
    const rand = mulberry32(7);
    const scenarios: [number, [number, number, number]][] = [
      [50, [0.8, 0.1, 0.04]],
      [300, [0.95, 0.01, 0.003]],
      [1000, [0.9, 0.02, 0.01]],
    ];
    for (const [n, [pBoth, pRef, pCand]] of scenarios) {
      const truth = pRef - pCand;
      let hits = 0;
      const reps = 1500;
      for (let r = 0; r < reps; r++) {
        const t = table(0, 0, 0, 0);
        for (let i = 0; i < n; i++) {
          const u = rand();
          if (u < pBoth) t.both++;
          else if (u < pBoth + pRef) t.referenceOnly++;
          else if (u < pBoth + pRef + pCand) t.candidateOnly++;
          else t.neither++;
        }
        const iv = newcombePairedDifference(t);
        if (iv.low <= truth && truth <= iv.high) hits++;
      }
      // Method 10 is known to be slightly conservative with few discordant pairs.
      const coverage = hits / reps;
      assert.ok(coverage >= 0.93 && coverage <= 0.995, `n ${n}: coverage ${coverage}`);
    }
  });

  it('pairedAccuracy counts the table from per-sample correctness', () => {
    const ref = [1, 1, 1, 0, 1, 0, 1, 1];
    const cand = [1, 0, 1, 1, 0, 0, 1, 1];
    const r = pairedAccuracy(ref, cand);
    assert.deepEqual(r.table, table(4, 2, 1, 1));
    close(r.reference.estimate, 6 / 8, 1e-15);
    close(r.candidate.estimate, 5 / 8, 1e-15);
    close(r.dropPoints.estimate, 12.5, 1e-12);
    // differences +1, +1, -1 and five 0: mean 1/8, sample sd sqrt((3 - 8/64) / 7)
    close(r.sdPoints, 100 * Math.sqrt((3 - 8 / 64) / 7), 1e-9);
    assert.throws(() => pairedAccuracyFromTable(table(1, -1, 0, 0)), /non-negative integer/);
  });
});

describe('mean of a per-sample metric', () => {
  it("few samples: Student's t interval, computed by hand", () => {
    const m = meanInterval([1, 2, 3, 4, 5]);
    // mean 3, sd sqrt(2.5), se sqrt(0.5), t(0.975, 4) = 2.7764
    assert.equal(m.method, 'student-t');
    close(m.low, 3 - 2.7764451 * Math.sqrt(0.5), 1e-6);
    close(m.high, 3 + 2.7764451 * Math.sqrt(0.5), 1e-6);
  });

  it('constant values give a point; non-finite values are counted, not averaged', () => {
    const m = meanInterval([2, 2, 2, NaN, Infinity, 2]);
    assert.deepEqual([m.estimate, m.low, m.high, m.n, m.nonFinite], [2, 2, 2, 4, 2]);
    const one = meanInterval([5]);
    assert.deepEqual([one.low, one.high], [-Infinity, Infinity]);
    assert.ok(Number.isNaN(meanInterval([]).estimate));
  });

  it('BCa bootstrap: reproducible for a seed, and close to the normal interval for a large symmetric sample', () => {
    const rand = mulberry32(11);
    const x = Array.from({ length: 4000 }, () => rand() + rand() + rand() + rand());
    const a = meanInterval(x);
    assert.match(a.method, /^bca-bootstrap 2000 seed 1$/);
    assert.deepEqual(meanInterval(x), a);
    const se = a.sd / Math.sqrt(x.length);
    close(a.low, a.estimate - 1.959964 * se, 0.05 * 2 * 1.96 * se, 'low');
    close(a.high, a.estimate + 1.959964 * se, 0.05 * 2 * 1.96 * se, 'high');
  });

  it('BCa bootstrap covers the mean of a skewed metric about 95% of the time (seeded simulation)', () => {
    const rand = mulberry32(5);
    let hits = 0;
    const reps = 400;
    for (let r = 0; r < reps; r++) {
      // exponential values (mean 1): skewed like a per-sample KL
      const x = Array.from({ length: 40 }, () => -Math.log(1 - rand()));
      const m = meanInterval(x, { resamples: 1000, seed: r + 1 });
      if (m.low <= 1 && 1 <= m.high) hits++;
    }
    const coverage = hits / reps;
    assert.ok(coverage >= 0.9 && coverage <= 0.98, `coverage ${coverage}`);
  });

  it('a paired difference is the mean of the per-sample differences', () => {
    const a = [3, 5, 2, 8, 6, 7];
    const b = [2, 5, 1, 6, 6, 5];
    const d = pairedMeanDifference(a, b);
    close(d.estimate, (1 + 0 + 1 + 2 + 0 + 2) / 6, 1e-15);
    assert.deepEqual(d, meanInterval([1, 0, 1, 2, 0, 2]));
    const shifted = pairedMeanDifference([1, 4, 9], [0, 3, 8]);
    assert.deepEqual([shifted.low, shifted.high], [1, 1]);
  });
});

describe('budget verdict', () => {
  const iv = (estimate: number, low: number, high: number) => ({ estimate, low, high, level: 0.95, method: 'test' });

  it('within budget, within noise, over budget', () => {
    assert.equal(budgetVerdict({ loss: iv(0.5, 0.1, 0.8), budget: 1, n: 300 }).kind, 'within-budget');
    const noise = budgetVerdict({ loss: iv(0.3, -0.4, 0.9), budget: 1, n: 300 });
    assert.equal(noise.kind, 'within-noise');
    assert.match(noise.text, /^within noise: drop 0\.30 points \(95% interval -0\.40 to 0\.90 points\) cannot be told from 0 on 300 samples/);
    const over = budgetVerdict({ loss: iv(2, 1.2, 3), budget: 1, n: 300 });
    assert.equal(over.kind, 'over-budget');
    assert.match(over.text, /^over budget: drop 2\.00 points/);
  });

  it('cannot tell: names the sample count and one that would resolve it', () => {
    // 300 samples, 4 lost by the candidate, none gained: 1.33 points, budget 1
    const r = pairedAccuracyFromTable(table(280, 4, 0, 16));
    const v = budgetVerdict({ loss: r.dropPoints, budget: 1, n: r.n, projection: { intervalAt: pairedDropAt(r.table) } });
    assert.equal(v.kind, 'cannot-tell');
    assert.ok(v.samplesNeeded !== null && v.samplesNeeded > 300);
    assert.match(
      v.text,
      new RegExp(`straddles the budget of 1\\.00 points and contains 0; 300 samples are too few, about ${v.samplesNeeded} would resolve it$`),
    );
    // A real table with the same proportions at that count (rounded to whole samples) clears the
    // budget; at 80% of it, it does not.
    const scaled = (m: number) => {
      const b = Math.round((4 * m) / 300);
      const d = Math.round((16 * m) / 300);
      return newcombePairedDifference(table(m - b - d, b, 0, d));
    };
    assert.ok(scaled(v.samplesNeeded!).low * 100 > 1, 'resolved at the estimate');
    assert.ok(scaled(Math.round(v.samplesNeeded! * 0.8)).low * 100 <= 1, '80% is not enough');
  });

  it('sizes a mean from its standard deviation: z sd / sqrt(m) must fit in the gap', () => {
    // loss 0.6 +- 0.5, budget 1, sd 4.4: m = (1.96 * 4.4 / 0.4)^2 = 464.8 -> 470 (two digits, up)
    assert.equal(samplesToResolve(iv(0.6, 0.1, 1.1), 1, 300, { sd: 4.4 }), 470);
    // without sd: the half-width 0.5 facing the budget scaled by 1/sqrt(m): 300 (0.5 / 0.4)^2 = 468.75
    assert.equal(samplesToResolve(iv(0.6, 0.1, 1.1), 1, 300), 470);
  });

  it('no sample count separates an estimate equal to the budget', () => {
    assert.equal(samplesToResolve(iv(1, 0.2, 1.8), 1, 300), null);
    assert.match(budgetVerdict({ loss: iv(1, 0.2, 1.8), budget: 1, n: 300 }).text, /cannot be separated from it by more samples$/);
  });
});
