// The Mixed precision tab: how the drop falls as the most sensitive layers are kept in float one
// by one, against the budget, and what was decided and written.
import type { Chart } from 'chart.js';
import type { Fix, MixedPrecisionResult } from '../protocol/report';
import { changeText } from './diagnosisData';
import { clear, h } from './dom';
import { basename, formatDb } from './format';
import { readTheme } from './theme';
import { mixedChart } from './viewCharts';
import { basisText, budgetText, configLabel, formatDrop, judgedBySqnr, planSteps, stepDropInterval, stepFigureText, wantsLogDrop } from './viewData';
import { axisToggle, hint } from './views';

export class MixedPrecisionView {
  readonly element: HTMLElement;
  private result: MixedPrecisionResult | undefined;
  private canvas: HTMLCanvasElement | undefined;
  private chart: Chart | undefined;
  private dirty = false;
  private logY: boolean | undefined;

  constructor(inVsCode: boolean) {
    this.element = h('section', { id: 'mixed-precision', class: 'view', 'aria-label': 'Mixed precision' });
    this.element.append(
      hint('No mixed-precision search yet', [
        inVsCode
          ? 'Run “QuantLens: Mixed Precision...” from the Command Palette with an accuracy budget: it keeps the most sensitive layers in float until the drop meets it.'
          : 'This session ran no mixed-precision search. In VS Code, “QuantLens: Mixed Precision...” searches which layers to keep in float.',
      ]),
    );
  }

  setResult(r: MixedPrecisionResult): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.result = r;
    const final = r.steps[r.steps.length - 1];
    const kept = new Set(r.exclude);
    const canvas = h('canvas', { id: 'mixed-chart', role: 'img' });
    this.canvas = canvas;
    const verdict = r.met
      ? r.exclude.length === 0
        ? 'Budget met with every layer quantized.'
        : `Budget met by keeping ${r.exclude.length} layer${r.exclude.length === 1 ? '' : 's'} in float.`
      : `Budget NOT met, even with ${r.exclude.length} layer${r.exclude.length === 1 ? '' : 's'} in float.`;

