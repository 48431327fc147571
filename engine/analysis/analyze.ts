/**
 * The analysis pipeline: calibrate, quantize, and compare float / simulated / integer execution
 * layer by layer. Two streaming passes over the data:
 *   1. calibration: the float model with the planned activation tensors exposed; each batch
 *      updates min/max/EMA and the histograms, then is dropped;
 *   2. evaluation: four sessions per batch (reference-simulated, reference-integer, QDQ-simulated,
 *      QDQ-integer) whose outputs update running error sums, then are dropped.
 * `prepareAnalysis` does pass 1 once; sweeps reuse it and only redo quantization and pass 2.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import type {
  CalibrationMethod, LayerReport, ModelOutputMetrics, QuantConfig, Report, TensorReport, Warning,
} from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { ActivationStats, displayHistogram } from '../calibration/histogram';
import { computeThresholds, type TensorThresholds } from '../calibration/choose';
import { type Dataset, batchRanges, loadDataset, modelInputs } from '../data/dataset';
import { GraphIndex, ensureNodeNames, hoistConstants, untypedValueInfo } from '../onnx/graph';
import { type LoadedModel, type ModelProto, cloneModel, decodeModel, loadModel, opsetOf } from '../onnx/model';
import { readFloatTensor } from '../onnx/tensor';
import { type FoldRecord, foldBatchNorms } from '../quantize/bnFold';
import { type QuantPlan, dropNonFloat, planQuantization, subsetPlan } from '../quantize/plan';
import { type OutputTap, type WeightQuant, buildQdqModel, buildReferenceModel } from '../quantize/qdqRewrite';
import { type QuantParams, paramsFor, representableRange } from '../quantize/scheme';
import { createSession, feedsFor, ortVersion } from '../runtime/session';
import { CancelledError, checkCancel } from './cancel';
import { FloatReference } from './outputs';
import { feedBatch, layerDiffFeeds } from './integerDiffs';
import { ERR_SPAN, type CodeView, LayerComparison } from './layerCompare';
import { ErrorAccumulator, Top1Counter, argmaxRows } from './metrics';

export interface Progress {
  stage: 'calibrate' | 'evaluate' | 'sensitivity' | 'sweep' | 'write';
  done: number;
  total: number;
  message?: string;
}

export interface RunOptions {
  batchSize?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export interface PrepareOptions extends RunOptions {
  dataPath?: string;
  samples?: number;
}

export { CancelledError };

/** What the float model looks like on the data: computed once, reused by every configuration. */
export interface Prepared {
  loaded: LoadedModel;
  /** Constants hoisted, every node named: the float reference. */
  float: ModelProto;
  data: Dataset;
  /** Samples per inference batch: bounded by the bytes the exposed tensors take per sample. */
  batchSize: number;
  bytesPerSample: number;
  /** Thresholds per tensor, per (bits, signedness, percentile): sweeps compute each once. */
  thresholdCache: Map<string, TensorThresholds>;
  /** Per tensor: streamed statistics (only float32 tensors). */
  stats: Map<string, ActivationStats>;
  /** Tensor name -> is float32 (from onnxruntime's own output types). */
  floatTensors: Set<string>;
  outputs: string[];
  warnings: Warning[];
  timings: Record<string, number>;
}

function timer() {
  const t0 = performance.now();
  return () => Math.round(performance.now() - t0);
}

/** All tensors any configuration might quantize: inputs/outputs of every candidate node. */
function candidateTensors(float: ModelProto): string[] {
  const plan = planQuantization(float.graph!, 'extended', []);
  const set = new Set(plan.activations);
  // After BN folding a Conv's output is the BN's output: calibrate those too.
  for (const n of float.graph!.node) if (n.opType === 'BatchNormalization') set.add(n.output[0]);
  return [...set];
}

export async function prepareAnalysis(modelPath: string, opts: PrepareOptions = {}): Promise<Prepared> {
  const t = timer();
  const loaded = loadModel(modelPath);
  return prepareLoaded(loaded, opts, t);
}

