/**
 * Streaming activation statistics: exact min/max, NaN/Inf counts and a histogram that never stores
 * the activations themselves, so memory does not grow with the number of calibration samples.
 *
 * The histogram follows TensorRT's (pytorch-quantization HistogramCalibrator): the first batch
 * fixes the bin width as max|x| / 2048; later batches with a larger |x| extend the histogram with
 * bins of the SAME width rather than re-binning. We keep the positive and negative halves
 * separately with a shared width: their sum is exactly TensorRT's histogram of |x| (used by the
 * symmetric methods), and the two halves give the signed distribution that asymmetric schemes need.
 */

import { addCopies, binningKernel } from './binningKernel';

export const DEFAULT_BINS = 2048;
/** Past this many bins per half, adjacent bins are merged (width doubles) to bound memory. */
export const MAX_BINS = 1 << 17;

export class ActivationStats {
  count = 0;
  nanCount = 0;
  infCount = 0;
  zeroCount = 0;
  min = Infinity;
  max = -Infinity;
  /**
   * Sums of each batch's min and max and the number of batches, for the `ema` method: onnxruntime's
   * MinMaxCalibrater with moving_average=True takes, within one collect_data call, the MEAN of the
   * per-inference-run minima and maxima (its 0.01 EMA only blends separate collect_data calls). One
   * `add` is one inference run, so the result depends on the batch size, as onnxruntime's does.
   */
  batchMinSum = 0;
  batchMaxSum = 0;
  batches = 0;
  /** Bin width; 0 until a non-zero finite value has been seen. */
  width = 0;
  /** pos[k] counts x in [k*w, (k+1)*w] for x >= 0 (zeros in bin 0); neg[k] the same for -x, x < 0. */
  pos: Float64Array = new Float64Array(0);
  neg: Float64Array = new Float64Array(0);

  constructor(readonly initialBins = DEFAULT_BINS) {}

  /** Statistics that crossed a thread boundary (a structured clone keeps the fields, not the class). */
  static revive(plain: ActivationStats): ActivationStats {
    return Object.assign(new ActivationStats(plain.initialBins), plain);
  }

  /** Mean of the per-batch minima (NaN before any batch with a finite value). */
  get meanBatchMin(): number {
    return this.batches ? this.batchMinSum / this.batches : NaN;
  }

  /** Mean of the per-batch maxima (NaN before any batch with a finite value). */
  get meanBatchMax(): number {
    return this.batches ? this.batchMaxSum / this.batches : NaN;
  }

  /** Add one batch of values (one inference run's tensor). */
  add(x: ArrayLike<number>): void {
    const r = scanRange(x);
    this.nanCount += r.nan;
    this.infCount += r.inf;
    const { min: bmin, max: bmax } = r;
    const finite = x.length - r.nan - r.inf;
    if (finite === 0) return;
    this.count += finite;
    this.min = Math.min(this.min, bmin);
    this.max = Math.max(this.max, bmax);
    this.batchMinSum += bmin;
    this.batchMaxSum += bmax;
    this.batches++;
    const amax = Math.max(Math.abs(bmin), Math.abs(bmax));
    if (amax === 0) {
      // All zeros: nothing to bin until a width exists; remember them for bin 0.
      if (this.width > 0) this.pos[0] += finite;
      else this.zeroCount += finite;
      return;
    }
    if (this.width === 0) {
      this.width = amax / this.initialBins;
      this.pos = new Float64Array(this.initialBins);
      this.neg = new Float64Array(this.initialBins);
      this.pos[0] += this.zeroCount;
      this.zeroCount = 0;
    }
    this.growTo(amax);
    binInto(x, this.pos, this.neg, this.width, finite !== x.length);
  }

  /** Extend with same-width bins until `amax` is covered; merge pairs if that gets too many. */
  private growTo(amax: number): void {
    let n = this.pos.length;
    if (amax <= n * this.width) return;
    let need = Math.ceil(amax / this.width);
    while (need > MAX_BINS) {
      this.pos = mergePairs(this.pos);
      this.neg = mergePairs(this.neg);
      this.width *= 2;
      need = Math.ceil(amax / this.width);
    }
    n = this.pos.length;
    if (need > n) {
      this.pos = extend(this.pos, need);
      this.neg = extend(this.neg, need);
    }
  }