    clear(this.element);
    this.element.append(
      h(
        'div',
        { class: 'view-head' },
        h('h2', null, 'Mixed precision ', h('span', { class: 'muted' }, basename(r.model.path))),
        h(
          'p',
          { class: 'muted view-lede' },
          'Starting from ',
          h('strong', { id: 'mixed-config', 'data-config': JSON.stringify(r.config) }, configLabel(r.config)),
          overrideCount(r) ? ` + ${overrideCount(r)} override(s)` : '',
          r.config.exclude.length ? ` with ${r.config.exclude.length} layer(s) already in float` : '',
          planSteps(r)
            ? ' · each step changes the layer that hurts most (calibration, bits, granularity or float) and re-measures'
            : ' · greedy by sensitivity: keep the layer that hurts most in float, re-evaluate, repeat',
          judgedBySqnr(r)
            ? ` · judged by the ${basisText(r.dropBasis)}${r.steps.some((x) => stepDropInterval(x)) ? ' [95% interval]' : ''}`
            : ` · drop = ${basisText(r.dropBasis)}, in points${r.steps.some((x) => stepDropInterval(x)) ? ' [95% interval]' : ''}`,
        ),
        notesOf(r).length
          ? h(
              'ul',
              { class: 'muted mp-notes' },
              notesOf(r).map((n) => h('li', null, n)),
            )
          : null,
      ),
      h(
        'div',
        { class: 'mp-summary' },
        h(
          'div',
          { id: 'mixed-verdict', class: `drop-card verdict ${r.met ? 'sev-good' : 'sev-bad'}`, role: 'status' },
          h('div', { class: 'drop-label' }, r.met ? 'Budget met' : 'Budget not met'),
          h(
            'div',
            { class: 'drop-value' },
            final ? formatDrop(judgedBySqnr(r) ? -final.drop : final.drop) : '–',
            h('span', { class: 'drop-unit' }, judgedBySqnr(r) ? ' dB SQNR' : ' points'),
          ),
          final && stepDropInterval(final) ? h('div', { class: 'drop-interval' }, `95% interval ${stepFigureText(r, final).replace(/^[^[]*/, '')}`) : null,
          h('div', { class: 'drop-detail' }, `Budget ${budgetText(r)}. ${verdict}`),
          r.steps[0] ? h('div', { class: 'drop-detail' }, `Starting point (nothing changed): ${stepFigureText(r, r.steps[0])}.`) : null,
        ),
        h(
          'div',
          { class: 'card mp-exclude' },
          h('h2', null, 'Kept in float (exclusion list)'),
          r.exclude.length
            ? h(
                'ol',
                { id: 'mixed-exclude', class: 'exclude-list' },
                r.exclude.map((n) => h('li', null, h('code', null, n))),
              )
            : h('p', { class: 'muted' }, 'None: every layer stays quantized.'),
          planBlock(r),
          writtenBlock(r),
        ),
      ),
      h(
        'div',
        { class: 'panel' },
        h(
          'div',
          { class: 'chart-tools' },
          h('h3', null, `${judgedBySqnr(r) ? 'Output SQNR' : 'Drop'} ${planSteps(r) ? 'at each step of the plan' : 'vs layers kept in float'}`),
          axisToggle('mixed-axis', this.log(), (v) => {
            this.logY = v;
            this.draw();
          }),
        ),
        h('div', { class: 'chart-box chart-mixed' }, canvas),
        h('p', { class: 'caption muted' }, `Dashed line: the budget, ${budgetText(r)}. Green markers meet it.`),
      ),
      h(
        'div',
        { class: 'panel' },
        h('h3', null, 'Ranking: damage when quantized alone (the greedy order)'),
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { id: 'mixed-ranking', class: 'data-table' },
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', { class: 'num' }, 'Rank'),
                h('th', null, 'Layer'),
                h('th', { class: 'num', title: `${basisText(r.dropBasis)} with only this layer quantized` }, 'Drop alone (pts)'),
                h('th', { class: 'num' }, 'Output SQNR dB'),
                h('th', null, 'Kept in float'),
              ),
            ),
            h(
              'tbody',
              null,
              r.ranking.map((x, i) =>
                h(
                  'tr',
                  { class: kept.has(x.node) ? 'kept' : null, 'data-node': x.node },
                  h('td', { class: 'num' }, `#${i + 1}`),
                  h('td', null, h('span', { class: 'node-name' }, x.node)),
                  h('td', { class: 'num' }, formatDrop(x.drop)),
                  h('td', { class: 'num' }, formatDb(x.outputSqnrDb)),
                  h('td', null, kept.has(x.node) ? h('span', { class: 'tag tag-float' }, `float (step ${r.exclude.indexOf(x.node) + 1})`) : ''),
                ),
              ),
            ),
          ),
        ),
      ),
    );
    this.dirty = true;
  }

  shown(): void {
    if (this.dirty) this.draw();
  }

  refresh(visible: boolean): void {
    if (!this.result) return;
    if (visible) this.draw();
    else this.dirty = true;
  }

  private draw(): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.dirty = false;
    if (!this.result || !this.canvas) return;
    this.chart = mixedChart(this.canvas, this.result, this.log(), readTheme());
  }

  private log(): boolean {
    const r = this.result;
    if (r && judgedBySqnr(r)) return false; // an SQNR axis is linear
    return this.logY ?? (r ? wantsLogDrop([...r.steps.map((s) => s.drop), r.maxDrop]) : false);
  }
}

/** The search's notes (budget source, what the samples can certify), when it reports them. */
function notesOf(r: MixedPrecisionResult): string[] {
  return (r as MixedPrecisionResult & { notes?: string[] }).notes ?? [];
}

function overrideCount(r: MixedPrecisionResult): number {
  return (r.config.tensorOverrides?.length ?? 0) + (r.config.layerOverrides?.length ?? 0);
}

/** The search's final plan, when it changes more than which layers stay in float (calibration, bits). */
function planBlock(r: MixedPrecisionResult): HTMLElement | null {
  const fix = (r as MixedPrecisionResult & { fix?: Fix | null }).fix;
  const changes = fix?.changes.filter((c) => c.kind !== 'float') ?? [];
  if (!fix || changes.length === 0) return null;
  return h(
    'div',
    { class: 'mp-plan' },
    h('h2', null, 'Other changes of the plan'),
    h(
      'ul',
      { class: 'fix-changes' },
      changes.map((c) => h('li', null, changeText(c))),
    ),
  );
}

function writtenBlock(r: MixedPrecisionResult): HTMLElement {
  const w = r.written;
  if (!w || (!w.model && !w.settings)) return h('p', { class: 'muted written' }, 'Nothing was written by the search itself; writing the model asks first.');
  return h(
    'dl',
    { id: 'mixed-written', class: 'kv compact written' },
    w.model ? [h('dt', null, 'QDQ model'), h('dd', null, h('code', { title: w.model }, w.model))] : null,
    w.settings ? [h('dt', null, 'Settings'), h('dd', null, h('code', { title: w.settings }, w.settings))] : null,
  );
}
