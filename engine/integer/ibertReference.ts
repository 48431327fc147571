/**
 * Float references for the I-BERT kernels: exact GELU (with a double-precision erf), softmax and
 * LayerNorm over the last axis. They are NOT part of the integer path: the integer executor uses
 * them only to measure what each integer kernel adds (SQNR against the float op applied to the
 * same dequantized input) and for the explicit float-fallback ablation, which it then reports.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const ONE_OVER_SQRT_PI = 1 / Math.sqrt(Math.PI);

/**
 * erf(x) to ~1e-15 absolute: the Maclaurin series below |x| = 2 (at most ~40 terms, the
 * alternating terms stay below e^4 so ~2 digits of cancellation), and above it the classic
 * continued fraction of erfc evaluated backwards with 80 terms,
 *   erfc(x) = e^(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))),
 * which converges quickly for x >= 2 (and erfc(x) < 5e-3 there anyway).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const ax = x < 0 ? -x : x;
  let r: number;
  if (ax < 2) {
    const x2 = ax * ax;
    let term = ax; // x^(2n+1) (-1)^n / n!
    let sum = ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
    }
    r = TWO_OVER_SQRT_PI * sum;
  } else if (ax > 6) {
    r = 1; // erfc(6) = 2e-17
  } else {
    let f = 0;
    for (let k = 80; k >= 1; k--) f = k / 2 / (ax + f);
    r = 1 - (Math.exp(-ax * ax) * ONE_OVER_SQRT_PI) / (ax + f);
  }
  return x < 0 ? -r : r;
}

/** GELU(x) = x/2 (1 + erf(x / sqrt 2)), the exact (not tanh) form ONNX graphs spell with Erf. */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** Softmax over rows of `cols` values (max subtracted first). */
export function softmaxRows(x: ArrayLike<number>, rows: number, cols: number, out: Float64Array = new Float64Array(rows * cols)): Float64Array {
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    let m = -Infinity;
    for (let j = 0; j < cols; j++) if (x[b + j] > m) m = x[b + j];
    let s = 0;
    for (let j = 0; j < cols; j++) s += out[b + j] = Math.exp(x[b + j] - m);
    for (let j = 0; j < cols; j++) out[b + j] /= s;
  }
  return out;
}

/** LayerNorm over rows of `cols` values: (x - mean) / sqrt(var + eps) * gamma + beta (biased variance, as ONNX). */
export function layerNormRows(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
  out: Float64Array = new Float64Array(rows * cols),
): Float64Array {
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    let mu = 0;
    for (let j = 0; j < cols; j++) mu += x[b + j];
    mu /= cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x[b + j] - mu) ** 2;
    v /= cols;
    const inv = 1 / Math.sqrt(v + eps);
    for (let j = 0; j < cols; j++) out[b + j] = (x[b + j] - mu) * inv * gamma[j] + beta[j];
  }
  return out;
}
