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
import * as ort from 'onnxruntime-node';
import type { QuantConfig } from '../../protocol/report';
import type { ModelProto } from '../onnx/model';
import { batchFirst, fedBackOutputs, stateOutputAxes } from '../data/inputs';
import { batchRanges } from '../data/dataset';
import type { QuantPlan } from '../quantize/plan';
import { buildQdqModel, gridType } from '../quantize/qdqRewrite';
import { type RunMode, feedsFor, runSession } from '../runtime/session';
import { ELEM_TYPE } from '../onnx/slice';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { integerEncoding, shiftParams } from './kernels';
import { Top1Counter, argmaxRows } from './metrics';
import { ModelOutputComparison, type TensorData } from './outputMetrics';
import { choosePrimaryMetric } from './primaryMetric';
export { type Measurement, compareMeasurements, lossValue, meanSqnr, withinNoise } from './paired';
import { type CutPoint, type Suffix, cutPoints, expose, reusableSuffix } from './prefixReuse';
import { quantizeWith } from './quantize';
import { disposeAll } from './taps';
import type { Look, Measurement } from './paired';
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
  /**
   * Layers the candidates change (a fix search's culprits): each measurement keeps the codes
   * entering them, and a later candidate sharing everything upstream runs only from there
   * (prefixReuse.ts). Without it every candidate runs whole.
   */
  cutLayers?: readonly string[];
  /** Bytes of codes kept for that, all measured models together (default KEPT_BYTES). */
  keptBytes?: number;
}

/**
 * Codes kept of all measured models together; beyond, the least recently used go. One model keeps
 * an eighth of it at most, over all samples: the codes of the latest cut layers that fit (the
 * later the cut, the less of the model a candidate there runs), so memory does not grow with the
 * sample count, and the plan so far stays kept while its layer's options are measured.
 */
const KEPT_BYTES = 256 * 1024 * 1024;

/** A measured model and the codes at its cuts, per batch (the measurer's batches). */
interface KeptRun {
  model: ModelProto;
  tensors: Map<string, ort.Tensor[]>;
  bytes: number;
}

/** Measures candidates against the float model's outputs on the same samples. */
export class OutputMeasurer {
  private cache: FloatBatch[] | null = [];
  private session: ort.InferenceSession | undefined;
  /** Measured models whose codes later candidates may start from (most recently used last). */
  private kept: KeptRun[] = [];
  /** Cut layers (empty: nothing kept), and their cut points whose codes fit (set on the first batch). */
  private cutLayers: readonly string[];
  private cutsChosen: Set<string> | null = null;
  /** Bytes of codes kept, all measured models together (MeasurerOptions.keptBytes). */
  private readonly keptBytes: number;
  /** Candidates run from a kept model's codes, and their nodes run against the whole models'. */
  readonly reuse = { candidates: 0, nodesRun: 0, nodesWhole: 0, keptBytes: 0 };
  readonly samples: number;
  /** Integer outputs (argmax indices, counts) are left to equality: only float ones are compared. */
  readonly floatOutputs: string[];
  private readonly view: ReturnType<typeof outputView>['view'];

