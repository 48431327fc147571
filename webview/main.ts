// Entry point of the QuantLens report view: wires the host (VS Code or a standalone export) to the
// tabs: Layers (summary, layer table, layer detail), Sensitivity, Sweep and Mixed precision.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { ToWebview } from '../protocol/messages';
import type { MixedPrecisionResult, Report, SweepReport } from '../protocol/report';
import { clear, h } from './dom';
import { connectHost, readEmbeddedSession, type Host } from './host';
import { firstLayerToShow } from './diagnosisData';
import { integerHazard } from './integerDiff';
import { LayerDetail } from './layerDetail';
import { LayerTable } from './layerTable';
import { CompareView, normalizeCompare } from './compareView';
import { MixedPrecisionView } from './mixedPrecisionView';
import { flagRows, indexReport, normalizeMixedPrecision, normalizeReport, normalizeSweep, type ReportIndex } from './reportData';
import { SensitivityView } from './sensitivityView';
import { renderSummary } from './summary';
import { SweepView } from './sweepView';
import { isTabId, Tabs, type TabId } from './views';

// The host pages (extension/reportPanel.ts, extension/export.ts) provide <div id="app">; any other
// page gets a root appended to <body>.
const ROOT_IDS = ['quantlens-app', 'app'];

/**
 * The host replays every view on 'ready', one message after another. When the webview reloads
 * with a saved tab (a restored panel), that replay should land on the saved tab rather than on
 * whatever came last; messages this close together count as the replay.
 */
const REPLAY_GAP_MS = 1000;

class App {
  private readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly content: HTMLElement;
  private readonly tabs: Tabs;
  private readonly sensitivity: SensitivityView;
  private readonly sweep: SweepView;
  private readonly mixed: MixedPrecisionView;
  private readonly compare: CompareView;
  private detail: LayerDetail | undefined;
  private table: LayerTable | undefined;
  private index: ReportIndex | undefined;
  private pendingDetail = 0;
  /** The layer charts were drawn (or the theme changed) while the Layers tab was hidden. */
  private layersDirty = false;
  /** Tabs that have something to show. */
  private readonly filled = new Set<TabId>();
  private readonly savedTab: TabId | undefined;
  private restoring: boolean;
  private lastArrival = performance.now();

  constructor(private readonly host: Host) {
    this.root = ROOT_IDS.map((id) => document.getElementById(id)).find((el) => el !== null) ?? document.body.appendChild(h('main', { id: ROOT_IDS[0] }));
    this.root.classList.add('quantlens', host.inVsCode ? 'in-vscode' : 'standalone');
    this.status = h('div', { id: 'status', class: 'status', role: 'status', 'aria-live': 'polite' });
    this.content = h('div', { class: 'content' }, h('p', { class: 'placeholder muted' }, host.inVsCode ? 'Waiting for the analysis…' : 'Loading report…'));

    const saved = host.state().activeTab;
    this.savedTab = isTabId(saved) ? saved : undefined;
    this.restoring = host.inVsCode && this.savedTab !== undefined;
    this.tabs = new Tabs(this.savedTab ?? 'layers', (tab, byUser) => this.onTab(tab, byUser));
    this.sensitivity = new SensitivityView({ inVsCode: host.inVsCode, onOpenLayer: (node) => this.openLayer(node) });
    const state = host.state();
    this.sweep = new SweepView({
      inVsCode: host.inVsCode,
      sortKey: state.sweepSortKey,
      sortDescending: state.sweepSortDescending,
      onOpen: host.inVsCode ? (id) => host.post({ type: 'openSweepConfig', id }) : undefined,
      onSelect: host.inVsCode ? (id) => host.post({ type: 'selectSweepConfig', id }) : undefined,
      onMixedPrecision: host.inVsCode ? (id) => host.post({ type: 'act', action: 'mixedPrecision', source: { kind: 'sweep', id } }) : undefined,
      onSortChange: (sweepSortKey, sweepSortDescending) => host.saveState({ sweepSortKey, sweepSortDescending }),
    });
    this.mixed = new MixedPrecisionView(host.inVsCode);
    this.compare = new CompareView(host.inVsCode);
    this.tabs.panel('layers').append(this.content);
    this.tabs.panel('sensitivity').append(this.sensitivity.element);
    this.tabs.panel('sweep').append(this.sweep.element);
    this.tabs.panel('mixed').append(this.mixed.element);
    this.tabs.panel('compare').append(this.compare.element);

    clear(this.root);
    this.root.append(this.toolbar(), this.status, this.tabs.element);
    watchTheme(() => this.refreshTheme());
  }

