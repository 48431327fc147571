// Turns the report as received (JSON, where infinite SQNRs are the strings "Infinity") into numbers,
// and builds the lookups the views need. No DOM here so unit tests can import it.
import type { LayerReport, MixedPrecisionResult, Report, SweepReport, TensorReport } from '../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../protocol/report';

// Fields whose string values are names or prose: a tensor literally called "Infinity" must stay a string.
const STRING_KEYS = new Set([
  'name', 'node', 'op', 'output', 'inputs', 'integerKernel', 'path', 'sha256', 'producer', 'source',
  'exclude', 'warnings', 'integerEncoding', 'createdAt', 'tool', 'kind', 'degenerate', 'method',
  'preset', 'calibration', 'placement', 'code', 'message', 'tensor',
  // Sweep and mixed-precision results: configuration labels, error text, kept layers, written paths.
  'label', 'error', 'kept', 'dropBasis', 'written',
  // Root-cause names of the integer diff.
  'cause',
]);

function reviveNumber(value: unknown): unknown {
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  if (value === 'NaN') return NaN;
  return value;
}

function walk(value: unknown): unknown {
  if (Array.isArray(value)) {
    // Histograms make up most of a report: skip plain numbers without a call per element.
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number') value[i] = walk(v);
    }
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      if (!STRING_KEYS.has(key)) obj[key] = walk(obj[key]);
    }
    return obj;
  }
  return reviveNumber(value);
}

/**
 * Converts "Infinity"/"-Infinity"/"NaN" strings back to numbers, in place (the object is a fresh
 * copy from postMessage or JSON.parse, and reports can be several MB). Throws on a schema version
 * this webview was not written for, as docs/report-schema.md asks readers to.
 */
/** Versions this view reads: 2 added fields to 1 without changing any (docs/report-schema.md). */
const READABLE = new Set([1, REPORT_SCHEMA_VERSION]);

export function normalizeReport(raw: unknown): Report {
  if (raw === null || typeof raw !== 'object') throw new Error('The report is not a JSON object.');
  const version = (raw as { schemaVersion?: unknown }).schemaVersion;
  if (!READABLE.has(version as number)) {
    throw new Error(`Unsupported report schema version ${String(version)} (this view reads version ${REPORT_SCHEMA_VERSION}).`);
  }
  const report = walk(raw) as Report;
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
  return walk(obj) as SweepReport;
}

/** As normalizeReport, for a mixed-precision result. */
export function normalizeMixedPrecision(raw: unknown): MixedPrecisionResult {
  const obj = checkVersion(raw, 'mixed-precision result');
  if (obj.kind !== 'mixed-precision' || !Array.isArray(obj.steps) || !Array.isArray(obj.ranking)) {
    throw new Error('The mixed-precision result has no steps or ranking.');
  }
  return walk(obj) as MixedPrecisionResult;
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

/** Row flags: below the configured SQNR threshold, and the three lowest finite integer SQNRs. */
export interface RowFlags {
  belowThreshold: Set<string>;
  lowest: Map<string, number>;
}

export function flagRows(rows: LayerRow[], sqnrWarningDb: number): RowFlags {
  const belowThreshold = new Set<string>();
  const finite: LayerRow[] = [];
  for (const r of rows) {
    const s = r.layer.integer.sqnrDb;
    if (s < sqnrWarningDb) belowThreshold.add(r.layer.node);
    // Infinite SQNR is an exact match and NaN says nothing: neither belongs among the worst.
    if (Number.isFinite(s)) finite.push(r);
  }
  finite.sort((a, b) => a.layer.integer.sqnrDb - b.layer.integer.sqnrDb);
  const lowest = new Map(finite.slice(0, 3).map((r, i) => [r.layer.node, i + 1] as [string, number]));
  return { belowThreshold, lowest };
}

/** The layer to show first: the lowest integer SQNR, else the first layer. */
export function worstLayer(rows: LayerRow[]): LayerRow | undefined {
  let worst: LayerRow | undefined;
  for (const r of rows) {
    const s = r.layer.integer.sqnrDb;
    if (Number.isNaN(s)) continue;
    if (!worst || s < worst.layer.integer.sqnrDb) worst = r;
  }
  return worst ?? rows[0];
}
