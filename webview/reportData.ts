// Turns the report as received (JSON, where infinite SQNRs are the strings "Infinity") into numbers
// (protocol/wire.ts), checks its version and builds the lookups the views need. No DOM here so unit tests can import it.
import { u8s8Hazard } from '../protocol/platform';
import type { LayerReport, MixedPrecisionResult, Report, SweepReport, TensorReport } from '../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../protocol/report';
import { reviveNumbers } from '../protocol/wire';
import { culpritBadges, type DamageRank, victimsByNode } from './diagnosisData';

/** Versions this view reads: 2 added fields to 1 without changing any (docs/report-schema.md). */
const READABLE = new Set([1, REPORT_SCHEMA_VERSION]);

/**
 * The report with its numbers revived, in place. Throws on a schema version this webview was not
 * written for, as docs/report-schema.md asks readers to.
 */
export function normalizeReport(raw: unknown): Report {
  if (raw === null || typeof raw !== 'object') throw new Error('The report is not a JSON object.');
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (!READABLE.has(version as number)) {
    throw new Error(`Unsupported report schema version ${String(version)} (this view reads version ${REPORT_SCHEMA_VERSION}).`);
  }
  const report = reviveNumbers(raw) as Report;
  if (!Array.isArray(report.layers) || !Array.isArray(report.tensors)) throw new Error('The report has no layers or tensors.');
  return report;
}

function checkVersion(raw: unknown, what: string): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object') throw new Error(`The ${what} is not a JSON object.`);
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (!READABLE.has(version as number)) {
    throw new Error(`Unsupported ${what} schema version ${String(version)} (this view reads version ${REPORT_SCHEMA_VERSION}).`);
  }
  return raw as Record<string, unknown>;
}

/** As normalizeReport, for a sweep: a failed configuration's drop arrives as "Infinity". */
export function normalizeSweep(raw: unknown): SweepReport {
  const obj = checkVersion(raw, 'sweep');
  if (obj.kind !== 'sweep' || !Array.isArray(obj.configs)) throw new Error('The sweep result has no configurations.');
  return reviveNumbers(obj) as SweepReport;
}

/** As normalizeReport, for a mixed-precision result. */
export function normalizeMixedPrecision(raw: unknown): MixedPrecisionResult {
  const obj = checkVersion(raw, 'mixed-precision result');
  if (obj.kind !== 'mixed-precision' || !Array.isArray(obj.steps) || !Array.isArray(obj.ranking)) {
    throw new Error('The mixed-precision result has no steps or ranking.');
  }
  return reviveNumbers(obj) as MixedPrecisionResult;
}

export interface LayerRow {
  /** Position in graph order, so the user can sort back to it. */
  index: number;
  layer: LayerReport;
  output: TensorReport | undefined;
  inputs: TensorReport[];
  weights: TensorReport[];
}

export interface ReportIndex {
  report: Report;
  rows: LayerRow[];
  byNode: Map<string, LayerRow>;
  activations: Map<string, TensorReport>;
}

export function indexReport(report: Report): ReportIndex {
  const activations = new Map<string, TensorReport>();
  const weightsByNode = new Map<string, TensorReport[]>();
  const nodeNames = new Set(report.layers.map((l) => l.node));
  for (const t of report.tensors) {
    if (t.kind === 'activation') {
      activations.set(t.name, t);
      continue;
    }
    // Weight names are NODE:INITIALIZER and both halves may contain ':', so try every split point.
    let at = t.name.indexOf(':');
    while (at >= 0) {
      const node = t.name.slice(0, at);
      if (nodeNames.has(node)) {
        const list = weightsByNode.get(node);
        if (list) list.push(t);
        else weightsByNode.set(node, [t]);
        break;
      }
      at = t.name.indexOf(':', at + 1);
    }
  }
  const rows: LayerRow[] = report.layers.map((layer, index) => ({
    index,
    layer,
    output: activations.get(layer.output),
    inputs: layer.inputs.map((n) => activations.get(n)).filter((t): t is TensorReport => t !== undefined),
    weights: weightsByNode.get(layer.node) ?? [],
  }));
  const byNode = new Map(rows.map((r) => [r.layer.node, r]));
  return { report, rows, byNode, activations };
}

/**
 * Row flags. The ⚠ marker is about the damage a layer does ITSELF (its isolated integer SQNR below
 * the threshold), the "culprit #n" badges rank that damage (diagnosisData.ts), and victims (large
 * accumulated error inherited from upstream) are named as such. Accumulated SQNR flags nothing.
 */
export interface RowFlags {
  belowThreshold: Set<string>;
  culprits: Map<string, DamageRank>;
  victims: Map<string, { from: string | null }>;
  /** The target CPU can saturate u8 x s8 pair sums (protocol/platform.ts): u8s8 badges only then. */
  u8s8Possible: boolean;
}

export function flagRows(report: Report, rows: LayerRow[], sqnrWarningDb: number): RowFlags {
  const belowThreshold = new Set<string>();
  for (const r of rows) if (r.layer.isolated.integer.sqnrDb < sqnrWarningDb) belowThreshold.add(r.layer.node);
  return { belowThreshold, culprits: culpritBadges(report), victims: victimsByNode(report), u8s8Possible: u8s8Hazard(report.platform) };
}

export interface EmbeddedSession {
  report: unknown;
  sweep: unknown;
  mixedPrecision: unknown;
  compare: unknown;
  sqnrWarningDb: number;
}

/** A session from embedded JSON: the views it holds (a bare report is a session of one). */
export function sessionOf(raw: unknown, sqnrWarningDb: number): EmbeddedSession {
  if (raw && typeof raw === 'object' && (raw as { kind?: unknown }).kind === 'quantlens-session') {
    const s = raw as { report?: unknown; sweep?: unknown; mixedPrecision?: unknown; compare?: unknown; sqnrWarningDb?: unknown };
    return {
      report: s.report ?? null,
      sweep: s.sweep ?? null,
      mixedPrecision: s.mixedPrecision ?? null,
      compare: s.compare ?? null,
      sqnrWarningDb: typeof s.sqnrWarningDb === 'number' && Number.isFinite(s.sqnrWarningDb) ? s.sqnrWarningDb : sqnrWarningDb,
    };
  }
  // An older export, or a bare comparison (kind "compare").
  if (raw && typeof raw === 'object' && (raw as { kind?: unknown }).kind === 'compare')
    return { report: null, sweep: null, mixedPrecision: null, compare: raw, sqnrWarningDb };
  return { report: raw, sweep: null, mixedPrecision: null, compare: null, sqnrWarningDb };
}
