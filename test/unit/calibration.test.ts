import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeThresholds } from '../../engine/calibration/choose';
import { ActivationStats, MAX_BINS, displayHistogram } from '../../engine/calibration/histogram';
import { mseAmax } from '../../engine/calibration/mse';
import { entropyAmax, percentileAmax } from '../../engine/calibration/thresholds';
import { resolveConfig } from '../../engine/quantize/presets';
import { randn, rng } from '../helpers/tinyModels';

/**
 * TensorRT's entropy calibration written the slow, literal way (numpy's linspace + digitize,
 * a Counter of levels, scipy's normalised KL), independently of the engine's O(n) update.
 */
function referenceEntropy(hist: number[], edges: number[], numBits: number, unsigned: boolean, startBin = 128): number {
  const bins = hist.slice();
  bins[0] = bins[1];
  const nbins = 1 << (numBits - 1 + (unsigned ? 1 : 0));
  const divergences: number[] = [];
  for (let i = startBin; i <= bins.length; i++) {
    const space = Array.from({ length: nbins + 1 }, (_, k) => (k * i) / nbins); // np.linspace(0, i, nbins+1)
    // np.digitize(range(i), space) - 1: index of the last edge <= j (j rises, so k only moves on)
    let k = 0;
    const digitized = Array.from({ length: i }, (_, j) => {
      while (k + 1 < space.length && space[k + 1] <= j) k++;
      return bins[j] === 0 ? -1 : k;
    });
    const newCounts = new Array(nbins).fill(0);
    digitized.forEach((d, j) => {
      if (d !== -1) newCounts[d] += bins[j];
    });
    const counter = new Map<number, number>();
    for (const d of digitized) counter.set(d, (counter.get(d) ?? 0) + 1);
    for (const [k, v] of counter) if (k !== -1) newCounts[k] /= v;
    const q = digitized.map((d) => (d === -1 ? 0 : newCounts[d]));
    const p = bins.slice(0, i);
    p[i - 1] += bins.slice(i).reduce((a, b) => a + b, 0);
    const sp = p.reduce((a, b) => a + b, 0);
    const sq = q.reduce((a, b) => a + b, 0);
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const pj = p[j] / sp;
      const qj = q[j] / sq;
      if (pj > 0 && qj === 0) {
        kl = Infinity;
        break;
      }
      if (pj > 0) kl += pj * Math.log(pj / qj);
    }
    divergences.push(kl);
  }
  let last = 0;
  divergences.forEach((d, k) => {
    if (d <= divergences[last]) last = k;
  });
  return edges[last + startBin];
}

/** The engine's search equals the literal one for each (bits, unsigned), with one curve point per candidate bin. */
function sameAsReference(hist: number[], width: number, cases: [number, boolean][]): void {
  const edges = Array.from({ length: hist.length + 1 }, (_, k) => k * width);
  for (const [bits, unsigned] of cases) {
    const ours = entropyAmax(Float64Array.from(hist), width, bits, unsigned);
    const ref = referenceEntropy(hist, edges, bits, unsigned);
    assert.ok(Math.abs(ours.amax - ref) < 1e-12, `bits=${bits} unsigned=${unsigned}: ${ours.amax} vs ${ref}`);
    assert.equal(ours.curve.length, hist.length - 128 + 1);
  }
}

describe('entropy calibration (TensorRT algorithm)', () => {
  it('matches a hand-computed 4-bin case', () => {
    // bins [0,4,2,2] -> [4,4,2,2]; with one quantized level, i=3 gives P = Q = uniform (KL 0).
    const r = entropyAmax(Float64Array.from([0, 4, 2, 2]), 0.5, 1, false, 2);
    assert.equal(r.amax, 1.5);
    assert.equal(r.curve.length, 3);
    assert.ok(Math.abs(r.curve[0].value - (Math.log(2 / 3) / 3 + (2 / 3) * Math.log(4 / 3))) < 1e-12);
    assert.ok(Math.abs(r.curve[1].value) < 1e-12);
    assert.ok(Math.abs(r.curve[2].value - r.curve[0].value) < 1e-12);
  });

  it('equals an independent literal implementation on a hand-built 2048-bin histogram', () => {
    const r = rng(7);
    const hist: number[] = [];
    for (let k = 0; k < 2048; k++) {
      let c = Math.round(20000 * Math.exp(-k / 90));
      if (k > 700 && k < 760) c = 0; // a gap of empty bins
      if (k > 1500) c = r() < 0.05 ? 1 : 0; // sparse outliers
      hist.push(c);
    }
    const width = 0.01;
    sameAsReference(hist, width, [
      [8, false],
      [8, true],
      [7, false],
    ]);
  });
});

