/**
 * TensorRT's MSE calibration (pytorch-quantization `_compute_amax_mse`), searched exhaustively.
 *
 * TensorRT's procedure: for every bin centre a = c_i from bin 128 on, fake-quantize EVERY bin
 * centre c_k to the grid of `bound` steps up to a (round half to even, saturate at a), take the
 * count-weighted mean of (Q(c_k) - c_k)^2 over the bins, and keep the first argmin. Here every
 * candidate is evaluated (the global minimum, not a coarse-to-fine guess: the MSE curve has many
 * local minima whenever the mass sits on a few spikes), at a cost of O(min(i, levels)) per candidate:
 *
 * - Work in bin units (c_k = k + 1/2, a = i + 1/2, step D/2B with D = 2i + 1). Bin k rounds to
 *   level round((2k+1) B / D): an exact integer computation, and never a tie (2(2k+1)B is even,
 *   (2j+1)D odd), so TensorRT's half-to-even rule never applies and the level boundaries are exact.
 * - Bins above the candidate saturate at a, which is also level B's value: level B simply runs to
 *   the last bin.
 * - Few levels (i > B): each level's share is q'^2 S0 - 2q' S1 + S2 from prefix sums of h, h*k
 *   and h*k^2 over its bin range. The prefix sums are double-double (compensated), so a range sum
 *   is accurate to its OWN size rather than to the total's; what remains is the cancellation inside
 *   a level, at most ~36 eps j^2 relative (6e-11 for int8). TensorRT itself evaluates in float32.
 * - Few bins (i <= B, e.g. 16-bit activations): each bin's error is the exact integer
 *   (jD - B(2k+1)) / 2B, squared and weighted; the saturated tail comes from the prefix sums.
 *   Against a compensated bin-by-bin sum, computed MSEs were within 1e-11 relative.
 * - Safe pruning: candidates are scanned from the largest down. The error of the bins above a
 *   candidate (they saturate) is a lower bound of its MSE and only grows as the candidate shrinks,
 *   so once it exceeds the best MSE found (with a 1e-6 margin for rounding), every remaining
 *   candidate is provably worse and the scan stops (on the demo CNN, after 10-50% of the candidates).
 *
 * Work bound: sum over candidates of min(i + 1, levels). When that exceeds MSE_WORK_BUDGET (widened
 * histograms up to 2^17 bins, or 16-bit activations on large histograms), adjacent bins are merged in
 * pairs first, as the histogram itself does past MAX_BINS, until it fits. The search is then exact on
 * the merged histogram: its bin centres are the candidates, from the merged bin holding original bin
 * `startBin`, so the smallest threshold stays where TensorRT's is.
 */
import type { AmaxResult, CurvePoint } from './thresholds';

/** Worst-case evaluations allowed (a 2048-bin histogram needs 7e5 for int8, 2e6 for int16). */
export const MSE_WORK_BUDGET = 1 << 23;

/** Pruning margin: far wider than the relative rounding of any computed MSE (< 1e-8). */
const SAFE = 1 - 1e-6;

/** Points of the returned curve (every candidate is still evaluated). */
const CURVE_POINTS = 1024;

/** A level costs about this many bin evaluations (range sums + one division), to pick the cheaper path. */
const LEVEL_COST = 3;

export interface MseResult extends AmaxResult {
  /** Bins merged per bin of the histogram actually searched (1: the input histogram itself). */
  merged: number;
}

/**
 * TensorRT MSE: the bin centre (from bin `startBin`) whose fake quantization of all bin centres
 * has the least mean squared error. Exhaustive over every candidate (see the file comment);
 * `curve` holds the MSE (real units squared) of up to 1024 evenly spaced candidates, for plotting
 * (candidates the pruning proved worse are left out).
 */
export function mseAmax(hist: Float64Array, width: number, numBits = 8, unsigned = false, startBin = 128): MseResult {
  if (hist.length <= startBin) return { amax: hist.length * width, curve: [], merged: 1 };
  const bound = 2 ** (numBits - 1 + (unsigned ? 1 : 0)) - 1;
  let h = hist;
  let start = startBin;
  let merged = 1;
  while (searchWork(h.length, bound, start) > MSE_WORK_BUDGET && Math.ceil(h.length / 2) > start >> 1) {
    h = mergePairs(h);
    start >>= 1;
    merged *= 2;
  }
  const w = width * merged;
  const n = h.length;
  const m = new Moments(h);
  const B = bound;
  const errors = new Float64Array(n - start).fill(NaN);
  let best = Infinity;
  let bestI = n - 1;
  // From the largest candidate down, stopping once the saturation error alone beats the best
  // (see the file comment): pruned candidates are absent from the curve.
  for (let i = n - 1; i >= start; i--) {
    if (m.spread(i + 1, n, i) * SAFE > best) break;
    const e = i + 1 <= LEVEL_COST * (B + 1) ? errorByBins(h, m, i, B) : errorByLevels(m, i, B);
    errors[i - start] = e;
    if (e <= best) {
      // `<=` going down keeps the FIRST argmin, as numpy's argmin in TensorRT's code
      best = e;
      bestI = i;
    }
  }
  // The curve is for plotting: at most CURVE_POINTS evenly spaced candidates, in real units squared.
  const step = Math.ceil(errors.length / CURVE_POINTS);
  const curve: CurvePoint[] = [];
  for (let c = 0; c < errors.length; c += step) {
    if (!Number.isNaN(errors[c])) curve.push({ threshold: (start + c + 0.5) * w, value: (errors[c] * w * w) / n });
  }
  return { amax: (bestI + 0.5) * w, curve, merged };
}

