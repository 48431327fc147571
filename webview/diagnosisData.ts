// What the Diagnosis card and the layer badges say, derived from the report: the drop on the
// primary metric with its interval and whether it is significant, the culprits ranked by the damage
// each layer does BY ITSELF (never by accumulated error, which blames the victims downstream), the
// victims, and the measured fix. No DOM here so unit tests can import it.
import type { Culprit, Diagnosis, Fix, Interval, LayerReport, Report } from '../protocol/report';
import { atLeast, atMost } from '../protocol/budget';
import { formatWithInterval } from '../protocol/format';

export interface HeadlineDrop {
  /** Point estimate in `unit`. */
  value: number;
  interval: Interval | null;
  unit: string;
  /** What is measured, e.g. "top-1 accuracy on output 'logits'". */
  metric: string;
  samples: number | null;
  /**
   * true: the interval lies above 0 (a real loss); false: it includes 0 or lies below (no
   * significant drop); null: no interval to decide with.
   */
  significant: boolean | null;
  /** One sentence: the engine's verdict when it made one, else what the interval says. */
  verdict: string;
  /** The figure is a value held to a floor (output SQNR in dB: higher is better), not a loss. */
  floor?: boolean;
}

function significance(iv: Interval | null): boolean | null {
  if (!iv || !Number.isFinite(iv.low) || !Number.isFinite(iv.high)) return null;
  return iv.low > 0;
}