async function prepareLoaded(loaded: LoadedModel, opts: PrepareOptions, t: () => number): Promise<Prepared> {
  const warnings: Warning[] = [];
  const float = cloneModel(loaded.proto);
  hoistConstants(float);
  ensureNodeNames(float.graph!);
  const inputs = modelInputs(float);
  const data = loadDataset(opts.dataPath, inputs, { samples: opts.samples });
  if (data.synthetic) {
    warnings.push({
      code: 'synthetic-data',
      message: `No calibration data given: using ${data.samples} synthetic random samples. Thresholds and errors then say NOTHING about real activations; pass --data.`,
    });
  }
  const fixedBatch = inputs.map((i) => i.dims[0]).find((d) => typeof d === 'number' && d > 0) as number | undefined;
  const outputs = float.graph!.output.map((o) => o.name);
  const idx = new GraphIndex(float.graph!);
  const taps = candidateTensors(float).filter((n) => !idx.graphInputs.has(n) && !idx.initializers.has(n));
  const tapSet = new Set(taps);
  const tapModel = cloneModel(float);
  const have = new Set(outputs);
  for (const n of taps) if (!have.has(n)) tapModel.graph!.output.push(untypedValueInfo(n));
  const session = await createSession(tapModel, 'float');
  const stats = new Map<string, ActivationStats>();
  const floatTensors = new Set<string>();
  const inputNames = new Set(data.inputs.map((i) => i.name));
  // A one-sample probe measures how many bytes the exposed tensors take per sample, which bounds
  // the batch size (memory is set by batch x exposed tensors, never by N). The probe is not
  // binned: the first real batch fixes the histogram width, as TensorRT's first batch does.
  let batchSize = fixedBatch ?? 1;
  let bytesPerSample = 0;
  let done = 0;
  try {
    const probe = await session.run(await feedsFor(data, 0, batchSize));
    for (const t of Object.values(probe)) {
      bytesPerSample += (t.data as ArrayBufferView).byteLength / batchSize;
      t.dispose();
    }
    batchSize = fixedBatch ?? batchSizeFor(bytesPerSample, opts.batchSize);
    while (done < data.samples) {
      checkCancel(opts.signal);
      const count = Math.min(batchSize, data.samples - done);
      const feeds = await feedsFor(data, done, count);
      const res = await session.run(feeds);
      for (const [name, tensor] of Object.entries({ ...res, ...feeds })) {
        if (tensor.type === 'float32' && (inputNames.has(name) || tapSet.has(name) || have.has(name))) {
          floatTensors.add(name);
          let s = stats.get(name);
          if (!s) stats.set(name, (s = new ActivationStats()));
          s.add(tensor.data as Float32Array);
        }
        if (!feeds[name]) tensor.dispose();
      }
      done += count;
      opts.onProgress?.({ stage: 'calibrate', done, total: data.samples });
    }
  } finally {
    await session.release();
  }
  for (const [name, s] of stats) {
    const d = s.degenerate;
    if (d) warnings.push({ code: `degenerate-${d}`, tensor: name, message: degenerateMessage(name, s) });
  }
  return { loaded, float, data, batchSize, bytesPerSample, stats, floatTensors, outputs, warnings, thresholdCache: new Map(), timings: { calibrateMs: t() } };
}

/** Exposed tensors of one batch stay under this many bytes (the evaluation runs 4 sessions). */
const BATCH_BYTES = 96 * 1024 * 1024;

function batchSizeFor(bytesPerSample: number, requested?: number): number {
  const fit = Math.max(1, Math.floor(BATCH_BYTES / Math.max(1, bytesPerSample)));
  return Math.min(requested ?? 32, fit);
}

