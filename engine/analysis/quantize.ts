/**
 * Stage 2, quantize: a configuration applied to the prepared float statistics. BatchNorm folding,
 * the plan (which nodes, which inputs), each activation's threshold from its histogram (cached per
 * scheme so sweeps compute each once) and its scale and zero point. No inference here, except
 * calibrating tensors this configuration quantizes that no earlier one did.
 */
import { computeThresholds, type TensorThresholds } from '../calibration/choose';
import type { QuantConfig } from '../../protocol/report';
import { foldBatchNorms } from '../quantize/bnFold';
import { dropNonFloat, planQuantization } from '../quantize/plan';
import { type QuantParams, paramsFor } from '../quantize/scheme';
import { cloneModel } from '../onnx/model';
import { ensureStats } from './prepare';
import type { Prepared, Quantized, RunOptions } from './types';

export async function quantizeWith(p: Prepared, config: QuantConfig, opts: RunOptions = {}): Promise<Quantized> {
  const prepared = cloneModel(p.float);
  const folds = config.foldBatchNorm ? foldBatchNorms(prepared, p.loaded.dir) : [];
  const planned = planQuantization(prepared.graph!, config.placement, config.exclude);
  await ensureStats(p, planned.activations, opts);
  const plan = dropNonFloat(planned, (t) => p.floatTensors.has(t));
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
