// The Sweep tab: every configuration of a sweep as a sortable table and a drop-vs-size scatter
// with the Pareto front. Picking a configuration (a point, or Enter / double-click on a row) asks
// the host to analyze it in full; the standalone page has no host, so there it only selects.
import type { SweepEntry, SweepReport } from '../protocol/report';
import { clear, h, markRowSelected, revealRow, showSort, sortableHeaderRow } from './dom';
import { basename, formatNumber, formatPercent } from './format';
import { readTheme } from './theme';
import { sweepChart, type SweepChartHandle } from './viewCharts';
import {
  basisShort,
  basisText,
  DEFAULT_SWEEP_SORT,
  dropPhrase,
  formatDrop,
  formatMs,
  isSweepSortKey,
  plottable,
  sortSweep,
  sweepBasis,
  sweepColumns,
  wantsLogDrop,
  type DropBasis,
  type SweepColumn,
  type SweepSortKey,
} from './viewData';
import { axisToggle, hint } from './views';

export interface SweepViewOptions {
  inVsCode: boolean;
  sortKey?: string;
  sortDescending?: boolean;
  /** Present inside VS Code: open the full per-layer report of a configuration. */
  onOpen?: (id: number) => void;
  /** Present inside VS Code: the user selected a configuration (commands act on it from now on). */
  onSelect?: (id: number) => void;
  /** Present inside VS Code: search mixed precision starting from a configuration. */
  onMixedPrecision?: (id: number) => void;
  onSortChange(key: SweepSortKey, descending: boolean): void;
}

export class SweepView {
  readonly element: HTMLElement;
  private sweep: SweepReport | undefined;
  private basis: DropBasis = 'top1';
  private columns: SweepColumn[] = [];
  private handle: SweepChartHandle | undefined;
  private canvas: HTMLCanvasElement | undefined;
  private tbody: HTMLTableSectionElement | undefined;
  private readonly trById = new Map<number, HTMLTableRowElement>();
  private readonly headerButtons = new Map<SweepSortKey, HTMLButtonElement>();
  private sortKey: SweepSortKey;
  private descending: boolean;
  private selected: number | undefined;
  private pickedBar: HTMLElement | undefined;
  private dirty = false;
  /** Log drop axis; undefined until the user picks, then kept across sweeps. */
  private logY: boolean | undefined;

  constructor(private readonly options: SweepViewOptions) {
    const known = isSweepSortKey(options.sortKey);
    this.sortKey = known ? (options.sortKey as SweepSortKey) : DEFAULT_SWEEP_SORT.key;
    this.descending = known ? !!options.sortDescending : DEFAULT_SWEEP_SORT.descending;
    this.element = h('section', { id: 'sweep', class: 'view', 'aria-label': 'Sweep' });
    this.element.append(
      hint('No sweep yet', [
        options.inVsCode
          ? 'Run “QuantLens: Sweep Configurations...” from the Command Palette (or a model’s context menu) to compare quantization configurations: accuracy drop against model size, with the Pareto front.'
          : 'This session ran no sweep. In VS Code, “QuantLens: Sweep Configurations...” compares many configurations here.',
      ]),
    );
  }

  get count(): number {
    return this.sweep?.configs.length ?? 0;
  }

