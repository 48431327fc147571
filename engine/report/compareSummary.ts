/**
 * Plain-text table of a comparison of two quantized versions, the layer that differs most first.
 */
import type { CompareLayer, CompareReport, CompareSide, ModelOutputMetrics } from '../../protocol/report';

const pct = (x: number | null | undefined) => (x == null ? 'n/a' : `${(x * 100).toFixed(2)}%`);
const db = (x: number | null | undefined) => (x == null ? '-' : Number.isFinite(x) ? x.toFixed(1) : x > 0 ? 'inf' : '-inf');
const sci = (x: number) => (x === 0 ? '0' : x.toExponential(2));
const pair = (a: string, b: string, w: number) => `${a} / ${b}`.padEnd(w);

function scale(s: CompareSide | null): string {
  return s?.output ? s.output.scale.toPrecision(4) : 'float';
}
function zp(s: CompareSide | null): string {
  return s?.output ? String(s.output.zeroPoint) : '-';
}
function clip(s: CompareSide | null): string {
  return s?.output ? `${(s.output.clipRate * 100).toFixed(2)}%` : '-';
}

function accuracy(label: string, side: CompareReport['a']): string {
  const i: ModelOutputMetrics = side.accuracy.integer;
  const drop = side.accuracy.dropPoints;
  const di = side.accuracy.dropInterval;
  const interval = di ? ` (95% interval ${di.low.toFixed(2)} to ${di.high.toFixed(2)})` : '';
  return `${label}  ${side.path} (${side.quantization?.kind ?? 'float'}): integer top-1 ${pct(i.top1)}, agreement ${pct(i.agreement)}${drop !== null ? `, drop ${drop.toFixed(2)} points${interval}` : ''}`;
}

export function formatCompare(r: CompareReport): string {
  const lines = [
    accuracy('A', r.a),
    accuracy('B', r.b),
    `reference: ${r.reference.kind === 'user' ? `float model ${r.reference.path}` : `float twin of A (${r.reference.path})`}; float top-1 ${pct(r.a.accuracy.float.top1)}; ${r.samples} samples of ${r.data.synthetic ? 'SYNTHETIC data' : r.data.source}`,
    '',
    'rank  node                          op        out scale A / B       zp A / B    clip A / B          w codes differ   iso dB A / B   acc dB A / B   only-this dB A / B  iso err diff',
  ];
  for (const l of r.layers) {
    // codes compare only on one grid: two quantized weights on different grids are said to be so
    const w = l.weightCodes ? `${l.weightCodes.differ}/${l.weightCodes.total}` : l.a?.weightScale != null && l.b?.weightScale != null ? 'other grids' : '-';
    lines.push(
      [
        String(l.rank).padStart(4),
        l.node.slice(0, 28).padEnd(28),
        l.op.slice(0, 8).padEnd(8),
        pair(scale(l.a), scale(l.b), 21),
        pair(zp(l.a), zp(l.b), 11),
        pair(clip(l.a), clip(l.b), 19),
        w.padEnd(16),
        pair(db(l.a?.isolatedSqnrDb), db(l.b?.isolatedSqnrDb), 14),
        pair(db(l.a?.accumulatedSqnrDb), db(l.b?.accumulatedSqnrDb), 14),
        pair(...onlyThis(l, r.samples), 19),
        sci(l.isolatedErrorDiff),
      ].join('  '),
    );
  }
  lines.push(
    '',
    r.mostDifferent
      ? `differs most: ${r.mostDifferent} (ranked by the difference of isolated error power, error/signal)`
      : 'no layer differs in isolated error',
  );
  if (r.layers.some((l) => [l.a, l.b].some((x) => x?.onlyThisSamples && x.onlyThisSamples < r.samples)))
    lines.push(
      `only-this dB x@N: on the first N of the ${r.samples} samples (sensitivity sizes each layer by what its pilot shows)${
        r.layers.some((l) => l.a?.onlyThisSamples && l.b?.onlyThisSamples && l.a.onlyThisSamples !== l.b.onlyThisSamples)
          ? '; where A and B rest on different samples, compare them with care'
          : ''
      }`,
    );
  if (r.layers.some((l) => !l.weightCodes && l.a?.weightScale != null && l.b?.weightScale != null))
    lines.push('w codes differ "other grids": the two versions quantize that weight on different grids (scales or bits), so codes do not compare one to one');
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines.join('\n') + '\n';
}

/** Only-this SQNR of A and B, each with its sample count when it rests on fewer than all the samples. */
function onlyThis(l: CompareLayer, samples: number): [string, string] {
  const at = (s: CompareLayer['a']) =>
    s?.onlyThisSamples && s.onlyThisSamples < samples ? `${db(s.onlyThisSqnrDb)}@${s.onlyThisSamples}` : db(s?.onlyThisSqnrDb);
  return [at(l.a), at(l.b)];
}