  /** TensorRT's histogram of |x|: counts and bin edges (edges.length = counts.length + 1). */
  absHistogram(): { counts: Float64Array; width: number } {
    const counts = new Float64Array(this.pos.length);
    for (let k = 0; k < counts.length; k++) counts[k] = this.pos[k] + this.neg[k];
    if (counts.length === 0 && this.zeroCount > 0) return { counts: Float64Array.of(this.zeroCount), width: 0 };
    return { counts, width: this.width };
  }

  get degenerate(): DegenerateKind | null {
    if (this.nanCount > 0 || this.infCount > 0) return 'non-finite';
    if (this.count === 0) return 'empty';
    if (this.max === 0 && this.min === 0) return 'all-zero';
    if (this.max === this.min) return 'constant';
    return null;
  }
}

export type DegenerateKind = 'non-finite' | 'empty' | 'all-zero' | 'constant';

/**
 * Min and max of the finite values, and how many are NaN / infinite. A plain function with local
 * counters: V8 keeps this loop tight, where property writes inside it were several times slower.
 * A large float32 batch goes to the WebAssembly kernel first; only a batch it finds non-finite values
 * in comes back here, to be counted exactly.
 */
function scanRange(x: ArrayLike<number>): { min: number; max: number; nan: number; inf: number } {
  const fast = x instanceof Float32Array && x.length >= KERNEL_MIN_VALUES ? binningKernel() : null;
  if (fast) {
    const r = fast.scan(x as Float32Array);
    if (!r.nonFinite) return { min: r.min, max: r.max, nan: 0, inf: 0 };
  }
  let min = Infinity;
  let max = -Infinity;
  let bad = 0;
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    // Branch-free selects (a NaN compares false and never replaces min/max); v - v is 0 for every
    // finite v and NaN for NaN and +-Inf, so `bad` ends NaN iff a non-finite value was seen.
    min = v < min ? v : min;
    max = v > max ? v : max;
    bad += v - v;
  }
  if (bad === 0) return { min, max, nan: 0, inf: 0 };
  // Rare: recount exactly, leaving the infinities out of the range.
  let nan = 0,
    inf = 0;
  min = Infinity;
  max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) inf++;
    else {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  return { min, max, nan, inf };
}

/**
 * Count every finite value of `x` into the half-histograms (bin k holds |v| in [k w, (k+1) w),
 * the top edge in the last bin). Hot loop of the calibration pass: for v >= 0, `(v / w) | 0`
 * equals Math.floor(v / w) (bins are < 2^31) and skips a call; NaN fails both sign tests, so only a
 * batch holding infinities needs the checked loop. Large batches go to the WebAssembly kernel
 * (binningKernel.ts), or to `binLanes` where there is none or the values are not float32.
 */
function binInto(x: ArrayLike<number>, pos: Float64Array, neg: Float64Array, w: number, hasNonFinite: boolean): void {
  const last = pos.length - 1;
  const n = x.length;
  if (!hasNonFinite) {
    if (n >= LANE_MIN_VALUES_PER_BIN * pos.length) {
      const fast = x instanceof Float32Array ? binningKernel() : null;
      if (fast) fast.bin(x as Float32Array, pos, neg, w);
      else binLanes(x, pos, neg, w, laneScratch(pos.length));
      return;
    }
    for (let i = 0; i < n; i++) {
      const v = x[i];
      if (v >= 0) {
        let k = (v / w) | 0;
        if (k > last) k = last;
        pos[k]++;
      } else if (v < 0) {
        let k = (-v / w) | 0;
        if (k > last) k = last;
        neg[k]++;
      }
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v === Infinity || v === -Infinity) continue;
    if (v >= 0) {
      let k = (v / w) | 0;
      if (k > last) k = last;
      pos[k]++;
    } else if (v < 0) {
      let k = (-v / w) | 0;
      if (k > last) k = last;
      neg[k]++;
    }
  }
}