  setSweep(sweep: SweepReport): void {
    this.handle?.chart.destroy();
    this.handle = undefined;
    this.sweep = sweep;
    this.basis = sweepBasis(sweep);
    this.columns = sweepColumns(this.basis);
    this.trById.clear();
    this.headerButtons.clear();
    if (this.selected !== undefined && !sweep.configs.some((e) => e.id === this.selected)) this.selected = undefined;

    const failed = sweep.configs.filter((e) => e.error).length;
    const front = sweep.configs.filter((e) => e.pareto).length;
    const t = sweep.timings;
    const canvas = h('canvas', {
      id: 'sweep-chart',
      role: 'img',
      'data-points': '0',
      'aria-label': `Scatter of ${this.basis === 'sqnr' ? 'output SQNR' : `${basisShort(this.basis)} drop`} against model size for ${sweep.configs.length - failed} configurations; ${front} on the Pareto front`,
    });
    this.canvas = canvas;
    const log = this.logY ?? wantsLogDrop(sweep.configs.filter(plottable).map((e) => e.drop));

    clear(this.element);
    this.element.append(
      ...[
        h(
          'div',
          { class: 'view-head' },
          h('h2', null, 'Configuration sweep ', h('span', { class: 'muted' }, basename(sweep.model.path))),
          h(
            'p',
            { class: 'muted view-lede' },
            `${sweep.configs.length} configurations on ${sweep.samples} samples of ${sweep.data.synthetic ? 'SYNTHETIC data' : sweep.data.source}`,
            sweep.floatTop1 !== null ? ` · float top-1 ${formatPercent(sweep.floatTop1)}` : '',
            this.basis === 'sqnr'
              ? ` · ranked by the integer-execution ${basisText(this.basis)}`
              : ` · drop = integer-execution ${basisText(this.basis)}, in points`,
          ),
        ),
        sweep.data.synthetic
          ? h(
              'div',
              { class: 'banner banner-warning compact', role: 'alert' },
              h('strong', null, 'SYNTHETIC data'),
              ' — drops on random inputs say little about real accuracy.',
            )
          : null,
        h(
          'dl',
          { id: 'sweep-timings', class: 'timings', 'aria-label': 'Sweep timings' },
          h('div', null, h('dt', null, 'Calibration pass (once)'), h('dd', null, formatMs(t.prepareMs))),
          h('div', null, h('dt', null, 'First configuration'), h('dd', null, formatMs(t.firstConfigMs))),
          h('div', null, h('dt', null, 'Each further one'), h('dd', null, sweep.configs.length > 1 ? `${formatMs(t.meanExtraConfigMs)} (mean)` : '–')),
          h(
            'div',
            null,
            h('dt', null, 'Total (about)'),
            h('dd', null, formatMs(t.prepareMs + t.firstConfigMs + Math.max(0, sweep.configs.length - 1) * t.meanExtraConfigMs)),
          ),
        ),
        h(
          'div',
          { class: 'panel' },
          h(
            'div',
            { class: 'chart-tools' },
            h('h3', null, 'Drop vs model size'),
            axisToggle('sweep-axis', log, (v) => {
              this.logY = v;
              this.draw();
            }),
          ),
          h('div', { class: 'chart-box chart-sweep' }, canvas),
          h(
            'p',
            { class: 'caption muted' },
            `★ Pareto front: ${front} configuration${front === 1 ? '' : 's'} no other one beats on both drop and size.`,
            failed ? ` ${failed} configuration${failed === 1 ? '' : 's'} failed and ${failed === 1 ? 'is' : 'are'} not plotted.` : '',
            this.options.onOpen ? ' Click a point to analyze that configuration layer by layer.' : '',
          ),
        ),
        this.tableSection(sweep),
      ].filter((el): el is HTMLElement => el !== null),
    );
    this.applySort();
    if (this.selected !== undefined) this.select(this.selected, {});
    this.dirty = true;
  }

  shown(): void {
    if (this.dirty) this.draw();
  }

  refresh(visible: boolean): void {
    if (!this.sweep) return;
    if (visible) this.draw();
    else this.dirty = true;
  }

  private draw(): void {
    this.handle?.chart.destroy();
    this.handle = undefined;
    this.dirty = false;
    if (!this.sweep || !this.canvas) return;
    const log = this.logY ?? wantsLogDrop(this.sweep.configs.filter(plottable).map((e) => e.drop));
    this.handle = sweepChart(this.canvas, this.sweep.configs, this.basis, log, readTheme(), (id) => this.pick(id), !!this.options.onOpen);
    this.handle.highlight(this.selected);
  }

  /** A point was clicked: select its row, then ask the host for the full report. */
  private pick(id: number): void {
    this.select(id, { scroll: true, user: true });
    this.open(id);
  }