  private onTab(tab: TabId, byUser: boolean): void {
    if (byUser) this.restoring = false;
    this.host.saveState({ activeTab: tab });
    this.showView(tab);
  }

  /** A tab became visible: draw what was left undrawn while it was hidden. */
  private showView(tab: TabId): void {
    switch (tab) {
      case 'layers':
        if (this.layersDirty) {
          this.layersDirty = false;
          this.detail?.refresh();
        }
        break;
      case 'sensitivity':
        this.sensitivity.shown();
        break;
      case 'sweep':
        this.sweep.shown();
        break;
      case 'mixed':
        this.mixed.shown();
        break;
      case 'compare':
        this.compare.shown();
        break;
    }
  }

  private refreshTheme(): void {
    if (this.tabs.isShown('layers')) this.detail?.refresh();
    else this.layersDirty = true;
    this.sensitivity.refresh(this.tabs.isShown('sensitivity'));
    this.sweep.refresh(this.tabs.isShown('sweep'));
    this.mixed.refresh(this.tabs.isShown('mixed'));
  }

  /**
   * A view's data arrived: switch to its tab (the last message is the one the user asked for),
   * except during the replay after a reload, which keeps the saved tab when it has data.
   */
  private arrive(tab: TabId): void {
    const now = performance.now();
    let target = tab;
    if (this.restoring) {
      if (now - this.lastArrival <= REPLAY_GAP_MS && this.savedTab !== undefined && this.filled.has(this.savedTab)) target = this.savedTab;
      else if (now - this.lastArrival > REPLAY_GAP_MS) this.restoring = false;
    }
    this.lastArrival = now;
    if (target !== this.tabs.active) this.tabs.activate(target);
    else this.showView(target);
  }