/**
 * Neighbouring activations often fall in the same bin, and a counter incremented by consecutive
 * values is a chain through memory that the CPU keeps mispredicting: 9 ns per value on the
 * PP-OCRv4 recogniser's activations. Four interleaved copies of the histogram (value i counts in
 * copy i mod 4) break the chain: 3.7 ns per value; the copies are summed once per batch, hence only
 * for batches of at least LANE_MIN_VALUES_PER_BIN values per bin. Finite values only. Each copy
 * holds the positive half at [0, L) and the negative half at [L, 2L) of its stride 2L; the clamp
 * comes before the truncation (min(q, last) | 0 = min(q | 0, last) for q >= 0), which V8 truncates
 * faster, and |v| / w is the same double as -v / w, so every count equals binInto's loop.
 */
function binLanes(x: ArrayLike<number>, pos: Float64Array, neg: Float64Array, w: number, h: Float64Array): void {
  const L = pos.length;
  const last = L - 1;
  const S = 2 * L;
  const n = x.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    const a = x[i];
    const b = x[i + 1];
    const c = x[i + 2];
    const d = x[i + 3];
    let qa = Math.abs(a) / w;
    qa = qa < last ? qa : last;
    let qb = Math.abs(b) / w;
    qb = qb < last ? qb : last;
    let qc = Math.abs(c) / w;
    qc = qc < last ? qc : last;
    let qd = Math.abs(d) / w;
    qd = qd < last ? qd : last;
    h[(qa | 0) + (a < 0 ? L : 0)]++;
    h[S + (qb | 0) + (b < 0 ? L : 0)]++;
    h[2 * S + (qc | 0) + (c < 0 ? L : 0)]++;
    h[3 * S + (qd | 0) + (d < 0 ? L : 0)]++;
  }
  for (; i < n; i++) {
    const a = x[i];
    let qa = Math.abs(a) / w;
    qa = qa < last ? qa : last;
    h[(qa | 0) + (a < 0 ? L : 0)]++;
  }
  addCopies(h, pos, neg);
}

/**
 * Values from which a Float32Array's scan goes to the WebAssembly kernel (binningKernel.ts): below,
 * the call and the copy cost about what they save.
 */
export const KERNEL_MIN_VALUES = 1024;

/** Values per bin from which the four-copy loop pays for summing its copies (8 L sums per batch). */
export const LANE_MIN_VALUES_PER_BIN = 8;

/** Zeroed scratch for four copies of a 2L-bin histogram, reused across batches (per thread). */
let lanes = new Float64Array(0);
function laneScratch(L: number): Float64Array {
  if (lanes.length < 8 * L) lanes = new Float64Array(8 * L);
  return lanes;
}

function extend(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}

function mergePairs(a: Float64Array): Float64Array {
  const b = new Float64Array(Math.ceil(a.length / 2));
  for (let k = 0; k < a.length; k++) b[k >> 1] += a[k];
  return b;
}

/**
 * Downsample a histogram for display and the report: `bins` equal groups, plus the edges in real
 * units. Keeps the report small whatever the calibration histogram's size.
 */
export function displayHistogram(stats: ActivationStats, bins = 256): { edges: number[]; counts: number[] } {
  const n = stats.pos.length;
  if (n === 0) return { edges: [0, 0], counts: [stats.zeroCount] };
  // Signed layout: negative half reversed, then positive half, on edges -n*w .. n*w; trim empty tails.
  const full = new Float64Array(2 * n);
  for (let k = 0; k < n; k++) {
    full[n - 1 - k] = stats.neg[k];
    full[n + k] = stats.pos[k];
  }
  let lo = 0;
  while (lo < full.length - 1 && full[lo] === 0) lo++;
  let hi = full.length;
  while (hi > lo + 1 && full[hi - 1] === 0) hi--;
  const span = hi - lo;
  const group = Math.max(1, Math.ceil(span / bins));
  const counts: number[] = [];
  const edges: number[] = [];
  const w = stats.width;
  for (let s = lo; s < hi; s += group) {
    let c = 0;
    for (let k = s; k < Math.min(hi, s + group); k++) c += full[k];
    counts.push(c);
    edges.push((s - n) * w);
  }
  edges.push((Math.min(hi, lo + counts.length * group) - n) * w);
  return { edges, counts };
}
