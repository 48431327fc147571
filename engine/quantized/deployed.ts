/**
 * Analysis of a model AS DEPLOYED: the normal pipeline (prepare -> quantize -> evaluate -> report)
 * with the quantize stage replaced. Instead of calibrating, the `Quantized` is built from the
 * model's own grids: the plan from what it quantizes, activation params exactly its scales and
 * zero points, weights exactly its integer codes. The float reference is its twin, or the user's
 * float model (--float). Calibration statistics of the reference still run: the report shows what
 * each method would pick beside the deployed grid.
 */
import type { ModelQuantization, Report } from '../../protocol/report';
import type { TensorThresholds } from '../calibration/choose';
import { InputError } from '../errors';
import { type LoadedModel, cloneModel, loadModel, opsetOf } from '../onnx/model';
import { GraphIndex, type GraphProto } from '../onnx/graph';
import { foldBatchNorms } from '../quantize/bnFold';
import type { QuantPlan } from '../quantize/plan';
import { gridType } from '../quantize/qdqRewrite';
import { evaluate } from '../analysis/evaluate';
import { createSession } from '../runtime/session';
import { ensureStats, prepareLoaded } from '../analysis/prepare';
import { fillThresholdCache } from '../analysis/quantize';
import type { EvaluateOptions, PrepareOptions, Prepared, Quantized, RunOptions } from '../analysis/types';
import { deployedConfig } from './deployedConfig';
import { deployedPlan, layerNodesOf } from './deployedPlan';
import { detectQuantization } from './detect';
import { type Unmatched, matchGrids, twinGrids } from './match';
import { type Twin, buildTwin } from './twin';
import { fileFloatLayers } from '../quantize/floatGuard';

/** A quantized model file and its float twin. */
export interface DeployedModel {
  loaded: LoadedModel;
  twin: Twin;
}

export const TWIN_NOTE =
  "The float reference is the model's float twin: Q/DQ removed, integer operators turned back into float ones, and weights DEQUANTIZED (the twin's weights are the deployed values, so weight rounding adds no error against it). For a model trained with quantization (QAT) or quantized from weights not in the file, the twin's accuracy approximates the original float accuracy only; pass --float with the original float model to measure against it.";

/**
 * Refuse an already-quantized model where a float one is needed (quantize, sweep, mixed
 * precision): working on its dequantized twin would not be working on what the user has.
 */
export function requireFloat(loaded: LoadedModel, command: string): void {
  const kind = detectQuantization(loaded.proto.graph!).kind;
  if (kind !== 'float')
    throw new InputError(
      `${loaded.path} is already quantized (${kind}); ${command} needs its float model (analyze, gate and compare take quantized models as deployed)`,
    );
}

/** A model that must be quantized (compare). */
export function requireDeployed(loaded: LoadedModel): DeployedModel {
  const d = deployedModel(loaded);
  if (!d) throw new InputError(`${loaded.path} is a float model; compare takes two quantized versions (QDQ or QOperator)`);
  return d;
}

/**
 * The file as deployed must load in onnxruntime (its type and shape checks): the analysis reads
 * its grids and codes and runs a rebuilt model, so a file no runtime accepts (a Conv reading int8
 * codes with no DequantizeLinear, a QuantizeLinear with an int32 zero point) would otherwise be
 * measured as if it worked.
 */
export async function requireLoadable(d: DeployedModel): Promise<void> {
  const session = await createSession(d.loaded.proto, 'integer', { label: d.loaded.path });
  await session.release();
}

/** The deployed model in `loaded`, or null for a float model. */
export function deployedModel(loaded: LoadedModel): DeployedModel | null {
  const census = detectQuantization(loaded.proto.graph!);
  if (census.kind === 'float') return null;
  // The twin and the deployed grids are read from the main graph; a body's Q/DQ would stay in the
  // "float" reference and its layers would be measured as float.
  if (census.inBodies > 0)
    throw new InputError(
      `${loaded.path} is quantized inside If/Loop/Scan bodies (${census.inBodies} quantized operators there): QuantLens analyses a quantized model as deployed only when its quantization sits in the main graph; analyze its float model instead (the same configuration gives the same grids)`,
    );
  return { loaded, twin: buildTwin(loaded.proto, loaded.path) };
}

