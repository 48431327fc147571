// The per-layer table. Reports can have hundreds of layers, so rows are built once into a
// DocumentFragment, sorting re-appends the existing <tr>s in the new order, and events are
// delegated to the <tbody> instead of being attached per row.
import { COLUMNS, columnFor, DEFAULT_SORT, sortRows, type SortKey } from './layerColumns';
import { h, markRowSelected, revealRow, showSort, sortableHeaderRow } from './dom';
import { formatDb } from './format';
import { hazardText, integerDiffOf, integerHazard } from './integerDiff';
import type { LayerRow, ReportIndex, RowFlags } from './reportData';

export interface LayerTableOptions {
  sqnrWarningDb: number;
  flags: RowFlags;
  sortKey?: string;
  sortDescending?: boolean;
  onSelect(node: string): void;
  onSortChange(key: SortKey, descending: boolean): void;
}

// SQNR meter scale: 40 dB is comfortably good for 8-bit, so the bar saturates there.
const SQNR_BAR_FULL_DB = 40;

export class LayerTable {
  readonly element: HTMLTableElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly trByNode = new Map<string, HTMLTableRowElement>();
  private readonly headerButtons = new Map<SortKey, HTMLButtonElement>();
  private sortKey: SortKey;
  private descending: boolean;
  private selected: string | undefined;

  constructor(
    private readonly index: ReportIndex,
    private readonly options: LayerTableOptions,
  ) {
    const column = columnFor(options.sortKey);
    this.sortKey = column ? column.key : DEFAULT_SORT.key;
    this.descending = column ? !!options.sortDescending : DEFAULT_SORT.descending;

    const headRow = sortableHeaderRow(COLUMNS, this.headerButtons, (key) => this.onHeaderClick(key));

    this.tbody = h('tbody');
    const fragment = document.createDocumentFragment();
    for (const row of index.rows) {
      const tr = this.buildRow(row);
      this.trByNode.set(row.layer.node, tr);
      fragment.appendChild(tr);
    }
    this.tbody.appendChild(fragment);
    this.tbody.addEventListener('click', (e) => this.onClick(e));
    this.tbody.addEventListener('keydown', (e) => this.onKeyDown(e));

    const warned = options.flags.belowThreshold.size;
    this.element = h(
      'table',
      {
        id: 'layer-table',
        class: 'layer-table',
        role: 'grid',
        'aria-readonly': 'true',
        'aria-label': `Quantized layers (${index.rows.length}); ${warned} with their own (isolated) integer SQNR below ${options.sqnrWarningDb} dB`,
      },
      h('thead', null, headRow),
      this.tbody,
    );
    this.applySort();
  }

  private buildRow(row: LayerRow): HTMLTableRowElement {
    const { flags, sqnrWarningDb } = this.options;
    const node = row.layer.node;
    const below = flags.belowThreshold.has(node);
    const culprit = flags.culprits.get(node);
    const victim = flags.victims.get(node);
    const classes = ['layer-row'];
    if (culprit) classes.push('worst', 'culprit');
    if (below) classes.push('below-threshold');
    if (victim) classes.push('victim');
    if (row.layer.integerKernel === null) classes.push('float-kernel');
    const hazard = integerHazard(row.layer, flags.u8s8Possible);
    if (hazard) classes.push('int-hazard');

    const tr = h('tr', { class: classes.join(' '), 'data-node': node, tabindex: -1, 'aria-selected': 'false' });
    for (const c of COLUMNS) {
      const td = h('td', { class: `col-${c.key}${c.numeric ? ' num' : ''}` });
      if (c.key === 'node') {
        if (below) {
          td.appendChild(
            h(
              'span',
              {
                class: 'marker marker-warn',
                title: `Its own error: isolated integer SQNR ${formatDb(row.layer.isolated.integer.sqnrDb)} dB is below the ${sqnrWarningDb} dB warning threshold`,
                'aria-label': 'own SQNR below threshold',
              },
              '⚠',
            ),
          );
        }
        td.appendChild(h('span', { class: 'node-name', title: node }, node));
        if (culprit) {
          td.appendChild(
            h(
              'span',
              { class: 'tag tag-lowest tag-culprit', title: `Culprit #${culprit.rank} by the damage it does itself: ${culprit.why}` },
              `culprit #${culprit.rank}`,
            ),
          );
        }
        if (victim) {
          td.appendChild(
            h(
              'span',
              { class: 'tag tag-victim', title: `Victim: its accumulated error comes from upstream${victim.from ? ` (${victim.from})` : ''}, not from itself` },
              'victim',
            ),
          );
        }
        if (hazard) {
          // Text, not only colour: "overflow" beats "u8s8" when both apply, it is the worse one.
          const overflow = hazard.accumulatorOverflows > 0;
          const text = hazardText(hazard);
          td.appendChild(
            h(
              'span',
              {
                class: `tag tag-hazard${overflow ? ' tag-overflow' : ''}`,
                title: `${text}. See "Simulated vs integer" in the layer detail.`,
                'aria-label': text,
              },
              overflow ? '⊘ overflow' : 'u8s8',
            ),
          );
        }
      } else if (c.key === 'sqnrInt') {
        const sqnr = row.layer.integer.sqnrDb;
        const meter = h('span', { class: `meter${below ? ' meter-bad' : ''}`, 'aria-hidden': 'true' });
        const share = sqnr === Infinity ? 1 : Number.isFinite(sqnr) ? Math.max(0, Math.min(1, sqnr / SQNR_BAR_FULL_DB)) : 0;
        meter.style.width = `${(share * 100).toFixed(1)}%`;
        td.append(h('span', { class: 'meter-track', 'aria-hidden': 'true' }, meter), h('span', { class: 'cell-text' }, c.text(row)));
      } else if (c.key === 'clip') {
        td.textContent = c.text(row);
        const clip = row.output?.clipRate ?? 0;
        // Clip rates above 1% usually mean the calibration range is too tight for this tensor.
        if (clip > 0.01) td.classList.add('warn');
      } else if (c.key === 'kernel') {
        td.appendChild(h('span', { class: row.layer.integerKernel ? 'kernel' : 'kernel kernel-float' }, c.text(row)));
      } else {
        td.textContent = c.text(row);
        // Accumulated SQNR is a measurement, not blame: only the layer's own (isolated) error is marked.
        if (c.key === 'isolated' && below) td.classList.add('bad');
        if (c.key === 'mismatch' && row.layer.simVsIntMismatch > 0.001) td.classList.add('warn');
        if (c.key === 'refOrt') {
          const rate = integerDiffOf(row.layer)?.referenceVsOrt.mismatchRate;
          if (rate === undefined) td.classList.add('muted');
          else if (rate > 0.001) td.classList.add('warn');
        }
      }
      tr.appendChild(td);
    }
    return tr;
  }

