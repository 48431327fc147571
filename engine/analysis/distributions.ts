/**
 * The few probability functions the statistics need, written from their mathematical definitions
 * (no fitted coefficient tables): the standard normal CDF and quantile, Student's t quantile, the
 * log-gamma function and the regularized incomplete beta function; plus a seeded uniform generator
 * so that every bootstrap interval reproduces exactly.
 */

const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** Standard normal density. */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / SQRT_2PI;
}

/**
 * Upper tail Q(x) = 1 - Phi(x) for x >= 0. Below 5 the Taylor series of the integral of the density
 * (all terms positive, so no cancellation) is exact to rounding; above, Laplace's continued fraction
 * converges fast and keeps full relative accuracy deep in the tail.
 */
function upperTail(x: number): number {
  if (x < 5) {
    // Phi(x) - 1/2 = phi(x) * sum_k x^(2k+1) / (1 * 3 * ... * (2k+1))
    let term = x;
    let sum = x;
    for (let k = 1; k < 500 && term > 1e-17 * sum; k++) {
      term *= (x * x) / (2 * k + 1);
      sum += term;
    }
    return 0.5 - normalPdf(x) * sum;
  }
  // Q(x) = phi(x) / (x + 1/(x + 2/(x + 3/(x + ...)))), evaluated from a deep level upwards.
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / f;
  return normalPdf(x) / f;
}

/** Standard normal CDF Phi(x). */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  return x >= 0 ? 1 - upperTail(x) : upperTail(-x);
}

/** Inverse of the standard normal CDF, p in (0, 1). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    return NaN;
  }
  if (p > 0.5) return -normalQuantile(1 - p);
  // Bisection on Phi in the lower tail (p <= 1/2 keeps Phi(x) - p free of cancellation): Phi is
  // monotone, so this cannot diverge the way Newton's method does from a far start.
  let lo = -40;
  let hi = 0;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * Math.max(1, -lo); i++) {
    const mid = 0.5 * (lo + hi);
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * ln Gamma(x) for x > 0: Stirling's series to the x^-9 term (error below 1e-14 for x >= 10), with the recurrence
 * Gamma(x + 1) = x Gamma(x) carrying smaller arguments up to 10.
 */
export function logGamma(x: number): number {
  if (!(x > 0)) return NaN;
  let shift = 0;
  while (x < 10) {
    shift += Math.log(x);
    x += 1;
  }
  const x2 = x * x;
  const series = 1 / (12 * x) - 1 / (360 * x * x2) + 1 / (1260 * x * x2 * x2) - 1 / (1680 * x * x2 * x2 * x2) + 1 / (1188 * x * x2 * x2 * x2 * x2);
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

/**
 * Continued fraction of the incomplete beta function (DLMF 8.17.22), evaluated by the modified
 * Lentz method; converges quickly for x < (a + 1) / (a + b + 2).
 */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    // even step
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    // odd step
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  const front = Math.exp(lnFront);
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Student's t CDF with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Quantile of Student's t with `df` degrees of freedom (bisection on the CDF: robust for df = 1). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * Seeded uniform numbers in [0, 1): a Weyl sequence (step 0x9e3779b9, the golden ratio in 32 bits)
 * passed through the MurmurHash3 32-bit finalizer. Successive outputs are well mixed, and a seed
 * reproduces a bootstrap exactly.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}
