/**
 * Which single number judges a quantized model (the headline of the report, the CI gate, the
 * target of mixed precision), chosen from what the run knows, in this order:
 *
 * 1. the user's metric (--metric) when given: the user wrote it for what the model is for, so it
 *    outranks anything inferred from output shapes;
 * 2. labelled top-1 when labels exist and a classifier-like output takes them (the first such
 *    output in model order): the accuracy users actually deploy on;
 * 3. top-1 agreement with float on the first classifier-like output: without labels, float is the
 *    best available truth, and a changed prediction is what users notice;
 * 4. per-sample output SQNR on the WORST output (lowest mean): no task-level meaning is known, and
 *    a deployment fails on its weakest output. SQNR has no float baseline (float vs itself is
 *    exact), so this choice carries no loss and no budget verdict.
 *
 * Outputs the model feeds back to itself as recurrent state (a VAD's `stateN`) are left out of
 * 2-4 while another output exists: they are the model's memory, not its answer, and their error
 * reaches the answer through the next step's outputs, which are judged.
 *
 * Losses are "higher is worse": points for top-1 and agreement, the metric's own unit for a user
 * metric. Every warning of every output travels with the choice.
 */
import type { PrimaryMetric } from '../../protocol/metrics';
export type { PrimaryKind, PrimaryMetric } from '../../protocol/metrics';
import type { OutputSummary } from './outputMetrics';
import type { Interval } from './statistics';
import type { UserMetricSummary } from './userMetric';

const q = (s: string): string => `'${s}'`;

function toPoints(i: Interval, flip: boolean): Interval {
  // agreement a in [low, high] -> loss 100 (1 - a) in [100 (1 - high), 100 (1 - low)]
  return flip
    ? { ...i, estimate: 100 * (1 - i.estimate), low: 100 * (1 - i.high), high: 100 * (1 - i.low) }
    : { ...i, estimate: 100 * i.estimate, low: 100 * i.low, high: 100 * i.high };
}

/** Choose the primary metric (see the file header for the order and why). */
export function choosePrimaryMetric(
  all: readonly OutputSummary[],
  user: UserMetricSummary | null = null,
  /** Outputs fed back as recurrent state inputs (StateFeed.from). */
  fedBack: ReadonlySet<string> = new Set(),
): PrimaryMetric {
  const warnings = all.flatMap((o) => o.warnings);
  const answers = all.filter((o) => !fedBack.has(o.name));
  const outputs = answers.length ? answers : all;
  const states = all.filter((o) => fedBack.has(o.name) && answers.length);
  const leftOut = states.length
    ? `; ${states.map((o) => q(o.name)).join(', ')} ${states.length > 1 ? 'are' : 'is'} recurrent state fed back to the model, not its answer, and not judged`
    : '';
  if (user) {
    if (user.loss.nonFinite) warnings.push(`metric ${user.name}: ${user.loss.nonFinite} sample(s) gave no finite difference`);
    const { n, sd, nonFinite: _n, ...value } = user.quantized;
    const { n: ln, sd: lsd, nonFinite: _l, ...loss } = user.loss;
    return {
      kind: 'user',
      output: null,
      description: `${user.name} (${user.higherIsBetter ? 'higher' : 'lower'} is better)`,
      value,
      floatValue: user.float.estimate,
      loss,
      lossUnit: 'metric units',
      lossSd: lsd,
      n: Math.min(n, ln),
      rationale: `the user's metric ${user.name} was given: it measures what the model is for, so it outranks top-1 and SQNR`,
      warnings,
    };
  }
  const labelled = outputs.find((o) => o.classifier?.labelled);
  if (labelled?.classifier?.labelled) {
    const l = labelled.classifier.labelled;
    return {
      kind: 'top1',
      output: labelled.name,
      description: `top-1 accuracy on output ${q(labelled.name)}`,
      value: l.candidate,
      floatValue: l.reference.estimate,
      loss: l.dropPoints,
      lossUnit: 'points',
      lossSd: l.sdPoints,
      n: l.n,
      rationale: `labels exist and output ${q(labelled.name)} is classifier-like (${labelled.classifier.rule}): labelled top-1 is the accuracy the model is deployed on${leftOut}`,
      warnings,
    };
  }
  const classifier = outputs.find((o) => o.classifier);
  if (classifier?.classifier) {
    const c = classifier.classifier;
    const a = c.top1Agreement;
    const n = classifier.samples;
    // A 0/1 outcome per sample has sd sqrt(a (1 - a)); per-sample fractions (several rows) do not.
    const sd = c.rowsPerSample === 1 && n > 1 ? 100 * Math.sqrt((a.estimate * (1 - a.estimate) * n) / (n - 1)) : null;
    return {
      kind: 'agreement',
      output: classifier.name,
      description: `top-1 agreement with float on output ${q(classifier.name)}`,
      value: a,
      floatValue: 1,
      loss: toPoints(a, true),
      lossUnit: 'points',
      lossSd: sd,
      n,
      rationale: `no labels fit a classifier output, and output ${q(classifier.name)} is classifier-like (${c.rule}): agreement with the float model's top-1 is the best available truth${leftOut}`,
      warnings,
    };
  }
  // An output with no finite per-sample SQNR at all (NaN mean) is the worst there can be.
  const score = (o: OutputSummary): number => (Number.isNaN(o.perSampleSqnrDb.estimate) ? -Infinity : o.perSampleSqnrDb.estimate);
  let worst: OutputSummary | null = null;
  for (const o of outputs) if (!worst || score(o) < score(worst)) worst = o;
  if (!worst) throw new RangeError('choosePrimaryMetric needs at least one output');
  const { n, sd: _s, nonFinite: _f, ...value } = worst.perSampleSqnrDb;
  return {
    kind: 'sqnr',
    output: worst.name,
    description: `per-sample SQNR of output ${q(worst.name)} (dB, higher is better)`,
    value,
    floatValue: null,
    loss: null,
    lossUnit: 'dB',
    lossSd: null,
    n,
    rationale: `no output is classifier-like and no metric was given: the output with the lowest mean per-sample SQNR (${q(worst.name)}) stands for the model, since a deployment fails on its weakest output${leftOut}`,
    warnings,
  };
}
