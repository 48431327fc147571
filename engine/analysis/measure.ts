/**
 * Model-output-only measurement of a candidate: the quantized model (a whole configuration, or a
 * configuration with a fix applied) runs in onnxruntime and its outputs are compared with the
 * float model's on the same samples, giving every output's metrics and the PRIMARY metric with its
 * interval (outputMetrics.ts, primaryMetric.ts, statistics.ts), without any layer taps. Sweeps,
 * mixed precision, the CI gate and the diagnosis's fix search measure through this.
 *
 * The float outputs (and the user metric's float scores) are computed once and kept while they are
 * small; models with large outputs recompute them per batch instead, so memory never grows with N.
 * Every measurement also keeps the primary metric's per-sample series, so two candidates measured
 * on the same samples are compared PAIRED (paired.ts): a difference within noise is said to be one.
 */
import type * as ort from 'onnxruntime-node';
import type { QuantConfig } from '../../protocol/report';
import type { ModelProto } from '../onnx/model';
import { batchFirst, stateOutputAxes } from '../data/inputs';
import { batchRanges } from '../data/dataset';
import type { QuantPlan } from '../quantize/plan';
import { buildQdqModel, gridType } from '../quantize/qdqRewrite';
import { type RunMode, feedsFor, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { integerEncoding, shiftParams } from './kernels';
import { ErrorAccumulator, Top1Counter, argmaxRows } from './metrics';
import { ModelOutputComparison, type TensorData } from './outputMetrics';
import { choosePrimaryMetric } from './primaryMetric';
export { type Measurement, compareMeasurements, lossValue, meanSqnr, withinNoise } from './paired';
import { quantizeWith } from './quantize';
import { disposeAll } from './taps';
import type { Measurement } from './paired';
import type { Prepared, Quantized } from './types';
import { type UserMetric, scoreBatch, userMetricSummary } from './userMetric';

/**
 * The float outputs compared per sample, and a run's outputs as the comparison wants them: a state
 * output whose batch axis is not the first ([2, batch, 128]) turned batch-first, as evaluate does.
 * `fallback` supplies outputs a partial run (a layer's downstream part) did not produce.
 */
export function outputView(p: Prepared): {
  names: string[];
  view: (r: Record<string, TensorData>, fallback?: Record<string, TensorData>) => Record<string, TensorData>;
} {
  const names = p.outputs.filter((o) => (p.tensorTypes.get(o) ?? 'float32') === 'float32');
  const axes = stateOutputAxes(p.data.states ?? []);
  const one = (o: string, t: TensorData): TensorData => (axes.has(o) ? batchFirst(t.data as Float32Array, t.dims, axes.get(o)!) : t);
  return { names, view: (r, fallback = {}) => Object.fromEntries(names.map((o) => [o, one(o, r[o] ?? fallback[o])])) };
}

/** Float outputs kept in memory up to this many bytes; beyond, they are recomputed per batch. */
const CACHE_BYTES = 64 * 1024 * 1024;

interface FloatBatch {
  start: number;
  count: number;
  outputs: Record<string, TensorData>;
  pred: Int32Array | null;
  userScores: number[] | null;
}

export interface MeasurerOptions {
  /** Measure on the first `samples` samples only (default all). */
  samples?: number;
  metric?: UserMetric;
  signal?: AbortSignal;
}

/** Measures candidates against the float model's outputs on the same samples. */
export class OutputMeasurer {
  private cache: FloatBatch[] | null = [];
  private session: ort.InferenceSession | undefined;
  readonly samples: number;
  /** Integer outputs (argmax indices, counts) are left to equality: only float ones are compared. */
  readonly floatOutputs: string[];
  private readonly view: ReturnType<typeof outputView>['view'];

  private constructor(
    readonly p: Prepared,
    readonly opts: MeasurerOptions,
  ) {
    this.samples = Math.min(opts.samples ?? p.data.samples, p.data.samples);
    const v = outputView(p);
    this.floatOutputs = v.names;
    this.view = v.view;
  }

  static async create(p: Prepared, opts: MeasurerOptions = {}): Promise<OutputMeasurer> {
    const m = new OutputMeasurer(p, opts);
    m.session = await sessionOnData(p, p.float, 'float');
    return m;
  }

  private *ranges(): Generator<[number, number]> {
    yield* batchRanges(this.samples, this.p.batchSize);
  }

  private async floatBatch(k: number, start: number, count: number): Promise<FloatBatch> {
    const hit = this.cache?.[k];
    if (hit) return hit;
    const r = await runSession(this.session!, await feedsFor(this.p.data, start, count), this.p.loaded.path);
    const copies: Record<string, TensorData> = {};
    for (const o of this.floatOutputs) copies[o] = { data: (r[o].data as Float32Array).slice(), dims: r[o].dims.map(Number) };
    disposeAll(r);
    const outputs = this.view(copies);
    const first = outputs[this.p.outputs[0]];
    const pred = first ? argmaxRows(first.data as Float32Array, Number(first.dims[first.dims.length - 1] ?? 1)) : null;
    const labels = this.labelsOf(start, count);
    const userScores = this.opts.metric ? await scoreBatch(this.opts.metric, outputs, outputs, count, labels, start) : null;
    const b = { start, count, outputs, pred, userScores };
    if (this.cache) {
      this.cache[k] = b;
      const bytes = this.cache.reduce((a, x) => a + (x ? Object.values(x.outputs).reduce((s, o) => s + (o.data as Float32Array).byteLength, 0) : 0), 0);
      if (bytes > CACHE_BYTES) this.cache = null; // large outputs: recompute per batch from now on
    }
    return b;
  }

  private labelsOf(start: number, count: number): Int32Array | null {
    return this.p.data.labels?.subarray(start, start + count) ?? null;
  }

  /**
   * A configuration as its QDQ model, run on onnxruntime's integer kernels with the grid encoding
   * the analysis uses (symmetric int8 activations as the equivalent uint8 grid on x86, so the
   * kernels really fuse: see kernels.ts), so a candidate's numbers match the report's.
   */
  async measureConfig(config: QuantConfig, q?: Quantized): Promise<Measurement> {
    const qq = q ?? (await quantizeWith(this.p, config, { signal: this.opts.signal }));
    return this.measurePlan(qq, qq.plan);
  }

  /** `q` with only the layers of `plan` quantized (e.g. one layer alone), on integer kernels. */
  async measurePlan(q: Quantized, plan: QuantPlan): Promise<Measurement> {
    const enc = integerEncoding(q.config);
    const params = shiftParams(q.actParams, enc.shift);
    // onnxruntime 1.30 corrupts its heap running a graph whose 4-bit activation codes feed only a
    // DequantizeLinear (measured: free() aborts, simulated and integer alike); exposing the codes'
    // dequantized value as an output, as the analysis's taps do, avoids it. Outputs are compared by name.
    const fourBit = [...params.values()].some((x) => gridType(x).bits === 4);
    const { model } = buildQdqModel(q.prepared, this.p.loaded.dir, plan, params, enc.config, fourBit);
    return this.measureModel(model, 'integer');
  }

  /** Run `model` (or an open session) in `mode` on the samples and compare its outputs with float's. */
  async measureModel(model: ModelProto | ort.InferenceSession, mode: RunMode = 'integer'): Promise<Measurement> {
    const own = !('run' in model);
    const label = `quantized model of ${this.p.loaded.path}`;
    const s = own ? await sessionOnData(this.p, model as ModelProto, mode, label) : (model as ort.InferenceSession);
    const cmp = new ModelOutputComparison(this.floatOutputs);
    const acc = new ErrorAccumulator();
    const top = new Top1Counter();
    const floatScores: number[] = [];
    const quantScores: number[] = [];
    const metric = this.opts.metric;
    try {
      let k = 0;
      for (const [start, count] of this.ranges()) {
        checkCancel(this.opts.signal);
        const f = await this.floatBatch(k++, start, count);
        const r = await runSession(s, await feedsFor(this.p.data, start, count), label);
        const q = this.view(r as unknown as Record<string, TensorData>);
        const labels = this.labelsOf(start, count);
        cmp.add(f.outputs, q, count, labels);
        for (const o of this.floatOutputs) acc.add(f.outputs[o].data as Float32Array, q[o].data as Float32Array);
        const first = q[this.p.outputs[0]];
        if (f.pred && first) top.add(argmaxRows(first.data as Float32Array, Number(first.dims[first.dims.length - 1] ?? 1)), labels, f.pred);
        if (metric) {
          floatScores.push(...f.userScores!);
          quantScores.push(...(await scoreBatch(metric, f.outputs, q, count, labels, start)));
        }
        disposeAll(r);
      }
    } finally {
      if (own) await s.release();
    }
    const user = metric ? userMetricSummary(metric, floatScores, quantScores) : null;
    const outputs = cmp.summaries();
    const primary = choosePrimaryMetric(outputs, user);
    const hasLabels = this.p.data.labels !== null;
    const byName = new Map(cmp.outputs.map((o) => [o.name, o]));
    const series = byName.get(primary.output ?? this.floatOutputs[0])?.perSample();
    let perSample: Float64Array;
    if (primary.kind === 'user') perSample = Float64Array.from(quantScores, (v) => (metric!.higherIsBetter ? v : -v));
    else if (primary.kind === 'top1') perSample = Float64Array.from(series!.quantizedCorrect!);
    else if (primary.kind === 'agreement') perSample = series!.top1Agreement!;
    else perSample = series!.sqnrDb;
    const summary = outputs.find((o) => o.name === primary.output);
    return {
      outputs,
      primary,
      metrics: { top1: top.top1(hasLabels), agreement: top.agreement(), outputSqnrDb: acc.result().sqnrDb, samples: this.samples },
      perSample,
      perSampleSqnr: series?.sqnrDb ?? new Float64Array(0),
      table: primary.kind === 'top1' ? (summary?.classifier?.labelled?.table ?? null) : null,
      samples: this.samples,
    };
  }

  async release(): Promise<void> {
    await this.session?.release();
    this.cache = [];
  }
}
