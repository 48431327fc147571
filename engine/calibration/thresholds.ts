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
  // Prefix sums over bins: mass, non-zero bin count, and sum of b*log(b). With them each
  // quantized level's share of KL(P||Q) is O(1), so a candidate costs O(levels), not O(bins):
  //   sum_j p_j log(p_j / q_b) = (B_log - B log T - B log q_b) / T over the level's bins j.
  const mass = new Float64Array(n + 1);
  const nonzero = new Float64Array(n + 1);
  const blogb = new Float64Array(n + 1);
  for (let k = 0; k < n; k++) {
    mass[k + 1] = mass[k] + bins[k];
    nonzero[k + 1] = nonzero[k] + (bins[k] !== 0 ? 1 : 0);
    blogb[k + 1] = blogb[k] + (bins[k] !== 0 ? bins[k] * Math.log(bins[k]) : 0);
  }
  const total = mass[n];
  const logTotal = Math.log(total);
  const stride = strideFor(n);
  const curve: CurvePoint[] = [];
  let best = Infinity;
  let bestI = startBin;
  for (let i = startBin; i <= n; i += stride) {
    const tail = total - mass[i];
    const sumQ = mass[i]; // expanding Q keeps each level's mass
    const last = i - 1;
    let kl = 0;
    // Level b holds bins j with floor(j * nq / i) = b (numpy digitize on linspace(0, i, nq + 1);
    // exact since nq is a power of two): j in [ceil(b i / nq), ceil((b + 1) i / nq)).
    // With at least as many levels as bins (16-bit grids: 32768 levels), the non-empty levels are
    // exactly the single bins [j, j + 1), in the same order: visiting those alone gives the same
    // sum, at O(i) instead of O(nq) per candidate (a 16-bit entropy search took 0.4 s per tensor).
    const dense = nq >= i;
    const levels = dense ? i : nq;
    for (let b = 0; b < levels; b++) {
      const js = dense ? b : Math.ceil((b * i) / nq);
      const je = dense ? b + 1 : Math.min(i, Math.ceil(((b + 1) * i) / nq));
      if (je <= js) continue;
      const nz = nonzero[je] - nonzero[js];
      if (nz === 0) continue;
      const logQ = Math.log((mass[je] - mass[js]) / nz / sumQ);
      // P's last bin carries the tail: handled below, so leave it out here.
      const end = je === i ? last : je;
      const B = mass[end] - mass[js];
      if (B > 0) kl += (blogb[end] - blogb[js] - B * logTotal - B * logQ) / total;
      if (je === i) {
        const p = (bins[last] + tail) / total;
        if (p > 0) kl = bins[last] === 0 ? Infinity : kl + p * (Math.log(p) - logQ);
      }
    }
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