describe('entropy calibration on grids with more levels than histogram bins', () => {
  it('16-, 10- and 9-bit searches equal the literal implementation, across the bins = levels boundary', () => {
    // 400 bins: candidates i = 128..400 all below 2^15 and 2^10 levels (every level one bin or
    // empty), and on both sides of 2^8 = 256 levels for 9 bits.
    const r = rng(21);
    const hist: number[] = [];
    for (let k = 0; k < 400; k++) {
      let c = Math.round(5000 * Math.exp(-k / 40) * (0.5 + r()));
      if (k > 200 && k < 230) c = 0;
      if (k > 300) c = r() < 0.1 ? 1 : 0;
      hist.push(c);
    }
    const width = 0.02;
    sameAsReference(hist, width, [
      [16, false],
      [10, true],
      [9, false],
    ]);
  });
});

describe('entropy calibration where many candidates have no divergence at all', () => {
  it('keeps the last of the exact ties, as the literal algorithm does (16- and 10-bit grids, empty top bins)', () => {
    // Bins past 380 are empty: every candidate from 381 on has no tail, and on a 16-bit grid Q = P
    // there (one bin per level), so KL is exactly 0 for all of them and the last (600) wins. On a
    // 10-bit grid the candidates up to 513 merge only empty bins into occupied ones: exactly 0
    // again, and 513 wins. Prefix sums of b log b alone left ~1e-16 of noise and chose 380.
    const r = rng(4);
    const hist: number[] = [];
    for (let k = 0; k < 600; k++) hist.push(k < 380 ? Math.round(3000 * Math.exp(-k / 60) * (0.5 + r())) + 1 : 0);
    sameAsReference(hist, 0.01, [
      [16, false],
      [10, false],
    ]);
    assert.equal(entropyAmax(Float64Array.from(hist), 0.01, 16).amax, 6);
    assert.ok(Math.abs(entropyAmax(Float64Array.from(hist), 0.01, 10).amax - 5.13) < 1e-12);
  });
});

describe('percentile and minmax', () => {
  const r = rng(3);
  const data = Float32Array.from({ length: 50000 }, () => randn(r) * 2 + 0.5);

  it('minmax equals direct computation', () => {
    const s = new ActivationStats();
    const batches = [data.subarray(0, 20000), data.subarray(20000, 35000), data.subarray(35000)];
    for (const b of batches) s.add(b);
    assert.equal(s.min, Math.min(...data));
    assert.equal(s.max, Math.max(...data));
    assert.equal(s.count, data.length);
  });

  it('percentile equals the sorted-data percentile within one bin', () => {
    const s = new ActivationStats();
    s.add(data);
    const { counts, width } = s.absHistogram();
    for (const p of [99, 99.9, 99.99]) {
      const sorted = Float64Array.from(data, Math.abs).sort();
      // The k-th smallest |x|, k the first count whose share reaches p/100 (as a double, like numpy).
      let k = 1;
      while (k / sorted.length < p / 100) k++;
      const amax = percentileAmax(counts, width, p);
      // TensorRT returns the left edge of the bin holding the percentile: within one bin below.
      // Its CDF is a running float sum (numpy cumsum), which can reach p/100 one value early.
      const fits = (j: number) => amax <= sorted[j] && sorted[j] - amax <= width * 1.000001;
      assert.ok(fits(k - 1) || fits(k - 2), `p=${p}: ${amax} vs exact ${sorted[k - 1]} (bin ${width})`);
    }
  });
});

