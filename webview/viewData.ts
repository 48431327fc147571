// Numbers behind the Sensitivity, Sweep and Mixed precision tabs: drops in points, the Pareto
// staircase, the sweep table's columns and sort. No DOM here so unit tests can import it.
import { entryAgreementApplies, formatWithInterval, rankedFigure } from '../protocol/format';
import type {
  FixChange,
  Interval,
  MixedPrecisionResult,
  MixedPrecisionStep,
  ModelOutputMetrics,
  QuantConfig,
  Report,
  SweepEntry,
  SweepReport,
} from '../protocol/report';
import { sensitivityBasis } from './diagnosisData';
import { formatDb, formatFixed, formatPercent } from './format';

/** What a drop is measured on: the primary metric's kind (user = the user's metric; sqnr = output SQNR in dB). */
export type DropBasis = 'top1' | 'agreement' | 'user' | 'sqnr';

const BASIS_TEXT: Record<DropBasis, [string, string]> = {
  top1: ['top-1 accuracy drop vs float', 'top-1'],
  agreement: ['agreement drop vs float', 'agreement'],
  user: ["loss on the user's metric vs float", 'metric'],
  sqnr: ['output SQNR (dB, higher is better)', 'SQNR'],
};

/** Axis and column wording for a drop. */
export function basisText(basis: DropBasis): string {
  return (BASIS_TEXT[basis] ?? BASIS_TEXT.agreement)[0];
}

export function basisShort(basis: DropBasis): string {
  return (BASIS_TEXT[basis] ?? BASIS_TEXT.agreement)[1];
}

// ---------------------------------------------------------------------------- sensitivity

export interface SensitivityRow {
  node: string;
  op: string;
  rank: number;
  /** Drop in points with ONLY this layer quantized. */
  damage: number;
  /** Drop in points with every layer BUT this one quantized. */
  /** Null when "all but this" was not measured (it costs a whole-model run per layer). */
  allButDrop: number | null;
  /** Points of the whole-model drop won back by keeping only this layer in float. */
  recovery: number | null;
  onlyThis: ModelOutputMetrics;
  allButThis: ModelOutputMetrics | null;
}

export interface SensitivityData {
  basis: DropBasis;
  /** Drop with every layer quantized (simulated execution, the one sensitivity measures). */
  fullDrop: number;
  /** Most sensitive first. */
  rows: SensitivityRow[];
  /** Layers without a sensitivity measurement (when only some were measured). */
  missing: number;
}

/**
 * Sensitivity in points of the chosen basis: top-1 vs float when the data has labels, else
 * agreement with float. Null when no layer was measured (the analysis ran without sensitivity).
 */
export function sensitivityData(report: Report): SensitivityData | null {
  const floatTop1 = report.accuracy.float.top1;
  // The same rule as the Diagnosis card: top-1 only when sensitivity saw every sample.
  const basis: DropBasis = sensitivityBasis(report);
  const drop = (m: ModelOutputMetrics): number =>
    basis === 'top1' && m.top1 !== null && floatTop1 !== null ? (floatTop1 - m.top1) * 100 : (1 - m.agreement) * 100;
  const fullDrop = drop(report.accuracy.simulated);
  const rows: SensitivityRow[] = [];
  let missing = 0;
  for (const l of report.layers) {
    const s = l.sensitivity;
    if (!s) {
      missing++;
      continue;
    }
    const allButDrop = s.allButThis ? drop(s.allButThis) : null;
    rows.push({
      node: l.node,
      op: l.op,
      rank: s.rank,
      damage: drop(s.onlyThis),
      allButDrop,
      recovery: allButDrop === null ? null : fullDrop - allButDrop,
      onlyThis: s.onlyThis,
      allButThis: s.allButThis,
    });
  }
  if (rows.length === 0) return null;
  rows.sort((a, b) => a.rank - b.rank);
  return { basis, fullDrop, rows, missing };
}

// ---------------------------------------------------------------------------------- sweep

/** An entry that can be placed on the chart: it ran, and its drop is a number. */
export function plottable(e: SweepEntry): boolean {
  return !e.error && Number.isFinite(e.drop) && Number.isFinite(e.sizeBytes);
}

/** The Pareto-optimal entries in staircase order: size ascending, then drop descending. */
export function paretoFront(entries: readonly SweepEntry[]): SweepEntry[] {
  return entries.filter((e) => e.pareto && plottable(e)).sort((a, b) => a.sizeBytes - b.sizeBytes || b.drop - a.drop);
}

export function kilobytes(bytes: number): number {
  return bytes / 1024;
}

export function formatKb(bytes: number): string {
  return Number.isFinite(bytes) ? `${kilobytes(bytes).toFixed(1)}` : '–';
}

/** Drop in points; a configuration that failed has no drop worth printing. */
export function formatDrop(points: number, digits = 2): string {
  if (points === Infinity) return 'failed';
  return formatFixed(points, digits);
}