  /** The selected configuration and what can be done with it (the commands act on it too). */
  private renderPicked(e: SweepEntry): void {
    const bar = this.pickedBar;
    if (!bar) return;
    clear(bar);
    bar.setAttribute('data-config', JSON.stringify(e.config));
    bar.setAttribute('data-id', String(e.id));
    bar.append(h('span', null, h('strong', null, `#${e.id + 1} ${e.label}`), h('span', { class: 'muted' }, e.error ? ' · failed' : ` · ${dropPhrase(e)}`)));
    if (e.error) return;
    if (this.options.onOpen) {
      const b = h('vscode-button', { secondary: true, id: 'sweep-analyze', title: 'Analyze this configuration layer by layer, with its diagnosis' }, 'Analyze');
      b.addEventListener('click', () => this.open(e.id));
      bar.append(b);
    }
    if (this.options.onMixedPrecision) {
      const b = h(
        'vscode-button',
        { secondary: true, id: 'sweep-mixed', title: 'Keep layers in float until the drop meets a budget, starting from THIS configuration' },
        'Mixed precision…',
      );
      b.addEventListener('click', () => this.options.onMixedPrecision?.(e.id));
      bar.append(b);
    }
  }

  private open(id: number): void {
    const entry = this.sweep?.configs.find((e) => e.id === id);
    if (!entry || entry.error) return;
    this.options.onOpen?.(id);
  }

  private tableSection(sweep: SweepReport): HTMLElement {
    const headRow = sortableHeaderRow(this.columns, this.headerButtons, (key) => this.onHeaderClick(key));
    const tbody = h('tbody');
    this.tbody = tbody;
    for (const e of sweep.configs) {
      const tr = this.buildRow(e);
      this.trById.set(e.id, tr);
      tbody.append(tr);
    }
    // The first row is the tab stop until one is selected (roving tabindex).
    tbody.addEventListener('click', (ev) => {
      const tr = this.rowFromEvent(ev);
      if (tr) this.select(Number(tr.dataset.config), { focus: true, user: true });
    });
    tbody.addEventListener('dblclick', (ev) => {
      const tr = this.rowFromEvent(ev);
      if (tr) this.open(Number(tr.dataset.config));
    });
    tbody.addEventListener('keydown', (ev) => this.onKeyDown(ev));
    const table = h(
      'table',
      {
        id: 'sweep-table',
        class: 'data-table sweep-table',
        role: 'grid',
        'aria-readonly': 'true',
        'aria-label': `Sweep configurations (${sweep.configs.length})`,
      },
      h('thead', null, headRow),
      tbody,
    );
    const how = this.options.onOpen
      ? 'click a header to sort, ↑/↓ to browse, Enter or double-click analyzes the configuration'
      : 'click a header to sort, ↑/↓ to browse';
    this.pickedBar = h(
      'div',
      { id: 'sweep-picked', class: 'picked-bar', role: 'status', 'aria-live': 'polite' },
      h('span', { class: 'muted' }, 'Select a configuration to act on it.'),
    );
    return h(
      'section',
      { class: 'table-section', 'aria-label': 'Configurations' },
      h(
        'div',
        { class: 'section-head' },
        h('h3', null, 'Configurations ', h('vscode-badge', { variant: 'counter' }, String(sweep.configs.length))),
        h('span', { class: 'muted legend' }, how),
      ),
      this.pickedBar,
      h('div', { class: 'table-scroll' }, table),
    );
  }

