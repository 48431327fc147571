/**
 * Automatic mixed precision, generalised to a per-layer plan: for each layer a calibration method
 * for its tensors, wider weights or activations, per-channel weights, or float. Layers are ranked
 * by the damage each does when it is the only one quantized (measured on the primary metric,
 * integer kernels); then the plan search (diagnosis/search.ts) measures every option of each
 * layer in that order and keeps the smallest change that meets the budget, judged with the
 * interval: it never keeps a layer in float, or changes it at all, to win back a difference the
 * samples cannot tell from noise.
 */
import type { MixedPrecisionResult, MixedPrecisionStep, QuantConfig } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { describeChanges, optionsFor } from '../diagnosis/candidates';
import { type Tried, searchFix } from '../diagnosis/search';
import { InputError } from '../errors';
import type { OutputTarget } from '../io/files';
import { subsetPlan } from '../quantize/plan';
import { planFacts, toFix } from './diagnose';
import { type Measurement, OutputMeasurer, lossValue, meanSqnr } from './measure';
import { quantizeWith } from './quantize';
import { writeQuantizedModel } from './quantizeModel';
import type { Prepared, Progress, Quantized } from './types';
import type { UserMetric } from './userMetric';
import { type BudgetOptions, budgetFor, primaryVerdict } from './verdict';

export interface MixedPrecisionOptions extends BudgetOptions {
  /** Kept for callers that name the budget this way: the same as maxDrop. */
  maxDrop?: number;
  metric?: UserMetric;
  /** Candidates the plan search may measure (default 64). */
  maxMeasurements?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

function curvePoint(t: Tried): MixedPrecisionStep {
  const pm = t.m.primary;
  // lossValue: the loss, or -SQNR for SQNR-judged models (lower is better either way).
  return {
    kept: t.changes.filter((c) => c.kind === 'float').map((c) => c.node!),
    drop: lossValue(t.m),
    agreement: t.m.metrics.agreement,
    outputSqnrDb: t.m.metrics.outputSqnrDb,
    changes: t.changes,
    interval: pm.loss ?? pm.value,
    verdict: t.verdict.text,
  };
}

/** Each planned layer's node, activation inputs and output (what a change footprint counts). */
function layerTensors(q: Quantized) {
  return q.plan.layers.map((l) => ({ node: l.node.name, inputs: l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation'), output: l.output }));
}

export async function mixedPrecision(p: Prepared, config: QuantConfig, opts: MixedPrecisionOptions): Promise<MixedPrecisionResult> {
  if (opts.maxDrop !== undefined && !(opts.maxDrop >= 0)) throw new InputError(`--max-drop must be a non-negative number, got ${opts.maxDrop}`);
  const q = await quantizeWith(p, config);
  // The search changes one layer at a time on top of the plan so far: each candidate runs from
  // the codes entering that layer (prefixReuse.ts).
  const measurer = await OutputMeasurer.create(p, { metric: opts.metric, signal: opts.signal, cutLayers: q.plan.layers.map((l) => l.node.name) });
  const layers = q.plan.layers;
  const max = opts.maxMeasurements ?? 64;
  let done = 0;
  const tick = (message: string) => opts.onProgress?.({ stage: 'sensitivity', done: ++done, total: layers.length + 1 + max, message });
  try {
    const baseline = await measurer.measureConfig(config, q);
    tick('all layers quantized');
    const pm = baseline.primary;
    const { budget, why } = budgetFor(pm, opts);
    const base: Tried = {
      changes: [],
      config,
      m: baseline,
      verdict: primaryVerdict(pm, budget, baseline.table),
      gain: { estimate: 0, low: 0, high: 0, level: 0.95, method: 'none' },
      cost: 0,
    };
    // Each layer's damage alone (integer kernels), most damaging first; SQNR breaks ties the coarse metric leaves.
    const alone: { node: string; m: Measurement }[] = [];
    for (const l of layers) {
      alone.push({
        node: l.node.name,
        m: await measurer.measurePlan(
          q,
          subsetPlan(q.plan, (x) => x === l),
        ),
      });
      tick(l.node.name);
    }
    alone.sort((a, b) => lossValue(b.m) - lossValue(a.m) || meanSqnr(a.m) - meanSqnr(b.m));
    const ranking = alone.map((a) => ({ node: a.node, drop: lossValue(a.m), outputSqnrDb: a.m.metrics.outputSqnrDb }));
    const result = await searchFix({
      base: config,
      baseline,
      budget,
      maxMeasurements: max,
      layers: alone.flatMap((a) => {
        const f = planFacts(q, a.node);
        return f ? [{ node: a.node, options: optionsFor(f) }] : [];
      }),
      // Options clearly worse than the plan on their first samples stop there (search.ts, the look).
      measure: (c, look) => measurer.measureConfig(c, undefined, look),
      onMeasured: (_n, label) => tick(label),
    });
    const steps = [base, ...result.steps];
    if (describeChanges(result.final.changes) !== describeChanges(steps[steps.length - 1].changes)) steps.push(result.final);
    const fix = toFix(result.final, pm.description, layerTensors(q));
    return {
      schemaVersion: REPORT_SCHEMA_VERSION,
      kind: 'mixed-precision',
      model: { path: p.loaded.path, sha256: p.loaded.sha256 },
      config,
      // "lower is better" for every kind: an SQNR floor F becomes a budget of -F on -SQNR.
      maxDrop: pm.loss ? budget : -budget,
      dropBasis: pm.kind,
      steps: steps.map(curvePoint),
      exclude: fix.config.exclude,
      met: result.met !== false,
      ranking,
      metric: pm.description,
      budgetWhy: why,
      certified: result.met === 'certified',
      fix,
      notes: result.notes,
    };
  } finally {
    await measurer.release();
  }
}

/** Write the result's QDQ model (its plan applied) to `target`; quantlens.json is not touched. */
export async function writeMixedPrecision(p: Prepared, result: MixedPrecisionResult, target: OutputTarget): Promise<string> {
  const config = result.fix?.config ?? { ...result.config, exclude: result.exclude };
  return writeQuantizedModel(p, await quantizeWith(p, config), target).path;
}