/** A drop with its 95% interval, "1.33 [0.12, 3.05]"; the point estimate alone when there is none. */
export function formatDropInterval(points: number, interval: Interval | null | undefined, digits = 2): string {
  if (points === Infinity) return 'failed';
  return interval ? formatWithInterval(points, interval, 1, digits) : formatDrop(points, digits);
}

/** Whether a mixed-precision search judged the output SQNR: its steps hold minus the SQNR as "drop", its budget minus the floor. */
export function judgedBySqnr(r: MixedPrecisionResult): boolean {
  return r.dropBasis === 'sqnr';
}

/** A step's figure as a reader wants it: "1.33 [0.12, 3.05] points", or the SQNR itself, "35.00 [34.10, 35.90] dB". */
export function stepFigureText(r: MixedPrecisionResult, s: MixedPrecisionStep): string {
  // a step's interval is its loss's, or for an SQNR-judged search the SQNR's
  const interval = stepDropInterval(s);
  const fig = rankedFigure({ drop: s.drop, dropBasis: r.dropBasis, loss: interval, value: interval ?? undefined });
  return `${rankedText(fig)} ${fig.sqnr ? 'dB' : 'points'}`;
}

/** A ranked figure with its interval: the SQNR as measured, or a drop ("failed" when it could not run). */
function rankedText(fig: ReturnType<typeof rankedFigure>): string {
  return fig.sqnr ? formatWithInterval(fig.estimate, fig.interval) : formatDropInterval(fig.estimate, fig.interval);
}

/** The budget in words: "≤ 1 point", or "SQNR ≥ 30 dB" for a search held to an SQNR floor. */
export function budgetText(r: MixedPrecisionResult): string {
  if (judgedBySqnr(r)) return `SQNR ≥ ${formatFixed(-r.maxDrop, 2)} dB`;
  return `≤ ${formatFixed(r.maxDrop, 2)} point${r.maxDrop === 1 ? '' : 's'}`;
}

/** The 95% interval of a mixed-precision step's drop, when the engine measured one (`interval`). */
export function stepDropInterval(s: MixedPrecisionStep): Interval | null {
  return (s as MixedPrecisionStep & { interval?: Interval | null }).interval ?? null;
}

/** The plan's changes up to a mixed-precision step, when the engine reports them (`changes`). */
export function stepChanges(s: MixedPrecisionStep): FixChange[] | null {
  return (s as MixedPrecisionStep & { changes?: FixChange[] }).changes ?? null;
}

/** Whether the search changes more than which layers stay float (then its steps are plan steps, not layer counts). */
export function planSteps(r: MixedPrecisionResult): boolean {
  return r.steps.some((s) => (stepChanges(s) ?? []).some((c) => c.kind !== 'float'));
}

/** A sweep entry's drop with its interval, the same text in the table, the picked bar and the tooltip. */
export function dropText(e: SweepEntry): string {
  return e.error ? '–' : rankedText(rankedFigure(e));
}

/** The entry's ranked figure in words: "drop 1.33 [0.12, 3.05] top-1 points", or for an SQNR-judged model "SQNR 39.80 [39.70, 39.89] dB". */
export function dropPhrase(e: SweepEntry): string {
  if (e.error) return 'failed';
  if (e.dropBasis === 'sqnr') return `SQNR ${dropText(e)} dB`;
  if (e.dropBasis === 'user') return `loss ${dropText(e)} (metric units)`;
  return `drop ${dropText(e)} ${e.dropBasis === 'top1' ? 'top-1' : 'agreement'} points`;
}

/** Top-1 agreement of a sweep entry, or n/a where its first output holds no class scores. */
export function agreementText(e: SweepEntry): string {
  return entryAgreementApplies(e) ? formatPercent(e.agreement) : 'n/a';
}

export type SweepSortKey = 'id' | 'label' | 'drop' | 'agreement' | 'sqnr' | 'size' | 'pareto' | 'error';