function degenerateMessage(name: string, s: ActivationStats): string {
  switch (s.degenerate) {
    case 'non-finite': return `tensor ${name} holds ${s.nanCount} NaN and ${s.infCount} Inf values; they are left out of its range`;
    case 'all-zero': return `tensor ${name} is all zeros on the calibration data; it is quantized with scale 1`;
    case 'constant': return `tensor ${name} is constant (${s.min}) on the calibration data`;
    default: return `tensor ${name} produced no values`;
  }
}

/** A configuration applied to the prepared float statistics: plan, params, models. */
export interface Quantized {
  config: QuantConfig;
  prepared: ModelProto;
  folds: FoldRecord[];
  plan: QuantPlan;
  actParams: Map<string, QuantParams>;
  thresholds: Map<string, TensorThresholds>;
}

export function quantizeWith(p: Prepared, config: QuantConfig): Quantized {
  const prepared = cloneModel(p.float);
  const folds = config.foldBatchNorm ? foldBatchNorms(prepared, p.loaded.dir) : [];
  const plan = dropNonFloat(planQuantization(prepared.graph!, config.placement, config.exclude), (t) => p.floatTensors.has(t));
  const thresholds = new Map<string, TensorThresholds>();
  const actParams = new Map<string, QuantParams>();
  for (const t of plan.activations) {
    const s = p.stats.get(t);
    if (!s) continue;
    const a = config.activations;
    const key = `${t}|${a.bits}|${a.signed}|${config.percentile}`;
    let th = p.thresholdCache.get(key);
    if (!th) p.thresholdCache.set(key, (th = computeThresholds(s, config)));
    thresholds.set(t, th);
    const r = th.thresholds[config.calibration];
    actParams.set(t, paramsFor(r.lo, r.hi, config.activations));
  }
  // MaxPool cannot widen the range: give its output the input's params, as deployment does.
  for (const l of plan.layers) {
    const inP = actParams.get(l.node.input[0]);
    if (l.shareInputParams && inP) actParams.set(l.output, inP);
  }
  return { config, prepared, folds, plan, actParams, thresholds };
}


/** Codes of a tap, as the comparison wants them (4-bit taps hold dequantized floats: re-derive codes). */
function codeView(t: ort.Tensor, tap: OutputTap): CodeView {
  const { scale, zeroPoint } = tap.params;
  const d = t.data as ArrayLike<number>;
  const codes = tap.isCodes ? d : Int32Array.from(d as Float32Array, (v) => Math.round(v / scale) + zeroPoint);
  return { codes, scale, zeroPoint };
}

/**
 * Fused kernels in onnxruntime's optimized graph, mapped back to layers through the tensors they
 * write (the layer's output codes). Layout Transposes that the NHWC transformer inserts after a
 * fused kernel are walked through.
 */
function kernelsFrom(file: string, taps: OutputTap[]): { byLayer: Map<string, string | null>; counts: Record<string, number> } {
  const opt = decodeModel(fs.readFileSync(file), file).proto;
  const counts: Record<string, number> = {};
  const producer = new Map<string, { op: string; input: string }>();
  for (const n of opt.graph!.node) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    counts[op] = (counts[op] ?? 0) + 1;
    for (const o of n.output) producer.set(o, { op, input: n.input[0] });
  }
  const byLayer = new Map<string, string | null>();
  for (const tap of taps) {
    let p = producer.get(tap.tensor);
    for (let hops = 0; p && p.op === 'Transpose' && hops < 4; hops++) p = producer.get(p.input);
    const op = p?.op ?? null;
    byLayer.set(tap.layer, op && !/(Quantize|Dequantize)Linear$/.test(op) ? op.replace(/^com\.microsoft\./, '') : null);
  }
  return { byLayer, counts };
}

/**
 * onnxruntime's x86 kernels only fuse uint8 activations. A symmetric signed 8-bit grid (zero
 * point 0) is EXACTLY the unsigned grid shifted by 128 (same scale, zero point 128): every code,
 * accumulation and output is the same integer arithmetic. The integer session runs that
 * encoding, so the TensorRT scheme is measured on real integer kernels here.
 */