describe('streaming histogram', () => {
  it('widens with same-width bins and equals direct binning of all batches', () => {
    const s = new ActivationStats();
    const a = [0.5, -1, 0.25, 0, 1];
    const b = [2.9, -3, 1.5];
    s.add(a);
    s.add(b);
    const w = 1 / 2048;
    assert.equal(s.width, w);
    assert.equal(s.pos.length, Math.ceil(3 / w));
    const { counts } = s.absHistogram();
    const direct = new Float64Array(counts.length);
    // The first batch's top edge (its max) lands in its last bin, as torch.histc puts it; later
    // batches are binned on the widened edges.
    for (const v of a) direct[Math.min(2047, Math.floor(Math.abs(v) / w))]++;
    for (const v of b) direct[Math.min(counts.length - 1, Math.floor(Math.abs(v) / w))]++;
    assert.deepEqual(Array.from(counts), Array.from(direct));
    const shown = displayHistogram(s, 64);
    assert.equal(
      shown.counts.reduce((x, y) => x + y, 0),
      8,
    );
    assert.ok(shown.edges[0] <= -3 && shown.edges[shown.edges.length - 1] >= 2.9);
  });

  it('bins every batch as the literal two-pass rule would: bin edges, growth, merges, NaN and Inf', () => {
    // The rule written out: per batch the range of the finite values, the bins grown to cover it
    // (same width, pairs merged past MAX_BINS), then each finite value at Math.floor(|v| / w),
    // the top edge in the last bin. The engine bins in one pass through a multiplication.
    class Literal {
      w = 0;
      pos: number[] = [];
      neg: number[] = [];
      zeros = 0;
      add(x: Float32Array) {
        const f = Array.from(x).filter(Number.isFinite);
        if (f.length === 0) return;
        const amax = Math.max(...f.map(Math.abs));
        if (this.w === 0) {
          if (amax === 0) return void (this.zeros += f.length);
          this.w = amax / 2048;
          this.pos = new Array(2048).fill(0);
          this.neg = new Array(2048).fill(0);
          this.pos[0] += this.zeros;
        }
        while (Math.ceil(amax / this.w) > MAX_BINS) {
          const half = (a: number[]) => Array.from({ length: Math.ceil(a.length / 2) }, (_, k) => a[2 * k] + (a[2 * k + 1] ?? 0));
          [this.pos, this.neg, this.w] = [half(this.pos), half(this.neg), this.w * 2];
        }
        const need = Math.ceil(amax / this.w);
        while (this.pos.length < need) this.pos.push(0), this.neg.push(0);
        for (const v of f) (v < 0 ? this.neg : this.pos)[Math.min(this.pos.length - 1, Math.floor(Math.abs(v) / this.w))]++;
      }
    }
    const r = rng(11);
    for (let trial = 0; trial < 40; trial++) {
      const s = new ActivationStats();
      const lit = new Literal();
      let scale = 0.5 + r() * 4;
      for (let b = 0; b < 6; b++) {
        const x = Float32Array.from({ length: 3000 }, () => randn(r) * scale);
        // values on the current bin edges (k * w), the top edge itself and just past it
        for (let k = 0; k < 200 && s.width > 0; k++) x[k] = Math.floor(r() * s.pos.length * 1.2) * s.width * (r() < 0.5 ? -1 : 1);
        if (s.width > 0) [x[200], x[201]] = [s.pos.length * s.width, -Math.fround(s.pos.length * s.width * (1 + 1e-7))];
        if (trial % 5 === 1) [x[202], x[203], x[204]] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
        if (trial % 7 === 3 && b === 0) x.fill(0);
        s.add(x);
        lit.add(x);
        // sometimes the range grows past MAX_BINS of the first width (bins merge)
        scale *= trial % 4 === 0 ? 200 : 1 + r();
      }
      assert.equal(s.width, lit.w, `trial ${trial}`);
      assert.deepEqual(Array.from(s.pos), lit.pos, `trial ${trial}: positive half`);
      assert.deepEqual(Array.from(s.neg), lit.neg, `trial ${trial}: negative half`);
    }
  });

  it('reports degenerate tensors instead of failing', () => {
    const zero = new ActivationStats();
    zero.add(new Float32Array(10));
    assert.equal(zero.degenerate, 'all-zero');
    assert.equal(zero.absHistogram().counts[0], 10);
    const constant = new ActivationStats();
    constant.add([3, 3, 3]);
    assert.equal(constant.degenerate, 'constant');
    const nan = new ActivationStats();
    nan.add([1, NaN, Infinity, -2]);
    assert.equal(nan.degenerate, 'non-finite');
    assert.equal(nan.nanCount, 1);
    assert.equal(nan.infCount, 1);
    assert.equal(nan.min, -2);
    assert.equal(nan.max, 1);
  });
});

