/**
 * Terminal output of the sweep and of mixed precision: every number with its interval, the Pareto
 * front with the points the samples cannot tell apart, and the plan search step by step.
 */
import type { FixChange, Interval, MixedPrecisionResult, SweepReport } from '../../protocol/report';
import { entryAgreementApplies, rankedFigure } from '../../protocol/format';
import { describeChanges } from '../diagnosis/candidates';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : x > 0 ? 'inf' : '-inf');
const ci = (i: Interval | null | undefined) => (i ? `[${f2(i.low)}, ${f2(i.high)}]` : '');

const BASIS: Record<string, string> = {
  top1: 'top-1 drop in points',
  agreement: 'agreement lost in points',
  user: "loss on the user's metric",
  sqnr: 'minus the mean output SQNR in dB',
};

export function formatSweep(report: SweepReport): string {
  const basis = report.configs.find((e) => !e.error)?.dropBasis ?? 'top1';
  const sqnr = basis === 'sqnr';
  const ranked = sqnr ? 'the mean per-sample output SQNR in dB (higher is better)' : `drop = ${BASIS[basis] ?? basis}`;
  const lines = [
    `${report.configs.length} configurations on ${report.samples} samples (float top-1 ${report.floatTop1 == null ? 'n/a' : `${(100 * report.floatTop1).toFixed(2)}%`}); ${ranked}, integer kernels, with its 95% interval`,
    `pareto: * on the front of ${sqnr ? 'SQNR' : 'drop'} vs size; ~N: cannot be told apart from front point #N on these samples (paired)`,
    '',
    `    #  ${sqnr ? '   SQNR' : '   drop'}  95% interval        agreement  SQNR dB      bytes  pareto  configuration`,
  ];
  for (const e of [...report.configs].sort((a, b) => a.drop - b.drop)) {
    if (e.error) {
      lines.push(`  ${String(e.id + 1).padStart(3)}    error  ${e.label}: ${e.error}`);
      continue;
    }
    const noise = (e.withinNoiseOf ?? []).map((i) => `~${i + 1}`).join(',');
    const mark = `${e.pareto ? '*' : ' '}${noise ? ` ${noise}` : ''}`;
    const fig = rankedFigure(e);
    const agreement = entryAgreementApplies(e) ? `${(e.agreement * 100).toFixed(2)}%` : 'n/a';
    lines.push(
      `  ${String(e.id + 1).padStart(3)}  ${f2(fig.estimate).padStart(7)}  ${ci(fig.interval).padEnd(18)}  ${agreement.padStart(9)}  ${e.outputSqnrDb.toFixed(1).padStart(7)}  ${String(e.sizeBytes).padStart(9)}  ${mark.padEnd(6)}  ${e.label}`,
    );
  }
  lines.push(
    '',
    `timings: calibration pass ${report.timings.prepareMs.toFixed(0)} ms (once), first configuration ${report.timings.firstConfigMs.toFixed(0)} ms, each further one ${report.timings.meanExtraConfigMs.toFixed(0)} ms`,
  );
  return lines.join('\n') + '\n';
}

const key = (c: FixChange) => `${c.kind}|${c.node}|${c.tensor}`;

export function formatMixedPrecision(r: MixedPrecisionResult): string {
  const sqnr = r.dropBasis === 'sqnr';
  // SQNR-judged results carry -SQNR as "drop" (lower is better for every kind): print SQNR itself.
  const show = (x: number) => (sqnr ? `SQNR ${f2(-x)} dB` : `drop ${f2(x)}`);
  const showCi = (i: Interval | null | undefined) => ci(i);
  const budget = r.budgetWhy ?? (sqnr ? `SQNR floor ${f2(-r.maxDrop)} dB` : `budget ${f2(r.maxDrop)}`);
  const lines = [`plan search on ${r.metric ?? r.dropBasis} (${budget}), integer kernels, layers by the damage each does alone:`];
  let prev: FixChange[] = [];
  r.steps.forEach((s, i) => {
    const changes = s.changes ?? [];
    const added = changes.filter((c) => !prev.some((p) => key(p) === key(c) && p.value === c.value));
    const removed = prev.filter((p) => !changes.some((c) => key(p) === key(c)));
    const what =
      i === 0
        ? 'as configured'
        : [added.length ? `+ ${describeChanges(added)}` : '', removed.length ? `- ${describeChanges(removed)}` : ''].filter(Boolean).join('  ');
    lines.push(`  ${String(i).padStart(3)}  ${show(s.drop).padEnd(16)} ${showCi(s.interval).padEnd(18)} float ${String(s.kept.length).padStart(2)}  ${what}`);
    prev = changes;
  });
  const last = r.steps[r.steps.length - 1];
  if (r.fix && r.fix.changes.length) lines.push(`plan: ${r.fix.description}`);
  if (last?.verdict) lines.push(last.verdict);
  const uncertain = last?.verdict?.startsWith('cannot tell');
  lines.push(
    !r.met
      ? uncertain
        ? 'NOT met on the estimate, and the samples cannot tell: no change wins back more than noise (see the notes)'
        : `NOT met (${r.exclude.length} layer(s) in float in the best plan)`
      : r.certified
        ? `met with 95% confidence; ${r.exclude.length} layer(s) in float${r.exclude.length ? `: ${r.exclude.join(', ')}` : ''}`
        : `met on the estimate, not certified by the interval; ${r.exclude.length} layer(s) in float${r.exclude.length ? `: ${r.exclude.join(', ')}` : ''}`,
  );
  for (const n of r.notes ?? []) lines.push(`note: ${n}`);
  for (const f of [r.written?.model, r.written?.settings]) if (f) lines.push(`wrote ${f}`);
  return lines.join('\n') + '\n';
}
