/**
 * Clip thresholds from a histogram of |x| (counts on bins of equal width starting at 0).
 *
 * These follow TensorRT's pytorch-quantization calibrators parameter for parameter (entropy:
 * start bin 128, 2^(bits-1+unsigned) quantized bins, KL(P||Q) with the tail folded into P's last
 * bin, last argmin; percentile: first bin whose CDF reaches p, its left edge; MSE: bin centres as
 * candidates from bin 128), so a QuantLens threshold can be compared with what TensorRT computes.
 */
import { roundHalfEven } from '../quantize/rounding';

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
function strideFor(n: number): number {
  return Math.max(1, Math.floor(n / 4096));
}

export function entropyAmax(hist: Float64Array, width: number, numBits = 8, unsigned = false, startBin = 128): AmaxResult {
  const n = hist.length;
  if (n <= startBin) return { amax: n * width, curve: [] };
  const bins = Float64Array.from(hist);
  bins[0] = bins[1]; // TensorRT discounts the (usually huge) zero bin this way
  let total = 0;
  for (let k = 0; k < n; k++) total += bins[k];
  const nq = 1 << (numBits - 1 + (unsigned ? 1 : 0));
  const stride = strideFor(n);
  const sum = new Float64Array(nq);
  const nonzero = new Float64Array(nq);
  // Suffix sums give each candidate's tail mass in O(1).
  const suffix = new Float64Array(n + 1);
  for (let k = n - 1; k >= 0; k--) suffix[k] = suffix[k + 1] + bins[k];
  const curve: CurvePoint[] = [];
  let best = Infinity;
  let bestI = startBin;
  for (let i = startBin; i <= n; i += stride) {
    sum.fill(0);
    nonzero.fill(0);
    // Bin j of the first i bins falls in quantized level floor(j * nq / i) (numpy digitize on a
    // linspace of nq+1 points; exact here since nq is a power of two).
    for (let j = 0; j < i; j++) {
      if (bins[j] === 0) continue;
      const b = Math.floor((j * nq) / i);
      sum[b] += bins[j];
      nonzero[b] += 1;
    }
    const tail = suffix[i];
    const sumQ = total - tail; // expanding Q keeps each level's mass
    let kl = 0;
    for (let j = 0; j < i; j++) {
      const p = (j === i - 1 ? bins[j] + tail : bins[j]) / total;
      if (p === 0) continue;
      const q = bins[j] === 0 ? 0 : sum[Math.floor((j * nq) / i)] / nonzero[Math.floor((j * nq) / i)] / sumQ;
      if (q === 0) {
        kl = Infinity;
        break;
      }
      kl += p * Math.log(p / q);
    }
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

/** Fake-quantize a non-negative value the way TensorRT's fake_tensor_quant does. */
function fakeQuantTrt(x: number, amax: number, numBits: number, unsigned: boolean): number {
  const bound = 2 ** (numBits - 1 + (unsigned ? 1 : 0)) - 1;
  const scale = bound / amax;
  const q = Math.min(bound, Math.max(unsigned ? 0 : -bound - 1, roundHalfEven(x * scale)));
  return q / scale;
}

/** TensorRT MSE: the bin centre (from bin 128) whose fake-quantization of all centres has least MSE. */
export function mseAmax(hist: Float64Array, width: number, numBits = 8, unsigned = false, startBin = 128): AmaxResult {
  const n = hist.length;
  if (n <= startBin) return { amax: n * width, curve: [] };
  const stride = strideFor(n);
  const curve: CurvePoint[] = [];
  let best = Infinity;
  let bestAmax = n * width;
  for (let i = startBin; i < n; i += stride) {
    const amax = (i + 0.5) * width;
    let acc = 0;
    for (let k = 0; k < n; k++) {
      if (hist[k] === 0) continue;
      const c = (k + 0.5) * width;
      const d = fakeQuantTrt(c, amax, numBits, unsigned) - c;
      acc += d * d * hist[k];
    }
    const mse = acc / n;
    curve.push({ threshold: amax, value: mse });
    if (mse < best) {
      best = mse;
      bestAmax = amax;
    }
  }
  return { amax: bestAmax, curve };
}