/**
 * Prepare the float reference: the twin, or `floatPath` (a float model: --float). Statistics of
 * the reference are calibrated as for any float model.
 */
export async function prepareDeployed(d: DeployedModel, opts: PrepareOptions & { floatPath?: string } = {}): Promise<Prepared> {
  await requireLoadable(d);
  if (!opts.floatPath) return prepareLoaded({ ...d.loaded, proto: d.twin.model }, opts);
  const f = loadModel(opts.floatPath);
  const kind = detectQuantization(f.proto.graph!).kind;
  if (kind !== 'float') throw new InputError(`${f.path}: --float needs the float model, but this one is already quantized (${kind})`);
  return prepareLoaded(f, opts);
}

/** Is `p`'s reference the twin of `d` itself (names agree by construction)? */
function onOwnTwin(p: Prepared, d: DeployedModel): boolean {
  return p.loaded.proto === d.twin.model;
}

function hasConvBn(g: GraphProto): boolean {
  const idx = new GraphIndex(g);
  return g.node.some((n) => n.opType === 'Conv' && (idx.consumers.get(n.output[0]) ?? []).some((c) => c.opType === 'BatchNormalization'));
}

/**
 * Build the `Quantized` of the deployed grids on `p`'s reference graph. `otherTwin` names the
 * quantized model whose twin `p` is, when that is not `d` (compare measures B on A's twin).
 */
export async function quantizeDeployed(p: Prepared, d: DeployedModel, opts: RunOptions & { otherTwin?: string } = {}): Promise<Quantized> {
  const own = onOwnTwin(p, d);
  const prepared = cloneModel(p.float);
  // The user's float model may still hold the BatchNorms the quantizer folded into its Convs.
  const fold = !own && hasConvBn(prepared.graph!) && !hasConvBn(d.twin.model.graph!);
  const folds = fold ? foldBatchNorms(prepared, p.loaded.dir) : [];
  const mine = twinGrids(d.twin);
  const { grids, unmatched } = own ? { grids: mine, unmatched: null } : matchGrids(d.twin, mine, prepared.graph!);
  // Another model altogether (compare of two unrelated files, a wrong --float): its layers find no
  // namesakes, stay float, and it would be measured as the reference itself ("drop 0.00").
  const layers = layerNodesOf(mine).size;
  if (unmatched && layers > 0 && unmatched.layers.length * 2 > layers)
    throw new InputError(
      `${d.loaded.path} does not match the reference ${p.loaded.path}: ${unmatched.layers.length} of its ${layers} quantized layers have no node of that name there (e.g. ${unmatched.layers.slice(0, 2).join(', ')}); both must be versions of one model`,
    );
  const planned = deployedPlan(prepared.graph!, grids);
  await ensureStats(p, planned.activations, opts);
  // The file's own float layers that onnxruntime quantizes when it loads the file are left so
  // here (no float guard); those the file keeps float (a guard, no DQ before them) stay float.
  const plan = { ...floatOnly(planned, p), ...fileFloatLayers(d.loaded.proto) };
  const actParams = new Map(plan.activations.map((t) => [t, grids.activations.get(t)!]));
  const config = deployedConfig(actParams, plan.layers, fold);
  const thresholds = new Map<string, TensorThresholds>();
  const each = [...actParams].flatMap(([t, g]) => {
    const s = p.stats.get(t);
    if (!s) return [];
    const { bits, signed } = gridType(g);
    const scheme = { bits, signed, symmetric: signed && g.zeroPoint === 0, narrowRange: false, powerOfTwo: false };
    return [[t, [`${t}|${bits}|${signed}|${config.percentile}`, s, { ...config, activations: scheme }]] as const];
  });
  await fillThresholdCache(
    p,
    each.map(([, item]) => [...item]),
  );
  for (const [t, [key]] of each) thresholds.set(t, p.thresholdCache.get(key)!);
  const weights = plan.layers.reduce((a, l) => a + [...(l.fixed?.keys() ?? [])].filter((i) => l.roles[i]?.kind === 'weight').length, 0);
  const reference = own ? null : opts.otherTwin ? { twinOf: opts.otherTwin } : { floatModel: p.loaded.path };
  const quantization = describe(d, reference, unmatched, { activations: actParams.size, weights });
  return { config, prepared, folds, plan, actParams, thresholds, quantization };
}

