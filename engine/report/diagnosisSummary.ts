/**
 * The Diagnosis section of the terminal summary, printed first: the drop with its interval and
 * what it means against the budget, the culprit layers with their cause in one sentence, the
 * victims, and the verified fix with its before/after numbers.
 */
import type { Diagnosis, Interval, Report } from '../../protocol/report';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : x > 0 ? 'inf' : '-inf');
const db = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} dB` : x > 0 ? 'exact' : '-inf dB');
const interval = (i: Interval | null | undefined) => (i ? `95% interval ${f2(i.low)} to ${f2(i.high)}` : 'no interval');

/** "68.67 points (95% interval 62.96 to 73.59)", or the SQNR value for SQNR-judged models. */
function amount(value: number, i: Interval | null | undefined, unit: string): string {
  return `${f2(value)} ${unit} (${interval(i)})`;
}

export function formatDiagnosis(r: Report): string[] {
  const d: Diagnosis | null | undefined = r.diagnosis;
  if (!d) return [];
  const sqnr = r.primaryMetric?.kind === 'sqnr';
  const what = sqnr ? 'SQNR' : 'drop';
  const budget = sqnr ? `SQNR floor ${f2(d.budget)} dB` : `budget ${f2(d.budget)} ${d.drop.unit}`;
  const lines = [`DIAGNOSIS  ${d.drop.metric}; ${budget}`];
  lines.push(`  ${what} ${amount(d.drop.value, d.drop.interval, d.drop.unit)}`);
  lines.push(`  ${d.drop.verdict}`);
  if (!d.culprits.length) {
    for (const n of d.notes) lines.push(`  ${n}`);
    return [...lines, ''];
  }
  lines.push('  culprits, by the damage each layer does ALONE (only it quantized; not accumulated error):');
  for (const c of d.culprits) {
    lines.push(`    #${c.rank} ${c.node} (${c.op})  ${c.cause}`);
    lines.push(`       ${c.summary}`);
    const alone = c.damage.onlyThisLoss ? `alone: ${what} ${amount(c.damage.onlyThisLoss.estimate, c.damage.onlyThisLoss, d.drop.unit)}; ` : '';
    const also = c.otherCauses.length ? `; also ${c.otherCauses.map((o) => o.cause).join(', ')}` : '';
    lines.push(`       ${alone}isolated SQNR ${db(c.damage.isolatedSqnrDb)}${also}`);
  }
  if (d.victims.length) {
    lines.push('  victims (large accumulated error, little of their own):');
    for (const v of d.victims.slice(0, 8)) {
      lines.push(
        `    ${v.node}: accumulated ${db(v.accumulatedSqnrDb)}, isolated ${db(v.isolatedSqnrDb)}${v.from ? `; inherits from ${v.from}` : ''}${v.cause ? ` (${v.cause.cause})` : ''}`,
      );
    }
    if (d.victims.length > 8) lines.push(`    ... and ${d.victims.length - 8} more`);
  }
  if (d.fix) {
    const m = d.fix.measured;
    const keeps = m.floatLayers ? `${m.floatLayers} layer(s) in float` : 'every layer stays quantized';
    lines.push(`  verified fix, measured on integer kernels (${m.samples} samples; ${m.layersTouched ?? '?'} layer(s) touched, ${keeps}):`);
    lines.push(`    ${d.fix.description}`);
    lines.push(`    before: ${what} ${amount(d.drop.value, d.drop.interval, d.drop.unit)}`);
    lines.push(`    after:  ${what} ${amount(m.drop, m.interval, d.drop.unit)}`);
    lines.push(`    ${m.verdict}`);
    if (m.gain) lines.push(`    won back (paired, same samples): ${f2(m.gain.estimate)} ${d.drop.unit} (${interval(m.gain)})`);
    lines.push(`    apply: quantlens quantize MODEL --fix REPORT.json --out FIXED.onnx (with the report written by --report)`);
  } else {
    lines.push('  no verified fix (see the notes)');
  }
  for (const n of d.notes) lines.push(`  note: ${n}`);
  return [...lines, ''];
}
