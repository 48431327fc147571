// The Sensitivity tab: which layers hurt the model output most when quantized, ranked, from the
// current report's per-layer sensitivity runs (simulated execution).
import type { Chart } from 'chart.js';
import type { Report } from '../protocol/report';
import { clear, h } from './dom';
import { formatDb, formatPercent } from './format';
import { readTheme } from './theme';
import { sensitivityChart } from './viewCharts';
import { basisText, formatDrop, sensitivityData, type SensitivityData } from './viewData';
import { hint } from './views';

/** Bars beyond this many layers make an unreadable chart; the table below lists every layer. */
const MAX_BARS = 40;
const BAR_ROW_PX = 30;

export interface SensitivityViewOptions {
  inVsCode: boolean;
  /** Open a layer in the Layers tab. */
  onOpenLayer(node: string): void;
}

export class SensitivityView {
  readonly element: HTMLElement;
  private chart: Chart | undefined;
  private data: SensitivityData | null = null;
  private canvas: HTMLCanvasElement | undefined;
  private dirty = false;

  constructor(private readonly options: SensitivityViewOptions) {
    this.element = h('section', { id: 'sensitivity', class: 'view', 'aria-label': 'Sensitivity' });
    this.element.append(
      hint('Sensitivity', [
        options.inVsCode
          ? 'Run “QuantLens: Analyze Quantization” on a model: its report ranks the layers by how much quantizing each one alone hurts the model output.'
          : 'This page has no report to rank layers from.',
      ]),
    );
  }

  setReport(report: Report): void {
    this.destroyChart();
    this.data = sensitivityData(report);
    clear(this.element);
    const data = this.data;
    if (!data) {
      this.element.append(
        hint('Sensitivity was skipped', [
          `This analysis did not measure per-layer sensitivity (it was run with --no-sensitivity${report.layers.length === 0 ? ', or the model has no quantized layers' : ''}).`,
          this.options.inVsCode
            ? 'Run “QuantLens: Analyze Quantization” to measure it: two extra model runs per layer.'
            : 'Analyze again without --no-sensitivity to measure it: two extra model runs per layer.',
        ]),
      );
      return;
    }
    const shown = data.rows.slice(0, MAX_BARS);
    const canvas = h('canvas', { id: 'sensitivity-chart', role: 'img' });
    this.canvas = canvas;
    const box = h('div', { class: 'chart-box chart-sensitivity' }, canvas);
    box.style.height = `${Math.max(180, shown.length * BAR_ROW_PX + 90)}px`;
    const axis = basisText(data.basis);
    this.element.append(
      h(
        'div',
        { class: 'view-head' },
        h('h2', null, 'Layer sensitivity'),
        h(
          'p',
          { class: 'muted view-lede' },
          `Ranked by damage: the ${axis} when ONLY that layer is quantized. Recovery: how much of the whole-model drop (`,
          h('strong', null, `${formatDrop(data.fullDrop)} points`),
          `, every layer quantized) is won back when ALL BUT that layer are quantized. Simulated (fake-quant) execution${data.basis === 'agreement' ? '; no labels, so agreement with the float model stands in for accuracy' : ''}.`,
        ),
      ),
      h(
        'div',
        { class: 'panel' },
        data.rows.length > shown.length
          ? h('p', { class: 'muted caption' }, `The ${shown.length} most sensitive of ${data.rows.length} layers; the table lists all.`)
          : null,
        data.missing > 0 ? h('p', { class: 'muted caption' }, `${data.missing} layer(s) have no sensitivity measurement.`) : null,
        box,
      ),
      this.table(data),
    );
    this.dirty = true;
  }

  /** Draws the chart once the tab is visible: Chart.js sizes itself from its container. */
  shown(): void {
    if (this.dirty) this.draw();
  }

  /** New theme colours: redraw now if visible, else when shown. */
  refresh(visible: boolean): void {
    if (!this.data) return;
    if (visible) this.draw();
    else this.dirty = true;
  }

  private draw(): void {
    this.destroyChart();
    this.dirty = false;
    if (!this.data || !this.canvas) return;
    this.chart = sensitivityChart(this.canvas, this.data, this.data.rows.slice(0, MAX_BARS), readTheme());
  }

  private destroyChart(): void {
    this.chart?.destroy();
    this.chart = undefined;
  }

  private table(data: SensitivityData): HTMLElement {
    const acc = (m: { top1: number | null; agreement: number }) =>
      data.basis === 'top1' && m.top1 !== null ? formatPercent(m.top1) : formatPercent(m.agreement);
    const accName = data.basis === 'top1' ? 'top-1' : 'agreement';
    const tbody = h(
      'tbody',
      null,
      data.rows.map((r) => {
        const tr = h(
          'tr',
          { 'data-node': r.node, tabindex: 0, title: 'Open this layer in the Layers tab' },
          h('td', { class: 'num' }, `#${r.rank}`),
          h('td', null, h('span', { class: 'node-name' }, r.node)),
          h('td', null, r.op),
          h('td', { class: `num ${r.damage >= 3 ? 'bad' : r.damage >= 1 ? 'warn' : ''}` }, formatDrop(r.damage)),
          h('td', { class: 'num' }, acc(r.onlyThis)),
          h('td', { class: 'num' }, formatDb(r.onlyThis.outputSqnrDb)),
          h('td', { class: `num${r.recovery !== null && r.recovery >= 1 ? ' good' : ''}` }, r.recovery === null ? '—' : formatDrop(r.recovery)),
          h('td', { class: 'num' }, r.allButThis ? acc(r.allButThis) : '—'),
          h('td', { class: 'num' }, r.allButThis ? formatDb(r.allButThis.outputSqnrDb) : '—'),
        );
        return tr;
      }),
    );
    const open = (e: Event) => {
      const tr = (e.target as Element | null)?.closest('tr');
      const node = tr?.getAttribute('data-node');
      if (node !== null && node !== undefined) this.options.onOpenLayer(node);
    };
    tbody.addEventListener('click', open);
    tbody.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        open(e);
      }
    });
    return h(
      'div',
      { class: 'panel' },
      h('h3', null, 'All layers, most sensitive first ', h('span', { class: 'muted' }, '· click or Enter opens the layer')),
      h(
        'div',
        { class: 'table-scroll' },
        h(
          'table',
          { id: 'sensitivity-table', class: 'data-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { rowspan: 2, class: 'num' }, 'Rank'),
              h('th', { rowspan: 2 }, 'Layer'),
              h('th', { rowspan: 2 }, 'Op'),
              h('th', { colspan: 3, class: 'group' }, 'Only this layer quantized'),
              h('th', { colspan: 3, class: 'group' }, 'All but this layer quantized'),
            ),
            h(
              'tr',
              null,
              h('th', { class: 'num', title: `Drop in points (${data.basis === 'top1' ? 'top-1 vs float' : 'agreement'})` }, 'Damage pts'),
              h('th', { class: 'num' }, accName),
              h('th', { class: 'num' }, 'Output SQNR dB'),
              h('th', { class: 'num', title: `Points of the ${formatDrop(data.fullDrop)}-point whole-model drop won back` }, 'Recovery pts'),
              h('th', { class: 'num' }, accName),
              h('th', { class: 'num' }, 'Output SQNR dB'),
            ),
          ),
          tbody,
        ),
      ),
    );
  }
}
