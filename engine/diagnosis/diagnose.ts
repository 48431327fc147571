/**
 * The diagnosis of a report, before any fix is measured: is the drop significant at all, which
 * layers do damage themselves (culprits, each with its cause), which only inherit it (victims), and
 * notes on what the samples can and cannot say. Pure: facts in, Diagnosis out (fix and candidates
 * are filled by the fix search, engine/analysis/diagnose.ts).
 */
import type { PairedTable } from '../../protocol/metrics';
import type { Culprit, Diagnosis } from '../../protocol/report';
import { type Verdict, primaryVerdict } from '../analysis/verdict';
import { type RankedLayer, culpritReason, findVictims, rankByOwnDamage } from './culprits';
import { type DiagnosisFacts, FactIndex } from './facts';
import { type Finding, findCauses } from './rules';

export interface DiagnoseOptions {
  /** In the primary metric's loss unit (a floor in dB for SQNR-judged models). */
  budget: number;
  /** u8 x s8 pairs can saturate on the target CPU (platform.ts u8s8Hazard). */
  u8s8Hazard: boolean;
}

export interface DiagnosisDraft {
  diagnosis: Diagnosis;
  /** The drop is significant: its interval excludes 0 and is not within the budget. */
  significant: boolean;
  verdict: Verdict | null;
  findings: Map<string, Finding[]>;
  ranked: RankedLayer[];
}

/** The labelled paired table behind a top-1 primary metric, if the report has it. */
function tableOf(facts: DiagnosisFacts): PairedTable | null {
  const pm = facts.report.primaryMetric;
  if (pm?.kind !== 'top1') return null;
  return facts.report.outputs?.find((o) => o.name === pm.output)?.classifier?.labelled?.table ?? null;
}

/**
 * Significant = worth blaming layers for: for a loss, its interval excludes 0 and is not wholly
 * within the budget; for SQNR, the interval is not wholly above the floor.
 */
export function dropIsSignificant(v: Verdict, loss: { low: number } | null): boolean {
  if (v.kind === 'within-budget' || v.kind === 'within-noise') return false;
  return loss ? loss.low > 0 : true;
}

export function diagnoseFacts(facts: DiagnosisFacts, opts: DiagnoseOptions): DiagnosisDraft {
  const idx = new FactIndex(facts);
  const pm = facts.report.primaryMetric ?? null;
  const findings = new Map(facts.report.layers.map((layer) => [layer.node, findCauses({ layer, idx, u8s8Hazard: opts.u8s8Hazard })]));
  const ranked = rankByOwnDamage(facts.report.layers, facts.report.accuracy.integer.outputSqnrDb);
  const notes: string[] = [];
  const base: Diagnosis = {
    drop: { value: NaN, interval: null, unit: '', metric: 'none', verdict: 'no primary metric in this report' },
    budget: opts.budget,
    culprits: [],
    victims: [],
    fix: null,
    candidates: [],
    notes,
    ranking: ranked.map((r) => ({ node: r.layer.node, rank: r.rank, tier: r.tier, culprit: false })),
  };
  divergenceNotes(idx, findings, notes);
  if (!pm) return { diagnosis: base, significant: false, verdict: null, findings, ranked };
  const verdict = primaryVerdict(pm, opts.budget, tableOf(facts));
  const interval = pm.loss ?? pm.value;
  base.drop = {
    value: interval.estimate,
    interval,
    unit: pm.lossUnit,
    metric: pm.loss ? pm.description : `${pm.description} (no loss: judged against a floor)`,
    verdict: verdict.text,
  };
  const significant = dropIsSignificant(verdict, pm.loss);
  if (!significant) {
    const why =
      verdict.kind === 'within-budget' || verdict.kind === 'within-noise'
        ? pm.loss
          ? 'the loss is within the budget with 95% confidence'
          : 'the SQNR is above the floor with 95% confidence'
        : `the loss's interval contains 0: it cannot be told from no loss on ${pm.n} samples`;
    notes.unshift(`no significant drop: ${why}, so no layer is blamed`);
    return { diagnosis: base, significant, verdict, findings, ranked };
  }
  const culprits: Culprit[] = [];
  for (const r of ranked) {
    const why = culpritReason(r);
    if (!why) continue;
    const [first, ...others] = (findings.get(r.layer.node) ?? []).filter((f) => f.cause !== 'inherited');
    const cause = first ?? unexplained(r, why);
    culprits.push({
      ...cause,
      node: r.layer.node,
      op: r.layer.op,
      rank: culprits.length + 1,
      damage: {
        isolatedSqnrDb: r.layer.isolated.integer.sqnrDb,
        onlyThisSqnrDb: r.layer.sensitivity?.onlyThis.outputSqnrDb ?? null,
        onlyThisLoss: r.layer.sensitivity?.onlyThisPrimary?.loss ?? null,
      },
      otherCauses: others.map(({ tensor: _t, ...c }) => c),
    });
  }
  const names = culprits.map((c) => c.node);
  for (const row of base.ranking!) row.culprit = names.includes(row.node);
  base.culprits = culprits;
  base.victims = findVictims(idx, names, findings).map(({ cause, ...v }) =>
    cause ? { ...v, cause: { cause: cause.cause, summary: cause.summary, evidence: cause.evidence } } : v,
  );
  if (!culprits.length)
    notes.push(
      'the drop is significant but no layer does significant damage by itself: it builds up across layers (the sensitivity samples may be too few to single one out)',
    );
  if (!facts.report.layers.some((l) => l.sensitivity)) notes.push('sensitivity was not measured: culprits are chosen by isolated SQNR alone');
  return { diagnosis: base, significant, verdict, findings, ranked };
}

function unexplained(r: RankedLayer, why: string): Finding {
  return {
    cause: 'unexplained',
    tensor: r.layer.output,
    summary: `${why}, but no documented rule explains why (isolated SQNR ${r.layer.isolated.integer.sqnrDb.toFixed(1)} dB)`,
    evidence: { isolatedSqnrDb: r.layer.isolated.integer.sqnrDb, reason: why },
  };
}

/** One note per place where simulation and integer kernels start to part ways (inherited downstream). */
function divergenceNotes(idx: FactIndex, findings: Map<string, Finding[]>, notes: string[]): void {
  const byOrigin = new Map<string, Finding[]>();
  for (const fs of findings.values()) {
    for (const f of fs) if (f.cause === 'inherited') byOrigin.set(String(f.evidence.origin), [...(byOrigin.get(String(f.evidence.origin)) ?? []), f]);
  }
  for (const [origin, fs] of byOrigin) {
    const ops = String(fs[0].evidence.sourceOps);
    const o = idx.layers.get(origin);
    const start = ops
      ? ` (after ${ops}, which the integer session fuses into an integer kernel and the simulation runs in float)`
      : ' (building up from rare 1-LSB differences upstream)';
    notes.push(
      `simulation and onnxruntime's integer kernels part ways from ${origin} on${start}${o ? `: ${(o.simVsIntMismatch * 100).toFixed(2)}% of its codes differ` : ''}; ` +
        `${fs.length} layer(s) downstream inherit the difference while their own kernels match`,
    );
  }
}
