/**
 * Stage 3, evaluate: one configuration measured against the float model, streaming.
 *
 * Each number comes from the cheapest run that can give it:
 *   - accumulated errors and model outputs: the QDQ model, simulated (Q/DQ as float ops) and
 *     integer (onnxruntime fuses DQ -> op -> Q into integer kernels), one run each per batch, its
 *     layer outputs fetched as integer CODES (fetching codes does not block fusion);
 *   - float layer inputs and outputs: one run of the float model with those tensors exposed, in
 *     groups sized so memory stays flat in the model's resolution;
 *   - isolated errors: every layer ALONE on its quantized float input, in one small model per group
 *     fed from the float run (simulated and integer), instead of re-running the float graph;
 *   - the bit-exact integer reference: on a bounded, stated number of samples.
 * Sessions are created once per evaluation; every batch's tensors are compared and dropped.
 */
import type * as ort from 'onnxruntime-node';
import type { Report, Warning } from '../../protocol/report';
import { cloneModel } from '../onnx/model';
import { GraphIndex, untypedValueInfo } from '../onnx/graph';
import type { PlannedLayer } from '../quantize/plan';
import { type OutputTap, buildIsolatedModel, buildQdqModel, isolatedInputs } from '../quantize/qdqRewrite';
import { createSession, feedsFor, runSession } from '../runtime/session';
import { checkCancel } from './cancel';
import { feedBatch, layerDiffFeeds, macsPerSample, sliceSamples } from './integerDiffs';
import { integerEncoding, integerSessionWithKernels, type KernelMap, layerKeys, shiftParams } from './kernels';
import { type CodeView, LayerComparison } from './layerCompare';
import { Top1Counter, argmaxRows } from './metrics';
import { ModelOutputComparison, type TensorData } from './outputMetrics';
import { UserMetricSeries } from './userMetric';
import { timer } from './prepare';
import { buildReport } from './report';
import { type Evaluation, OutputComparer } from './evaluation';
import { sensitivity } from './sensitivity';
import { batches, disposeAll, fixedBatchOf, groupByBytes, measureTensors, RUN_BYTES, type TapGroup } from './taps';
import type { EvaluateOptions, Prepared, Quantized } from './types';

/** Multiply-accumulates the JS integer reference may spend (about a second of exact int32 work). */
const DIFF_MAC_BUDGET = 3e8;

/** Codes of a tap, as the comparison wants them (4-bit taps hold dequantized floats: re-derive codes). */
function codeView(t: ort.Tensor, tap: OutputTap): CodeView {
  const { scale, zeroPoint } = tap.params;
  const d = t.data as ArrayLike<number>;
  const codes = tap.isCodes ? d : Int32Array.from(d as Float32Array, (v) => Math.round(v / scale) + zeroPoint);
  return { codes, scale, zeroPoint };
}

interface FloatGroup {
  group: TapGroup<PlannedLayer>;
  float: ort.InferenceSession;
  isoSim: ort.InferenceSession | null;
  isoInt: ort.InferenceSession | null;
  isoTaps: { sim: OutputTap[]; int: OutputTap[] };
}