export function integerEncoding(config: QuantConfig): { config: QuantConfig; shift: number } {
  const a = config.activations;
  if (process.arch !== 'x64' || a.bits !== 8 || !a.signed || !a.symmetric) return { config, shift: 0 };
  return { config: { ...config, activations: { ...a, signed: false } }, shift: 128 };
}

function shiftParams(m: Map<string, QuantParams>, shift: number): Map<string, QuantParams> {
  if (!shift) return m;
  return new Map([...m].map(([k, p]) => [k, { ...p, zeroPoint: p.zeroPoint + shift, qmin: p.qmin + shift, qmax: p.qmax + shift }]));
}

export interface EvaluateOptions extends RunOptions {
  /** Compare with the integer-only reference per layer (default true). */
  integerDiff?: boolean;
  /** Samples the integer-only reference sees (default 256): it is exact integer arithmetic in JS. */
  integerDiffSamples?: number;
  /** Run per-layer sensitivity (2 models per layer); default true. */
  sensitivity?: boolean;
  /** Samples used for sensitivity (default: all, at most 512). */
  sensitivitySamples?: number;
}

/** Model-output comparison of a candidate against the float outputs. */
class OutputComparer {
  readonly acc = new ErrorAccumulator();
  readonly top1 = new Top1Counter();
}

