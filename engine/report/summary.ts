/**
 * Plain-text summary of a report for the terminal: the diagnosis first (drop with its interval,
 * culprits with their cause, the verified fix), then accuracy, then the layers.
 */
import { agreementApplies } from '../../protocol/format';
import type { Report } from '../../protocol/report';
import { u8s8Hazard } from '../analysis/platform';
import { formatDiagnosis } from './diagnosisSummary';

const pct = (x: number | null) => (x === null ? '   n/a' : `${(x * 100).toFixed(2).padStart(6)}%`);
const pctFine = (x: number) => `${(x * 100).toFixed(x && x < 0.001 ? 4 : 2)}%`;
const db = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : Number.isNaN(x) ? 'NaN' : x > 0 ? 'inf' : '-inf').padStart(6);

export function formatSummary(r: Report, worst = 8): string {
  const a = r.accuracy;
  const lines: string[] = [];
  lines.push(`model    ${r.model.path}`);
  lines.push(
    `data     ${r.data.synthetic ? 'SYNTHETIC (thresholds are not meaningful)' : r.data.source}, ${r.samples} samples${r.data.labels ? ', labelled' : ''}`,
  );
  const c = r.config;
  const qz = r.model.quantization;
  if (qz && qz.kind !== 'float') {
    lines.push(
      `grids    the model's own (${qz.kind}: ${qz.grids?.activations ?? 0} activation grids, ${qz.grids?.weights ?? 0} weights with their codes), nothing recalibrated`,
    );
    lines.push(
      `float    ${qz.reference === 'user' ? `the float model ${qz.floatModel}` : "the model's float twin (weights DEQUANTIZED: a QAT model's float accuracy only approximately; --float for the original)"}`,
    );
  } else {
    // ranges from another tool's table replace the method's for the tensors it names
    const table = r.warnings.find((w) => w.code === 'calibration-table');
    const calibration = table ? `${c.calibration}, overridden by a calibration table (${table.message.replace(/^.*\): /, '')})` : c.calibration;
    lines.push(
      `config   preset=${c.preset} calibration=${calibration} W${c.weights.bits}${c.weights.perChannel ? '/channel' : '/tensor'} A${c.activations.bits}${c.activations.symmetric ? ' symmetric' : ' asymmetric'}`,
    );
  }
  lines.push('');
  lines.push(...formatDiagnosis(r));
  lines.push('             top-1   agreement  output SQNR dB');
  // Agreement compares the first output's argmax: n/a where that output holds no class scores.
  const agree = (x: number) => (agreementApplies(r) ? pct(x) : pct(null));
  lines.push(`float      ${pct(a.float.top1)}    ${agree(1)}`);
  lines.push(`simulated  ${pct(a.simulated.top1)}    ${agree(a.simulated.agreement)}  ${db(a.simulated.outputSqnrDb)}`);
  lines.push(`integer    ${pct(a.integer.top1)}    ${agree(a.integer.agreement)}  ${db(a.integer.outputSqnrDb)}`);
  const di = a.dropInterval;
  if (a.dropPoints !== null)
    lines.push(
      `accuracy drop float -> integer: ${a.dropPoints.toFixed(2)} points${di ? ` (95% interval ${di.low.toFixed(2)} to ${di.high.toFixed(2)}${a.mcnemarP != null ? `, McNemar p = ${a.mcnemarP.toPrecision(2)}` : ''})` : ''}`,
    );
  lines.push('');
  // Ranked by the damage each layer does itself when there is a diagnosis; accumulated SQNR is
  // shown but never ranks (a late layer inherits everything upstream).
  const rank = new Map((r.diagnosis?.ranking ?? []).map((x) => [x.node, x]));
  const victims = new Set((r.diagnosis?.victims ?? []).map((v) => v.node));
  const ranked = rank.size
    ? [...r.layers].sort((x, y) => rank.get(x.node)!.rank - rank.get(y.node)!.rank).slice(0, worst)
    : [...r.layers].sort((x, y) => x.isolated.integer.sqnrDb - y.isolated.integer.sqnrDb).slice(0, worst);
  lines.push(rank.size ? 'layers by the damage they do themselves (own rank):' : 'layers by isolated integer SQNR (their own error):');
  // Without a diagnosis (an already-quantized file, --no-diagnose) the last column is each layer's
  // sensitivity rank when sensitivity ran ("alone": model output with only it quantized), else nothing.
  const alone = !rank.size && r.layers.some((l) => l.sensitivity);
  lines.push(
    `  node                                op        sim dB  int dB  iso dB  kernel        ${rank.size ? 'own   role' : alone ? 'alone' : ''}`.trimEnd(),
  );
  const iso = r.isolatedSamples;
  if (iso !== undefined && iso < r.samples) lines.push(`  (sim/int dB on all ${r.samples} samples; iso dB, each layer alone, on the first ${iso})`);
  for (const l of ranked) {
    const k = rank.get(l.node);
    const role = k?.culprit ? 'culprit' : victims.has(l.node) ? 'victim' : '';
    lines.push(
      `  ${fit(l.node, 34)}  ${l.op.padEnd(8)} ${db(l.simulated.sqnrDb)}  ${db(l.integer.sqnrDb)}  ${db(l.isolated.integer.sqnrDb)}  ${(l.integerKernel ?? 'float').padEnd(12)}  ${(k ? `#${k.rank}` : alone && l.sensitivity ? `#${l.sensitivity.rank}` : '').padEnd(4)}  ${role}`.trimEnd(),
    );
  }
  if (r.layers.length > ranked.length) lines.push(`  ... and ${r.layers.length - ranked.length} more layers (all of them in the report: --report)`);
  // The layers whose codes differ most, whichever comparison shows it (the reference may agree
  // with onnxruntime everywhere while the simulation does not).
  const worstShare = (l: (typeof r.layers)[number]) => Math.max(l.integerDiff!.simulatedVsOrt.mismatchRate, l.integerDiff!.referenceVsOrt.mismatchRate);
  // A layer the reference compared no element of has no share to show (it is not 0%).
  const diffs = r.layers.filter((l) => l.integerDiff && l.integerDiff.elements > 0).sort((x, y) => worstShare(y) - worstShare(x));
  if (diffs.length) {
    lines.push('');
    const counts = new Set(diffs.map((l) => l.integerDiff!.samples));
    const on =
      counts.size === 1
        ? `on the first ${[...counts][0]} of ${r.samples} samples`
        : `on the first ${Math.min(...counts)} to ${Math.max(...counts)} of ${r.samples} samples, by layer (the report's integerDiff.samples)`;
    lines.push(`integer codes: simulated / integer-only reference / onnxruntime (share of codes that differ, root causes), ${on}:`);
    const hazard = u8s8Hazard(r.platform);
    lines.push(
      `  node                                sim vs ORT   ref vs ORT  max  causes (ref vs ORT)             ${hazard ? 'u8s8 saturation (target without VNNI)' : ''}`,
    );
    for (const l of diffs.slice(0, worst)) {
      const d = l.integerDiff!;
      const causes = d.referenceVsOrt.causes.map((c) => `${c.cause} ${c.count}`).join(', ') || '-';
      const u8 = !hazard ? '' : d.u8s8.applicable ? (d.u8s8.changedOutputs ? `${d.u8s8.changedOutputs} codes change` : 'no change') : 'n/a';
      lines.push(
        `  ${fit(l.node, 34)}  ${pctFine(d.simulatedVsOrt.mismatchRate).padStart(9)}  ${pctFine(d.referenceVsOrt.mismatchRate).padStart(10)}  ${String(d.referenceVsOrt.maxLsb).padStart(3)}  ${causes.slice(0, 30).padEnd(30)}  ${u8}`,
      );
    }
    if (diffs.length > worst) lines.push(`  ... and ${diffs.length - worst} more layers (all of them in the report: --report)`);
  }
  const grids = qz && qz.kind !== 'float' ? deployedGrids(r) : [];
  if (grids.length > 1) lines.push('', ...grids);
  const clipped = r.tensors
    .filter((t) => t.kind === 'activation' && t.clipRate > 0.001)
    .sort((x, y) => y.clipRate - x.clipRate)
    .slice(0, 5);
  if (clipped.length) {
    lines.push('');
    lines.push('most clipped activations (chosen range vs observed range):');
    for (const t of clipped) {
      const rng = t.chosen!.range;
      lines.push(
        `  ${fit(t.name, 40)} clip ${(t.clipRate * 100).toFixed(2)}%  range [${rng.lo.toPrecision(3)}, ${rng.hi.toPrecision(3)}] of [${t.min.toPrecision(3)}, ${t.max.toPrecision(3)}]`,
      );
    }
  }
  lines.push(...warningLines(r.warnings.filter((w) => w.code !== 'no-integer-kernel')));
  return lines.join('\n') + '\n';
}