export async function evaluate(p: Prepared, q: Quantized, opts: EvaluateOptions = {}): Promise<Report> {
  const t = timer();
  const { config, plan, actParams } = q;
  const dir = p.loaded.dir;
  const label = `quantized model of ${p.loaded.path}`;
  const qdq = buildQdqModel(q.prepared, dir, plan, actParams, config, true);
  const enc = integerEncoding(config);
  const intParams = shiftParams(actParams, enc.shift);
  const qdqI = enc.shift ? buildQdqModel(q.prepared, dir, plan, intParams, enc.config, true) : qdq;
  const warnings: Warning[] = [];
  const diffFeeds = opts.integerDiff === false ? [] : layerDiffFeeds(plan.layers, qdq, qdqI, enc.config,
    (node, message) => warnings.push({ code: 'no-integer-reference', node, message }));

  // Float groups: each layer needs its float inputs and output; groups keep a batch under budget.
  const src = new GraphIndex(q.prepared.graph!);
  const inputNames = new Set(p.data.inputs.map((i) => i.name));
  const measured = plan.layers.filter((l) => actParams.has(l.output));
  const tensorsOf = (l: PlannedLayer) => [...isolatedInputs(l, (x) => src.isConstant(x)), l.output].filter((x) => !inputNames.has(x));
  await measureTensors(p, measured.flatMap(tensorsOf), opts.signal);
  const groups = groupByBytes(measured, tensorsOf, (x) => p.tensorBytes.get(x) ?? 0, opts.batchSize ?? p.batchSize, fixedBatchOf(p));
  // The QDQ runs hold every layer's codes of a batch while the groups run: size the batch for both.
  const codeBytes = measured.reduce((a, l) => a + (p.tensorBytes.get(l.output) ?? 0) * (config.activations.bits / 32), 0) * 2;
  const batch = p.fixedBatch ?? Math.max(1, Math.min(...groups.map((g) => g.batch), Math.floor(RUN_BYTES / Math.max(1, codeBytes))));

  const sessions: ort.InferenceSession[] = [];
  const track = <T extends ort.InferenceSession | null>(s: T): T => (s && sessions.push(s), s);
  const evaluation: Evaluation = {
    layerAcc: new Map(plan.layers.map((l) => [l.node.name, new LayerComparison()])),
    clipCount: new Map(), seen: new Map(),
    out: {
      sim: new OutputComparer(new ModelOutputComparison(floatOutputs(p)), null),
      int: new OutputComparer(new ModelOutputComparison(floatOutputs(p)), opts.metric ? new UserMetricSeries(opts.metric) : null),
    },
    floatTop1: new Top1Counter(),
    diffFeeds, diffSamples: 0, kernels: { byLayer: new Map(), counts: {} }, deployed: { byLayer: new Map(), counts: {} },
    shift: enc.shift, warnings, weights: qdq.weights, timings: {},
  };
  try {
    const qdqSim = track(await createSession(qdq.model, 'simulated', { label }));
    const names = plan.layers.map((l) => l.node.name);
    const integer = await integerSessionWithKernels(qdqI.model, layerKeys(qdqI, names), label);
    const qdqInt = track(integer.session);
    evaluation.kernels = integer.kernels;
    // Always the file `quantize` writes, without the analysis's taps: what a user's session runs.
    evaluation.deployed = await deployedKernels(p, q);
    const floatGroups: FloatGroup[] = [];
    for (const group of groups) floatGroups.push(await floatGroup(p, q, group, intParams, enc.config, track, label));

    const labels = p.data.labels;
    const logits = p.outputs[0];
    let done = 0;
    let diffBudget = DIFF_MAC_BUDGET;
    let diffMacs = 0;
    for (const [start, count] of batches(p.data.samples, batch)) {
      checkCancel(opts.signal);
      const feeds = await feedsFor(p.data, start, count);
      const qs = await runSession(qdqSim, feeds, label);
      checkCancel(opts.signal);
      const qi = await runSession(qdqInt, feeds, label);
      if (diffFeeds.length && diffBudget > 0) {
        diffMacs ||= macsPerSample(diffFeeds, qi);
        const take = Math.min(count, Math.floor(diffBudget / Math.max(1, diffMacs)) || (evaluation.diffSamples === 0 ? 1 : 0));
        if (take > 0) {
          feedBatch(diffFeeds, sliceSamples(qi, take), sliceSamples(qs, take));
          evaluation.diffSamples += take;
          diffBudget -= take * diffMacs;
        }
        if (take < count) diffBudget = 0;
      }
      const clipped = new Set<string>();
      for (const [gi, fg] of floatGroups.entries()) {
        checkCancel(opts.signal);
        const fr = await runSession(fg.float, feeds, p.loaded.path);
        const floats = { ...feeds, ...fr } as Record<string, ort.Tensor>;
        countClips(evaluation, q, fg.group.tensors, floats, clipped);
        const iso = await runIsolated(fg, floats);
        for (const l of fg.group.units) {
          const x = floats[l.output].data as Float32Array;
          const acc = evaluation.layerAcc.get(l.node.name)!;
          const simTap = qdq.taps.find((tp) => tp.layer === l.node.name);
          const intTap = qdqI.taps.find((tp) => tp.layer === l.node.name);
          if (simTap && intTap) acc.addAccumulated(x, codeView(qs[simTap.tensor], simTap), codeView(qi[intTap.tensor], intTap));
          const k = fg.isoTaps.sim.findIndex((tp) => tp.layer === l.node.name);
          if (k >= 0 && iso.sim && iso.int) acc.addIsolated(x, codeView(iso.sim[fg.isoTaps.sim[k].tensor], fg.isoTaps.sim[k]), codeView(iso.int[fg.isoTaps.int[k].tensor], fg.isoTaps.int[k]));
        }
        if (gi === 0) await compareOutputs(p, evaluation, fr, qs, qi, labels?.subarray(start, start + count) ?? null, logits, start, count);
        disposeAll(fr, iso.sim ?? undefined, iso.int ?? undefined);
      }
      disposeAll(qs, qi);
      done += count;
      opts.onProgress?.({ stage: 'evaluate', done, total: p.data.samples });
    }
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  evaluation.timings = { ...p.timings, evaluateMs: t() };
  const sens = opts.sensitivity === false ? null : await sensitivity(p, q, opts);
  if (sens) evaluation.timings.sensitivityMs = t() - evaluation.timings.evaluateMs;
  return buildReport(p, q, evaluation, sens, opts.targetCpu);
}

/** The file `quantize` writes (no taps, the configured grid), as onnxruntime CPU optimizes it. */
async function deployedKernels(p: Prepared, q: Quantized): Promise<KernelMap> {
  const deploy = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
  const { session, kernels } = await integerSessionWithKernels(deploy.model, layerKeys(deploy, q.plan.layers.map((l) => l.node.name)), `quantized model of ${p.loaded.path}`);
  await session.release();
  return kernels;
}

async function floatGroup(
  p: Prepared, q: Quantized, group: TapGroup<PlannedLayer>, intParams: Map<string, import('../quantize/scheme').QuantParams>,
  intConfig: Quantized['config'], track: <T extends ort.InferenceSession | null>(s: T) => T, label: string,
): Promise<FloatGroup> {
  const tap = cloneModel(p.float);
  const have = new Set(tap.graph!.output.map((o) => o.name));
  for (const n of group.tensors) if (!have.has(n)) tap.graph!.output.push(untypedValueInfo(n));
  const float = track(await createSession(tap, 'float', { label: p.loaded.path }));
  const isoS = buildIsolatedModel(q.prepared, p.loaded.dir, group.units, q.actParams, q.config);
  const isoI = intParams === q.actParams ? isoS : buildIsolatedModel(q.prepared, p.loaded.dir, group.units, intParams, intConfig);
  const any = isoS.taps.length > 0;
  return {
    group, float,
    isoSim: any ? track(await createSession(isoS.model, 'simulated', { label })) : null,
    isoInt: any ? track(await createSession(isoI.model, 'integer', { label })) : null,
    isoTaps: { sim: isoS.taps, int: isoI.taps },
  };
}

async function runIsolated(fg: FloatGroup, floats: Record<string, ort.Tensor>) {
  if (!fg.isoSim || !fg.isoInt) return { sim: null, int: null };
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of fg.isoSim.inputNames) feeds[name] = floats[name];
  return { sim: await runSession(fg.isoSim, feeds, 'isolated layers'), int: await runSession(fg.isoInt, feeds, 'isolated layers') };
}