export async function evaluate(p: Prepared, q: Quantized, opts: EvaluateOptions = {}): Promise<Report> {
  const t = timer();
  const { config, plan, actParams } = q;
  const dir = p.loaded.dir;
  const qdq = buildQdqModel(q.prepared, dir, plan, actParams, config, true);
  const floatTaps = [...new Set([...plan.activations, ...plan.layers.map((l) => l.output)])].filter((n) => p.floatTensors.has(n) && !p.data.inputs.some((i) => i.name === n));
  const ref = buildReferenceModel(p.float, q.prepared, dir, plan, actParams, config, floatTaps);
  const enc = integerEncoding(config);
  const intParams = shiftParams(actParams, enc.shift);
  const qdqI = enc.shift ? buildQdqModel(q.prepared, dir, plan, intParams, enc.config, true) : qdq;
  const refI = enc.shift ? buildReferenceModel(p.float, q.prepared, dir, plan, intParams, enc.config, []) : ref;
  // The integer-only reference runs on onnxruntime's own input codes, so it isolates kernel
  // arithmetic; it is exact integer work in JS, so it sees at most `integerDiffSamples` samples.
  const diffWarnings: Warning[] = [];
  const diffFeeds = opts.integerDiff === false ? [] : layerDiffFeeds(plan.layers, qdq, qdqI, enc.config,
    (node, message) => diffWarnings.push({ code: 'no-integer-reference', node, message }));
  const diffSamples = Math.min(p.data.samples, opts.integerDiffSamples ?? 256);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-'));
  const optimizedPath = path.join(tmp, 'integer-optimized.onnx');
  const sessions = {
    refSim: await createSession(ref.model, 'simulated'),
    refInt: await createSession(refI.model, 'integer'),
    qdqSim: await createSession(qdq.model, 'simulated'),
    qdqInt: await createSession(qdqI.model, 'integer', { optimizedModelPath: optimizedPath }),
  };
  const kernels = kernelsFrom(optimizedPath, qdqI.taps);
  fs.rmSync(tmp, { recursive: true, force: true });

  const layerAcc = new Map(plan.layers.map((l) => [l.node.name, new LayerComparison()]));
  const clipCount = new Map<string, number>();
  const seen = new Map<string, number>();
  const out = { sim: new OutputComparer(), int: new OutputComparer() };
  const floatTop1 = new Top1Counter();
  const labels = p.data.labels;
  const logits = p.outputs[0];
  const layerOutput = new Map(plan.layers.map((l) => [l.node.name, l.output]));
  let done = 0;
  try {
    for (const [start, count] of batchRanges(p.data.samples, p.batchSize)) {
      checkCancel(opts.signal);
      const feeds = await feedsFor(p.data, start, count);
      // One session at a time: the exposed tensors of four sessions at once would quadruple memory.
      const rs = await sessions.refSim.run(feeds);
      const ri = await sessions.refInt.run(feeds);
      const qs = await sessions.qdqSim.run(feeds);
      const qi = await sessions.qdqInt.run(feeds);
      const floats = { ...feeds, ...rs } as Record<string, ort.Tensor>;
      for (const [tName, params] of actParams) {
        const f = floats[tName];
        if (!f) continue;
        // Clipped = the code saturates: the unclamped code lies beyond the grid (more than half a
        // step outside the representable range).
        const { scale, zeroPoint, qmin, qmax } = params;
        const lo = (qmin - 0.5 - zeroPoint) * scale;
        const hi = (qmax + 0.5 - zeroPoint) * scale;
        const d = f.data as Float32Array;
        let c = 0;
        for (let i = 0; i < d.length; i++) if (d[i] < lo || d[i] > hi) c++;
        clipCount.set(tName, (clipCount.get(tName) ?? 0) + c);
        seen.set(tName, (seen.get(tName) ?? 0) + d.length);
      }
      qdq.taps.forEach((tap, k) => {
        const x = floats[layerOutput.get(tap.layer)!].data as Float32Array;
        layerAcc.get(tap.layer)!.addAccumulated(x, codeView(qs[tap.tensor], tap), codeView(qi[qdqI.taps[k].tensor], qdqI.taps[k]));
      });
      if (start < diffSamples) feedBatch(diffFeeds, qi, qs);
      ref.taps.forEach((tap, k) => {
        const x = floats[layerOutput.get(tap.layer)!].data as Float32Array;
        layerAcc.get(tap.layer)!.addIsolated(x, codeView(rs[tap.tensor], tap), codeView(ri[refI.taps[k].tensor], refI.taps[k]));
      });
      const fl = rs[logits].data as Float32Array;
      const cols = rs[logits].dims[rs[logits].dims.length - 1] ?? 1;
      const fPred = argmaxRows(fl, cols);
      const lab = labels ? labels.subarray(start, start + count) : null;
      floatTop1.add(fPred, lab, null);
      for (const [k, res] of [['sim', qs], ['int', qi]] as const) {
        for (const o of p.outputs) out[k].acc.add(rs[o].data as Float32Array, res[o].data as Float32Array);
        out[k].top1.add(argmaxRows(res[logits].data as Float32Array, cols), lab, fPred);
      }
      for (const res of [rs, ri, qs, qi]) for (const t of Object.values(res)) t.dispose();
      done += count;
      opts.onProgress?.({ stage: 'evaluate', done, total: p.data.samples });
    }
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.release()));
  }
  const timings: Record<string, number> = { ...p.timings, evaluateMs: t() };

  const sens = opts.sensitivity === false ? null : await sensitivity(p, q, opts);
  if (sens) timings.sensitivityMs = t() - timings.evaluateMs;

  const hasLabels = labels !== null;
  const outMetrics = (k: 'sim' | 'int'): ModelOutputMetrics => ({
    top1: out[k].top1.top1(hasLabels),
    agreement: out[k].top1.agreement(),
    outputSqnrDb: out[k].acc.result().sqnrDb,
  });
  const floatTop = floatTop1.top1(hasLabels);
  const integer = outMetrics('int');
  const diffByLayer = new Map(diffFeeds.map((f) => [f.layer, f.diff.result()]));
  const layers: LayerReport[] = plan.layers.map((l) => {
    const a = layerAcc.get(l.node.name)!;
    return {
      node: l.node.name,
      op: l.node.opType,
      output: l.output,
      inputs: l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation'),
      simulated: a.sim.result(),
      integer: a.int.result(),
      isolated: { simulated: a.isoSim.result(), integer: a.isoInt.result() },
      simVsIntMismatch: a.n ? a.mismatch / a.n : 0,
      simVsIntMaxLsb: a.maxLsb,
      errorHistogram: { lsb: Array.from(a.errHist, (_, i) => i - ERR_SPAN), counts: Array.from(a.errHist) },
      integerKernel: kernels.byLayer.get(l.node.name) ?? null,
      integerDiff: diffByLayer.get(l.node.name) ?? null,
      sensitivity: sens?.get(l.node.name) ?? null,
    };
  });
  const tensors = [
    ...activationReports(p, q, clipCount, seen),
    ...weightReports(p, q, qdq.weights),
  ];
  const warnings = [...p.warnings, ...planWarnings(q, layers), ...diffWarnings];
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'quantlens', version: TOOL_VERSION, onnxruntime: ortVersion },
    createdAt: new Date().toISOString(),
    model: {
      path: p.loaded.path,
      sha256: p.loaded.sha256,
      opset: opsetOf(p.loaded.proto),
      producer: `${p.loaded.proto.producerName} ${p.loaded.proto.producerVersion}`.trim(),
      nodes: p.float.graph!.node.length,
    },
    data: {
      source: p.data.source,
      synthetic: p.data.synthetic,
      labels: hasLabels,
      inputs: p.data.inputs.map((i) => ({ name: i.name, shape: i.shape })),
    },
    samples: p.data.samples,
    config,
    tensors,
    layers,
    accuracy: {
      float: { top1: floatTop, agreement: 1 },
      simulated: outMetrics('sim'),
      integer,
      dropPoints: floatTop !== null && integer.top1 !== null ? round2((floatTop - integer.top1) * 100) : null,
    },
    integerKernels: kernels.counts,
    integerEncoding: enc.shift ? `activations run as uint8 with zero point +${enc.shift} (exactly equivalent to the signed symmetric grid) so onnxruntime's x86 integer kernels execute them` : 'as configured',
    warnings,
    timings,
  };
}