describe('MSE calibration', () => {
  it('picks the candidate a brute-force scan over bin centres picks', () => {
    const hist = Float64Array.from({ length: 512 }, (_, k) => Math.round(1000 * Math.exp(-k / 40)) + (k === 500 ? 3 : 0));
    const width = 0.02;
    const got = mseAmax(hist, width, 8, false).amax;
    let best = Infinity;
    let bestAmax = 0;
    for (let i = 128; i < 512; i++) {
      const amax = (i + 0.5) * width;
      const scale = 127 / amax;
      let err = 0;
      for (let k = 0; k < 512; k++) {
        const c = (k + 0.5) * width;
        const q = Math.min(127, Math.round(c * scale)) / scale; // centres are never exact .5 ties here
        err += (q - c) ** 2 * hist[k];
      }
      if (err / 512 < best) {
        best = err / 512;
        bestAmax = amax;
      }
    }
    assert.ok(Math.abs(got - bestAmax) < 1e-12, `${got} vs ${bestAmax}`);
    assert.ok(got < 511 * width, 'MSE clips the sparse outlier at bin 500');
  });
});

describe('ema: onnxruntime MinMax with moving_average in one collect_data call', () => {
  // onnxruntime's compute_data takes np.mean over the per-run ReduceMin / ReduceMax outputs; its
  // 0.01 EMA (merge_range) only blends separate collect_data calls. One add() = one run.
  const values = [1, -2, 3, 0.5, 4, -1, -6, 2];
  const config = resolveConfig('ort-cpu', { calibration: 'ema' });

  it('is the mean of per-batch minima and maxima (hand-computed)', () => {
    const s = new ActivationStats();
    for (const b of [
      [1, -2, 3],
      [0.5, 4],
      [-1, -6, 2],
    ])
      s.add(b);
    // minima -2, 0.5, -6 -> mean -7.5 / 3 = -2.5; maxima 3, 4, 2 -> mean 9 / 3 = 3
    assert.equal(s.meanBatchMin, -2.5);
    assert.equal(s.meanBatchMax, 3);
    assert.deepEqual(computeThresholds(s, config).thresholds.ema, { lo: -2.5, hi: 3 });
    // An EMA from the first batch (m += 0.01 (batch - m)) would give -2.01525 / 2.9999 here.
    assert.deepEqual(computeThresholds(s, config).thresholds.minmax, { lo: -6, hi: 4 });
  });

  it('depends on the batch size, as onnxruntime does', () => {
    const whole = new ActivationStats();
    whole.add(values);
    assert.deepEqual(computeThresholds(whole, config).thresholds.ema, { lo: -6, hi: 4 }); // one run: MinMax
    const pairs = new ActivationStats();
    for (let k = 0; k < values.length; k += 2) pairs.add(values.slice(k, k + 2));
    // pairs [1,-2] [3,0.5] [4,-1] [-6,2]: minima -2, 0.5, -1, -6 -> -2.125; maxima 1, 3, 4, 2 -> 2.5
    assert.deepEqual(computeThresholds(pairs, config).thresholds.ema, { lo: -2.125, hi: 2.5 });
  });

  it('skips batches without a finite value', () => {
    const s = new ActivationStats();
    s.add([NaN, Infinity]);
    assert.ok(Number.isNaN(s.meanBatchMin));
    s.add([2, 5]);
    s.add([NaN]);
    s.add([-1, 1]);
    assert.equal(s.batches, 2);
    assert.equal(s.meanBatchMin, 0.5);
    assert.equal(s.meanBatchMax, 3);
  });
});