  private onHeaderClick(key: SortKey): void {
    if (key === this.sortKey) this.descending = !this.descending;
    else {
      this.sortKey = key;
      this.descending = !!columnFor(key)?.firstDescending;
    }
    this.applySort();
    this.options.onSortChange(this.sortKey, this.descending);
  }

  private applySort(): void {
    const sorted = sortRows(this.index.rows, this.sortKey, this.descending);
    const fragment = document.createDocumentFragment();
    for (const row of sorted) {
      const tr = this.trByNode.get(row.layer.node);
      if (tr) fragment.appendChild(tr);
    }
    this.tbody.appendChild(fragment);
    showSort(this.headerButtons, this.sortKey, this.descending);
  }

  get firstNode(): string | undefined {
    return (this.tbody.firstElementChild as HTMLTableRowElement | null)?.dataset.node;
  }

  get selectedNode(): string | undefined {
    return this.selected;
  }

  /** Marks a row selected; it becomes the single tab stop of the table (roving tabindex). */
  select(node: string, opts: { focus?: boolean; scroll?: boolean } = {}): void {
    const tr = this.trByNode.get(node);
    if (!tr) return;
    if (this.selected !== undefined && this.selected !== node) {
      const previous = this.trByNode.get(this.selected);
      if (previous) markRowSelected(previous, false);
    }
    this.selected = node;
    markRowSelected(tr, true);
    if (opts.focus) tr.focus({ preventScroll: true });
    if (opts.scroll || opts.focus) revealRow(tr);
  }

  private rowFromEvent(e: Event): HTMLTableRowElement | null {
    const target = e.target as Element | null;
    const tr = target?.closest('tr');
    return tr && tr.parentElement === this.tbody ? tr : null;
  }

  private choose(tr: HTMLTableRowElement, focus: boolean): void {
    const node = tr.dataset.node;
    if (node === undefined) return;
    this.select(node, { focus });
    this.options.onSelect(node);
  }

  private onClick(e: MouseEvent): void {
    const tr = this.rowFromEvent(e);
    if (tr) this.choose(tr, true);
  }

  private onKeyDown(e: KeyboardEvent): void {
    const tr = this.rowFromEvent(e);
    if (!tr) return;
    let next: Element | null = null;
    switch (e.key) {
      case 'Enter':
      case ' ':
        e.preventDefault();
        this.choose(tr, true);
        return;
      case 'ArrowDown':
        next = tr.nextElementSibling;
        break;
      case 'ArrowUp':
        next = tr.previousElementSibling;
        break;
      case 'Home':
        next = this.tbody.firstElementChild;
        break;
      case 'End':
        next = this.tbody.lastElementChild;
        break;
      case 'PageDown':
        next = stepRows(tr, 10, true);
        break;
      case 'PageUp':
        next = stepRows(tr, 10, false);
        break;
      default:
        return;
    }
    e.preventDefault();
    if (next instanceof HTMLTableRowElement) this.choose(next, true);
  }
}

function stepRows(tr: Element, n: number, forward: boolean): Element | null {
  let cur: Element = tr;
  for (let i = 0; i < n; i++) {
    const sib = forward ? cur.nextElementSibling : cur.previousElementSibling;
    if (!sib) break;
    cur = sib;
  }
  return cur === tr ? null : cur;
}
