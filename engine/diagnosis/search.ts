/**
 * The smallest measured change that meets a budget. Layers are visited in the order given (the
 * diagnosis's culprits, most damaging first; for mixed precision every layer by its own damage),
 * and every option of a layer is MEASURED on top of the plan so far. Of the options that improve
 * on the plan, the cheapest that meets the goal is taken, else the cheapest the samples cannot
 * tell from the best one (calibration before wider grids, float last). While the configuration
 * is certainly over budget an improvement of the estimate is enough; once it is not, a step must
 * win back more than noise (paired, same samples). Layers left unchanged are tried again in
 * another pass (one layer's fix can need another's first). A backward pass then drops every step
 * whose removal the samples cannot tell apart. The goal is a verdict "within budget" when the
 * samples can certify one at all; when even a perfect candidate could not be certified on them
 * (300 samples put a 0-point top-1 drop at +-1.38 points), the goal is the estimate, and the
 * verdict says how many samples would decide.
 */
import type { FixChange, QuantConfig } from '../../protocol/report';
import { type Look, type Measurement, compareMeasurements, lossValue, meanSqnr, withinNoise } from '../analysis/paired';
import { type Interval, pairedAccuracyFromTable, wilsonInterval } from '../analysis/statistics';
import { atLeast, atMost } from '../../protocol/budget';
import { type Verdict, certified, primaryVerdict } from '../analysis/verdict';
import { ModelLoadError } from '../runtime/ortErrors';
import { type FixOption, applyChanges, describeChanges, mergeChanges } from './candidates';

export interface SearchInput {
  base: QuantConfig;
  /** The base configuration measured like every candidate. */
  baseline: Measurement;
  layers: { node: string; options: FixOption[] }[];
  budget: number;
  /**
   * Measure a configuration; with `look`, the measurement may end at the look (measure.ts Look).
   * A measurer that ignores it measures every sample, and the search works the same.
   */
  measure: (config: QuantConfig, look?: Look) => Promise<Measurement>;
  /** Stop measuring after this many candidates (default 48); the notes say so. */
  maxMeasurements?: number;
  onMeasured?: (done: number, label: string) => void;
}

export interface Tried {
  changes: FixChange[];
  config: QuantConfig;
  m: Measurement;
  verdict: Verdict;
  /** Paired against the baseline: loss won back (positive = better than the unfixed configuration). */
  gain: Interval;
  cost: number;
  /** Stopped at the look: clearly worse than the plan so far on its first samples (m.samples of them). */
  stopped?: boolean;
}

export interface SearchResult {
  /** The plan reached (the baseline when no step was taken). */
  final: Tried;
  /** The final plan meets the budget: 'certified' (the interval says so), 'estimate' (only the point estimate), or false. */
  met: 'certified' | 'estimate' | false;
  /** Could ANY candidate be certified within budget on these samples? */
  certifiable: boolean;
  /** The steps taken, as measured when taken (the mixed-precision curve); `final` is after the backward pass. */
  steps: Tried[];
  /** Every candidate measured. */
  tried: Tried[];
  notes: string[];
}

/** a before b: lower loss, then (a continuous tie-break for coarse metrics like top-1) higher output SQNR. */
function better(a: Measurement, b: Measurement): number {
  return lossValue(a) - lossValue(b) || meanSqnr(b) - meanSqnr(a);
}

/** The point estimate is on the right side of the budget and the interval does not say it is over. */
export function meetsEstimate(m: Measurement, v: Verdict, budget: number): boolean {
  if (v.kind === 'over-budget') return false;
  return m.primary.loss ? atMost(m.primary.loss.estimate, budget) : atLeast(m.primary.value.estimate, budget);
}

/** Could a candidate identical to float be certified within budget on these samples? */
export function certifiable(base: Measurement, budget: number): boolean {
  const pm = base.primary;
  if (pm.kind === 'top1' && base.table) {
    const t = base.table;
    const right = t.both + t.referenceOnly;
    const n = right + t.candidateOnly + t.neither;
    return atMost(pairedAccuracyFromTable({ both: right, referenceOnly: 0, candidateOnly: 0, neither: n - right }).dropPoints.high, budget);
  }
  if (pm.kind === 'agreement') return atMost(100 * (1 - wilsonInterval(pm.n, pm.n).low), budget);
  return true; // continuous metrics: a perfect candidate has no spread
}