  private buildRow(e: SweepEntry): HTMLTableRowElement {
    const classes = ['sweep-row'];
    if (e.pareto) classes.push('pareto');
    if (e.error) classes.push('failed');
    const tr = h('tr', { class: classes.join(' '), 'data-config': e.id, tabindex: -1, 'aria-selected': 'false' });
    for (const c of this.columns) {
      const td = h('td', { class: `col-${c.key}${c.numeric ? ' num' : ''}` }, c.text(e));
      if (c.key === 'label') td.setAttribute('title', e.label);
      if (c.key === 'drop' && !e.error && Number.isFinite(e.drop)) {
        // SQNR-judged entries hold minus the SQNR: 30 dB and more is good (the default floor), under 20 dB bad
        const grade = e.dropBasis === 'sqnr' ? (-e.drop >= 30 ? 'good' : -e.drop >= 20 ? 'warn' : 'bad') : e.drop < 1 ? 'good' : e.drop < 3 ? 'warn' : 'bad';
        td.classList.add(grade);
        td.setAttribute(
          'title',
          e.dropBasis === 'sqnr' ? dropPhrase(e) : `${formatDrop(e.drop, 3)} points of ${e.dropBasis === 'top1' ? 'top-1 accuracy' : 'agreement'}`,
        );
      }
      if (c.key === 'size') td.setAttribute('title', `${formatNumber(e.sizeBytes, 8)} bytes`);
      if (c.key === 'pareto' && e.pareto) td.setAttribute('aria-label', 'on the Pareto front');
      if (c.key === 'error' && e.error) {
        td.classList.add('bad');
        td.setAttribute('title', e.error);
      }
      tr.append(td);
    }
    if (!plottable(e)) tr.setAttribute('title', e.error ? `Failed: ${e.error}` : 'Not plotted');
    return tr;
  }

  private onHeaderClick(key: SweepSortKey): void {
    if (key === this.sortKey) this.descending = !this.descending;
    else {
      this.sortKey = key;
      this.descending = !!this.columns.find((c) => c.key === key)?.firstDescending;
    }
    this.applySort();
    this.options.onSortChange(this.sortKey, this.descending);
  }

  private applySort(): void {
    if (!this.sweep || !this.tbody) return;
    const fragment = document.createDocumentFragment();
    for (const e of sortSweep(this.sweep.configs, this.columns, this.sortKey, this.descending)) {
      const tr = this.trById.get(e.id);
      if (tr) fragment.append(tr);
    }
    this.tbody.append(fragment);
    showSort(this.headerButtons, this.sortKey, this.descending);
    if (this.selected === undefined) {
      const first = this.tbody.firstElementChild as HTMLTableRowElement | null;
      for (const tr of this.trById.values()) tr.tabIndex = tr === first ? 0 : -1;
    }
  }

  /** Selects a row (and rings its point); the row becomes the table's single tab stop. */
  select(id: number, opts: { focus?: boolean; scroll?: boolean; user?: boolean }): void {
    const tr = this.trById.get(id);
    if (!tr) return;
    for (const other of this.trById.values()) if (other !== tr) markRowSelected(other, false);
    this.selected = id;
    markRowSelected(tr, true);
    if (opts.focus) tr.focus({ preventScroll: true });
    if (opts.scroll || opts.focus) revealRow(tr);
    this.handle?.highlight(id);
    const entry = this.sweep?.configs.find((e) => e.id === id);
    if (entry) this.renderPicked(entry);
    if (opts.user) this.options.onSelect?.(id);
  }

  private rowFromEvent(e: Event): HTMLTableRowElement | null {
    const tr = (e.target as Element | null)?.closest('tr');
    return tr && tr.parentElement === this.tbody ? tr : null;
  }

  private onKeyDown(e: KeyboardEvent): void {
    const tr = this.rowFromEvent(e);
    if (!tr) return;
    let next: Element | null = null;
    switch (e.key) {
      case 'Enter':
        e.preventDefault();
        this.select(Number(tr.dataset.config), { focus: true, user: true });
        this.open(Number(tr.dataset.config));
        return;
      case ' ':
        e.preventDefault();
        this.select(Number(tr.dataset.config), { focus: true, user: true });
        return;
      case 'ArrowDown':
        next = tr.nextElementSibling;
        break;
      case 'ArrowUp':
        next = tr.previousElementSibling;
        break;
      case 'Home':
        next = tr.parentElement?.firstElementChild ?? null;
        break;
      case 'End':
        next = tr.parentElement?.lastElementChild ?? null;
        break;
      default:
        return;
    }
    e.preventDefault();
    if (next instanceof HTMLTableRowElement) this.select(Number(next.dataset.config), { focus: true, user: true });
  }
}