function defaultVerdict(value: number, iv: Interval | null, unit: string): string {
  const sig = significance(iv);
  const level = iv ? `${Math.round(iv.level * 100)}%` : '';
  if (sig === null) return `No interval: ${value.toFixed(2)} ${unit} on its own cannot tell a real loss from sampling noise.`;
  const range = formatWithInterval(value, iv).replace(/^[^[]*/, '');
  if (sig) return `A real loss: the ${level} interval ${range} lies above 0.`;
  if (iv!.high < 0) return `The quantized model scores better: the ${level} interval ${range} lies below 0.`;
  return `No significant drop: the ${level} interval ${range} includes 0.`;
}

/**
 * The headline figure: the engine's diagnosis when present, else the primary metric's loss, else
 * the labelled top-1 drop, else 100 x (1 - agreement) with the agreement interval turned around.
 */
export function headlineDrop(report: Report): HeadlineDrop {
  const d = report.diagnosis;
  if (d) {
    const iv = d.drop.interval ?? null;
    // An SQNR-judged report has no loss: its figure is the SQNR, held to a floor (the budget).
    const floor = report.primaryMetric ? report.primaryMetric.loss === null : false;
    return {
      value: d.drop.value,
      interval: iv,
      unit: d.drop.unit,
      metric: d.drop.metric,
      samples: report.primaryMetric?.n ?? report.samples,
      significant: floor ? (iv ? !atLeast(iv.low, d.budget) : null) : significance(iv),
      verdict: d.drop.verdict || defaultVerdict(d.drop.value, iv, d.drop.unit),
      ...(floor ? { floor } : {}),
    };
  }
  const pm = report.primaryMetric;
  if (pm?.loss) {
    return {
      value: pm.loss.estimate,
      interval: pm.loss,
      unit: pm.lossUnit,
      metric: pm.description,
      samples: pm.n,
      significant: significance(pm.loss),
      verdict: defaultVerdict(pm.loss.estimate, pm.loss, pm.lossUnit),
    };
  }
  const a = report.accuracy;
  if (a.dropPoints !== null && Number.isFinite(a.dropPoints)) {
    const iv = a.dropInterval ?? null;
    return {
      value: iv?.estimate ?? a.dropPoints,
      interval: iv,
      unit: 'points',
      metric: 'labelled top-1 accuracy',
      samples: a.integer.samples ?? report.samples,
      significant: significance(iv),
      verdict: defaultVerdict(a.dropPoints, iv, 'points'),
    };
  }
  const ag = a.integer.agreementInterval;
  const iv: Interval | null = ag ? { ...ag, estimate: 100 * (1 - ag.estimate), low: 100 * (1 - ag.high), high: 100 * (1 - ag.low) } : null;
  const value = 100 * (1 - a.integer.agreement);
  return {
    value,
    interval: iv,
    unit: 'points',
    metric: 'top-1 agreement with the float model (no labels)',
    samples: a.integer.samples ?? report.samples,
    significant: significance(iv),
    verdict: defaultVerdict(value, iv, 'points'),
  };
}

// ------------------------------------------------------------------------------ damage ranking

export type DamageBasis = 'diagnosis' | 'only-this' | 'isolated';

export interface DamageRank {
  node: string;
  /** 1 = does the most damage by itself. */
  rank: number;
  basis: DamageBasis;
  /** The figure the rank rests on, as text, e.g. "only this layer quantized: 64.2 points" or "isolated SQNR 2.4 dB". */
  why: string;
}

/**
 * What sensitivity figures are measured against. Labelled top-1 only when sensitivity ran on all
 * the report's samples: the float top-1 is measured on all of them, and subtracting a top-1 on a
 * subset from it invents a loss (0.02 points for a layer that changes no prediction). Otherwise
 * agreement with float on the same samples, which is paired by construction.
 */
export function sensitivityBasis(report: Report): 'top1' | 'agreement' {
  const n = report.sensitivityInfo?.samples;
  // Layers settled after the pilot ran on fewer samples than the others (their own `samples`).
  const same = n === undefined || (n === report.samples && report.layers.every((l) => (l.sensitivity?.onlyThis.samples ?? n) === n));
  return report.data.labels && report.accuracy.float.top1 !== null && same ? 'top1' : 'agreement';
}

/** Loss in points with only this layer quantized, on sensitivityBasis; null when not measured. */
export function onlyThisLoss(report: Report, l: LayerReport): number | null {
  const s = l.sensitivity;
  if (!s) return null;
  const f = report.accuracy.float.top1;
  if (sensitivityBasis(report) === 'top1' && f !== null && s.onlyThis.top1 !== null) return 100 * (f - s.onlyThis.top1);
  return 100 * (1 - s.onlyThis.agreement);
}

const isoDb = (l: LayerReport) => l.isolated.integer.sqnrDb;

/**
 * Layers by the damage each does ITSELF, most damaging first: the diagnosis's culprits in its order
 * when present; else the loss with only this layer quantized (ties: lower isolated SQNR first),
 * keeping layers that lose something; else the isolated SQNR, lowest first. Accumulated SQNR never
 * decides: a layer downstream of a bad one has a low accumulated SQNR without doing harm.
 */
export function damageRanking(report: Report): DamageRank[] {
  const culprits = report.diagnosis?.culprits ?? [];
  // The engine's own ranking when it gives one (every layer, culprits flagged), else its culprit list.
  const ranking = (report.diagnosis as (Diagnosis & { ranking?: { node: string; rank: number; culprit: boolean }[] }) | null | undefined)?.ranking;
  if (ranking?.length) {
    const why = new Map(culprits.map((c) => [c.node, c.summary]));
    return ranking
      .filter((r) => r.culprit)
      .sort((a, b) => a.rank - b.rank)
      .map((r, i) => ({ node: r.node, rank: i + 1, basis: 'diagnosis' as const, why: why.get(r.node) ?? 'a culprit of the diagnosis' }));
  }
  if (culprits.length > 0) {
    return [...culprits].sort((a, b) => a.rank - b.rank).map((c, i) => ({ node: c.node, rank: i + 1, basis: 'diagnosis' as const, why: c.summary }));
  }
  const measured = report.layers.map((l) => ({ l, loss: onlyThisLoss(report, l) })).filter((x) => x.loss !== null) as { l: LayerReport; loss: number }[];
  if (measured.length > 0) {
    const n = (l: LayerReport) => l.sensitivity?.onlyThis.samples ?? report.sensitivityInfo?.samples;
    const what = sensitivityBasis(report) === 'top1' ? 'top-1 points lost' : 'points of agreement with float lost';
    return measured
      .filter((x) => x.loss > 0)
      .sort((a, b) => b.loss - a.loss || isoDb(a.l) - isoDb(b.l))
      .map((x, i) => ({
        node: x.l.node,
        rank: i + 1,
        basis: 'only-this' as const,
        why: `only this layer quantized: ${x.loss.toFixed(2)} ${what}${n(x.l) ? ` (${n(x.l)} samples)` : ''}`,
      }));
  }
  return report.layers
    .filter((l) => Number.isFinite(isoDb(l)))
    .sort((a, b) => isoDb(a) - isoDb(b))
    .map((l, i) => ({ node: l.node, rank: i + 1, basis: 'isolated' as const, why: `isolated integer SQNR ${isoDb(l).toFixed(1)} dB` }));
}

/**
 * The "culprit #n" badges of the layer table: the top three of the damage ranking, and none at all
 * when the drop is not significant (a badge on a layer of a model that lost nothing is noise).
 */
export function culpritBadges(report: Report, max = 3): Map<string, DamageRank> {
  const drop = headlineDrop(report);
  if (drop.significant === false || (drop.significant === null && !(drop.value > 0))) return new Map();
  return new Map(
    damageRanking(report)
      .slice(0, max)
      .map((r) => [r.node, r]),
  );
}

/** Victims by node: large accumulated error, little of their own (from the diagnosis only). */
export function victimsByNode(report: Report): Map<string, Diagnosis['victims'][number]> {
  return new Map((report.diagnosis?.victims ?? []).map((v) => [v.node, v]));
}

/** The layer to open first: the top culprit, else the first layer. */
export function firstLayerToShow(report: Report): string | undefined {
  return damageRanking(report)[0]?.node ?? report.layers[0]?.node;
}

// ---------------------------------------------------------------------------------- the fix

export interface FixView {
  fix: Fix;
  /** Paired against the unfixed configuration on the same samples: the loss the fix wins back (positive = better). */
  gain: Interval | null;
  /** Before (the headline) and after (measured with the fix), same unit. */
  before: { value: number; interval: Interval | null };
  after: { value: number; interval: Interval | null };
  /** The fix brings the drop within the budget. */
  meetsBudget: boolean;
  budget: number;
}

/** The diagnosis's fix with its before/after numbers, or null when there is none. */
export function fixView(report: Report): FixView | null {
  const d = report.diagnosis;
  if (!d?.fix) return null;
  const head = headlineDrop(report);
  const m = d.fix.measured;
  return {
    fix: d.fix,
    gain: (m as Fix['measured'] & { gain?: Interval | null }).gain ?? null,
    before: { value: head.value, interval: head.interval },
    after: { value: m.drop, interval: m.interval },
    meetsBudget: head.floor ? atLeast(m.drop, d.budget) : atMost(m.drop, d.budget),
    budget: d.budget,
  };
}

/** Evidence of a cause as short "name value" strings (numbers with 4 significant digits). */
export function evidenceItems(c: Pick<Culprit, 'evidence'>): string[] {
  return Object.entries(c.evidence).map(([k, v]) => {
    const text = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString()) : String(v);
    return `${k.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()} ${text}`;
  });
}

/** What changes: "calibration of /conv1/Conv_output_0 → percentile", "/fc/Gemm kept in float". */
export function changeText(c: Fix['changes'][number]): string {
  const where = c.tensor ?? c.node ?? 'every layer';
  switch (c.kind) {
    case 'float':
      return `${where} kept in float`;
    case 'calibration':
      return `calibration of ${where} → ${c.value}`;
    case 'range':
      return `range of ${where} → ${c.value}`;
    case 'activation-bits':
      return `activations of ${where} → ${c.value}-bit`;
    case 'weight-bits':
      return `weights of ${where} → ${c.value}-bit`;
    case 'per-channel':
      return `weights of ${where} → ${c.value ? 'per-channel' : 'per-tensor'}`;
  }
}