  private constructor(
    readonly p: Prepared,
    readonly opts: MeasurerOptions,
  ) {
    this.samples = Math.min(opts.samples ?? p.data.samples, p.data.samples);
    this.cutLayers = opts.cutLayers ?? [];
    this.keptBytes = opts.keptBytes ?? KEPT_BYTES;
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
  async measureConfig(config: QuantConfig, q?: Quantized, look?: Look): Promise<Measurement> {
    const qq = q ?? (await quantizeWith(this.p, config, { signal: this.opts.signal }));
    return this.measurePlan(qq, qq.plan, look);
  }

  /** `q` with only the layers of `plan` quantized (e.g. one layer alone), on integer kernels. */
  async measurePlan(q: Quantized, plan: QuantPlan, look?: Look): Promise<Measurement> {
    const enc = integerEncoding(q.config);
    const params = shiftParams(q.actParams, enc.shift);
    // onnxruntime 1.30 corrupts its heap running a graph whose 4-bit activation codes feed only a
    // DequantizeLinear (measured: free() aborts, simulated and integer alike); exposing the codes'
    // dequantized value as an output, as the analysis's taps do, avoids it. Outputs are compared by name.
    const fourBit = [...params.values()].some((x) => gridType(x).bits === 4);
    const { model } = buildQdqModel(q.prepared, this.p.loaded.dir, plan, params, enc.config, fourBit);
    // A subset plan (one layer alone) shares little with the configurations a search extends.
    return fourBit || !this.cutLayers.length || plan !== q.plan ? this.measureModel(model, 'integer', undefined, look) : this.measureReusing(model, look);
  }

  /**
   * `model` on integer kernels, from the kept model it shares the longest prefix with (only the
   * nodes after the cut run, fed that model's codes), keeping its own codes at the cut layers.
   */
  private async measureReusing(model: ModelProto, look?: Look): Promise<Measurement> {
    let best: { base: KeptRun; suffix: Suffix } | null = null;
    for (const base of this.kept) {
      // Only codes of every batch (a measurement is kept once it has run all of them).
      const kept = new Set([...base.tensors].filter(([, b]) => b.length > 0).map(([t]) => t));
      const suffix = reusableSuffix(base.model, model, kept, (t) => ELEM_TYPE[base.tensors.get(t)![0].type]);
      if (suffix && (!best || suffix.nodes < best.suffix.nodes)) best = { base, suffix };
    }
    const points = cutPoints(model, this.cutLayers).filter((c) => !this.cutsChosen || this.cutsChosen.has(c.key));
    const cuts = [...new Set(points.flatMap((c) => c.tensors))];
    const run = best ? best.suffix.model : model;
    const exposed = expose(run, cuts);
    const entry: KeptRun = { model, tensors: new Map(), bytes: 0 };
    for (const t of cuts) {
      const borrowed = !exposed.includes(t) && best?.base.tensors.get(t);
      if (borrowed) entry.tensors.set(t, borrowed);
    }
    for (const t of exposed) entry.tensors.set(t, []);
    if (best) {
      this.kept = [...this.kept.filter((k) => k !== best.base), best.base];
      this.reuse.candidates++;
      this.reuse.nodesRun += best.suffix.nodes;
      this.reuse.nodesWhole += best.suffix.total;
    }
    const inputs = new Set(run.graph!.input.map((i) => i.name));
    const m = await this.measureModel(
      run,
      'integer',
      {
        feeds: (k, data) => {
          const feeds = Object.fromEntries(Object.entries(data).filter(([n]) => inputs.has(n)));
          for (const t of best?.suffix.frontier ?? []) feeds[t] = best!.base.tensors.get(t)![k];
          return feeds;
        },
        keep: (res, count) => {
          if (!this.cutsChosen) this.chooseCuts(points, res, count, entry);
          for (const t of exposed) {
            const kept = entry.tensors.get(t);
            if (!kept) continue;
            const r = res[t];
            kept.push(new ort.Tensor(r.type as 'uint8', (r.data as Uint8Array).slice(), r.dims));
          }
        },
      },
      look,
    );
    // A measurement stopped at a look kept the codes of its first batches only: no later candidate can start from them.
    if (this.cutLayers.length && m.samples === this.samples) this.keep(entry);
    return m;
  }

  /**
   * On the first batch measured: the cut points whose codes, for all samples, fit one model's
   * share of the budget, latest first. `entry` (that first model's) keeps only theirs.
   */
  private chooseCuts(points: CutPoint[], res: Record<string, ort.Tensor>, count: number, entry: KeptRun): void {
    const budget = this.keptBytes / 8 / this.samples;
    const perSample = (t: string) => (res[t] ? (res[t].data as Uint8Array).byteLength / count : Number.POSITIVE_INFINITY);
    const chosen = new Set<string>();
    const tensors = new Set<string>();
    let bytes = 0;
    for (const c of [...points].sort((a, b) => b.at - a.at)) {
      const added = c.tensors.filter((t) => !tensors.has(t));
      const b = added.reduce((a, t) => a + perSample(t), 0);
      if (bytes + b > budget) continue;
      chosen.add(c.key);
      for (const t of added) tensors.add(t);
      bytes += b;
    }
    this.cutsChosen = chosen;
    if (!chosen.size) this.cutLayers = [];
    for (const t of [...entry.tensors.keys()]) if (!tensors.has(t)) entry.tensors.delete(t);
  }

  /**
   * Keep `entry`, the least recently used out beyond the budget. Its bytes count what it borrowed
   * too: a borrowed array outlives its model's eviction, so this bounds what is really held.
   */
  private keep(entry: KeptRun): void {
    for (const list of entry.tensors.values()) for (const t of list) entry.bytes += (t.data as Uint8Array).byteLength;
    this.kept.push(entry);
    let total = this.kept.reduce((a, k) => a + k.bytes, 0);
    while (total > this.keptBytes && this.kept.length > 1) total -= this.kept.shift()!.bytes;
    this.reuse.keptBytes = total;
  }

  /** Run `model` (or an open session) in `mode` on the samples and compare its outputs with float's. */
  async measureModel(
    model: ModelProto | ort.InferenceSession,
    mode: RunMode = 'integer',
    io?: {
      /** Batch k's feeds from the data's. */
      feeds: (k: number, data: Record<string, ort.Tensor>) => Record<string, ort.Tensor>;
      /** Sees each batch's results (of `count` samples) before they are disposed. */
      keep: (res: Record<string, ort.Tensor>, count: number) => void;
    },
    look?: Look,
  ): Promise<Measurement> {
    const own = !('run' in model);
    const label = `quantized model of ${this.p.loaded.path}`;
    const s = own ? await sessionOnData(this.p, model as ModelProto, mode, label) : (model as ort.InferenceSession);
    const cmp = new ModelOutputComparison(this.floatOutputs);
    const top = new Top1Counter();
    const floatScores: number[] = [];
    const quantScores: number[] = [];
    const metric = this.opts.metric;
    let measured = 0;
    let looked = false;
    const result = () => this.measurement(cmp, top, floatScores, quantScores, measured);
    try {
      let k = 0;
      for (const [start, count] of this.ranges()) {
        // The look, once, at the first batch boundary past its samples while batches remain.
        if (look && !looked && measured >= look.samples) {
          looked = true;
          const partial = result();
          if (look.stop(partial)) return partial;
        }
        checkCancel(this.opts.signal);
        const f = await this.floatBatch(k, start, count);
        const data = await feedsFor(this.p.data, start, count);
        const r = await runSession(s, io ? io.feeds(k, data) : data, label);
        io?.keep(r, count);
        k++;
        const q = this.view(r as unknown as Record<string, TensorData>);
        const labels = this.labelsOf(start, count);
        cmp.add(f.outputs, q, count, labels);
        const first = q[this.p.outputs[0]];
        if (f.pred && first) top.add(argmaxRows(first.data as Float32Array, Number(first.dims[first.dims.length - 1] ?? 1)), labels, f.pred);
        if (metric) {
          floatScores.push(...f.userScores!);
          quantScores.push(...(await scoreBatch(metric, f.outputs, q, count, labels, start)));
        }
        disposeAll(r);
        measured += count;
      }
    } finally {
      if (own) await s.release();
    }
    return result();
  }

  /** What `cmp` and the rest hold, over the first `samples` samples, as a Measurement. */
  private measurement(cmp: ModelOutputComparison, top: Top1Counter, floatScores: number[], quantScores: number[], samples: number): Measurement {
    const metric = this.opts.metric;
    const user = metric ? userMetricSummary(metric, floatScores, quantScores) : null;
    const outputs = cmp.summaries();
    const primary = choosePrimaryMetric(outputs, user, fedBackOutputs(this.p.data.states));
    const hasLabels = this.p.data.labels !== null;
    const byName = new Map(cmp.outputs.map((o) => [o.name, o]));
    const series = byName.get(primary.output ?? this.floatOutputs[0])?.perSample();
    let perSample: Float64Array;
    if (primary.kind === 'user') perSample = Float64Array.from(quantScores, (v) => (metric!.higherIsBetter ? v : -v));
    else if (primary.kind === 'top1') perSample = Float64Array.from(series!.quantizedCorrect!);
    else if (primary.kind === 'agreement') perSample = series!.top1Agreement!;
    else perSample = series!.sqnrDb;
    const summary = outputs.find((o) => o.name === primary.output);
    const first = outputs.find((o) => o.name === this.p.outputs[0]);
    return {
      outputs,
      primary,
      metrics: {
        top1: top.top1(hasLabels),
        agreement: top.agreement(),
        outputSqnrDb: cmp.overallSqnrDb(),
        samples,
        // as the report's: agreement with its interval where the first output holds class scores, absent where it means nothing
        ...(first?.classifier ? { agreementInterval: first.classifier.top1Agreement, top1Interval: first.classifier.labelled?.candidate ?? null } : {}),
      },
      perSample,
      perSampleSqnr: series?.sqnrDb ?? new Float64Array(0),
      table: primary.kind === 'top1' ? (summary?.classifier?.labelled?.table ?? null) : null,
      samples,
    };
  }

  async release(): Promise<void> {
    await this.session?.release();
    this.cache = [];
    this.kept = [];
  }
}
