/**
 * Per-layer sensitivity: the model outputs when ONLY this layer is quantized, measured without
 * re-running the whole model per layer. The float run of a batch exposes what each layer's
 * downstream part reads from upstream (its "frontier", usually just the layer's input); each
 * layer's downstream part, with that layer quantized, then runs alone from those float tensors.
 *
 * The sample count is sized by the statistics of the metric, per layer (sensitivitySampling.ts):
 * a pilot gives each layer's per-sample output SQNR and its spread. A layer whose SQNR is
 * clearly above the most damaging layer's on the same samples (a paired interval wholly above
 * 3 dB) stops at one of the pilot's looks (8 and 16 samples; 4 when there are at most 8); the
 * others go on, to 16 samples at least, until each mean output SQNR is known within +-0.5 dB
 * (95%), up to 256 (or what the user asked for, for all).
 */
import { inputNamesOf } from '../data/dataset';
import { fedBackOutputs, stateOutputAxes } from '../data/inputs';
import type * as ort from 'onnxruntime-node';
import type { Interval, ModelOutputMetrics } from '../../protocol/report';
import type { GraphProto, NodeProto } from '../onnx/graph';
import type { ModelProto } from 'onnx-buf';
import { opsetOf } from '../onnx/model';
import { ELEM_TYPE, downstreamOf, frontierOf, nodeReads, typedValueInfo } from '../onnx/slice';
import { type PlannedLayer, subsetPlan } from '../quantize/plan';
import { OUTPUT_SUMS, type OutputSumsModel, REF_PREFIX, SUMS_PER_OUTPUT, withOutputSums } from '../quantize/outputSums';
import { buildQdqModel } from '../quantize/qdqRewrite';
import { feedsFor, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { ErrorAccumulator, Top1Counter, argmaxRows } from './metrics';
import { outputView } from './measure';
import { ModelOutputComparison, type TensorData } from './outputMetrics';
import { choosePrimaryMetric } from './primaryMetric';
import { MARGIN_DB, planAfterPilot, sampleDb } from './sensitivitySampling';
import { scoreBatch, userMetricSummary } from './userMetric';
import { byTensor, disposeAll, fixedBatchOf, groupByBytes, measureTensors, tapModel } from './taps';
import type { EvaluateOptions, Prepared, Quantized } from './types';

/**
 * The pilot's looks (samples) at which layers may stop: those under the sample count, each at a
 * Bonferroni share of 5% (`lookLevel`), so that looking several times stops a layer wrongly no
 * more often than one 95% look. Most layers of a real model are far from the leader and stop at
 * the first look; the second, on twice the samples, takes the closer ones. A third look at 4
 * would tighten the other two and cost more than it saves on 48-64 samples; on 5-8 samples (a
 * 512x512 model), where no other look is possible, one look at 4 (docs/performance.md).
 */
const LOOKS = [8, 16];
const SMALL_LOOK = 4;

/** Each look's confidence level: 5% split over the looks. */
function lookLevel(looks: number): number {
  return 1 - 0.05 / Math.max(1, looks);
}
const MAX_SAMPLES = 256;
/** Half-width (dB) of the 95% interval on each layer's mean output SQNR that sizes the sample. */
const TARGET_DB = 0.5;

export interface LayerSensitivity {
  onlyThis: ModelOutputMetrics;
  /** The primary metric with only this layer quantized: its loss (null for SQNR) and the primary output's per-sample SQNR. */
  onlyThisPrimary: { loss: Interval | null; sqnrDb: Interval } | null;
  allButThis: ModelOutputMetrics | null;
  /** Stopped after the pilot: the paired difference to the leader's per-sample SQNR (report.ts). */
  aboveLeader?: { leader: string; diffDb: Interval };
  rank: number;
}

export interface SensitivityResult {
  layers: Map<string, LayerSensitivity>;
  samples: number;
  method: 'downstream';
  reason: string;
}

interface Suffix {
  layer: PlannedLayer;
  /** Tensors the downstream part reads from the float run (graph inputs come from the data). */
  frontier: string[];
  outputs: string[];
  /** Created on the first batch, when the outputs' shapes are known. */
  session: ort.InferenceSession | null;
  /** Set when the outputs are compared inside the model (quantize/outputSums.ts). */
  sums: OutputSumsModel | null;
  acc: ErrorAccumulator;
  top1: Top1Counter;
  perSampleDb: number[];
  /** Samples measured, and whether the layer has stopped (settled after the pilot). */
  samples: number;
  stopped: boolean;
  /** Why it stopped: its paired difference to the leader after the pilot. */
  aboveLeader: { leader: string; diffDb: Interval } | null;
  /** Every float output per sample (the primary metric with intervals), and the user metric's scores. */
  cmp: ModelOutputComparison;
  userScores: number[];
}

export async function sensitivity(p: Prepared, q: Quantized, opts: EvaluateOptions): Promise<SensitivityResult | null> {
  const layers = q.plan.layers.filter((l) => q.actParams.has(l.output));
  if (layers.length === 0) return null;
  const g = q.prepared.graph!;
  const constants = new Set(g.initializer.map((t) => t.name));
  const inputNames = inputNamesOf(p.data);
  const { names: floatOuts, view } = outputView(p);
  const floatScores: number[] = [];
  const suffixes: Suffix[] = layers.map((layer) => {
    const nodes = downstreamOf(g, topNode(g, layer));
    const produced = new Set(nodes.flatMap((n) => n.output));
    return {
      layer,
      frontier: frontierOf(nodes, constants),
      outputs: p.outputs.filter((o) => produced.has(o)),
      session: null,
      sums: null,
      acc: new ErrorAccumulator(),
      top1: new Top1Counter(),
      perSampleDb: [],
      samples: 0,
      stopped: false,
      aboveLeader: null,
      cmp: new ModelOutputComparison(floatOuts),
      userScores: [],
    };
  });
  const tapsOf = (s: Suffix) => s.frontier.filter((t) => !inputNames.has(t));
  await measureTensors(p, suffixes.flatMap(tapsOf), opts.signal);
  const groups = groupByBytes(suffixes, tapsOf, (t) => p.tensorBytes.get(t) ?? 0, opts.batchSize ?? p.batchSize, fixedBatchOf(p));
  const N = p.data.samples;
  // At N samples nothing is left to save: looks come before.
  const under = LOOKS.filter((n) => n < N);
  const looks = opts.sensitivitySamples ? [] : under.length ? under : N > SMALL_LOOK ? [SMALL_LOOK] : [];
  const level = lookLevel(looks.length);
  let target = opts.sensitivitySamples ? Math.min(N, opts.sensitivitySamples) : (looks[0] ?? N);
  let reason = opts.sensitivitySamples ? 'as requested' : '';
  let look = 0;
  /** Per look that stopped layers: [samples, layers stopped]. */
  const stoppedAt: [number, number][] = [];
  let lastLeader = '';
  const sessions: ort.InferenceSession[] = [];
  const labels = p.data.labels;
  const logits = p.outputs[0];
  const label = `quantized model of ${p.loaded.path}`;
  const stateAxes = stateOutputAxes(p.data.states ?? []);
  /**
   * The layer's downstream part, with its outputs compared in-graph when every number sensitivity
   * keeps can come from per-sample sums: float32 batch-first outputs, no class rows to compare, no
   * user metric (which scores the outputs themselves), opset 9 or later.
   */
  const open = async (s: Suffix, floats: Record<string, ort.Tensor>, count: number) => {
    const model = suffixModel(p, q, s);
    const reducible =
      !opts.metric &&
      opsetOf(model) >= 9 &&
      s.outputs.every((o) => {
        const f = floats[o];
        const cmp = s.cmp.outputs.find((c) => c.name === o);
        return (
          f?.type === 'float32' &&
          cmp &&
          !stateAxes.has(o) &&
          f.dims.length >= (o === logits ? 2 : 1) &&
          Number(f.dims[0]) === count &&
          !cmp.classifierLike(f.dims.slice(1).map(Number))
        );
      });
    s.sums = reducible
      ? withOutputSums(model, s.outputs, s.outputs.includes(logits) && fPredOf(floats) ? { name: logits, rank: floats[logits].dims.length } : null)
      : null;
    s.session = await sessionOnData(p, s.sums?.model ?? model, 'simulated', label);
    sessions.push(s.session);
    return s.session;
  };
  const fPredOf = (all: Record<string, ort.Tensor>) =>
    all[logits]?.type === 'float32' ? argmaxRows(all[logits].data as Float32Array, cols(all[logits])) : null;
  try {
    const floats = await Promise.all(
      groups.map(async (gr) => {
        const { model: m, names } = tapModel(p, gr.tensors);
        const session = await sessionOnData(p, m, 'float');
        sessions.push(session);
        return { session, names, live: gr.units.length };
      }),
    );
    const batch = Math.min(...groups.map((gr) => gr.batch));
    let done = 0;
    while (done < target) {
      {
        const start = done;
        const count = Math.min(batch, target - done);
        checkCancel(opts.signal);
        const feeds = await feedsFor(p.data, start, count);
        const lab = labels?.subarray(start, start + count) ?? null;
        for (const [gi, gr] of groups.entries()) {
          // A group whose layers have all stopped needs no float run.
          if (gr.units.every((s) => s.stopped)) continue;
          const fr = await runSession(floats[gi].session, feeds, p.loaded.path);
          const all = byTensor(fr, floats[gi].names, feeds);
          const fPred = fPredOf(all);
          const fOut = view(all as unknown as Record<string, TensorData>);
          const floatSums = new FloatSums(fOut, count);
          if (gi === 0 && opts.metric) floatScores.push(...(await scoreBatch(opts.metric, fOut, fOut, count, lab, start)));
          for (const s of gr.units) {
            checkCancel(opts.signal);
            if (s.stopped) continue;
            s.samples += count;
            if (s.outputs.length === 0) {
              // a dead end: quantizing it cannot change any output
              s.top1.add(fPred ?? new Int32Array(0), lab, fPred);
              for (let k = 0; k < count; k++) s.perSampleDb.push(Infinity);
              s.cmp.add(fOut, fOut, count, lab);
              if (opts.metric) s.userScores.push(...(await scoreBatch(opts.metric, fOut, fOut, count, lab, start)));
              continue;
            }
            const session = s.session ?? (await open(s, all, count));
            const sf: Record<string, ort.Tensor> = {};
            for (const name of session.inputNames) sf[name] = name.startsWith(REF_PREFIX) ? all[name.slice(REF_PREFIX.length)] : all[name];
            if (s.sums) {
              const sums = await runSession(session, sf, label, s.sums.fetch);
              const done = addReduced(s, s.sums, sums, floatSums, count, lab, fPred, fOut);
              disposeAll(sums);
              if (done) continue;
            }
            const r = await runSession(session, sf, label, s.sums ? s.outputs : undefined);
            compare(p, s, all, r, count, lab, fPred, logits);
            const qOut = view(r as unknown as Record<string, TensorData>, all as unknown as Record<string, TensorData>);
            s.cmp.add(fOut, qOut, count, lab);
            if (opts.metric) s.userScores.push(...(await scoreBatch(opts.metric, fOut, qOut, count, lab, start)));
            disposeAll(r);
          }
          disposeAll(fr);
        }
        done = start + count;
        opts.onProgress?.({ stage: 'sensitivity', done, total: target, message: `${layers.length} layers` });
      }
      if (!opts.sensitivitySamples && done >= target && reason === '') {
        const running = suffixes.filter((x) => !x.stopped);
        const plan = planAfterPilot(running, TARGET_DB, level);
        const final = look >= looks.length - 1;
        // The layers that go on get at least the last look's samples (all of them on 8 or fewer):
        // a spread read off 4 samples is too rough to size a sample by.
        const floor = LOOKS[LOOKS.length - 1];
        const next = final ? Math.min(N, MAX_SAMPLES, Math.max(target, floor, plan.need)) : looks[look + 1];
        // With a user metric, the ranking rests on its scores, not on the SQNR that settles layers.
        if (next > target && plan.settled.size > 0 && !opts.metric) {
          // Settled layers keep their numbers so far (and wider intervals); their sessions go now.
          const leader = running[plan.leader].layer.node.name;
          for (const [i, d] of plan.settled) {
            const s = running[i];
            s.stopped = true;
            const diffDb = {
              estimate: d.mean,
              low: d.mean - d.half,
              high: d.mean + d.half,
              level,
              method: `student-t, paired over ${d.n} samples`,
            };
            s.aboveLeader = { leader, diffDb };
            if (s.session) {
              sessions.splice(sessions.indexOf(s.session), 1);
              await s.session.release();
              s.session = null;
            }
          }
          stoppedAt.push([target, plan.settled.size]);
          lastLeader = leader;
          // From here on each float run exposes only what the remaining layers read: on the
          // recogniser, 20 outputs instead of 81, most of the float run's cost beyond a plain pass.
          for (const [gi, gr] of groups.entries()) {
            const keep = gr.units.filter((s) => !s.stopped);
            if (keep.length === 0 || keep.length === floats[gi].live) continue;
            const { model: m, names } = tapModel(p, [...new Set(keep.flatMap(tapsOf))]);
            const session = await sessionOnData(p, m, 'float');
            sessions.push(session);
            const old = floats[gi].session;
            sessions.splice(sessions.indexOf(old), 1);
            await old.release();
            floats[gi] = { session, names, live: keep.length };
          }
        }
        if (final) {
          reason =
            next >= N
              ? `all ${N} samples`
              : plan.need > MAX_SAMPLES
                ? `capped at ${MAX_SAMPLES} (about ${plan.need} would pin the mean output SQNR of every layer that could rank first to +-${TARGET_DB} dB)`
                : `enough to pin the mean output SQNR of every layer that could rank first to +-${TARGET_DB} dB (95%)`;
          const stopped = stoppedAt.reduce((a, [, k]) => a + k, 0);
          if (stopped > 0) {
            const at = stoppedAt.map(([n, k]) => `${k} at ${n} samples`).join(', ');
            reason += `; ${stopped} of ${layers.length} layers stopped after the pilot (${at}), their output SQNR being above that of the layer most damaging at that look (${lastLeader}; the final ranking rests on more samples) on the same samples (at a look after ${looks.join(', ')} samples, the ${+(100 * level).toFixed(2)}% interval of the paired difference lay above ${MARGIN_DB} dB${looks.length > 1 ? '; 95% over the looks together' : ''})`;
          }
        }
        look++;
        target = next;
      }
    }
    if (reason === '') reason = `all ${N} samples`;
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  const result = new Map<string, LayerSensitivity>();
  const hasLabels = labels !== null;
  for (const s of suffixes) {
    const outputs = s.cmp.summaries();
    const user = opts.metric ? userMetricSummary(opts.metric, floatScores, s.userScores) : null;
    const primary = outputs.length ? choosePrimaryMetric(outputs, user, fedBackOutputs(p.data.states)) : null;
    const first = outputs.find((o) => o.name === logits)?.classifier ?? null;
    const sqnrOf = outputs.find((o) => o.name === (primary?.output ?? floatOuts[0]))?.perSampleSqnrDb;
    result.set(s.layer.node.name, {
      onlyThis: {
        top1: s.top1.top1(hasLabels),
        agreement: s.top1.agreement(),
        outputSqnrDb: s.acc.result().sqnrDb,
        top1Interval: first?.labelled?.candidate ?? null,
        ...(first ? { agreementInterval: first.top1Agreement } : {}),
        samples: s.samples,
      },
      onlyThisPrimary:
        primary && sqnrOf
          ? { loss: primary.loss, sqnrDb: { estimate: sqnrOf.estimate, low: sqnrOf.low, high: sqnrOf.high, level: sqnrOf.level, method: sqnrOf.method } }
          : null,
      allButThis: null,
      ...(s.aboveLeader ? { aboveLeader: s.aboveLeader } : {}),
      rank: 0,
    });
  }
  // Most damaging first: the lowest output SQNR when quantized alone (a continuous measure: top-1
  // flips on a few hundred samples are too coarse to rank by), ties by agreement.
  [...result.values()]
    .sort((a, b) => a.onlyThis.outputSqnrDb - b.onlyThis.outputSqnrDb || a.onlyThis.agreement - b.onlyThis.agreement)
    .forEach((r, i) => (r.rank = i + 1));
  return { layers: result, samples: target, method: 'downstream', reason };
}

/** The main-graph node a layer runs in: itself, or the If/Loop/Scan whose body holds it. */
function topNode(g: GraphProto, l: PlannedLayer): NodeProto {
  const name = l.scope[0]?.node ?? l.node.name;
  return g.node.find((n) => n.name === name)!;
}

function cols(t: ort.Tensor): number {
  return Number(t.dims[t.dims.length - 1] ?? 1);
}

/**
 * The layer's downstream part as its own model, only this layer quantized, fed from float tensors.
 * A shallow view of the prepared model (its nodes and initializers shared, only those the part
 * reads): buildQdqModel copies what it keeps, and the quantized weights it caches by initializer
 * are reused across layers instead of re-quantized from a copy per layer.
 */
function suffixModel(p: Prepared, q: Quantized, s: Suffix) {
  const g = q.prepared.graph!;
  const nodes = downstreamOf(g, topNode(g, s.layer));
  const outputs = new Set(s.outputs);
  const reads = new Set(nodes.flatMap(nodeReads));
  const view: ModelProto = {
    ...q.prepared,
    graph: {
      ...g,
      node: nodes,
      input: s.frontier.map((t) => typedValueInfo(t, ELEM_TYPE[p.tensorTypes.get(t) ?? 'float32'] ?? 1)),
      output: g.output.filter((o) => outputs.has(o.name)),
      valueInfo: [],
      initializer: g.initializer.filter((t) => reads.has(t.name)),
    },
  };
  return buildQdqModel(
    view,
    p.loaded.dir,
    subsetPlan(q.plan, (x) => x === s.layer),
    q.actParams,
    q.config,
    false,
  ).model;
}

function compare(
  p: Prepared,
  s: Suffix,
  floats: Record<string, ort.Tensor>,
  r: Record<string, ort.Tensor>,
  count: number,
  lab: Int32Array | null,
  fPred: Int32Array | null,
  logits: string,
): void {
  const sx2 = new Float64Array(count);
  const sd2 = new Float64Array(count);
  for (const o of p.outputs) {
    const f = floats[o];
    if (!f || f.type !== 'float32') continue;
    const x = f.data as Float32Array;
    const y = (r[o]?.data as Float32Array | undefined) ?? x; // outputs upstream of the layer are unchanged
    const per = x.length / count;
    // One pass per sample (a recogniser's logits are 265k values per sample, for every layer): the
    // whole-output sums, and the sample's own SQNR, which a non-finite float value leaves undefined.
    for (let k = 0; k < count; k++) {
      const e = s.acc.add(x, y, k * per, (k + 1) * per);
      sx2[k] += e.skipped ? Number.NaN : e.sx2;
      sd2[k] += e.sd2;
    }
  }
  for (let k = 0; k < count; k++) s.perSampleDb.push(sampleDb(sx2[k], sd2[k]));
  const q = r[logits] ?? floats[logits];
  if (fPred && q) s.top1.add(argmaxRows(q.data as Float32Array, cols(q)), lab, fPred);
}

/**
 * Per batch, each float output's per-sample sum x^2 (the in-graph comparison leaves it out: it is
 * the same for every layer) and the sums of an output no layer changes (upstream of the layer:
 * y = x). Computed once per batch, when a layer first asks.
 */
class FloatSums {
  private readonly squares = new Map<string, Float64Array>();
  private readonly same = new Map<string, Float64Array>();

  constructor(
    private readonly floats: Record<string, TensorData>,
    private readonly count: number,
  ) {}

  /** sum x^2 per sample. */
  x2(o: string): Float64Array {
    let v = this.squares.get(o);
    if (v) return v;
    const x = this.floats[o].data as Float32Array; // float outputs, batch first (outputView)
    const per = x.length / this.count;
    v = new Float64Array(this.count);
    for (let k = 0; k < this.count; k++) {
      let sx2 = 0;
      for (let i = k * per; i < (k + 1) * per; i++) sx2 += x[i] * x[i];
      v[k] = sx2;
    }
    this.squares.set(o, v);
    return v;
  }

  /** OUTPUT_SUMS columns of an unchanged output: sum y^2 = sum x^2, no error. */
  unchanged(o: string): Float64Array {
    let v = this.same.get(o);
    if (v) return v;
    const x2 = this.x2(o);
    v = new Float64Array(this.count * SUMS_PER_OUTPUT);
    for (let k = 0; k < this.count; k++) v[k * SUMS_PER_OUTPUT] = x2[k];
    this.same.set(o, v);
    return v;
  }
}

/**
 * One batch of a layer compared in-graph: the numbers `compare` and the output comparison take
 * from the values. False when a quantized output holds NaN or Inf (non-finite sums): the caller
 * then compares the values themselves, which counts them exactly.
 */
function addReduced(
  s: Suffix,
  m: OutputSumsModel,
  r: Record<string, ort.Tensor>,
  floats: FloatSums,
  count: number,
  lab: Int32Array | null,
  fPred: Int32Array | null,
  fOut: Record<string, TensorData>,
): boolean {
  const sums = r[OUTPUT_SUMS].data as Float32Array;
  for (let i = 0; i < sums.length; i++) if (!Number.isFinite(sums[i])) return false;
  const stride = SUMS_PER_OUTPUT * s.outputs.length;
  const sx2 = new Float64Array(count);
  const sd2 = new Float64Array(count);
  for (const cmp of s.cmp.outputs) {
    const f = fOut[cmp.name];
    const at = s.outputs.indexOf(cmp.name);
    const [v, vStride, vAt] = at >= 0 ? [sums, stride, at * SUMS_PER_OUTPUT] : [floats.unchanged(cmp.name), SUMS_PER_OUTPUT, 0];
    const x2 = floats.x2(cmp.name);
    if (at < 0 && cmp.classifierLike(f.dims.slice(1))) cmp.add(f, f, count, lab);
    else cmp.addReduced(f.dims.slice(1), count, x2, v, vStride, vAt);
    for (let k = 0; k < count; k++) {
      const o = k * vStride + vAt;
      const [y2, d2] = [v[o], v[o + 1]];
      s.acc.addSums(x2[k], y2, (x2[k] + y2 - d2) / 2, d2, Number.NaN, f.data.length / count);
      sx2[k] += x2[k];
      sd2[k] += d2;
    }
  }
  for (let k = 0; k < count; k++) s.perSampleDb.push(sampleDb(sx2[k], sd2[k]));
  if (fPred) s.top1.add(m.argmax ? Int32Array.from(r[m.argmax].data as BigInt64Array, Number) : fPred, lab, fPred);
  return true;
}