export interface SweepColumn {
  key: SweepSortKey;
  label: string;
  title: string;
  numeric: boolean;
  firstDescending?: boolean;
  /** null sorts last in both directions. */
  value(e: SweepEntry): number | string | null;
  text(e: SweepEntry): string;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

export function sweepColumns(basis: DropBasis): SweepColumn[] {
  return [
    { key: 'id', label: '#', title: 'Configuration number (order of the sweep)', numeric: true, value: (e) => e.id, text: (e) => String(e.id + 1) },
    {
      key: 'label',
      label: 'Configuration',
      title: 'Preset, weight bits / granularity, activation bits, symmetry, calibration',
      numeric: false,
      value: (e) => e.label,
      text: (e) => e.label,
    },
    {
      key: 'drop',
      label: basis === 'sqnr' ? 'SQNR dB [95%]' : `Drop (${basisShort(basis)} pts) [95%]`,
      title:
        basis === 'sqnr'
          ? 'Integer-execution mean per-sample output SQNR in dB (higher is better), with its 95% interval'
          : `Integer-execution ${basisText(basis)}, in points, with its 95% interval`,
      numeric: true,
      value: (e) => (e.error ? null : finiteOrNull(e.drop)),
      text: dropText,
    },
    {
      key: 'agreement',
      label: 'Agreement',
      title: "Share of samples whose integer top-1 equals the float model's",
      numeric: true,
      value: (e) => (e.error || !entryAgreementApplies(e) ? null : finiteOrNull(e.agreement)),
      text: (e) => (e.error ? '–' : agreementText(e)),
    },
    {
      key: 'sqnr',
      label: 'Output SQNR',
      title: 'SQNR (dB) of the model outputs, integer vs float',
      numeric: true,
      value: (e) => (e.error || Number.isNaN(e.outputSqnrDb) ? null : e.outputSqnrDb),
      text: (e) => (e.error ? '–' : formatDb(e.outputSqnrDb)),
    },
    {
      key: 'size',
      label: 'Size KB',
      title: 'Size of the written QDQ model (KB = 1024 bytes)',
      numeric: true,
      value: (e) => finiteOrNull(e.sizeBytes),
      text: (e) => formatKb(e.sizeBytes),
    },
    {
      key: 'pareto',
      label: 'Pareto',
      title: 'On the Pareto front: no other configuration is both smaller and more accurate',
      numeric: false,
      firstDescending: true,
      value: (e) => (e.pareto ? 1 : 0),
      text: (e) => (e.pareto ? '★' : ''),
    },
    {
      key: 'error',
      label: 'Error',
      title: 'Why the configuration could not run',
      numeric: false,
      firstDescending: true,
      value: (e) => e.error ?? null,
      text: (e) => e.error ?? '',
    },
  ];
}

export const DEFAULT_SWEEP_SORT: { key: SweepSortKey; descending: boolean } = { key: 'drop', descending: false };

export function isSweepSortKey(key: unknown): key is SweepSortKey {
  return typeof key === 'string' && ['id', 'label', 'drop', 'agreement', 'sqnr', 'size', 'pareto', 'error'].includes(key);
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Sorted copy; missing values last in both directions, ties by size then sweep order. */
export function sortSweep(entries: readonly SweepEntry[], columns: readonly SweepColumn[], key: SweepSortKey, descending: boolean): SweepEntry[] {
  const column = columns.find((c) => c.key === key) ?? columns[0];
  const keyed = entries.map((e) => ({ e, v: column.value(e) }));
  const dir = descending ? -1 : 1;
  keyed.sort((a, b) => {
    if (a.v === null || b.v === null) {
      if (a.v === b.v) return a.e.id - b.e.id;
      return a.v === null ? 1 : -1;
    }
    let c: number;
    if (typeof a.v === 'number' && typeof b.v === 'number') c = a.v === b.v ? 0 : a.v < b.v ? -1 : 1;
    else c = collator.compare(String(a.v), String(b.v));
    return c !== 0 ? c * dir : a.e.sizeBytes - b.e.sizeBytes || a.e.id - b.e.id;
  });
  return keyed.map((k) => k.e);
}

/** The sweep's basis: every entry shares the data, so the first one that ran says it. */
export function sweepBasis(sweep: SweepReport): DropBasis {
  return sweep.configs.find((e) => !e.error)?.dropBasis ?? (sweep.data.labels ? 'top1' : 'agreement');
}

/**
 * Drops span decades (0.3 points for a good configuration, 70 for a broken one), which a linear
 * axis squeezes into one line at the bottom. The log view plots sign(d)·log10(1 + |d|): zero stays
 * zero, negative drops (better than float) stay below it, and ticks are labelled in points.
 */
export const symlog = (v: number): number => Math.sign(v) * Math.log10(1 + Math.abs(v));

/** Whether a log drop axis reads better: the values reach 10 points and span more than a decade. */
export function wantsLogDrop(values: readonly number[]): boolean {
  const finite = values.filter(Number.isFinite);
  if (finite.length < 2) return false;
  const max = Math.max(...finite);
  return max >= 10 && finite.some((v) => v < max / 10);
}

// ------------------------------------------------------------------------ mixed precision

/** "W8/ch A8 sym entropy", the form sweep labels use. */
export function configLabel(c: QuantConfig): string {
  const w = `W${c.weights.bits}/${c.weights.perChannel ? 'ch' : 't'}`;
  const a = `A${c.activations.bits}`;
  const sym = c.activations.symmetric ? 'sym' : 'asym';
  const cal = c.calibration === 'percentile' ? `percentile ${c.percentile}` : c.calibration;
  return `${c.preset} ${w} ${a} ${sym} ${cal}`;
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.round(ms)} ms`;
}
