/**
 * Stage 2, quantize: a configuration applied to the prepared float statistics. BatchNorm folding,
 * the plan (which nodes, which inputs), each activation's threshold from its histogram (cached per
 * scheme so sweeps compute each once) and its scale and zero point. No inference here, except
 * calibrating tensors this configuration quantizes that no earlier one did.
 */
import { inputNamesOf } from '../data/dataset';
import type { TensorThresholds } from '../calibration/choose';
import type { ActivationStats } from '../calibration/histogram';
import { thresholdsOf } from '../calibration/thresholdPool';
import type { QuantConfig } from '../../protocol/report';
import { foldBatchNorms } from '../quantize/bnFold';
import { type PlannedLayer, type QuantPlan, dropLayers, dropNonFloat, layerTensors, planQuantization } from '../quantize/plan';
import { scopeLabel } from '../onnx/scopes';
import { type QuantParams, paramsFor } from '../quantize/scheme';
import { InputError, cloneModel } from '../onnx/model';
import { ensureStats } from './prepare';
import type { Prepared, Quantized, RunOptions } from './types';

export async function quantizeWith(p: Prepared, config: QuantConfig, opts: RunOptions = {}): Promise<Quantized> {
  const prepared = cloneModel(p.float);
  const folds = config.foldBatchNorm ? foldBatchNorms(prepared, p.loaded.dir) : [];
  requireKnownNodes(p, config.exclude);
  const planned = planQuantization(prepared.graph!, config.placement, qualifiedNames(p, config.exclude));
  await ensureStats(p, planned.activations, opts);
  const plan = dropUnmeasured(
    p,
    dropNonFloat(
      dropLayers(planned, (l) => unreadable(p, l)),
      (t) => p.floatTensors.has(t),
    ),
  );
  const thresholds = new Map<string, TensorThresholds>();
  const actParams = new Map<string, QuantParams>();
  const tensorOver = new Map((config.tensorOverrides ?? []).map((o) => [o.tensor, o]));
  const bits = activationBits(config, plan.layers);
  const each = plan.activations.flatMap((t) => {
    const s = p.stats.get(t);
    if (!s) return [];
    const o = tensorOver.get(t);
    const scheme = { ...config.activations, bits: bits.get(t) ?? config.activations.bits };
    const percentile = o?.percentile ?? config.percentile;
    return [{ t, s, o, scheme, key: `${t}|${scheme.bits}|${scheme.signed}|${percentile}`, config: { ...config, percentile, activations: scheme } }];
  });
  await fillThresholdCache(
    p,
    each.map((e) => [e.key, e.s, e.config]),
  );
  for (const { t, o, scheme, key } of each) {
    const th = p.thresholdCache.get(key)!;
    thresholds.set(t, th);
    const r = o?.range ?? th.thresholds[o?.calibration ?? config.calibration];
    actParams.set(t, paramsFor(r.lo, r.hi, scheme));
  }
  // MaxPool cannot widen the range: give its output the input's params, as deployment does.
  for (const l of plan.layers) {
    const inP = actParams.get(l.node.input[0]);
    if (l.shareInputParams && inP) actParams.set(l.output, inP);
  }
  return { config, prepared, folds, plan, actParams, thresholds };
}

/** Compute the thresholds the cache lacks (several cores when there are many), keyed by tensor and scheme. */
export async function fillThresholdCache(p: Prepared, items: [string, ActivationStats, QuantConfig][]): Promise<void> {
  const missing = [...new Map(items.filter(([key]) => !p.thresholdCache.has(key)).map((item) => [item[0], item])).values()];
  for (const [key, th] of await thresholdsOf(missing)) p.thresholdCache.set(key, th);
}

/**
 * An exclusion that names no node would leave the layer the user meant to keep in float quantized
 * without a word (a typo, a name from another export of the model): refused, naming it.
 */
function requireKnownNodes(p: Prepared, names: readonly string[]): void {
  const known = new Set([...p.nodeNames.keys(), ...p.nodeNames.values()]);
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length)
    throw new InputError(
      `${p.loaded.path}: excluded node${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in the model (node names as the file gives them, e.g. "${[...p.nodeNames.values()].find(Boolean) ?? ''}")`,
    );
}

/** Exclusions may name a body node as in the file; the plan knows it by its qualified name. */
function qualifiedNames(p: Prepared, names: readonly string[]): string[] {
  const byFile = new Map<string, string[]>();
  for (const [q, f] of p.nodeNames) if (f && f !== q) byFile.set(f, [...(byFile.get(f) ?? []), q]);
  return names.flatMap((n) => [n, ...(byFile.get(n) ?? [])]);
}

/** A layer inside a body whose tensors cannot be read out is not analysable: it stays float. */
function unreadable(p: Prepared, l: PlannedLayer): { code: string; reason: string } | null {
  const t = layerTensors(l).find((x) => p.unreadable.has(x));
  return t ? { code: 'layer-not-analysable', reason: `not analysable, left in float: ${p.unreadable.get(t)}` } : null;
}

/**
 * A layer with no statistics never ran on the data (an If branch the data never took): no range
 * can be calibrated and no error measured, so it stays float and the report says why.
 */
function dropUnmeasured(p: Prepared, plan: QuantPlan): QuantPlan {
  const inputs = inputNamesOf(p.data);
  return dropLayers(plan, (l) => {
    const t = layerTensors(l).find((x) => !p.stats.has(x) && !inputs.has(x));
    if (!t) return null;
    const where = l.scope.length ? `it sits in ${scopeLabel(l.scope)}, a branch the data never took` : `tensor ${t} produced no values`;
    return { code: 'layer-not-executed', reason: `never ran on the ${p.data.samples} samples (${where}): no numbers, left in float` };
  });
}

/**
 * Bits per activation tensor where overrides change them: a tensor override wins; otherwise the
 * widest `activationBits` of the layers reading or writing the tensor (a 16-bit layer needs its
 * inputs and output on 16-bit grids).
 */
function activationBits(config: QuantConfig, layers: readonly PlannedLayer[]): Map<string, 4 | 8 | 16> {
  const out = new Map<string, 4 | 8 | 16>();
  const byNode = new Map((config.layerOverrides ?? []).filter((o) => o.activationBits).map((o) => [o.node, o.activationBits!]));
  for (const l of layers) {
    const b = byNode.get(l.node.name);
    if (!b) continue;
    for (const t of [l.output, ...l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation')]) out.set(t, Math.max(out.get(t) ?? 0, b) as 4 | 8 | 16);
  }
  for (const o of config.tensorOverrides ?? []) if (o.bits) out.set(o.tensor, o.bits);
  return out;
}

/**
 * Refuse a quantization that quantizes no layer (every candidate excluded, or a model without
 * Conv/Gemm/MatMul): every number of an analysis would compare the float model with itself, and
 * the per-sample statistics would be means over nothing.
 */
export function requireQuantizedLayers(q: Quantized, modelPath: string): Quantized {
  if (q.plan.layers.length > 0) return q;
  const s = q.plan.skipped;
  const why = s.length
    ? `every candidate stays float (${s
        .slice(0, 3)
        .map((k) => `${k.node}: ${k.reason}`)
        .join('; ')}${s.length > 3 ? `; +${s.length - 3} more` : ''})`
    : 'the model has no layer QuantLens quantizes (Conv, Gemm, MatMul)';
  throw new InputError(`${modelPath}: this configuration quantizes no layer: ${why}; there is nothing to measure`);
}
