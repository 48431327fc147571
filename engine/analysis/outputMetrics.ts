/**
 * Float vs quantized comparison of EVERY model output, batch by batch, keeping a few sums and one
 * number per sample per metric (so intervals can be computed): SQNR, cosine and max |error| over
 * the whole output, SQNR per sample, and for classifier-like outputs top-1 / top-k agreement, KL
 * per sample and labelled top-1 of both models.
 *
 * Classifier rule ("auto", the default): an output is classifier-like when each sample's output
 * is ONE vector of C >= 2 scores once axes of size 1 are ignored ([N, C], [N, C, 1, 1], [C] for a
 * batch of one). With classAxis "last", the last axis of [N, ..., C] holds the scores and every
 * other position is a row (per-token or per-pixel classes); per-sample agreement is then the
 * fraction of the sample's rows that agree. "none" turns it off. Rows are logits unless every float
 * row of the first batch is >= 0 and sums to 1 (then they are probabilities: no second softmax).
 *
 * Non-finite values are counted, never folded into a good number: an element where the float
 * output is finite and the quantized one is not makes the output's SQNR -Infinity and its cosine
 * NaN, the sample's SQNR -Infinity (left out of the per-sample mean and counted) and its
 * prediction wrong. Elements where float itself is NaN/Inf cannot be compared and are counted
 * apart (identical infinities, e.g. masked -Infinity logits, match and are fine).
 */
import type { ClassifierSummary, OutputSummary } from '../../protocol/metrics';
export type { ClassifierSummary, OutputSummary } from '../../protocol/metrics';
import { InputError } from '../errors';
import { PROBABILITY_SUM_TOLERANCE, argmaxRow, klRow, rankInRow, rowsAreProbabilities } from './classScores';
import { sqnrDb } from './metrics';
import { type Interval, LEVEL, type PairedAccuracy, meanInterval, pairedAccuracy, wilsonInterval } from './statistics';

/** One output tensor as onnxruntime returns it (bigint outputs are compared as numbers). */
export interface TensorData {
  data: ArrayLike<number> | BigInt64Array | BigUint64Array;
  dims: readonly number[];
}

export interface OutputMetricsOptions {
  /** Which outputs are classifier-like: "auto" (default), "last", "none" (see the file header). */
  classAxis?: 'auto' | 'last' | 'none';
  /** Whether class scores are logits or probabilities; "auto" (default) looks at the float rows. */
  scores?: 'auto' | 'logits' | 'probabilities';
  /** k of top-k agreement, used when the output has more than k classes; default 5. */
  topK?: number;
  level?: number;
}

/** Per-sample SQNR is capped here: float32 round-off alone gives about 140 dB, exact matches infinity. */
export const SQNR_CAP_DB = 150;

/** Raw per-sample series, in sample order, for paired comparisons between configurations. */
export interface PerSampleSeries {
  sqnrDb: Float64Array;
  klNats: Float64Array | null;
  top1Agreement: Float64Array | null;
  topKAgreement: Float64Array | null;
  floatCorrect: Uint8Array | null;
  quantizedCorrect: Uint8Array | null;
}

function numeric(t: TensorData): ArrayLike<number> {
  const d = t.data;
  return d instanceof BigInt64Array || d instanceof BigUint64Array ? Float64Array.from(d, Number) : d;
}

const fmtDims = (d: readonly number[]): string => `[${d.join(', ')}]`;

/** Accumulates the comparison of one model output. */
export class OutputComparison {
  private sx2 = 0;
  private sy2 = 0;
  private sxy = 0;
  private sd2 = 0;
  private maxAbs = 0;
  private elements = 0;
  private nonFinite = { float: 0, quantized: 0, matched: 0 };
  private sampleShape: number[] | null = null;
  private classes = 0;
  private rule = '';
  private scoreKind: 'logits' | 'probabilities' = 'logits';
  private rowsSeen = new Set<number>();
  private invalidFloatRows = 0;
  private labelsOutOfRange = 0;
  private sqnr: number[] = [];
  private exact = 0;
  private agree: number[] = [];
  private topk: number[] = [];
  private kl: number[] = [];
  private floatCorrect: number[] = [];
  private quantCorrect: number[] = [];
  private scratch = { lp: new Float64Array(0), lq: new Float64Array(0) };
  readonly k: number;

  constructor(
    readonly name: string,
    readonly opts: OutputMetricsOptions = {},
  ) {
    this.k = opts.topK ?? 5;
  }

  get samples(): number {
    return this.sqnr.length;
  }

