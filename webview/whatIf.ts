// What-if on a tensor's histogram: type a threshold, move the slider or drag on the chart, and the
// expected clip and rounding error (whatIfData.ts) update at once, next to the current grid's. One
// button re-measures the model with that range as a tensor override (a new analysis).
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Chart } from 'chart.js';
import type { ErrorSplit } from '../engine/calibration/expectedError';
import type { QuantConfig, Range, TensorReport } from '../protocol/report';
import { setWhatIfMarkers } from './charts';
import { h } from './dom';
import { formatDb, formatNumber, formatPercent } from './format';
import type { Theme } from './theme';
import { currentError, rangeFor, tensorScheme, thresholdBounds, whatIf } from './whatIfData';

export interface WhatIfOptions {
  tensor: TensorReport;
  config: QuantConfig;
  theme: Theme;
  /** Present in VS Code: analyze again with this range for the tensor. */
  onRemeasure?: (tensor: string, range: Range) => void;
}

const SLIDER_STEPS = 1000;

export class WhatIfPanel {
  readonly element: HTMLElement;
  private chart: Chart | undefined;
  private range: Range;
  private readonly scheme;
  private readonly bounds;
  private readonly now: ErrorSplit | null;
  private readonly rows: HTMLTableSectionElement;
  private readonly hiInput: HTMLInputElement;
  private readonly loInput: HTMLInputElement | null;
  private readonly slider: HTMLInputElement;
  private readonly remeasure: HTMLElement | null;

