/**
 * Session export: JSON (a SessionExport: the report with its diagnosis, the sweep and the
 * mixed-precision result), CSV (the report's per-layer table) and a standalone HTML file that
 * renders every view offline with the same webview bundle, inlined.
 */
import { randomBytes } from 'node:crypto';
import type { SessionExport } from '../protocol/messages';
import type { Report } from '../protocol/report';
import { reportReplacer } from '../protocol/wire';

/** Reports as JSON (infinities as strings, see reportReplacer). */
export function reportJson(report: unknown, space?: number): string {
  return JSON.stringify(report, reportReplacer, space);
}

const CSV_COLUMNS = [
  'node',
  'op',
  'integerKernel',
  'simulatedSqnrDb',
  'integerSqnrDb',
  'integerCosine',
  'integerMse',
  'integerMaxAbs',
  'isolatedSimulatedSqnrDb',
  'isolatedIntegerSqnrDb',
  'outputClipRate',
  'simVsIntMismatch',
  'simVsIntMaxLsb',
  'sensitivityRank',
  'onlyThisAgreement',
  'allButThisAgreement',
  'referenceVsOrtMismatch',
  'referenceVsOrtMaxLsb',
  'u8s8ChangedOutputs',
  'accumulatorOverflows',
];

/**
 * One CSV cell. Text that a spreadsheet would run as a formula (starting with = + - @, tab or CR:
 * a node named "=HYPERLINK(...)" is data, not a formula) gets a leading apostrophe, as OWASP
 * recommends; numbers stay numbers.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function reportCsv(r: Report): string {
  const clip = new Map(r.tensors.filter((t) => t.kind === 'activation').map((t) => [t.name, t.clipRate]));
  const rows = r.layers.map((l) => [
    l.node,
    l.op,
    l.integerKernel ?? 'float',
    l.simulated.sqnrDb,
    l.integer.sqnrDb,
    l.integer.cosine,
    l.integer.mse,
    l.integer.maxAbs,
    l.isolated.simulated.sqnrDb,
    l.isolated.integer.sqnrDb,
    clip.get(l.output) ?? '',
    l.simVsIntMismatch,
    l.simVsIntMaxLsb,
    l.sensitivity?.rank ?? '',
    l.sensitivity?.onlyThis.agreement ?? '',
    l.sensitivity?.allButThis?.agreement ?? '',
    l.integerDiff?.referenceVsOrt.mismatchRate ?? '',
    l.integerDiff?.referenceVsOrt.maxLsb ?? '',
    l.integerDiff?.u8s8.applicable ? l.integerDiff.u8s8.changedOutputs : '',
    l.integerDiff?.accumulatorOverflows ?? '',
  ]);
  return [CSV_COLUMNS, ...rows].map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

/**
 * A single self-contained HTML file: CSP with a nonce, script and style inlined, the session (every
 * view: report with its diagnosis, sweep, mixed precision) embedded; the webview bundle renders it
 * offline.
 */
export function reportHtml(session: SessionExport, webviewJs: string, webviewCss: string): string {
  const nonce = randomBytes(16).toString('base64');
  // `<` escaped so the JSON can never close the script element it sits in.
  const data = reportJson(session).replace(/</g, '\\u003c');
  const modelPath = session.report?.model.path ?? session.sweep?.model.path ?? session.mixedPrecision?.model.path ?? 'session';
  const sqnrWarningDb = session.sqnrWarningDb;
  const csp = `default-src 'none'; img-src data:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>QuantLens report: ${escapeHtml(modelPath)}</title>
<style nonce="${nonce}">${webviewCss}</style>
</head>
<body class="quantlens-standalone">
<div id="app"></div>
<script type="application/json" id="quantlens-report" data-sqnr-warning-db="${sqnrWarningDb}">${data}</script>
<script nonce="${nonce}">${webviewJs.replace(/<\/script/gi, '<\\/script')}</script>
</body>
</html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}