  private toolbar(): HTMLElement {
    const bar = h('header', { class: 'toolbar' }, h('span', { class: 'brand' }, 'QuantLens'), h('span', { class: 'brand-sub muted' }, 'quantization report'));
    // A standalone export has nobody to send export requests to.
    if (this.host.inVsCode) {
      const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Export' });
      for (const [format, label] of [
        ['json', 'Export JSON'],
        ['csv', 'Export CSV'],
        ['html', 'Export HTML'],
      ] as const) {
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
    // A re-run asked from a button failed: the button can be used again.
    for (const b of this.root.querySelectorAll('[data-pending]')) {
      b.removeAttribute('data-pending');
      b.removeAttribute('disabled');
      const label = b.getAttribute('data-label');
      if (label) b.textContent = label;
    }
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
    this.filled.add('layers').add('sensitivity');
    // Switch first: the layer charts size themselves from the now visible panel.
    this.arrive('layers');
    this.detail?.destroy();
    for (const b of this.root.querySelectorAll('.actions vscode-button')) b.removeAttribute('disabled');
    const index = indexReport(report);
    this.index = index;
    const state = this.host.state();
    const flags = flagRows(report, index.rows, sqnrWarningDb);
    const deployed = !!report.model.quantization && report.model.quantization.kind !== 'float';

    const table = new LayerTable(index, {
      sqnrWarningDb,
      flags,
      sortKey: state.sortKey,
      sortDescending: state.sortDescending,
      onSelect: (node) => this.select(node),
      onSortChange: (sortKey, sortDescending) => this.host.saveState({ sortKey, sortDescending }),
    });
    this.table = table;
    const detail = new LayerDetail({
      sqnrWarningDb,
      report,
      onReveal: this.host.inVsCode ? (node) => this.host.post({ type: 'revealLayer', node }) : undefined,
      // An already-quantized model is analyzed with its own grids: no configuration to change there.
      onWhatIf: this.host.inVsCode && !deployed ? (tensor, range) => this.host.post({ type: 'whatIf', tensor, range }) : undefined,
    });
    this.detail = detail;

    const below = flags.belowThreshold.size;
    const hazards = index.rows.filter((r) => integerHazard(r.layer, flags.u8s8Possible) !== null).length;
    const tableSection = h(
      'section',
      { class: 'table-section', 'aria-label': 'Layers' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', null, 'Layers ', h('vscode-badge', { variant: 'counter' }, String(index.rows.length))),
        h(
          'span',
          { class: 'muted legend' },
          below > 0 ? h('span', { class: 'marker marker-warn' }, '⚠ ') : null,
          `${below} with their own (isolated) integer SQNR below ${sqnrWarningDb} dB`,
          flags.culprits.size > 0 ? ' · “culprit #n” = ranked by the damage the layer does itself' : ' · no culprit badges: no significant drop',
          flags.victims.size > 0 ? ' · “victim” = error inherited from upstream' : '',
          hazards > 0
            ? ` · ${hazards} flagged “⊘ overflow” (int32 accumulator wrapped)${flags.u8s8Possible ? ' or “u8s8” (codes change on the target CPU, x86 without VNNI)' : ''}`
            : '',
          ' · click a header to sort, ↑/↓ to browse',
        ),
      ),
      h('div', { class: 'table-scroll' }, table.element),
    );

    clear(this.content);
    const inVsCode = this.host.inVsCode;
    this.content.append(
      renderSummary(report, {
        onOpenLayer: (node) => this.openLayer(node),
        onApplyFix: inVsCode && report.diagnosis?.fix ? () => this.host.post({ type: 'applyFix' }) : undefined,
        onAct: inVsCode && !deployed ? (action) => this.host.post({ type: 'act', action, source: { kind: 'report' } }) : undefined,
      }),
      tableSection,
      detail.element,
    );
    this.tabs.setBadge('layers', String(index.rows.length), `${index.rows.length} quantized layers`);
    this.sensitivity.setReport(report);
    if (this.tabs.isShown('sensitivity')) this.sensitivity.shown();

    // A saved selection survives reloads and re-runs; otherwise start on the top culprit (the layer
    // doing the most damage itself), never on the lowest accumulated SQNR, which is a victim's.
    const saved = state.selectedLayer;
    const initial = saved !== undefined && index.byNode.has(saved) ? saved : (firstLayerToShow(report) ?? table.firstNode);
    if (initial !== undefined) {
      table.select(initial, { scroll: true });
      this.renderDetail(initial);
    }
    // Drawn into a hidden panel (the replay kept another tab): redraw once Layers is shown.
    this.layersDirty = !this.tabs.isShown('layers');
  }

  showSweep(raw: unknown): void {
    let sweep: SweepReport;
    try {
      sweep = normalizeSweep(raw);
    } catch (e) {
      this.showError((e as Error).message);
      return;
    }
    this.clearStatus();
    this.filled.add('sweep');
    this.sweep.setSweep(sweep);
    this.tabs.setBadge('sweep', String(sweep.configs.length), `${sweep.configs.length} configurations`);
    this.arrive('sweep');
  }

  showMixedPrecision(raw: unknown): void {
    let result: MixedPrecisionResult;
    try {
      result = normalizeMixedPrecision(raw);
    } catch (e) {
      this.showError((e as Error).message);
      return;
    }
    this.clearStatus();
    this.filled.add('mixed');
    this.mixed.setResult(result);
    this.tabs.setBadge('mixed', result.met ? '✓' : '✗', result.met ? 'budget met' : 'budget not met');
    this.arrive('mixed');
  }

  showCompare(raw: unknown): void {
    try {
      const r = normalizeCompare(raw);
      this.clearStatus();
      this.filled.add('compare');
      this.compare.setCompare(r);
      this.tabs.setBadge('compare', String(r.layers.length), `${r.layers.length} layers compared`);
      this.arrive('compare');
    } catch (e) {
      this.showError((e as Error).message);
    }
  }

  /** From the Sensitivity tab or the Diagnosis card: show a layer in the table and the detail. */
  private openLayer(node: string): void {
    if (!this.index?.byNode.has(node)) return;
    this.tabs.activate('layers', true);
    this.table?.select(node, { focus: true, scroll: true });
    this.select(node);
    document.getElementById('layer-detail')?.scrollIntoView({ block: 'start' });
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
      case 'report':
        this.showReport(message.report, message.sqnrWarningDb);
        break;
      case 'sweep':
        this.showSweep(message.sweep);
        break;
      case 'mixedPrecision':
        this.showMixedPrecision(message.result);
        break;
      case 'compare':
        this.showCompare(message.compare);
        break;
      case 'busy':
        this.showBusy(message.message);
        break;
      case 'error':
        this.showError(message.message);
        break;
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
  return type === 'report' || type === 'sweep' || type === 'mixedPrecision' || type === 'compare' || type === 'busy' || type === 'error';
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
  // A standalone export replays every view of the session it was exported from, report last so
  // the page opens on it, as VS Code does.
  try {
    const session = readEmbeddedSession();
    if (session.sweep) app.showSweep(session.sweep);
    if (session.mixedPrecision) app.showMixedPrecision(session.mixedPrecision);
    if (session.compare) app.showCompare(session.compare);
    if (session.report) app.showReport(session.report, session.sqnrWarningDb);
  } catch (e) {
    app.showError((e as Error).message);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