/** Clipped = the code saturates: the unclamped code lies more than half a step beyond the grid. */
function countClips(e: Evaluation, q: Quantized, tensors: readonly string[], floats: Record<string, ort.Tensor>, counted: Set<string>): void {
  for (const name of [...tensors, ...Object.keys(floats)]) {
    const params = q.actParams.get(name);
    const f = floats[name];
    if (!params || !f || counted.has(name) || f.type !== 'float32') continue;
    counted.add(name);
    const { scale, zeroPoint, qmin, qmax } = params;
    const lo = (qmin - 0.5 - zeroPoint) * scale;
    const hi = (qmax + 0.5 - zeroPoint) * scale;
    const d = f.data as Float32Array;
    let c = 0;
    for (let i = 0; i < d.length; i++) if (d[i] < lo || d[i] > hi) c++;
    e.clipCount.set(name, (e.clipCount.get(name) ?? 0) + c);
    e.seen.set(name, (e.seen.get(name) ?? 0) + d.length);
  }
}

/** The model outputs compared per sample: float ones (integer outputs such as argmax indices are left to equality). */
function floatOutputs(p: Prepared): string[] {
  return p.outputs.filter((o) => (p.tensorTypes.get(o) ?? 'float32') === 'float32');
}

async function compareOutputs(
  p: Prepared, e: Evaluation, fr: Record<string, ort.Tensor>, qs: Record<string, ort.Tensor>, qi: Record<string, ort.Tensor>, lab: Int32Array | null, logits: string,
  start: number, count: number,
): Promise<void> {
  const outs = floatOutputs(p);
  const pick = (r: Record<string, ort.Tensor>) => Object.fromEntries(outs.map((o) => [o, r[o] as unknown as TensorData]));
  e.out.sim.outputs.add(pick(fr), pick(qs), count, lab);
  e.out.int.outputs.add(pick(fr), pick(qi), count, lab);
  await e.out.int.user?.addBatch(pick(fr), pick(qi), count, lab, start);
  const f = fr[logits];
  if (!f || f.type !== 'float32') return;
  const cols = Number(f.dims[f.dims.length - 1] ?? 1);
  const fPred = argmaxRows(f.data as Float32Array, cols);
  e.floatTop1.add(fPred, lab, null);
  for (const [k, res] of [['sim', qs], ['int', qi]] as const) {
    for (const o of p.outputs) {
      if (fr[o]?.type === 'float32' && res[o]) e.out[k].acc.add(fr[o].data as Float32Array, res[o].data as Float32Array);
    }
    e.out[k].top1.add(argmaxRows(res[logits].data as Float32Array, cols), lab, fPred);
  }
}