  /** Add one batch: `samples` samples along the first axis (or one sample without a batch axis). */
  add(float: TensorData, quantized: TensorData, samples: number, labels: ArrayLike<number> | null = null): void {
    if (float.dims.join() !== quantized.dims.join()) {
      throw new InputError(`output ${this.name}: the quantized model gives shape ${fmtDims(quantized.dims)}, the float model ${fmtDims(float.dims)}`);
    }
    const f = numeric(float);
    const q = numeric(quantized);
    let shape: number[];
    if (float.dims.length > 0 && float.dims[0] === samples) shape = float.dims.slice(1);
    else if (samples === 1) shape = [...float.dims];
    else
      throw new InputError(
        `output ${this.name} has shape ${fmtDims(float.dims)}: its first axis is not the batch of ${samples} samples, so it cannot be compared per sample (run with batch size 1)`,
      );
    const per = samples ? f.length / samples : 0;
    if (this.sampleShape === null) this.decide(shape, f, samples, per);
    const rows = this.classes ? per / this.classes : 0;
    if (this.classes && !Number.isInteger(rows))
      throw new InputError(`output ${this.name}: ${per} values per sample do not split into rows of ${this.classes} classes`);
    for (let s = 0; s < samples; s++) {
      this.addSample(f, q, s * per, per);
      if (this.classes) this.addRows(f, q, s * per, rows, labels ? labels[s] : null);
    }
  }

  /**
   * Sum x^2 and sum (x - y)^2 over every compared element so far, and whether a quantized value
   * was non-finite where float is finite (the output is then broken, whatever the sums say).
   */
  get totals(): { sx2: number; sd2: number; broken: boolean } {
    return { sx2: this.sx2, sd2: this.sd2, broken: this.nonFinite.quantized > 0 };
  }

  /** Whether a sample shape makes this output classifier-like (class rows are then compared). */
  classifierLike(shape: readonly number[]): boolean {
    return this.classRule(shape) !== null;
  }

  private classRule(shape: readonly number[]): { classes: number; rule: string } | null {
    const mode = this.opts.classAxis ?? 'auto';
    if (mode === 'last') {
      const c = shape[shape.length - 1] ?? 1;
      if (c < 2) throw new InputError(`output ${this.name}: its last axis has ${c} value(s), too few to be class scores`);
      return { classes: c, rule: `last axis of ${fmtDims(shape)} holds ${c} class scores (as requested)` };
    }
    const big = shape.filter((d) => d !== 1);
    if (mode === 'auto' && big.length === 1 && big[0] >= 2)
      return { classes: big[0], rule: `each sample's output ${fmtDims(shape)} is one vector of ${big[0]} scores` };
    return null;
  }

  private decide(shape: number[], f: ArrayLike<number>, samples: number, per: number): void {
    this.sampleShape = shape;
    const c = this.classRule(shape);
    if (!c) return;
    this.classes = c.classes;
    this.rule = c.rule;
    const kind = this.opts.scores ?? 'auto';
    const rows = (samples * per) / this.classes;
    this.scoreKind = kind === 'auto' ? (rowsAreProbabilities(f, rows, this.classes) ? 'probabilities' : 'logits') : kind;
    if (kind === 'auto')
      this.rule +=
        this.scoreKind === 'probabilities'
          ? `; float rows are >= 0 and sum to 1 (within ${PROBABILITY_SUM_TOLERANCE}): probabilities`
          : '; logits (softmax applied)';
    this.scratch = { lp: new Float64Array(this.classes), lq: new Float64Array(this.classes) };
  }

  /**
   * Add one batch reduced per sample inside the model (quantize/outputSums.ts): sample s has
   * sum x^2 = x2[s] and sums[s * stride + at ..] = sum y^2, sum (x-y)^2, all finite (a
   * non-finite quantized output is compared from its values). The same bookkeeping as `addSample`,
   * except max |error|, which the sums do not give (NaN: not measured); only for outputs that are
   * not classifier-like (class rows need the values).
   */
  addReduced(sampleShape: readonly number[], samples: number, x2: ArrayLike<number>, sums: ArrayLike<number>, stride: number, at: number): void {
    if (this.classifierLike(sampleShape)) throw new Error(`output ${this.name}: class rows cannot be compared from per-sample sums`);
    this.sampleShape ??= [...sampleShape];
    const per = sampleShape.reduce((a, b) => a * b, 1);
    for (let s = 0; s < samples; s++) {
      const o = s * stride + at;
      const [sx2, sy2, sd2] = [x2[s], sums[o], sums[o + 1]];
      this.fold(sx2, sy2, (sx2 + sy2 - sd2) / 2, sd2, Number.NaN, per);
      this.pushSqnr(sx2, sd2);
    }
  }