/**
 * A layer's options may stop after LOOK_SAMPLES samples when the paired interval (at LOOK_LEVEL) says
 * they are worse than the plan so far: such an option cannot be taken (an option is taken only
 * when it improves on the plan), so stopping it never takes a worse step; it could only miss an
 * option whose first samples mislead that much (2.5% at most), and it saves the rest of its run.
 * Replayed on the recogniser's search: 15 of 46 options were stopped at 16 of 48 samples, none of
 * them better than the plan on all 48 (docs/performance.md, seventeenth round).
 */
const LOOK_SAMPLES = 16;
const LOOK_LEVEL = 0.975;

export async function searchFix(input: SearchInput): Promise<SearchResult> {
  const { base, baseline, budget } = input;
  const max = input.maxMeasurements ?? 48;
  const notes: string[] = [];
  const tried: Tried[] = [];
  const verdictOf = (m: Measurement) => primaryVerdict(m.primary, budget, m.table);
  const make = (changes: FixChange[], config: QuantConfig, m: Measurement, cost: number): Tried => ({
    changes,
    config,
    m,
    verdict: verdictOf(m),
    gain: compareMeasurements(m, baseline),
    cost,
  });
  let measured = 0;
  /** Candidates onnxruntime refused to load (a float Conv between Q/DQ on an opset-10 model): not deployable, passed over. */
  const unloadable: string[] = [];
  const measure = async (changes: FixChange[], cost: number, against?: Measurement): Promise<Tried | null> => {
    const config = applyChanges(base, changes);
    const look =
      against && baseline.samples >= 2 * LOOK_SAMPLES
        ? { samples: LOOK_SAMPLES, stop: (m: Measurement) => compareMeasurements(against, m, LOOK_LEVEL).low > 0 }
        : undefined;
    let m: Measurement;
    try {
      m = await input.measure(config, look);
    } catch (e) {
      if (!(e instanceof ModelLoadError)) throw e;
      unloadable.push(`${describeChanges(changes)} (${e.detail})`);
      input.onMeasured?.(++measured, describeChanges(changes));
      return null;
    }
    const t = make(changes, config, m, cost);
    if (m.samples < baseline.samples) t.stopped = true;
    tried.push(t);
    input.onMeasured?.(++measured, describeChanges(changes));
    return t;
  };
  const canCertify = certifiable(baseline, budget);
  const done = (t: Tried) => (canCertify ? certified(t.verdict) : meetsEstimate(t.m, t.verdict, budget));
  let cur = make([], base, baseline, 0);
  const accepted: { option: FixOption; at: Tried }[] = [];
  /** Why a layer got no step (its last attempt). */
  const layerNotes = new Map<string, string>();
  /** Measure every option of `layer` on top of the plan so far; the step to take, or null. */
  const tryLayer = async (layer: SearchInput['layers'][number]): Promise<{ option: FixOption; at: Tried } | null> => {
    const all: { option: FixOption; t: Tried }[] = [];
    for (const option of layer.options) {
      const t = await measure(mergeChanges(cur.changes, option.changes), cur.cost + option.cost, cur.m);
      if (t) all.push({ option, t });
    }
    if (!all.length) return null;
    // Options stopped at the look are worse than the plan: never taken, never the best.
    const complete = all.filter((r) => !r.t.stopped);
    const results = complete.length ? complete : all;
    const best = results.reduce((a, b) => (better(b.t.m, a.t.m) < 0 ? b : a));
    // The cheapest option that meets the goal; else, of the options that improve on the plan so
    // far and that the samples cannot tell from the best one, the cheapest (then the better).
    const byCost = (a: (typeof results)[number], b: (typeof results)[number]) => a.option.cost - b.option.cost || better(a.t.m, b.t.m);
    const improving = complete.filter((r) => better(r.t.m, cur.m) < 0);
    const choice =
      improving.filter((r) => done(r.t)).sort(byCost)[0] ?? improving.filter((r) => !(compareMeasurements(best.t.m, r.t.m).low > 0)).sort(byCost)[0];
    if (!choice) {
      layerNotes.set(
        layer.node,
        `${layer.node}: none of its own changes improves on the plan so far (best: ${describeChanges(best.option.changes)}); no step taken for it (a step for another layer may still change a tensor it shares)`,
      );
      return null;
    }
    const gain = compareMeasurements(choice.t.m, cur.m); // positive: the plan so far is worse than with the option
    if (cur.verdict.kind !== 'over-budget' && withinNoise(gain)) {
      layerNotes.set(
        layer.node,
        `${layer.node}: the best change (${describeChanges(choice.option.changes)}) wins back ${gain.estimate.toFixed(2)} (95% interval ${gain.low.toFixed(2)} to ${gain.high.toFixed(2)}): within noise, not taken`,
      );
      return null;
    }
    return { option: choice.option, at: choice.t };
  };
  // Passes over the layers not changed yet, until the goal is met or a pass takes no step: a
  // layer whose every option made things worse can become fixable once another one is fixed.
  let pending = [...input.layers];
  let stop = false;
  for (let pass = 1; pending.length && !stop && !done(cur); pass++) {
    const skipped: typeof pending = [];
    for (const layer of pending) {
      if (done(cur)) break;
      if (measured + layer.options.length > max) {
        notes.push(
          `stopped after ${measured} measured candidates (the limit is ${max}); ${layer.node} and later layers were not tried${pass > 1 ? ` again (pass ${pass})` : ''}`,
        );
        stop = true;
        break;
      }
      const step = await tryLayer(layer);
      if (step) {
        accepted.push(step);
        layerNotes.delete(layer.node);
        cur = step.at;
      } else skipped.push(layer);
    }
    if (skipped.length === pending.length) break;
    pending = skipped;
  }
  notes.push(...layerNotes.values());
  // Backward pass: drop the costliest steps first, then the latest, when the samples cannot tell the difference.
  const order = [...accepted].sort((a, b) => b.option.cost - a.option.cost || accepted.indexOf(b) - accepted.indexOf(a));
  let kept = [...accepted];
  for (const step of order) {
    if (kept.length === 0 || measured >= max) break;
    const rest = kept.filter((k) => k !== step);
    const changes = rest.reduce<FixChange[]>((a, k) => mergeChanges(a, k.option.changes), []);
    const t = await measure(
      changes,
      rest.reduce((a, k) => a + k.option.cost, 0),
    );
    if (!t) continue; // without this step onnxruntime cannot load the model: the step stays
    const notWorse = !(compareMeasurements(cur.m, t.m).low > 0);
    const keepsGoal =
      (!certified(cur.verdict) || certified(t.verdict)) && (!meetsEstimate(cur.m, cur.verdict, budget) || meetsEstimate(t.m, t.verdict, budget));
    if (notWorse && keepsGoal) {
      notes.push(`${describeChanges(step.option.changes)}: removing it changes nothing the samples can tell; dropped`);
      kept = rest;
      cur = t;
    }
  }
  if (unloadable.length)
    notes.push(
      `${unloadable.length} candidate${unloadable.length > 1 ? 's' : ''} not measured: onnxruntime cannot load ${unloadable.length > 1 ? 'them' : 'it'}, so no deployment could run ${unloadable.length > 1 ? 'them' : 'it'} either: ${unloadable.slice(0, 3).join('; ')}${unloadable.length > 3 ? '; ...' : ''}`,
    );
  const stopped = tried.filter((t) => t.stopped);
  if (stopped.length)
    notes.push(
      `${stopped.length} of ${tried.length} candidates stopped after the first ${[...new Set(stopped.map((t) => t.m.samples))].join('/')} of ${baseline.samples} samples: worse than the plan so far (paired ${100 * LOOK_LEVEL}% interval), they cannot be taken`,
    );
  const steps = accepted.map((a) => a.at);
  const met = certified(cur.verdict) ? 'certified' : meetsEstimate(cur.m, cur.verdict, budget) ? 'estimate' : false;
  if (met === 'estimate' && !canCertify)
    notes.push(`${baseline.samples} samples cannot certify any result within the budget (even one identical to float); the fix meets it on the estimate`);
  return { final: cur, met, certifiable: canCertify, steps, tried, notes };
}
