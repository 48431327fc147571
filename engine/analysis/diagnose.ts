/**
 * The diagnosis stage: the report's culprits and causes (engine/diagnosis, pure), then a fix
 * MEASURED before it is proposed: each culprit's candidate changes run as whole quantized models
 * on onnxruntime's integer kernels against the float outputs (measure.ts), and the smallest plan
 * that meets the budget is kept (diagnosis/search.ts). Fills `report.diagnosis`.
 */
import type { CauseCode, Diagnosis, Fix, Range, Report } from '../../protocol/report';
import { type LayerPlanFacts, changeFootprint, describeChanges, optionsFor } from '../diagnosis/candidates';
import { diagnoseFacts } from '../diagnosis/diagnose';
import type { DiagnosisFacts } from '../diagnosis/facts';
import { overClipped, outlierRanged } from '../diagnosis/rules';
import { type Tried, searchFix } from '../diagnosis/search';
import { layerLinks, sameSignal } from '../diagnosis/topology';
import { GraphIndex } from '../onnx/graph';
import { readFloatTensor } from '../onnx/tensor';
import { channelRanges, gridType, weightScheme } from '../quantize/qdqRewrite';
import { OutputMeasurer, lossValue } from './measure';
import { u8s8Hazard } from './platform';
import type { EvaluateOptions, Prepared, Quantized } from './types';
import { type BudgetOptions, budgetFor } from './verdict';

export interface DiagnoseOptions extends BudgetOptions {
  /** Candidates the fix search may measure (default 48). */
  maxMeasurements?: number;
}

/** The facts a report lacks: layer links from the graph, per-channel ranges of per-tensor weights. */
export function diagnosisFacts(p: Prepared, q: Quantized, report: Report): DiagnosisFacts {
  const g = q.prepared.graph!;
  const idx = new GraphIndex(g);
  const weightChannels: Record<string, Range[]> = {};
  for (const l of q.plan.layers) {
    if (weightScheme(q.config, l.node.name).perChannel) continue;
    const i = l.roles.findIndex((r) => r.kind === 'weight' && r.axis !== null);
    const init = i >= 0 ? idx.initializers.get(l.node.input[i]) : undefined;
    if (!init) continue;
    const w = readFloatTensor(init, p.loaded.dir);
    const role = l.roles[i] as { axis: number };
    if (w.dims.length < 2) continue;
    weightChannels[l.node.name] = channelRanges(w, role.axis < 0 ? w.dims.length + role.axis : role.axis).ranges;
  }
  return { report, links: layerLinks(g, report.layers), weightChannels };
}

/**
 * What the fix search may change on one layer: in a diagnosis (`causes` and the report given) the
 * remedies its causes call for, on the tensors whose grid is the problem; otherwise (mixed
 * precision) every remedy on every activation tensor of the layer.
 */