  /** One sample's sums into the output's totals. */
  private fold(sx2: number, sy2: number, sxy: number, sd2: number, maxAbs: number, elements: number): void {
    this.sx2 += sx2;
    this.sy2 += sy2;
    this.sxy += sxy;
    this.sd2 += sd2;
    this.maxAbs = maxAbs;
    this.elements += elements;
  }

  /** A comparable sample's SQNR (capped; an exact match counted). */
  private pushSqnr(sx2: number, sd2: number): void {
    if (sd2 === 0) this.exact++;
    this.sqnr.push(Math.min(SQNR_CAP_DB, sqnrDb(sx2, sd2)));
  }

  private addSample(f: ArrayLike<number>, q: ArrayLike<number>, off: number, per: number): void {
    // Sums in locals, folded into the totals once per sample (the hot loop of every output
    // comparison: fields updated per element cost several times more).
    let sx2 = 0;
    let sd2 = 0;
    let sy2 = 0;
    let sxy = 0;
    let maxAbs = this.maxAbs;
    let elements = 0;
    let broken = false;
    let noReference = false;
    const end = off + per;
    for (let i = off; i < end; i++) {
      const a = f[i];
      const b = q[i];
      // a - a is 0 exactly for finite a (NaN for NaN and +-Inf): the common case in one test.
      if (a - a !== 0) {
        if (a === b && !Number.isNaN(a)) this.nonFinite.matched++;
        else {
          this.nonFinite.float++;
          noReference = true;
        }
        continue;
      }
      if (b - b !== 0) {
        this.nonFinite.quantized++;
        broken = true;
        continue;
      }
      const d = a - b;
      sx2 += a * a;
      sd2 += d * d;
      sy2 += b * b;
      sxy += a * b;
      // Math.abs, not d < 0 ? -d : d: the sign of an error is a coin toss, and V8 compiles the
      // ternary to a branch mispredicted every other element (13 -> 4 ns per element).
      const ad = Math.abs(d);
      if (ad > maxAbs) maxAbs = ad;
      elements++;
    }
    this.fold(sx2, sy2, sxy, sd2, maxAbs, elements);
    if (broken) this.sqnr.push(-Infinity);
    else if (noReference) this.sqnr.push(NaN);
    else this.pushSqnr(sx2, sd2);
  }

  private addRows(f: ArrayLike<number>, q: ArrayLike<number>, off: number, rows: number, label: number | null): void {
    const C = this.classes;
    this.rowsSeen.add(rows);
    let agree = 0;
    let inTopK = 0;
    let valid = 0;
    let klSum = 0;
    let floatPred = -1;
    let quantPred = -1;
    for (let r = 0; r < rows; r++) {
      const o = off + r * C;
      floatPred = argmaxRow(f, o, C);
      quantPred = argmaxRow(q, o, C);
      klSum += klRow(f, q, o, C, this.scoreKind, this.scratch);
      if (floatPred < 0) {
        this.invalidFloatRows++;
        continue;
      }
      valid++;
      if (quantPred === floatPred) agree++;
      const rank = rankInRow(q, o, C, floatPred);
      if (rank >= 0 && rank < this.k) inTopK++;
    }
    this.agree.push(valid ? agree / valid : NaN);
    this.topk.push(valid ? inTopK / valid : NaN);
    this.kl.push(rows ? klSum / rows : NaN);
    if (label !== null && rows === 1) {
      if (!(Number.isInteger(label) && label >= 0 && label < C)) this.labelsOutOfRange++;
      this.floatCorrect.push(floatPred === label ? 1 : 0);
      this.quantCorrect.push(quantPred === label ? 1 : 0);
    }
  }

  /** The per-sample series gathered so far (copies). */
  perSample(): PerSampleSeries {
    const c = this.classes > 0;
    const labelled = c && this.floatCorrect.length === this.samples && this.samples > 0;
    return {
      sqnrDb: Float64Array.from(this.sqnr),
      klNats: c ? Float64Array.from(this.kl) : null,
      top1Agreement: c ? Float64Array.from(this.agree) : null,
      topKAgreement: c && this.classes > this.k ? Float64Array.from(this.topk) : null,
      floatCorrect: labelled ? Uint8Array.from(this.floatCorrect) : null,
      quantizedCorrect: labelled ? Uint8Array.from(this.quantCorrect) : null,
    };
  }

