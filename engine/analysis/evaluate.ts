/**
 * Stage 3, evaluate: one configuration measured against the float model, streaming.
 *
 * Each number comes from the cheapest run that can give it:
 *   - simulated: ONE model holding the float graph, the QDQ graph run as fake-quant, every layer
 *     alone on its quantized float input (isolated errors) and the reductions that compare them
 *     (quantize/compareGraph.ts): one run per batch returns a vector of sums, the clip counts and
 *     the model outputs, never a layer's activations;
 *   - integer: the same with onnxruntime's fused integer kernels;
 *   - code-level detail (simulated vs integer codes, integer error in LSB, the bit-exact integer
 *     reference): on a bounded, stated number of samples (detail.ts).
 * Sessions are created once per evaluation; every batch is compared and dropped.
 */
import * as ort from 'onnxruntime-node';
import type { Report, Warning } from '../../protocol/report';
import {
  CODES_PREFIX,
  type CodesInput,
  type ComparedPair,
  GATED_SUMS_OUTPUT,
  ISOLATED_FLAG,
  SUMS_OUTPUT,
  buildComparisonModel,
  mergeIsolated,
} from '../quantize/compareGraph';
import type { PlannedLayer } from '../quantize/plan';
import { type OutputTap, buildIsolatedModel, buildQdqModel, type QdqResult } from '../quantize/qdqRewrite';
import { createSession, feedsFor, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { DetailPass, EXPOSE_BYTES } from './detail';
import { BodyLayers } from './bodyLayers';
import { batchFirst, stateOutputAxes } from '../data/inputs';
import { batchRanges, batchWithin } from '../data/dataset';
import { type Comparison, type Evaluation, OutputComparer } from './evaluation';
import { integerEncoding, type KernelMap, layerKeys, optimizedKernels, shiftParams } from './kernels';
import { LayerComparison } from './layerCompare';
import { Top1Counter, argmaxRows } from './metrics';
import { ModelOutputComparison, type TensorData } from './outputMetrics';
import { timer } from './prepare';
import { buildReport } from './report';
import { diagnose } from './diagnose';
import { sensitivity } from './sensitivity';
import { RUN_BYTES, disposeAll, elemTypeOf, measureTensors } from './taps';
import type { EvaluateOptions, Prepared, Quantized } from './types';
import { UserMetricSeries } from './userMetric';

function comparisonModel(
  p: Prepared,
  qdq: QdqResult,
  iso: ReturnType<typeof buildIsolatedModel>,
  layers: readonly PlannedLayer[],
  /**
   * The simulated model runs the float graph and also returns the float tensors `feeds` lists; the
   * integer model reads those as inputs (`fed`) instead of running the float graph a second time.
   */
  role: { simulated: true; feeds: readonly string[]; codes: readonly CodesInput[] } | { simulated: false; fed: boolean },
  /** Expose the top-level layers' codes and float outputs for detail batches (small models only). */
  exposeDetail: boolean,
) {
  const merged = mergeIsolated(qdq.model, iso);
  const pairs: ComparedPair[] = [];
  // Ranks as measured, except for outputs of If/Loop/Scan, whose branches or iterations may differ
  // in rank (the comparison model concatenates reductions by rank).
  const controlFlow = new Set(p.float.graph!.node.filter((n) => n.opType === 'If' || n.opType === 'Loop' || n.opType === 'Scan').flatMap((n) => n.output));
  const rankOf = (t: string) => (controlFlow.has(t) ? undefined : p.tensorRanks.get(t));
  // Tensors holding Inf/NaN, or large enough for float32 squares to overflow within a batch, are
  // summed in float64 over their finite elements (a model fed 1e20, weights near 1e38).
  const robust = (t: string) => {
    const s = p.stats.get(t);
    return !s || s.nanCount > 0 || s.infCount > 0 || Math.max(Math.abs(s.min), Math.abs(s.max)) > 1e15;
  };
  const offsets = new Map<string, { acc: number; iso: number | null }>();
  // Layers inside If/Loop/Scan bodies are compared in JavaScript from lifted tensors (bodyLayers.ts).
  const top = layers.filter((l) => l.scope.length === 0);
  const inBody = new Set(layers.filter((l) => l.scope.length > 0).map((l) => l.node.name));
  for (const l of top) {
    const tap = qdq.taps.find((t) => t.layer === l.node.name);
    if (!tap) continue;
    const isoDq = merged.dq.get(l.node.name);
    // pair indices for now, offsets once the model says how many sums a pair has
    offsets.set(l.node.name, { acc: pairs.length, iso: isoDq ? pairs.length + 1 : null });
    const rank = rankOf(l.output);
    pairs.push({ float: l.output, quant: tap.dq, robust: robust(l.output), rank });
    // The isolated copy runs on the first samples only (its If, isolatedGate.ts): the caller feeds ISOLATED_FLAG.
    if (isoDq) pairs.push({ float: l.output, quant: isoDq, robust: robust(l.output), rank, gate: l.node.name });
  }
  // The detail needs the float layer outputs (integer error in LSB): exposed in the simulated model,
  // where no fusion depends on them.
  const exposeFloat = role.simulated && exposeDetail ? top.map((l) => l.output) : [];
  const fed = role.simulated ? role.feeds : [];
  const codes = role.simulated ? role.codes : [];
  const options = role.simulated ? { exposeFloat: [...exposeFloat, ...fed], exposeCodes: codes } : role.fed ? { floatFrom: elemTypeOf(p) } : {};
  const built = buildComparisonModel(merged.model, p.float, pairs, options);
  for (const o of offsets.values()) {
    o.acc = built.pairOffset(o.acc);
    if (o.iso !== null) o.iso = built.pairOffset(o.iso);
  }
  const outputs = [
    ...p.outputs,
    ...(role.simulated ? built.floatOutputs.values() : []),
    ...fed.map(built.floatName),
    ...codes.map((c) => CODES_PREFIX + c.name),
  ];
  const bodyTaps = qdq.taps.filter((t) => inBody.has(t.layer)).map((t) => t.tensor);
  const fetch = [SUMS_OUTPUT, ...(built.gated ? [GATED_SUMS_OUTPUT] : []), ...new Set([...outputs, ...bodyTaps])];
  const tapNames = exposeDetail ? [...qdq.taps, ...[...qdq.inputTaps.values()].flat()].map((t) => t.tensor) : [];
  const detailFetch = [...new Set([...fetch, ...tapNames, ...exposeFloat.map(built.floatName)])];
  return {
    model: built.model,
    offsets,
    floatOutputs: built.floatOutputs,
    floatName: built.floatName,
    floatInputs: built.floatInputs,
    codesInputs: built.codesInputs,
    fed: !role.simulated && role.fed,
    gated: built.gated,
    fetch,
    detailFetch,
    qdq,
  };
}

export async function evaluate(p: Prepared, q: Quantized, opts: EvaluateOptions = {}): Promise<Report> {
  const t = timer();
  const { config, plan, actParams } = q;
  const dir = p.loaded.dir;
  const label = `quantized model of ${p.loaded.path}`;
  const enc = integerEncoding(config);
  const intParams = shiftParams(actParams, enc.shift);
  const measured = plan.layers.filter((l) => actParams.has(l.output));
  const topLevel = measured.filter((l) => l.scope.length === 0);

  // Batches as large as memory allows. A comparison run holds float, quantized and isolated
  // activations, layout copies and reductions' temporaries: measured on a 512x512 model, about
  // four times the sum of the float layer outputs of the batch at its peak.
  await measureTensors(
    p,
    measured.map((l) => l.output),
    opts.signal,
  );
  const outputBytes = measured.reduce((a, l) => a + (p.tensorBytes.get(l.output) ?? 0), 0);
  const batch = p.fixedBatch ?? batchWithin(RUN_BYTES, 4 * outputBytes, opts.batchSize ?? p.batchSize);
  // Detail taps ride in the comparison models, and the float tensors from the simulated run to the
  // integer one, only while a batch of them stays small: on a 512x512 model, returning the float
  // tensors to JavaScript raised the peak RSS by 650 MB, more than the float graph's run costs.
  const exposeDetail = outputBytes * 2 * batch <= (opts.detailBytes ?? EXPOSE_BYTES);
  const bodyOnly = (t: OutputTap) => measured.some((l) => l.node.name === t.layer && l.scope.length > 0);
  const expose = exposeDetail ? true : bodyOnly;
  const qdq = buildQdqModel(q.prepared, dir, plan, actParams, config, expose);
  const qdqI = enc.shift ? buildQdqModel(q.prepared, dir, plan, intParams, enc.config, expose) : qdq;
  const isoS = buildIsolatedModel(q.prepared, dir, topLevel, actParams, config, plan);
  const isoI = enc.shift ? buildIsolatedModel(q.prepared, dir, topLevel, intParams, enc.config, plan) : isoS;
  const intBuilt = comparisonModel(p, qdqI, isoI, measured, { simulated: false, fed: exposeDetail }, exposeDetail);
  const simBuilt = comparisonModel(p, qdq, isoS, measured, { simulated: true, feeds: intBuilt.floatInputs, codes: intBuilt.codesInputs }, exposeDetail);

  const warnings: Warning[] = [];
  const sessions: ort.InferenceSession[] = [];
  const evaluation: Evaluation = {
    layerAcc: new Map(plan.layers.map((l) => [l.node.name, new LayerComparison()])),
    out: {
      sim: new OutputComparer(new ModelOutputComparison(floatOutputs(p)), null),
      int: new OutputComparer(new ModelOutputComparison(floatOutputs(p)), opts.metric ? new UserMetricSeries(opts.metric) : null),
    },
    floatTop1: new Top1Counter(),
    diffFeeds: [],
    diffSeen: new Map(),
    diffShares: new Map(),
    detailSamples: 0,
    isolatedSamples: 0,
    kernels: { byLayer: new Map(), counts: {} },
    deployed: { byLayer: new Map(), counts: {} },
    shift: enc.shift,
    warnings,
    weights: qdq.weights,
    timings: {},
  };
  let detail: DetailPass | undefined;
  try {
    const simSession = await sessionOnData(p, simBuilt.model, 'simulated', label);
    sessions.push(simSession);
    const intSession = await createSession(intBuilt.model, 'integer', { label });
    sessions.push(intSession);
    // Kernels are read from onnxruntime's optimized graphs of the plain QDQ models (the comparison
    // models add graphs around them, not inside): the one the analysis ran, and always the file
    // `quantize` writes, what a user's session runs. Without the x86 shift they are the same model.
    evaluation.deployed = await deployedKernels(p, q);
    evaluation.kernels = enc.shift ? await kernelsOf(buildQdqModel(q.prepared, dir, plan, intParams, enc.config, false), plan, label) : evaluation.deployed;
    const sim: Comparison = { ...simBuilt, session: simSession };
    const int: Comparison = { ...intBuilt, session: intSession };
    detail = await DetailPass.create(p, q, enc, intParams, topLevel, exposeDetail ? { sim, int } : null, opts, warnings);
    evaluation.diffFeeds = detail.diffFeeds;
    const body = await BodyLayers.create(p, q, measured, intParams, enc.config, (s) => sessions.push(s));

    const labels = p.data.labels;
    const isolatedLimit = isolatedSamplesFor(p, detail.limit, opts.isolatedSamples);
    let done = 0;
    for (const [start, count] of batchRanges(p.data.samples, batch)) {
      checkCancel(opts.signal);
      const feeds = await feedsFor(p.data, start, count);
      // Detail batches fetch the layers' codes too (the first samples, up to the detail budget).
      const detailed = exposeDetail && detail.wants(start);
      // Isolated layers run on the first samples only (their Ifs in the comparison models).
      const isolated = start < isolatedLimit;
      if (isolated) evaluation.isolatedSamples += count;
      const flag = { [ISOLATED_FLAG]: new ort.Tensor('bool', [isolated], []) };
      const rs = await runSession(sim.session, sim.gated ? { ...feeds, ...flag } : feeds, label, detailed ? sim.detailFetch : sim.fetch);
      checkCancel(opts.signal);
      // The integer model reads the float tensors it compares against from the simulated run, and
      // its isolated layers' other inputs as codes, quantized there.
      const intFeeds = {
        ...feeds,
        ...(int.gated ? flag : {}),
        ...Object.fromEntries(int.floatInputs.map((t) => [int.floatName(t), rs[sim.floatName(t)]])),
        ...Object.fromEntries(int.codesInputs.map((c) => [c.name, rs[CODES_PREFIX + c.name]])),
      };
      const ri = await runSession(int.session, intFeeds, label, detailed ? int.detailFetch : int.fetch);
      addSums(evaluation, sim, rs, 'sim', 'isoSim', isolated);
      addSums(evaluation, int, ri, 'int', 'isoInt', isolated, int.fed ? { comparison: sim, res: rs } : undefined);
      const fr = Object.fromEntries([...sim.floatOutputs].map(([o, name]) => [o, rs[name]]));
      await compareOutputs(p, evaluation, fr, rs, ri, labels?.subarray(start, start + count) ?? null, start, count);
      if (detailed) detail.add(rs, ri, sim, start, count, evaluation);
      else if (!exposeDetail && detail.wants(start)) await detail.run(feeds, start, count, evaluation);
      await body?.run(feeds, rs, ri, sim.qdq.taps, int.qdq.taps, evaluation, isolated);
      disposeAll(rs, ri);
      done += count;
      opts.onProgress?.({ stage: 'evaluate', done, total: p.data.samples });
    }
    evaluation.diffSeen = detail.diffSeen;
    evaluation.diffShares = detail.diffShares;
    evaluation.detailSamples = detail.samples;
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
  evaluation.timings = { ...p.timings, evaluateMs: t() };
  const sens = opts.sensitivity === false ? null : await sensitivity(p, q, opts);
  if (sens) evaluation.timings.sensitivityMs = t() - evaluation.timings.evaluateMs;
  const report = buildReport(p, q, evaluation, sens, opts.targetCpu);
  if (opts.diagnose) report.diagnosis = await diagnose(p, q, report, opts, opts.diagnose);
  return report;
}

/**
 * One batch's reduced sums into the layer comparisons. A model fed its float tensors has no sums
 * of them: each layer's float output's sum of squares and count come from `floatFrom`, the
 * simulated run of the same batch (the pair of that layer's accumulated error, same tensor).
 */
function addSums(
  e: Evaluation,
  c: Comparison,
  res: Record<string, ort.Tensor>,
  acc: 'sim' | 'int',
  iso: 'isoSim' | 'isoInt',
  isolated: boolean,
  floatFrom?: { comparison: Comparison; res: Record<string, ort.Tensor> },
): void {
  const sums = res[SUMS_OUTPUT].data as Float64Array; // float64 (compareGraph.ts)
  // Every isolated pair is gated (comparisonModel): its sums are in the gated vector.
  const gated = c.gated ? (res[GATED_SUMS_OUTPUT].data as Float64Array) : sums;
  // The model that computed the float tensors holds their sum of squares and count.
  const floatSums = floatFrom ? (floatFrom.res[SUMS_OUTPUT].data as Float64Array) : sums;
  const floatOffsets = floatFrom ? floatFrom.comparison.offsets : c.offsets;
  for (const [layer, o] of c.offsets) {
    const lc = e.layerAcc.get(layer)!;
    const r = floatOffsets.get(layer);
    if (!r) throw new Error(`comparison models: ${layer} is compared in the integer model but not in the simulated one`);
    const ref = { sums: floatSums, offset: r.acc };
    lc.addSums(acc, sums, o.acc, floatFrom ? ref : undefined);
    // A gated pair's sums hold no float sums: those of the layer's accumulated pair (same tensor).
    if (o.iso !== null && isolated) lc.addSums(iso, gated, o.iso, ref);
  }
}

/** Default least number of samples the isolated layers run on (more when the detail covers more). */
const ISOLATED_MIN_SAMPLES = 16;

/**
 * Samples the isolated layers run on: the first ones, as many as the user asked for, else as many
 * as the code-level detail covers but at least ISOLATED_MIN_SAMPLES (all, when there are fewer).
 */
function isolatedSamplesFor(p: Prepared, detailLimit: number, asked: number | undefined): number {
  return Math.min(p.data.samples, asked ?? Math.max(ISOLATED_MIN_SAMPLES, detailLimit));
}

/** The file `quantize` writes (no additions, the configured grid), as onnxruntime CPU optimizes it. */
async function deployedKernels(p: Prepared, q: Quantized): Promise<KernelMap> {
  return kernelsOf(buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false), q.plan, `quantized model of ${p.loaded.path}`);
}

async function kernelsOf(built: QdqResult, plan: Quantized['plan'], label: string): Promise<KernelMap> {
  return optimizedKernels(
    built.model,
    layerKeys(
      built,
      plan.layers.map((l) => l.node.name),
    ),
    label,
  );
}

/** The model outputs compared per sample: float ones (integer outputs such as argmax indices are left to equality). */
function floatOutputs(p: Prepared): string[] {
  return p.outputs.filter((o) => (p.tensorTypes.get(o) ?? 'float32') === 'float32');
}

async function compareOutputs(
  p: Prepared,
  e: Evaluation,
  fr: Record<string, ort.Tensor>,
  qs: Record<string, ort.Tensor>,
  qi: Record<string, ort.Tensor>,
  lab: Int32Array | null,
  start: number,
  count: number,
): Promise<void> {
  const outs = floatOutputs(p);
  // a state output (e.g. [2, batch, 128]) is compared per sample along its own batch axis
  const axes = stateOutputAxes(p.data.states ?? []);
  const asData = (o: string, t: ort.Tensor): TensorData =>
    axes.has(o) && t ? batchFirst(t.data as Float32Array, t.dims, axes.get(o)!) : (t as unknown as TensorData);
  const pick = (r: Record<string, ort.Tensor>) => Object.fromEntries(outs.map((o) => [o, asData(o, r[o])]));
  e.out.sim.outputs.add(pick(fr), pick(qs), count, lab);
  e.out.int.outputs.add(pick(fr), pick(qi), count, lab);
  await e.out.int.user?.addBatch(pick(fr), pick(qi), count, lab, start);
  const logits = p.outputs[0];
  const f = fr[logits];
  if (!f || f.type !== 'float32') return;
  const cols = Number(f.dims[f.dims.length - 1] ?? 1);
  const fPred = argmaxRows(f.data as Float32Array, cols);
  e.floatTop1.add(fPred, lab, null);
  for (const [k, res] of [
    ['sim', qs],
    ['int', qi],
  ] as const) {
    e.out[k].top1.add(argmaxRows(res[logits].data as Float32Array, cols), lab, fPred);
  }
}
