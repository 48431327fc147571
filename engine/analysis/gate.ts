/**
 * The CI gate: one configuration measured on the primary metric (model outputs only, integer
 * kernels: measure.ts) and judged with its interval against the budget. Three outcomes:
 *   - pass (exit 0): within budget with 95% confidence;
 *   - fail (exit 1): over budget with 95% confidence;
 *   - cannot tell (exit 1, unless allowed): the interval straddles the budget; the line says how
 *     many samples there were and about how many would decide. `allowUncertain` turns it into a
 *     pass (exit 0) that still says it is uncertain, for pipelines that gate on obvious
 *     regressions only.
 */
import type { GateResult, QuantConfig, Report } from '../../protocol/report';
import { InputError } from '../errors';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { configLabel } from '../quantize/grid';
import { OutputMeasurer } from './measure';
import type { Prepared } from './types';
import type { UserMetric } from './userMetric';
import { type BudgetOptions, budgetFor, primaryVerdict } from './verdict';

export interface GateOptions extends BudgetOptions {
  allowUncertain?: boolean;
  metric?: UserMetric;
  signal?: AbortSignal;
}

export async function runGate(p: Prepared, config: QuantConfig, opts: GateOptions = {}): Promise<GateResult> {
  const measurer = await OutputMeasurer.create(p, { metric: opts.metric, signal: opts.signal });
  try {
    const m = await measurer.measureConfig(config);
    const { budget, why, ignored } = budgetFor(m.primary, opts);
    const v = primaryVerdict(m.primary, budget, m.table);
    return {
      schemaVersion: REPORT_SCHEMA_VERSION,
      kind: 'gate',
      model: { path: p.loaded.path, sha256: p.loaded.sha256 },
      config,
      samples: m.samples,
      budget,
      budgetWhy: why,
      ...(ignored ? { budgetIgnored: ignored } : {}),
      primaryMetric: m.primary,
      outputs: m.outputs,
      verdict: v,
      allowUncertain: opts.allowUncertain === true,
    };
  } finally {
    await measurer.release();
  }
}

/** The gate's judgement of a report already made (an already-quantized model analyzed as deployed). */
export function gateFromReport(r: Report, opts: BudgetOptions & { allowUncertain?: boolean } = {}): GateResult {
  const pm = r.primaryMetric;
  if (!pm) throw new InputError(`${r.model.path}: the analysis has no primary metric to gate on (no float output to compare)`);
  const table = pm.kind === 'top1' ? (r.outputs?.find((o) => o.name === pm.output)?.classifier?.labelled?.table ?? null) : null;
  const { budget, why, ignored } = budgetFor(pm, opts);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'gate',
    model: { path: r.model.path, sha256: r.model.sha256 },
    config: r.config,
    samples: pm.n,
    budget,
    budgetWhy: why,
    ...(ignored ? { budgetIgnored: ignored } : {}),
    ...(r.model.quantization && r.model.quantization.kind !== 'float' ? { deployed: r.model.quantization.kind } : {}),
    primaryMetric: pm,
    outputs: r.outputs ?? [],
    verdict: primaryVerdict(pm, budget, table),
    allowUncertain: opts.allowUncertain === true,
  };
}

/** Exit code and the one line to print, on stdout for a pass and stderr otherwise. */
export function gateOutcome(r: GateResult): { exitCode: 0 | 1; stream: 'stdout' | 'stderr'; line: string } {
  // An already-quantized file has no calibration method of its own: its grids are what it holds.
  const grids = r.deployed ? `the ${r.deployed.toUpperCase()} file's own grids` : configLabel(r.config);
  const what = `${grids} on ${r.primaryMetric.description}, ${r.samples} samples${r.budgetIgnored ? ` (${r.budgetIgnored})` : ''}`;
  const next = r.deployed
    ? 'run quantlens analyze on it for the layers that lose the most, and on its float model for a measured fix'
    : 'run quantlens analyze for the culprit layers and a measured fix';
  const v = r.verdict;
  if (v.kind === 'within-budget' || v.kind === 'within-noise') return { exitCode: 0, stream: 'stdout', line: `quantlens gate: PASS: ${what}: ${v.text}` };
  if (v.kind === 'over-budget') return { exitCode: 1, stream: 'stderr', line: `quantlens gate: FAIL: ${what}: ${v.text}; ${next}` };
  const decide = v.samplesNeeded ? `${r.samples} samples are too few, about ${v.samplesNeeded} would decide` : `${r.samples} samples cannot decide`;
  const pm = r.primaryMetric;
  const i = pm.loss ?? pm.value;
  const f2 = (x: number) => x.toFixed(2);
  const numbers = pm.loss
    ? `${pm.kind === 'user' ? 'loss' : 'drop'} ${f2(i.estimate)} ${pm.lossUnit}, 95% interval ${f2(i.low)} to ${f2(i.high)}, budget ${f2(r.budget)}`
    : `SQNR ${f2(i.estimate)} dB, 95% interval ${f2(i.low)} to ${f2(i.high)}, floor ${f2(r.budget)} dB`;
  if (r.allowUncertain)
    return { exitCode: 0, stream: 'stdout', line: `quantlens gate: PASS (uncertain, allowed): cannot tell: ${decide}; ${what}: ${numbers}` };
  return { exitCode: 1, stream: 'stderr', line: `quantlens gate: cannot tell: ${decide}; ${what}: ${numbers} (--allow-uncertain passes this)` };
}