/** What makes the numbers untrustworthy or the written model wrong: printed before anything else. */
const FIRST_WARNINGS = [
  'synthetic-data',
  'synthetic-dims',
  'samples-dropped',
  'heavy-clipping',
  'bias-saturation',
  'u8s8-saturation',
  'integer-divergence',
  'branch-diverged',
  'calibration-table-unmatched',
  'calibration-table-missing',
];
/** Lines of one kind of warning shown before the rest of that kind is counted (more for the first kinds). */
const PER_KIND = 2;
const PER_FIRST_KIND = 5;
const MAX_WARNING_LINES = 12;

/**
 * The warnings, most important kinds first and each kind in at most PER_KIND lines: on a
 * classifier 22 "not fused" lines used to fill the screen and push 4 heavy-clipping warnings
 * into "... and 16 more in the report".
 */
export function warningLines(warnings: Report['warnings']): string[] {
  if (!warnings.length) return [];
  const kinds = new Map<string, Report['warnings']>();
  for (const w of warnings) kinds.set(w.code, [...(kinds.get(w.code) ?? []), w]);
  const rank = (code: string) => (FIRST_WARNINGS.includes(code) ? FIRST_WARNINGS.indexOf(code) : FIRST_WARNINGS.length);
  const ordered = [...kinds].sort((a, b) => rank(a[0]) - rank(b[0]));
  const out = [''];
  let shown = 0; // warnings printed or counted in a kind's line
  for (const [code, ws] of ordered) {
    if (out.length > MAX_WARNING_LINES) break;
    const lines = FIRST_WARNINGS.includes(code) ? PER_FIRST_KIND : PER_KIND;
    for (const w of ws.slice(0, lines)) out.push(`warning: ${w.message}`);
    if (ws.length > lines) out.push(`  ... and ${ws.length - lines} more '${code}' warnings like these`);
    shown += ws.length;
  }
  if (shown < warnings.length) out.push(`... and ${warnings.length - shown} more warnings in the report`);
  return out;
}

/** Each layer's deployed output grid against the data: clipping, codes never used, share of the grid the data spans. */
function deployedGrids(r: Report): string[] {
  const out = ['deployed output grids on this data (scale, zero point, clipped, codes never used, share of the grid spanned):'];
  for (const l of r.layers) {
    const t = r.tensors.find((x) => x.kind === 'activation' && x.name === l.output);
    if (!t?.chosen) continue;
    const g = t.grid;
    out.push(
      `  ${l.node.slice(0, 34).padEnd(34)}  scale ${Number(t.chosen.scale).toPrecision(4).padEnd(10)} zp ${String(t.chosen.zeroPoint).padStart(4)}  clip ${pctFine(t.clipRate).padStart(7)}  unused ${g ? pctFine(g.unusedShare).padStart(7) : '    n/a'}  span ${g ? pctFine(g.spanShare).padStart(7) : 'n/a'}`,
    );
  }
  return out;
}

/** A name in `n` columns: long ones (qualified names of layers inside If/Loop bodies) keep their end, where the node's own name is. */
function fit(name: string, n: number): string {
  return (name.length <= n ? name : `…${name.slice(name.length - n + 1)}`).padEnd(n);
}