/** Tensors onnxruntime reported as non-float (int64 shapes...) cannot carry a float grid. */
function floatOnly(plan: QuantPlan, p: Prepared): QuantPlan {
  const isFloat = (t: string) => p.floatTensors.has(t);
  const skipped = [...plan.skipped];
  const layers = plan.layers.filter((l) => {
    const bad = [l.output, ...l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation')].find((t) => !isFloat(t));
    if (bad) skipped.push({ node: l.node.name, op: l.node.opType, reason: `tensor ${bad} is not float32` });
    return !bad;
  });
  return { ...plan, layers, activations: plan.activations.filter(isFloat), skipped };
}

function describe(
  d: DeployedModel,
  ref: { floatModel?: string; twinOf?: string } | null,
  unmatched: Unmatched | null,
  grids: { activations: number; weights: number },
): ModelQuantization {
  const floatModel = ref?.floatModel;
  const matched =
    'the deployed grids and weight codes are applied to its tensors and layers, matched by name (what did not match is listed under unmatched and left float)';
  const notes = floatModel
    ? [`The float reference is ${floatModel}: ${matched}.`]
    : ref?.twinOf
      ? [`The float reference is the float twin of ${ref.twinOf} (its weights dequantized): ${matched}.`]
      : [TWIN_NOTE];
  return {
    kind: d.twin.census.kind,
    ops: d.twin.census.ops,
    reference: floatModel ? 'user' : 'twin',
    ...(floatModel ? { floatModel } : {}),
    notes: [...notes, ...d.twin.notes],
    ...(unmatched ? { unmatched } : {}),
    grids,
  };
}

/** The report of a deployed model, under its own name whatever the reference was. */
export async function evaluateDeployed(p: Prepared, d: DeployedModel, q: Quantized, opts: EvaluateOptions = {}): Promise<Report> {
  const report = await evaluate(p, q, opts);
  // Every grid in the report is the file's own (weights: their codes), not a calibration's choice.
  const fixedWeights = new Set(
    q.plan.layers.flatMap((l) => l.roles.flatMap((r, i) => (r.kind === 'weight' && l.fixed?.has(i) ? [`${l.node.name}:${l.node.input[i]}`] : []))),
  );
  for (const t of report.tensors) if (t.chosen && (t.kind === 'activation' || fixedWeights.has(t.name))) t.chosen.deployed = true;
  if (q.plan.activations.length === 0) {
    report.warnings.unshift({
      code: 'nothing-simulated',
      message: `${d.loaded.path}: no activation of this model has a fixed deployed grid (its quantization is dynamic or weight-only), so the simulated and integer runs equal the reference: the numbers above say nothing about its quantization`,
    });
  }
  const proto = d.loaded.proto;
  report.model = {
    ...report.model,
    path: d.loaded.path,
    sha256: d.loaded.sha256,
    opset: opsetOf(proto),
    producer: `${proto.producerName} ${proto.producerVersion}`.trim(),
    nodes: proto.graph!.node.length,
  };
  return report;
}

/** Load, prepare, quantize as deployed and evaluate: one call. */
export async function analyzeDeployed(d: DeployedModel, opts: PrepareOptions & EvaluateOptions & { floatPath?: string } = {}): Promise<Report> {
  const p = await prepareDeployed(d, opts);
  return evaluateDeployed(p, d, await quantizeDeployed(p, d, opts), opts);
}