  /** Plain-JSON summary with intervals. */
  summary(): OutputSummary {
    const level = this.opts.level ?? LEVEL;
    const warnings: string[] = [];
    const nf = this.nonFinite;
    if (nf.quantized)
      warnings.push(
        `output ${this.name}: ${nf.quantized} quantized value(s) are NaN or infinite where float is finite; SQNR is -infinity and those samples count as wrong`,
      );
    if (nf.float) warnings.push(`output ${this.name}: ${nf.float} float value(s) are NaN or infinite; they cannot be compared and are left out`);
    const broken = nf.quantized > 0;
    const perSample = meanInterval(this.sqnr, { level });
    if (perSample.nonFinite) warnings.push(`output ${this.name}: ${perSample.nonFinite} sample(s) have no finite SQNR and are left out of the per-sample mean`);
    return {
      name: this.name,
      samples: this.samples,
      sampleShape: this.sampleShape ?? [],
      elements: this.elements,
      sqnrDb: broken ? -Infinity : sqnrDb(this.sx2, this.sd2),
      cosine: broken ? NaN : this.sx2 === 0 || this.sy2 === 0 ? (this.sx2 === this.sy2 ? 1 : 0) : this.sxy / Math.sqrt(this.sx2 * this.sy2),
      maxAbsError: broken ? Infinity : this.maxAbs,
      mse: broken ? Infinity : this.elements ? this.sd2 / this.elements : 0,
      perSampleSqnrDb: perSample,
      exactSamples: this.exact,
      nonFinite: { ...nf },
      classifier: this.classes ? this.classifierSummary(level, warnings) : null,
      warnings,
    };
  }

  private classifierSummary(level: number, warnings: string[]): ClassifierSummary {
    const single = this.rowsSeen.size === 1 && this.rowsSeen.has(1);
    const proportion = (values: number[]): Interval => {
      if (!single) {
        const m = meanInterval(values, { level });
        return { estimate: m.estimate, low: m.low, high: m.high, level, method: `${m.method} over per-sample fractions` };
      }
      const valid = values.filter((v) => !Number.isNaN(v));
      return wilsonInterval(valid.filter((v) => v === 1).length, valid.length, level);
    };
    const kl = meanInterval(this.kl, { level });
    if (kl.nonFinite)
      warnings.push(
        `output ${this.name}: KL is unbounded or undefined on ${kl.nonFinite} sample(s) (non-finite or zero-mass scores); they are left out of the mean`,
      );
    let labelled: PairedAccuracy | null = null;
    if (this.floatCorrect.length && this.floatCorrect.length === this.samples) {
      if (this.labelsOutOfRange)
        warnings.push(
          `output ${this.name}: ${this.labelsOutOfRange} label(s) are not classes 0..${this.classes - 1} of this output; no labelled accuracy for it`,
        );
      else labelled = pairedAccuracy(this.floatCorrect, this.quantCorrect, level);
    }
    return {
      classes: this.classes,
      rowsPerSample: single ? 1 : Math.max(...this.rowsSeen),
      scores: this.scoreKind,
      rule: this.rule,
      top1Agreement: proportion(this.agree),
      topK: this.classes > this.k ? { k: this.k, agreement: proportion(this.topk) } : null,
      klNats: kl,
      invalidFloatRows: this.invalidFloatRows,
      labelled,
    };
  }
}

/** One OutputComparison per model output, fed with whole result maps. */
export class ModelOutputComparison {
  readonly outputs: OutputComparison[];

  /** `names`: the model's outputs in order; `opts` apply to all, `perOutput` overrides them by name. */
  constructor(names: readonly string[], opts: OutputMetricsOptions = {}, perOutput: Record<string, OutputMetricsOptions> = {}) {
    this.outputs = names.map((n) => new OutputComparison(n, { ...opts, ...perOutput[n] }));
  }

  add(float: Record<string, TensorData>, quantized: Record<string, TensorData>, samples: number, labels: ArrayLike<number> | null = null): void {
    for (const o of this.outputs) {
      const f = float[o.name];
      const q = quantized[o.name];
      if (!f || !q) throw new InputError(`output ${o.name} is missing from the ${f ? 'quantized' : 'float'} model's results`);
      o.add(f, q, samples, labels);
    }
  }

  summaries(): OutputSummary[] {
    return this.outputs.map((o) => o.summary());
  }

  /**
   * SQNR of all outputs together (their sums pooled, so a large output weighs by its energy), as
   * every output's own: -Infinity once any quantized value is non-finite where float is finite.
   * From the sums the per-output comparison keeps anyway: a second pass over every value for this
   * one number cost as much as the comparison itself.
   */
  overallSqnrDb(): number {
    let sx2 = 0;
    let sd2 = 0;
    for (const o of this.outputs) {
      const t = o.totals;
      if (t.broken) return -Infinity;
      sx2 += t.sx2;
      sd2 += t.sd2;
    }
    return sqnrDb(sx2, sd2);
  }
}
