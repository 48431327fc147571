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

/** Index of the largest value in each row of `cols` values (ties: first). */
export function argmaxRows(values: ArrayLike<number>, cols: number): Int32Array {
  const rows = values.length / cols;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    let arg = 0;
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c];
      if (v > best) {
        best = v;
        arg = c;
      }
    }
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
