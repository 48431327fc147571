// The Compare tab: two quantized versions of one model, layer by layer against one float
// reference, the layer that differs most first. A plain table; numbers arrive through JSON, where
// an infinite SQNR may be null or the string "Infinity".
import type { CompareLayer, CompareReport, CompareSide } from '../protocol/report';
import { clear, h } from './dom';
import { basename, formatDb, formatNumber, formatPercent } from './format';
import { hint } from './views';

/** A number from JSON ("Infinity" strings and nulls as sent by the report replacer). */
function num(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return null;
}

/** Checks the shape the view relies on; throws a one-line reason. */
export function normalizeCompare(raw: unknown): CompareReport {
  const r = raw as Partial<CompareReport> | null;
  if (!r || r.kind !== 'compare' || !Array.isArray(r.layers) || !r.a || !r.b) throw new Error('not a QuantLens comparison');
  return r as CompareReport;
}

const pair = (a: string, b: string) => `${a} / ${b}`;
const scale = (s: CompareSide | null) => (s?.output ? formatNumber(num(s.output.scale)) : 'float');
const zp = (s: CompareSide | null) => (s?.output ? String(s.output.zeroPoint) : '–');
const clip = (s: CompareSide | null) => (s?.output ? formatPercent(num(s.output.clipRate)) : '–');

function row(l: CompareLayer, top: boolean): HTMLElement {
  const w = l.weightCodes ? `${l.weightCodes.differ} / ${l.weightCodes.total}` : '–';
  return h(
    'tr',
    { class: top ? 'selected' : null, 'data-node': l.node },
    h('td', { class: 'num' }, `#${l.rank}`),
    h('td', null, h('span', { class: 'node-name' }, l.node)),
    h('td', null, l.op),
    h('td', { class: 'num' }, pair(scale(l.a), scale(l.b))),
    h('td', { class: 'num' }, pair(zp(l.a), zp(l.b))),
    h('td', { class: 'num' }, pair(clip(l.a), clip(l.b))),
    h('td', { class: 'num' }, w),
    h('td', { class: 'num' }, pair(formatDb(num(l.a?.isolatedSqnrDb)), formatDb(num(l.b?.isolatedSqnrDb)))),
    h('td', { class: 'num' }, pair(formatDb(num(l.a?.accumulatedSqnrDb)), formatDb(num(l.b?.accumulatedSqnrDb)))),
    h(
      'td',
      { class: 'num', title: `only-this SQNR on ${l.a?.onlyThisSamples ?? '?'} / ${l.b?.onlyThisSamples ?? '?'} samples` },
      pair(formatDb(num(l.a?.onlyThisSqnrDb)), formatDb(num(l.b?.onlyThisSqnrDb))),
    ),
    h('td', { class: 'num' }, formatNumber(num(l.isolatedErrorDiff))),
  );
}

function side(label: string, s: CompareReport['a']): HTMLElement {
  const i = s.accuracy.integer;
  return h(
    'div',
    { class: 'card' },
    h('h3', null, `${label}: ${basename(s.path)} `, h('span', { class: 'muted' }, s.quantization?.kind ?? 'float')),
    h(
      'p',
      null,
      `integer top-1 ${formatPercent(num(i.top1))} · agreement ${formatPercent(num(i.agreement))}${s.accuracy.dropPoints !== null ? ` · drop ${s.accuracy.dropPoints.toFixed(2)} points` : ''}`,
    ),
  );
}

export class CompareView {
  readonly element: HTMLElement;

  constructor(inVsCode: boolean) {
    this.element = h('section', { id: 'compare', class: 'view', 'aria-label': 'Compare' });
    this.element.append(
      hint('No comparison yet', [
        inVsCode
          ? 'Select two quantized .onnx files in the Explorer and run “QuantLens: Compare Quantized Models” (or run it from the Command Palette and pick them).'
          : 'In VS Code, “QuantLens: Compare Quantized Models” compares two quantized versions of one model layer by layer.',
      ]),
    );
  }

  setCompare(r: CompareReport): void {
    clear(this.element);
    const ref = r.reference.kind === 'user' ? `the float model ${basename(r.reference.path)}` : `the float twin of A (${basename(r.reference.path)})`;
    this.element.append(
      h(
        'div',
        { class: 'view-head' },
        h('h2', null, 'Compare quantized models'),
        h(
          'p',
          { class: 'muted view-lede' },
          `Both measured against ${ref} on ${r.samples} samples · ranked by the difference of isolated error (error power / signal power)`,
        ),
      ),
      h('div', { class: 'compare-sides' }, side('A', r.a), side('B', r.b)),
      h(
        'p',
        { id: 'compare-verdict', role: 'status' },
        r.mostDifferent ? ['Differs most: ', h('code', null, r.mostDifferent)] : 'No layer differs in isolated error.',
      ),
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { id: 'compare-table', class: 'data-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ...[
                'Rank',
                'Layer',
                'Op',
                'Out scale A / B',
                'Zero point A / B',
                'Clip A / B',
                'Weight codes differing',
                'Isolated dB A / B',
                'Accumulated dB A / B',
                'Only-this dB A / B',
                'Isolated error diff',
              ].map((t, i) => h('th', { class: i === 1 || i === 2 ? null : 'num' }, t)),
            ),
          ),
          h(
            'tbody',
            null,
            r.layers.map((l, i) => row(l, i === 0)),
          ),
        ),
      ),
    );
    if (r.notes.length)
      this.element.append(
        h(
          'ul',
          { class: 'muted compare-notes' },
          r.notes.map((n) => h('li', null, n)),
        ),
      );
  }

  /** Nothing to redraw: no canvas. */
  shown(): void {}
}
