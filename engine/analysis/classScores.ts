/**
 * One row of class scores (logits or probabilities), float vs quantized: which class wins, whether
 * the float winner is in the quantized top k, and the KL divergence between the two distributions.
 * Rows are read in place from a flat array at `offset` with `classes` values.
 */

/** Probabilities are renormalised after flooring every class at this value (see klRow). */
export const PROBABILITY_FLOOR = 1e-7;
/** A float row counts as a probability vector when its values are >= 0 and sum to 1 within this. */
export const PROBABILITY_SUM_TOLERANCE = 1e-3;

/** Index of the largest score (first on ties); -1 when the row holds a NaN (no winner exists). */
export function argmaxRow(v: ArrayLike<number>, offset: number, classes: number): number {
  let best = -Infinity;
  let arg = -1;
  for (let c = 0; c < classes; c++) {
    const x = v[offset + c];
    if (Number.isNaN(x)) return -1;
    if (arg < 0 || x > best) {
      best = x;
      arg = c;
    }
  }
  return arg;
}

/**
 * Rank of class `cls` in the row under the argmax tie rule (0 = winner): the classes with a higher
 * score, plus those with an equal score and a lower index. -1 when the row holds a NaN.
 */
export function rankInRow(v: ArrayLike<number>, offset: number, classes: number, cls: number): number {
  const ref = v[offset + cls];
  let rank = 0;
  for (let c = 0; c < classes; c++) {
    const x = v[offset + c];
    if (Number.isNaN(x)) return -1;
    if (x > ref || (x === ref && c < cls)) rank++;
  }
  return rank;
}

/** Do all rows look like probability vectors (finite, >= 0, summing to 1)? */
export function rowsAreProbabilities(v: ArrayLike<number>, rows: number, classes: number): boolean {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const x = v[r * classes + c];
      if (!(x >= 0) || !Number.isFinite(x)) return false;
      sum += x;
    }
    if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) return false;
  }
  return rows > 0;
}

/** ln of softmax of a row, into `out`; false when no class has a finite score. */
function logSoftmax(v: ArrayLike<number>, offset: number, classes: number, out: Float64Array): boolean {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) if (v[offset + c] > max) max = v[offset + c];
  if (!Number.isFinite(max)) return false;
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(v[offset + c] - max);
  const lse = max + Math.log(sum);
  for (let c = 0; c < classes; c++) out[c] = v[offset + c] - lse;
  return true;
}

/**
 * ln of a probability row after clamping negatives to 0, flooring at PROBABILITY_FLOOR and
 * renormalising: quantized softmax outputs hold exact zeros (uint8 steps of 1/256), and a zero
 * where float puts mass would make KL infinite for what is only a rounding of a small probability.
 */
function logProbabilities(v: ArrayLike<number>, offset: number, classes: number, out: Float64Array): boolean {
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const p = Math.max(0, v[offset + c]) + PROBABILITY_FLOOR;
    out[c] = p;
    sum += p;
  }
  for (let c = 0; c < classes; c++) out[c] = Math.log(out[c] / sum);
  return true;
}

function hasNaNOrPlusInf(v: ArrayLike<number>, offset: number, classes: number): boolean {
  for (let c = 0; c < classes; c++) {
    const x = v[offset + c];
    if (Number.isNaN(x) || x === Infinity) return true;
  }
  return false;
}

/**
 * KL(P_float || P_quant) in nats for one row. Logits go through softmax; probability rows are
 * floored and renormalised (see logProbabilities). -Infinity logits are allowed (masked classes).
 * NaN when the FLOAT row has no distribution (NaN, +Infinity, or all -Infinity): there is nothing
 * to compare against. +Infinity when the quantized row is broken in the same ways, or puts zero
 * mass where float puts some: the divergence is unbounded and is reported as such.
 */
export function klRow(
  f: ArrayLike<number>,
  q: ArrayLike<number>,
  offset: number,
  classes: number,
  kind: 'logits' | 'probabilities',
  scratch: { lp: Float64Array; lq: Float64Array },
): number {
  if (hasNaNOrPlusInf(f, offset, classes)) return NaN;
  if (hasNaNOrPlusInf(q, offset, classes)) return Infinity;
  const toLog = kind === 'logits' ? logSoftmax : logProbabilities;
  if (!toLog(f, offset, classes, scratch.lp)) return NaN;
  if (!toLog(q, offset, classes, scratch.lq)) return Infinity;
  let kl = 0;
  for (let c = 0; c < classes; c++) {
    const lp = scratch.lp[c];
    if (lp === -Infinity) continue; // p = 0 contributes nothing
    const lq = scratch.lq[c];
    if (lq === -Infinity) return Infinity;
    kl += Math.exp(lp) * (lp - lq);
  }
  return Math.max(0, kl);
}