export function planFacts(q: Quantized, node: string, diag?: { report: Report; causes: CauseCode[] }): LayerPlanFacts | null {
  const causes = diag?.causes;
  const l = q.plan.layers.find((x) => x.node.name === node);
  if (!l) return null;
  const g = q.prepared.graph!;
  const overrides = new Map((q.config.tensorOverrides ?? []).map((o) => [o.tensor, o]));
  const reports = new Map((diag?.report.tensors ?? []).map((t) => [t.name, t]));
  const acts = [...l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation'), l.output].filter((t) => q.thresholds.has(t) && !overrides.get(t)?.range);
  const bad = (t: string) =>
    !causes || (!!reports.get(t) && (overClipped(reports.get(t)!) || outlierRanged(reports.get(t)!) || causes.includes('wasted-sign')));
  const usable = (t: string) => q.thresholds.has(t) && !overrides.get(t)?.range;
  // A calibration fix covers the tensors carrying the same signal (a Conv output and the ReLU output after it).
  const flagged = [...new Set(acts.filter(bad).flatMap((t) => [t, ...sameSignal(g, t, (x) => usable(x) && bad(x))]))];
  const out = q.actParams.get(l.output);
  return {
    node,
    tensors: flagged.map((t) => ({ name: t, method: overrides.get(t)?.calibration ?? q.config.calibration, thresholds: q.thresholds.get(t)!.thresholds })),
    hasWeight: l.roles.some((r) => r.kind === 'weight'),
    weights: weightScheme(q.config, node),
    activationBits: out ? gridType(out).bits : 0,
    causes,
  };
}

/** A measured candidate as the report's Fix. */
export function toFix(t: Tried, metric: string, layers: readonly { node: string; inputs: readonly string[]; output: string }[]): Fix {
  const pm = t.m.primary;
  const interval = pm.loss ?? pm.value;
  const f = changeFootprint(t.changes, layers);
  return {
    description: describeChanges(t.changes),
    changes: t.changes,
    config: t.config,
    measured: {
      drop: interval.estimate,
      interval,
      floatLayers: f.float,
      metric,
      samples: t.m.samples,
      verdict: t.verdict.text,
      verdictKind: t.verdict.kind,
      layersTouched: f.layers,
      gain: t.gain,
    },
  };
}

/** Diagnose `report` (made from `q`), measuring fixes for its culprits. */
export async function diagnose(p: Prepared, q: Quantized, report: Report, opts: EvaluateOptions, d: DiagnoseOptions = {}): Promise<Diagnosis> {
  const pm = report.primaryMetric ?? null;
  const { budget, why } = pm ? budgetFor(pm, d) : { budget: 1, why: '' };
  const facts = diagnosisFacts(p, q, report);
  const draft = diagnoseFacts(facts, { budget, u8s8Hazard: report.platform ? u8s8Hazard(report.platform) : false });
  const diagnosis = draft.diagnosis;
  if (pm) diagnosis.notes.push(`budget: ${why}`);
  if (!draft.significant || !diagnosis.culprits.length || !pm) return diagnosis;
  const layers = diagnosis.culprits.flatMap((c) => {
    const f = planFacts(q, c.node, { report, causes: [c.cause, ...c.otherCauses.map((o) => o.cause)] });
    return f ? [{ node: c.node, options: optionsFor(f) }] : [];
  });
  // Candidates change the culprits only: each runs from the codes entering them (prefixReuse.ts).
  const measurer = await OutputMeasurer.create(p, { metric: opts.metric, signal: opts.signal, cutLayers: layers.map((l) => l.node) });
  try {
    const baseline = await measurer.measureConfig(q.config, q);
    const result = await searchFix({
      base: q.config,
      baseline,
      layers,
      budget,
      maxMeasurements: d.maxMeasurements,
      measure: (config, look) => measurer.measureConfig(config, undefined, look),
      onMeasured: (done, message) => opts.onProgress?.({ stage: 'diagnose', done, total: d.maxMeasurements ?? 48, message }),
    });
    const metric = pm.description;
    const seen = new Set<string>();
    // Candidates measured on every sample first: one stopped at the look is worse than the plan it
    // extended on the same first samples, whatever its estimate over those few says.
    diagnosis.candidates = [...result.tried]
      .sort((a, b) => Number(!!a.stopped) - Number(!!b.stopped) || lossValue(a.m) - lossValue(b.m) || a.cost - b.cost)
      .filter((t) => !seen.has(describeChanges(t.changes)) && seen.add(describeChanges(t.changes)))
      .slice(0, 24)
      .map((t) => toFix(t, metric, report.layers));
    diagnosis.fix = result.met && result.final.changes.length ? toFix(result.final, metric, report.layers) : null;
    diagnosis.notes.push(...result.notes);
    const r = measurer.reuse;
    if (r.candidates)
      diagnosis.notes.push(
        `${r.candidates} of ${result.tried.length} candidates ran only from where they differ from a configuration measured before, on the codes it kept (${Math.round((100 * r.nodesRun) / r.nodesWhole)}% of their nodes)`,
      );
    if (!result.met)
      diagnosis.notes.push(
        `no measured change met the budget; the best candidate: ${diagnosis.candidates[0]?.description ?? 'none'} (${diagnosis.candidates[0]?.measured.verdict ?? ''})`,
      );
  } finally {
    await measurer.release();
  }
  return diagnosis;
}
