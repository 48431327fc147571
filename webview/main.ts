// Entry point of the QuantLens report view: wires the host (VS Code or a standalone export) to the
// summary, the layer table and the layer detail.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { ToWebview } from '../protocol/messages';
import type { Report } from '../protocol/report';
import { clear, h } from './dom';
import { connectHost, readEmbeddedReport, type Host } from './host';
import { LayerDetail } from './layerDetail';
import { LayerTable } from './layerTable';
import { flagRows, indexReport, normalizeReport, worstLayer, type ReportIndex } from './reportData';
import { renderSummary } from './summary';

// The host pages (extension/reportPanel.ts, extension/export.ts) provide <div id="app">; any other
// page gets a root appended to <body>.
const ROOT_IDS = ['quantlens-app', 'app'];

class App {
  private readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly content: HTMLElement;
  private detail: LayerDetail | undefined;
  private index: ReportIndex | undefined;
  private pendingDetail = 0;

  constructor(private readonly host: Host) {
    this.root = ROOT_IDS.map((id) => document.getElementById(id)).find((el) => el !== null) ?? document.body.appendChild(h('main', { id: ROOT_IDS[0] }));
    this.root.classList.add('quantlens', host.inVsCode ? 'in-vscode' : 'standalone');
    this.status = h('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
    this.content = h('div', { class: 'content' },
      h('p', { class: 'placeholder muted' }, host.inVsCode ? 'Waiting for the analysis…' : 'Loading report…'));
    clear(this.root);
    this.root.append(this.toolbar(), this.status, this.content);
    watchTheme(() => this.detail?.refresh());
  }

  private toolbar(): HTMLElement {
    const bar = h('header', { class: 'toolbar' }, h('span', { class: 'brand' }, 'QuantLens'), h('span', { class: 'brand-sub muted' }, 'quantization report'));
    // A standalone export has nobody to send export requests to.
    if (this.host.inVsCode) {
      const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Export' });
      for (const [format, label] of [['json', 'Export JSON'], ['csv', 'Export CSV'], ['html', 'Export HTML']] as const) {
        // Disabled until a report arrives: there is nothing to export before that.
        const button = h('vscode-button', { secondary: true, disabled: true, id: `export-${format}`, 'data-format': format }, label);
        button.addEventListener('click', () => this.host.post({ type: 'export', format }));
        actions.append(button);
      }
      bar.append(actions);
    }
    return bar;
  }

  showBusy(message: string): void {
    clear(this.status);
    this.status.className = 'status busy';
    this.status.append(h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', null, message || 'Working…'));
    this.root.classList.add('is-busy');
  }

  showError(message: string): void {
    clear(this.status);
    this.status.className = 'status error';
    this.status.setAttribute('role', 'alert');
    this.status.append(h('strong', null, 'Error: '), h('span', null, message));
    this.root.classList.remove('is-busy');
    // Keep a report that is already shown (a re-run failed); only drop the "waiting" placeholder.
    if (!this.index) clear(this.content);
  }

  private clearStatus(): void {
    clear(this.status);
    this.status.className = 'status';
    this.status.setAttribute('role', 'status');
    this.root.classList.remove('is-busy');
  }

  showReport(raw: unknown, sqnrWarningDb: number): void {
    let report: Report;
    try {
      report = normalizeReport(raw);
    } catch (e) {
      this.showError((e as Error).message);
      return;
    }
    this.clearStatus();
    this.detail?.destroy();
    for (const b of this.root.querySelectorAll('.actions vscode-button')) b.removeAttribute('disabled');
    const index = indexReport(report);
    this.index = index;
    const state = this.host.state();
    const flags = flagRows(index.rows, sqnrWarningDb);

    const table = new LayerTable(index, {
      sqnrWarningDb,
      flags,
      sortKey: state.sortKey,
      sortDescending: state.sortDescending,
      onSelect: (node) => this.select(node),
      onSortChange: (sortKey, sortDescending) => this.host.saveState({ sortKey, sortDescending }),
    });
    const detail = new LayerDetail({
      sqnrWarningDb,
      onReveal: this.host.inVsCode ? (node) => this.host.post({ type: 'revealLayer', node }) : undefined,
    });
    this.detail = detail;

    const below = flags.belowThreshold.size;
    const tableSection = h('section', { class: 'table-section', 'aria-label': 'Layers' },
      h('div', { class: 'section-head' },
        h('h2', null, 'Layers ', h('vscode-badge', { variant: 'counter' }, String(index.rows.length))),
        h('span', { class: 'muted legend' },
          below > 0 ? h('span', { class: 'marker marker-warn' }, '⚠ ') : null,
          `${below} below ${sqnrWarningDb} dB integer SQNR · “worst #n” = lowest integer SQNR · click a header to sort, ↑/↓ to browse`)),
      h('div', { class: 'table-scroll' }, table.element));

    clear(this.content);
    this.content.append(renderSummary(report), tableSection, detail.element);

    // A saved selection survives reloads and re-runs; otherwise start on the worst layer, which is
    // also the first row under the default sort (integer SQNR ascending).
    const saved = state.selectedLayer;
    const initial = saved !== undefined && index.byNode.has(saved) ? saved : (worstLayer(index.rows)?.layer.node ?? table.firstNode);
    if (initial !== undefined) {
      table.select(initial, { scroll: true });
      this.renderDetail(initial);
    }
  }

  private select(node: string): void {
    this.host.saveState({ selectedLayer: node });
    // Holding an arrow key fires selections faster than charts can be built: draw the latest only.
    cancelAnimationFrame(this.pendingDetail);
    this.pendingDetail = requestAnimationFrame(() => this.renderDetail(node));
  }

  private renderDetail(node: string): void {
    const row = this.index?.byNode.get(node);
    if (row) this.detail?.show(row);
  }

  handle(message: ToWebview): void {
    switch (message.type) {
      case 'report': this.showReport(message.report, message.sqnrWarningDb); break;
      case 'busy': this.showBusy(message.message); break;
      case 'error': this.showError(message.message); break;
    }
  }
}

/** VS Code swaps body classes and the --vscode-* variables on a theme change; canvases must be redrawn. */
function watchTheme(onChange: () => void): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const observer = new MutationObserver(() => {
    clearTimeout(timer);
    timer = setTimeout(onChange, 50);
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
}

function isToWebview(data: unknown): data is ToWebview {
  if (data === null || typeof data !== 'object') return false;
  const type = (data as { type?: unknown }).type;
  return type === 'report' || type === 'busy' || type === 'error';
}

function start(): void {
  const host = connectHost();
  const app = new App(host);
  if (host.inVsCode) {
    window.addEventListener('message', (event: MessageEvent) => {
      if (isToWebview(event.data)) app.handle(event.data);
    });
    host.post({ type: 'ready' });
    return;
  }
  try {
    const { raw, sqnrWarningDb } = readEmbeddedReport();
    app.showReport(raw, sqnrWarningDb);
  } catch (e) {
    app.showError((e as Error).message);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