export const TOOL_VERSION = '0.1.0';

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function planWarnings(q: Quantized, layers: LayerReport[]): Warning[] {
  const w: Warning[] = q.plan.skipped.map((s) => ({ code: 'layer-not-quantized', node: s.node, message: `${s.op} ${s.node} stays float: ${s.reason}` }));
  for (const l of layers) {
    if (!l.integerKernel) {
      w.push({ code: 'no-integer-kernel', node: l.node, message: `onnxruntime ran ${l.op} ${l.node} in float between Q/DQ (no fused integer kernel) in the integer session` });
    }
  }
  return w;
}

function activationReports(p: Prepared, q: Quantized, clip: Map<string, number>, seen: Map<string, number>): TensorReport[] {
  return q.plan.activations.flatMap((name) => {
    const s = p.stats.get(name);
    const th = q.thresholds.get(name);
    const params = q.actParams.get(name);
    if (!s || !th || !params) return [];
    return [{
      name,
      kind: 'activation' as const,
      min: s.count ? s.min : 0,
      max: s.count ? s.max : 0,
      count: s.count,
      degenerate: s.degenerate,
      nanCount: s.nanCount,
      infCount: s.infCount,
      histogram: displayHistogram(s),
      thresholds: th.thresholds,
      klCurve: downsample(th.klCurve, 256),
      chosen: { method: q.config.calibration, range: representableRange(params), scale: params.scale, zeroPoint: params.zeroPoint },
      clipRate: seen.get(name) ? clip.get(name)! / seen.get(name)! : 0,
    }];
  });
}

function downsample<T>(a: T[], n: number): T[] {
  if (a.length <= n) return a;
  const step = a.length / n;
  return Array.from({ length: n }, (_, i) => a[Math.floor(i * step)]);
}

