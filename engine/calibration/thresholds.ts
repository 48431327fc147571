/**
 * Clip thresholds from a histogram of |x| (counts on bins of equal width starting at 0).
 *
 * These follow TensorRT's pytorch-quantization calibrators parameter for parameter (entropy:
 * start bin 128, 2^(bits-1+unsigned) quantized bins, KL(P||Q) with the tail folded into P's last
 * bin, last argmin; percentile: first bin whose CDF reaches p, its left edge), so a QuantLens
 * threshold can be compared with what TensorRT computes. MSE lives in mse.ts.
 */

export interface CurvePoint {
  threshold: number;
  value: number;
}

export interface AmaxResult {
  amax: number;
  /** The objective at each candidate threshold (KL divergence or MSE), for plotting. */
  curve: CurvePoint[];
}

/** Candidate stride so that huge (widened) histograms cost at most ~4096 candidates. */
export function strideFor(n: number): number {
  return Math.max(1, Math.floor(n / 4096));
}

export function entropyAmax(hist: Float64Array, width: number, numBits = 8, unsigned = false, startBin = 128): AmaxResult {
  const n = hist.length;
  if (n <= startBin) return { amax: n * width, curve: [] };
  const bins = Float64Array.from(hist);
  bins[0] = bins[1]; // TensorRT discounts the (usually huge) zero bin this way
  const nq = 1 << (numBits - 1 + (unsigned ? 1 : 0));
  const level = new LevelDivergence(bins, nq);
  const { mass, nonzero } = level;
  const total = mass[n];
  const stride = strideFor(n);
  const curve: CurvePoint[] = [];
  let best = Infinity;
  let bestI = startBin;
  for (let i = startBin; i <= n; i += stride) {
    // Candidate i: P is bins[0, i) with the tail folded into bin i-1; Q spreads each quantized
    // level's mass m evenly over its nz non-empty bins and sums to mass[i]. Scaled by the total T,
    //   T KL(P||Q) = sum over bins j of P_j (log P_j - log(m / nz) + d),  d = log(mass[i] / T),
    // with P_j = bins[j] except P's last bin. A level's share without d is `LevelDivergence.of`.
    const tail = total - mass[i];
    const last = i - 1;
    const d = Math.log(mass[i] / total); // exactly 0 without a tail
    let x = mass[last] > 0 ? mass[last] * d : 0;
    // Level b holds bins j with floor(j * nq / i) = b (numpy digitize on linspace(0, i, nq + 1);
    // exact since nq is a power of two): j in [ceil(b i / nq), ceil((b + 1) i / nq)). With at
    // least as many levels as bins (16-bit grids) every level is one bin, and Q equals P there.
    let js = last;
    if (nq < i) {
      js = 0;
      for (let b = 1; ; b++) {
        const je = Math.ceil((b * i) / nq);
        if (je >= i) break;
        if (je > js) {
          x += level.cached(js, je);
          js = je;
        }
      }
    }
    // The last level [js, i): its bins but the last as any level's, then P's last bin with the tail.
    const nzLast = nonzero[i] - nonzero[js];
    if (nzLast > 0) {
      const g = Math.log((mass[i] - mass[js]) / nzLast);
      x += level.of(js, last, g);
      const pLast = bins[last] + tail;
      if (pLast > 0) x = bins[last] === 0 ? Infinity : x + pLast * (Math.log(pLast) - g + d);
    }
    let kl = x / total;
    if (nonzero[i] - nonzero[last] === 0 && tail > 0) kl = Infinity; // last bin empty but P has mass there
    curve.push({ threshold: i * width, value: kl });
    if (kl <= best) {
      // `<=` keeps the LAST argmin, as TensorRT does
      best = kl;
      bestI = i;
    }
  }
  return { amax: bestI * width, curve };
}

/**
 * One quantized level's share of T KL(P||Q): sum over its non-empty bins of b (log b - g), with
 * g = log(m / nz). Where Q equals P on a level (one non-empty bin, as on 16-bit grids or where
 * merged bins are empty) the share is exactly 0, as in the literal algorithm: candidates whose
 * divergence is 0 then tie exactly and the last of them wins, as in TensorRT (prefix sums alone
 * left ~1e-16 of noise there, which chose an earlier candidate). Levels recur across candidates:
 * where a table of every (start, width) pair stays small (~1 MB at 2,048-4,096 bins and 8 bits:
 * a search visits ~250,000 levels, ~35,000 distinct), each is computed once.
 */
class LevelDivergence {
  readonly mass: Float64Array;
  readonly nonzero: Float64Array;
  private readonly blogb: Float64Array;
  private readonly logb: Float64Array;
  private readonly table: Float64Array | null;
  private readonly span: number;

  constructor(
    private readonly bins: Float64Array,
    nq: number,
  ) {
    const n = bins.length;
    this.mass = new Float64Array(n + 1);
    this.nonzero = new Float64Array(n + 1);
    this.blogb = new Float64Array(n + 1);
    this.logb = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const b = bins[k];
      this.logb[k] = b !== 0 ? Math.log(b) : 0;
      this.mass[k + 1] = this.mass[k] + b;
      this.nonzero[k + 1] = this.nonzero[k] + (b !== 0 ? 1 : 0);
      this.blogb[k + 1] = this.blogb[k] + b * this.logb[k];
    }
    this.span = Math.ceil(n / nq) + 1; // the widest level, plus one
    this.table = nq < n && this.span <= NARROW && n * this.span <= TABLE_MAX ? new Float64Array(n * this.span).fill(Number.NaN) : null;
  }

  /** The share of the level [js, je), with its own g: 0 for a level of one non-empty bin. */
  cached(js: number, je: number): number {
    const k = js * this.span + je - js;
    let h = this.table ? this.table[k] : Number.NaN;
    if (Number.isNaN(h)) {
      const nz = this.nonzero[je] - this.nonzero[js];
      h = nz <= 1 ? 0 : this.summed(js, je, Math.log((this.mass[je] - this.mass[js]) / nz));
      if (this.table) this.table[k] = h;
    }
    return h;
  }

  /**
   * The share of bins [js, je) against a given g (the last level's bins but P's last one): bin by
   * bin where narrow, so a level of one non-empty bin still gives exactly 0.
   */
  of(js: number, je: number, g: number): number {
    if (je - js > NARROW) return this.summed(js, je, g);
    let h = 0;
    for (let j = js; j < je; j++) if (this.bins[j] !== 0) h += this.bins[j] * (this.logb[j] - g);
    return h;
  }

  /** The same share from the prefix sums: O(1), but not exactly 0 where it should be. */
  private summed(js: number, je: number, g: number): number {
    return this.blogb[je] - this.blogb[js] - (this.mass[je] - this.mass[js]) * g;
  }
}

/** Levels up to this many bins are remembered, and summed bin by bin at the last level. */
const NARROW = 64;

/** Entries of that table at most (8 MB). */
const TABLE_MAX = 1 << 20;

/** TensorRT percentile: left edge of the first bin whose cumulative share reaches p/100. */
export function percentileAmax(hist: Float64Array, width: number, percentile: number): number {
  if (!(percentile >= 0 && percentile <= 100)) throw new RangeError(`percentile ${percentile} is outside [0, 100]`);
  let total = 0;
  for (let k = 0; k < hist.length; k++) total += hist[k];
  const target = percentile / 100;
  let cdf = 0;
  for (let k = 0; k < hist.length; k++) {
    cdf += hist[k] / total;
    if (cdf >= target) return k * width;
  }
  return hist.length * width;
}