/** Evaluations the exhaustive search needs: sum over candidates of min(bins, levels) (cheaper path). */
export function searchWork(n: number, bound: number, startBin: number): number {
  let work = 0;
  const levels = LEVEL_COST * (bound + 1);
  for (let i = startBin; i < n; i++) work += Math.min(i + 1, levels);
  return work;
}

/** Sum of h_k (Q(c_k) - c_k)^2 in bin units, bin by bin below the candidate, prefix sums above it. */
function errorByBins(h: Float64Array, m: Moments, i: number, B: number): number {
  const D = 2 * i + 1;
  const twoB = 2 * B;
  // round(u B / D) is never within 1/2D of a tie, far above a reciprocal's rounding error.
  const inv = 1 / (2 * D);
  let acc = 0;
  for (let k = 0; k <= i; k++) {
    const hk = h[k];
    if (hk === 0) continue;
    const u = 2 * k + 1;
    const j = Math.floor((twoB * u + D) * inv);
    const r = j * D - B * u; // (Q - c) * 2B, an exact integer
    acc += hk * r * r;
  }
  return acc / (twoB * twoB) + m.spread(i + 1, m.n, i);
}

/** The same by quantization levels: level j holds bins [start(j), start(j + 1)), level B to the end. */
function errorByLevels(m: Moments, i: number, B: number): number {
  const D = 2 * i + 1;
  const fourB = 4 * B;
  let acc = 0;
  let s = 0; // level 0 starts at bin 0
  for (let j = 0; j <= B; j++) {
    // First bin of level j + 1: the smallest k with (2k+1) B / D > j + 1/2.
    const e = j === B ? m.n : Math.floor(((2 * j + 1) * D - 2 * B) / fourB) + 1;
    if (e > s) {
      acc += m.spread(s, e, (j * D) / (2 * B) - 0.5);
      s = e;
    }
  }
  return acc;
}

const SPLIT = 134217729; // 2^27 + 1, Dekker's splitter

/**
 * Prefix sums of h, h*k, h*k^2 as double-doubles (hi + lo): a range sum is then accurate to its
 * own magnitude, not to the magnitude of everything before it.
 */
class Moments {
  readonly n: number;
  private readonly h0: Float64Array;
  private readonly l0: Float64Array;
  private readonly h1: Float64Array;
  private readonly l1: Float64Array;
  private readonly h2: Float64Array;
  private readonly l2: Float64Array;

  constructor(h: Float64Array) {
    const n = (this.n = h.length);
    const arrays = Array.from({ length: 6 }, () => new Float64Array(n + 1));
    [this.h0, this.l0, this.h1, this.l1, this.h2, this.l2] = arrays;
    const acc = [0, 0, 0, 0, 0, 0]; // (hi, lo) per moment
    for (let k = 0; k < n; k++) {
      const x = h[k];
      if (x !== 0) {
        addProduct(acc, 0, x, 1);
        addProduct(acc, 2, x, k);
        addProduct(acc, 4, x, k * k); // k^2 < 2^34: exact
      }
      for (let p = 0; p < 6; p++) arrays[p][k + 1] = acc[p];
    }
  }

  /** sum over k in [s, e) of h_k (q - k)^2: the squared error of bins [s, e) all quantized to q + 1/2. */
  spread(s: number, e: number, q: number): number {
    if (e <= s) return 0;
    const s0 = this.h0[e] - this.h0[s] + (this.l0[e] - this.l0[s]);
    if (s0 === 0) return 0;
    const s1 = this.h1[e] - this.h1[s] + (this.l1[e] - this.l1[s]);
    const s2 = this.h2[e] - this.h2[s] + (this.l2[e] - this.l2[s]);
    const v = s2 - q * (2 * s1 - q * s0);
    return v > 0 ? v : 0; // rounding can leave a tiny negative where the exact value is 0
  }
}

/** acc[at], acc[at + 1] (a double-double) += a * b, exactly up to the final renormalisation. */
function addProduct(acc: number[], at: number, a: number, b: number): void {
  // Dekker's two-product: p + err == a * b exactly.
  const p = a * b;
  let t = SPLIT * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLIT * b;
  const bh = t - (t - b);
  const bl = b - bh;
  const err = ah * bh - p + ah * bl + al * bh + al * bl;
  // Knuth's two-sum of the running high part and p, then fold the low parts in.
  const hi = acc[at];
  const s = hi + p;
  const bb = s - hi;
  const low = hi - (s - bb) + (p - bb) + acc[at + 1] + err;
  const r = s + low;
  acc[at] = r;
  acc[at + 1] = low - (r - s);
}

function mergePairs(a: Float64Array): Float64Array {
  const b = new Float64Array(Math.ceil(a.length / 2));
  for (let k = 0; k < a.length; k++) b[k >> 1] += a[k];
  return b;
}