function weightReports(p: Prepared, q: Quantized, weights: WeightQuant[]): TensorReport[] {
  const prepIdx = new GraphIndex(q.prepared.graph!);
  const floatIdx = new GraphIndex(p.float.graph!);
  return weights.map((wq) => {
    const w = readFloatTensor(prepIdx.initializers.get(wq.tensor)!, p.loaded.dir);
    const s = new ActivationStats();
    s.add(w.data);
    const fold = q.folds.find((f) => f.conv === wq.layer);
    let before: { lo: number; hi: number }[] | undefined;
    if (fold && wq.axis !== null) {
      const orig = readFloatTensor(floatIdx.initializers.get(fold.originalWeight)!, p.loaded.dir);
      const per = orig.data.length / orig.dims[0];
      before = Array.from({ length: orig.dims[0] }, (_, c) => {
        let lo = Infinity, hi = -Infinity;
        for (let k = c * per; k < (c + 1) * per; k++) { lo = Math.min(lo, orig.data[k]); hi = Math.max(hi, orig.data[k]); }
        return { lo, hi };
      });
    }
    return {
      name: `${wq.layer}:${wq.tensor}`,
      kind: 'weight' as const,
      min: s.min,
      max: s.max,
      count: s.count,
      degenerate: s.degenerate,
      nanCount: s.nanCount,
      infCount: s.infCount,
      histogram: displayHistogram(s),
      thresholds: { minmax: { lo: s.min, hi: s.max } } as Partial<Record<CalibrationMethod, { lo: number; hi: number }>>,
      chosen: {
        method: 'minmax' as const,
        range: { lo: s.min, hi: s.max },
        scale: wq.axis === null ? wq.params[0].scale : wq.params.map((x) => x.scale),
        zeroPoint: wq.axis === null ? wq.params[0].zeroPoint : wq.params.map((x) => x.zeroPoint),
      },
      clipRate: wq.clipRate,
      channelRanges: wq.axis === null ? undefined : wq.ranges,
      channelRangesBeforeFold: before,
    };
  });
}

/** Quantize-only-this and float-only-this per layer, on the model outputs (simulated execution). */
async function sensitivity(p: Prepared, q: Quantized, opts: EvaluateOptions) {
  const layers = q.plan.layers;
  if (layers.length === 0) return null;
  const ref = await FloatReference.create(p, opts.sensitivitySamples ?? 512);
  const hasLabels = p.data.labels !== null;
  const measure = (plan: QuantPlan) =>
    ref.measure(buildQdqModel(q.prepared, p.loaded.dir, plan, q.actParams, q.config, false).model, 'simulated', opts.signal);
  const results = new Map<string, { onlyThis: ModelOutputMetrics; allButThis: ModelOutputMetrics; rank: number }>();
  let done = 0;
  try {
    for (const l of layers) {
      const onlyThis = await measure(subsetPlan(q.plan, (x) => x === l));
      const allButThis = await measure(subsetPlan(q.plan, (x) => x !== l));
      results.set(l.node.name, { onlyThis, allButThis, rank: 0 });
      opts.onProgress?.({ stage: 'sensitivity', done: ++done, total: layers.length, message: l.node.name });
    }
  } finally {
    await ref.release();
  }
  // Most damaging first: lower accuracy (or agreement) when quantized alone, then lower SQNR.
  const key = (m: ModelOutputMetrics) => (hasLabels ? (m.top1 ?? 0) : m.agreement);
  [...results.entries()]
    .sort(([, a], [, b]) => key(a.onlyThis) - key(b.onlyThis) || a.onlyThis.outputSqnrDb - b.onlyThis.outputSqnrDb)
    .forEach(([, r], i) => (r.rank = i + 1));
  return results;
}

/** One call: prepare + quantize + evaluate. */
export async function analyzeModel(modelPath: string, config: QuantConfig, opts: PrepareOptions & EvaluateOptions = {}): Promise<Report> {
  const p = await prepareAnalysis(modelPath, opts);
  return evaluate(p, quantizeWith(p, config), opts);
}