  constructor(private readonly o: WhatIfOptions) {
    const t = o.tensor;
    this.scheme = tensorScheme(o.config, t);
    this.bounds = thresholdBounds(t);
    this.now = currentError(t);
    const chosen = t.chosen!.range;
    this.range = rangeFor(this.scheme, chosen.lo, chosen.hi);
    const symmetric = this.scheme.symmetric;
    const step = String(this.bounds.max / SLIDER_STEPS);
    this.hiInput = h('input', {
      type: 'number',
      id: 'whatif-hi',
      step: 'any',
      min: '0',
      value: formatNumber(this.range.hi, 5),
      'aria-label': symmetric ? 'Threshold |x|' : 'Upper end of the range',
    });
    this.loInput = symmetric
      ? null
      : h('input', { type: 'number', id: 'whatif-lo', step: 'any', max: '0', value: formatNumber(this.range.lo, 5), 'aria-label': 'Lower end of the range' });
    this.slider = h('input', {
      type: 'range',
      id: 'whatif-slider',
      min: String(this.bounds.min),
      max: String(this.bounds.max),
      step,
      value: String(this.range.hi),
      'aria-label': symmetric ? 'Threshold |x|' : 'Upper end of the range',
    });
    this.hiInput.addEventListener('input', () => this.setFromInputs());
    this.loInput?.addEventListener('input', () => this.setFromInputs());
    this.slider.addEventListener('input', () => {
      this.hiInput.value = formatNumber(Number(this.slider.value), 5);
      this.setFromInputs();
    });
    this.rows = h('tbody');
    this.remeasure = o.onRemeasure
      ? h(
          'vscode-button',
          { id: 'whatif-remeasure', title: 'Analyze the model again with this range for this tensor (a tensor override); nothing is written' },
          'Re-measure with this range',
        )
      : null;
    this.remeasure?.addEventListener('click', () => {
      this.remeasure!.setAttribute('disabled', '');
      this.remeasure!.setAttribute('data-pending', '');
      o.onRemeasure?.(t.name, this.range);
    });
    this.element = h(
      'div',
      { class: 'whatif', id: 'whatif', role: 'group', 'aria-labelledby': 'whatif-title' },
      h('h4', { id: 'whatif-title' }, 'What if the threshold were…'),
      h(
        'div',
        { class: 'whatif-inputs' },
        this.loInput ? h('label', null, 'lo ', this.loInput) : null,
        h('label', null, symmetric ? '|x| ≤ ' : 'hi ', this.hiInput),
        this.slider,
      ),
      h(
        'table',
        { class: 'mini whatif-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', null, ''),
            h('th', { class: 'num' }, 'range'),
            h('th', { class: 'num', title: 'Expected MSE per value from clamping values beyond the grid' }, 'clip MSE'),
            h('th', { class: 'num', title: 'Expected MSE per value from rounding inside the grid: step²/12' }, 'rounding MSE'),
            h('th', { class: 'num' }, 'total'),
            h(
              'th',
              { class: 'num', title: 'Share of the histogram beyond the grid, from bins taken as uniform: an estimate, not the measured clip rate' },
              'beyond',
            ),
            h('th', { class: 'num', title: 'Expected SQNR: 10·log10(mean x² / expected MSE)' }, 'SQNR dB'),
          ),
        ),
        this.rows,
      ),
      h(
        'p',
        { class: 'caption muted', id: 'whatif-measured' },
        `Measured on the current grid: clip rate ${formatPercent(o.tensor.clipRate)} (the "beyond" estimate takes histogram bins as uniform).`,
      ),
      h(
        'p',
        { class: 'caption muted' },
        'Drag on the histogram, type, or use the slider. Expected from the histogram, not measured: clipped mass × squared distance to the threshold, plus step²/12 for the rest (exact zeros count as rounding, so that part is an upper bound).',
      ),
      this.remeasure
        ? h('div', { class: 'whatif-actions' }, this.remeasure, h('span', { class: 'muted' }, ' runs a new analysis with this range as a tensor override'))
        : null,
    );
    this.update();
  }

  /** The histogram chart to draw the what-if lines on and to drag on. */
  attach(chart: Chart): void {
    this.chart = chart;
    const canvas = chart.canvas;
    let dragging = false;
    const valueAt = (e: PointerEvent): number | null => {
      const area = chart.chartArea;
      const rect = canvas.getBoundingClientRect();
      const px = e.clientX - rect.left;
      if (px < area.left || px > area.right) return null;
      const v = chart.scales.x.getValueForPixel(px);
      return v === undefined || !Number.isFinite(v) ? null : v;
    };
    canvas.addEventListener('pointerdown', (e) => {
      const v = valueAt(e);
      if (v === null) return;
      dragging = true;
      canvas.setPointerCapture(e.pointerId);
      this.dragTo(v);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!dragging) return;
      const v = valueAt(e);
      if (v !== null) this.dragTo(v);
    });
    const stop = (e: PointerEvent) => {
      dragging = false;
      if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
    };
    canvas.addEventListener('pointerup', stop);
    canvas.addEventListener('pointercancel', stop);
    canvas.classList.add('draggable');
    this.drawLines();
  }

  /** A drag sets the nearer end (one |x| threshold for symmetric schemes). */
  private dragTo(v: number): void {
    if (this.scheme.symmetric || !this.loInput) {
      this.hiInput.value = formatNumber(Math.abs(v), 5);
    } else if (v < 0 || Math.abs(v - this.range.lo) < Math.abs(v - this.range.hi)) {
      this.loInput.value = formatNumber(Math.min(0, v), 5);
    } else {
      this.hiInput.value = formatNumber(Math.max(0, v), 5);
    }
    this.setFromInputs();
  }

  private setFromInputs(): void {
    const hi = Number(this.hiInput.value);
    const lo = this.loInput ? Number(this.loInput.value) : -hi;
    if (!Number.isFinite(hi) || !Number.isFinite(lo) || (hi <= 0 && lo >= 0)) return;
    this.range = rangeFor(this.scheme, lo, hi);
    if (document.activeElement !== this.slider) this.slider.value = String(this.range.hi);
    this.remeasure?.removeAttribute('disabled');
    this.update();
    this.drawLines();
  }

  private drawLines(): void {
    if (this.chart) setWhatIfMarkers(this.chart, this.range, this.o.theme);
  }

  private update(): void {
    const w = whatIf(this.o.tensor, this.scheme, this.range);
    const c = this.o.tensor.chosen!.range;
    this.rows.replaceChildren(
      row('now', `[${formatNumber(c.lo, 4)}, ${formatNumber(c.hi, 4)}]`, this.now, 'whatif-now'),
      row('what-if', `[${formatNumber(w.grid.lo, 4)}, ${formatNumber(w.grid.hi, 4)}]`, w.error, 'whatif-new'),
    );
    this.element.dataset.total = String(w.error.total);
  }
}

function row(name: string, range: string, e: ErrorSplit | null, id: string): HTMLTableRowElement {
  if (!e) return h('tr', { id }, h('th', { scope: 'row' }, name), h('td', { colspan: 6, class: 'muted' }, 'no single-scale grid'));
  return h(
    'tr',
    { id },
    h('th', { scope: 'row' }, name),
    h('td', { class: 'num' }, range),
    h('td', { class: 'num', 'data-clip': String(e.clip) }, formatNumber(e.clip, 3)),
    h('td', { class: 'num', 'data-rounding': String(e.rounding) }, formatNumber(e.rounding, 3)),
    h('td', { class: 'num' }, formatNumber(e.total, 3)),
    h('td', { class: 'num' }, formatPercent(e.clippedShare)),
    h('td', { class: 'num' }, formatDb(e.sqnrDb)),
  );
}
