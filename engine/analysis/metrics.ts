/**
 * Streaming error metrics between a reference x and an approximation y, accumulated over batches
 * so nothing but a handful of sums is kept.
 *   SQNR dB = 20 log10(||x|| / ||x - y||)   (ORT qdq_loss_debug, torch.ao.ns)
 *   cosine  = <x, y> / (||x|| ||y||)
 */
import type { ErrorMetrics } from '../../protocol/report';

/** What ErrorAccumulator.add summed over one range: sum x^2, sum (x-y)^2, elements left out. */
export interface RangeSums {
  sx2: number;
  sd2: number;
  skipped: number;
}

export class ErrorAccumulator {
  private sx2 = 0;
  private sy2 = 0;
  private sxy = 0;
  private sd2 = 0;
  private maxAbs = 0;
  private n = 0;

  /**
   * Add elements [from, to) of x and y; returns the sums of that range alone. Pairs whose reference
   * x is Inf or NaN are left out (there is no error to measure against it) and counted in `skipped`.
   */
  add(x: ArrayLike<number>, y: ArrayLike<number>, from = 0, to = x.length): RangeSums {
    if (x.length !== y.length) throw new RangeError(`metric inputs differ in length: ${x.length} vs ${y.length}`);
    let skipped = 0;
    // Locals in the loop, folded into the totals once per call (fields updated per element cost more).
    let sx2 = 0,
      sy2 = 0,
      sxy = 0,
      sd2 = 0,
      maxAbs = 0;
    for (let i = from; i < to; i++) {
      const a = x[i];
      if (a - a !== 0) {
        skipped++;
        continue;
      }
      const b = y[i];
      const d = a - b;
      sx2 += a * a;
      sy2 += b * b;
      sxy += a * b;
      sd2 += d * d;
      const ad = Math.abs(d);
      if (ad > maxAbs) maxAbs = ad;
    }
    this.addSums(sx2, sy2, sxy, sd2, maxAbs, to - from - skipped);
    return { sx2, sd2, skipped };
  }

  /** Merge sums computed elsewhere (fused loops): sum x^2, y^2, xy, (x-y)^2, max |x-y|, count. */
  addSums(sx2: number, sy2: number, sxy: number, sd2: number, maxAbs: number, n: number): void {
    this.sx2 += sx2;
    this.sy2 += sy2;
    this.sxy += sxy;
    this.sd2 += sd2;
    if (maxAbs > this.maxAbs) this.maxAbs = maxAbs;
    this.n += n;
  }

  get count(): number {
    return this.n;
  }

  result(): ErrorMetrics {
    return {
      sqnrDb: sqnrDb(this.sx2, this.sd2),
      cosine: this.sx2 === 0 || this.sy2 === 0 ? (this.sx2 === this.sy2 ? 1 : 0) : this.sxy / Math.sqrt(this.sx2 * this.sy2),
      mse: this.n ? this.sd2 / this.n : 0,
      maxAbs: this.maxAbs,
    };
  }
}

/** 20 log10(||x|| / ||d||) from squared norms; Infinity when there is no error at all. */
export function sqnrDb(signalSq: number, noiseSq: number): number {
  if (noiseSq === 0) return Infinity;
  if (signalSq === 0) return -Infinity;
  return 10 * Math.log10(signalSq / noiseSq);
}

/**
 * Index of the largest value in each row of `cols` values (ties: first; NaN never wins, a row of
 * nothing larger than -Infinity gives 0). Four interleaved running maxima, merged per row by value
 * and then by the smallest index: one running maximum waits on each comparison before the next
 * (2.4 ns per value on a 6,625-class row), four do not.
 */
export function argmaxRows(values: ArrayLike<number>, cols: number): Int32Array {
  const rows = values.length / cols;
  const out = new Int32Array(rows);
  const stripes = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let b0 = -Infinity,
      b1 = -Infinity,
      b2 = -Infinity,
      b3 = -Infinity;
    let a0 = 0,
      a1 = 0,
      a2 = 0,
      a3 = 0;
    for (let c = 0; c < stripes; c += 4) {
      const v0 = values[o + c],
        v1 = values[o + c + 1],
        v2 = values[o + c + 2],
        v3 = values[o + c + 3];
      if (v0 > b0) {
        b0 = v0;
        a0 = c;
      }
      if (v1 > b1) {
        b1 = v1;
        a1 = c + 1;
      }
      if (v2 > b2) {
        b2 = v2;
        a2 = c + 2;
      }
      if (v3 > b3) {
        b3 = v3;
        a3 = c + 3;
      }
    }
    for (let c = stripes; c < cols; c++) {
      const v = values[o + c];
      if (v > b0) {
        b0 = v;
        a0 = c;
      }
    }
    // each stripe holds the first index of its own maximum; the row's first maximum is the
    // smallest index among the stripes that reach the largest value (an untouched stripe: 0)
    let best = b0,
      arg = a0;
    if (b1 > best || (b1 === best && a1 < arg)) {
      best = b1;
      arg = a1;
    }
    if (b2 > best || (b2 === best && a2 < arg)) {
      best = b2;
      arg = a2;
    }
    if (b3 > best || (b3 === best && a3 < arg)) arg = a3;
    out[r] = arg;
  }
  return out;
}

/** Counts top-1 hits against labels and against a reference prediction. */
export class Top1Counter {
  hits = 0;
  agree = 0;
  n = 0;

  add(pred: Int32Array, labels: Int32Array | null, reference: Int32Array | null): void {
    for (let i = 0; i < pred.length; i++) {
      if (labels && pred[i] === labels[i]) this.hits++;
      if (!reference || pred[i] === reference[i]) this.agree++;
    }
    this.n += pred.length;
  }

  top1(hasLabels: boolean): number | null {
    return hasLabels && this.n ? this.hits / this.n : null;
  }

  agreement(): number {
    return this.n ? this.agree / this.n : 1;
  }
}
