// Everything about the selected layer: where its tensors' values lie against each method's
// thresholds, how the entropy search behaved, how its weights spread per channel, how large the
// integer error is, where simulation, the integer reference and onnxruntime disagree code by code
// (integerDiffPanel.ts), and the numbers behind the table row.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { Chart } from 'chart.js';
import { formatRate } from '../protocol/format';
import { u8s8Hazard } from '../protocol/platform';
import { CALIBRATION_METHODS, type ErrorMetrics, type Interval, type ModelOutputMetrics, type Range, type Report, type TensorReport } from '../protocol/report';
import { entropyAmax, errorChart, histogramChart, klChart, weightChart } from './charts';
import { clear, h } from './dom';
import { formatCount, formatDb, formatFixed, formatNumber, formatPercent, formatRange, formatScalarOrChannels } from './format';
import { integerDiffOf } from './integerDiff';
import { integerDiffPanel } from './integerDiffPanel';
import type { LayerRow } from './reportData';
import { methodColor, readTheme, type Theme } from './theme';
import { WhatIfPanel } from './whatIf';
import { klPointAt, whatIfApplies } from './whatIfData';

export interface LayerDetailOptions {
  sqnrWarningDb: number;
  /** The report the layers belong to: its configuration (what-if grids) and platform (u8s8). */
  report: Report;
  /** Present only inside VS Code, where the host can jump to the node in the model outline. */
  onReveal?: (node: string) => void;
  /** Present only inside VS Code: re-analyze with a what-if range for one tensor. */
  onWhatIf?: (tensor: string, range: Range) => void;
}

type TensorRole = 'input' | 'output' | 'weight';
interface TensorChoice {
  role: TensorRole;
  tensor: TensorReport;
}

export class LayerDetail {
  readonly element: HTMLElement;
  private charts: Chart[] = [];
  /** Chart constructors queued while the panels are built, run once the panels are in the document. */
  private pending: (() => void)[] = [];
  private row: LayerRow | undefined;
  /** Tensor shown in the histogram, remembered per layer so browsing back keeps the choice. */
  private readonly tensorChoice = new Map<string, string>();
  private readonly weightChoice = new Map<string, string>();

  constructor(private readonly options: LayerDetailOptions) {
    this.element = h(
      'section',
      { id: 'layer-detail', class: 'layer-detail', 'aria-label': 'Layer detail' },
      h('p', { class: 'muted placeholder' }, 'Select a layer in the table to see its histograms and errors.'),
    );
  }

  show(row: LayerRow): void {
    this.row = row;
    this.render();
  }

  /** Re-reads the theme colours, e.g. after the user switched VS Code themes. */
  refresh(): void {
    if (this.row) this.render();
  }

  destroy(): void {
    for (const c of this.charts) c.destroy();
    this.charts = [];
  }

  private render(): void {
    const row = this.row;
    if (!row) return;
    this.destroy();
    const theme = readTheme();
    const layer = row.layer;
    const choices = tensorChoices(row);
    const chosenName = this.tensorChoice.get(layer.node);
    const current = choices.find((c) => c.tensor.name === chosenName) ?? choices.find((c) => c.role === 'output') ?? choices[0];

    // Its own error (isolated) is what the layer is to blame for; accumulated is shown beside it.
    const below = layer.isolated.integer.sqnrDb < this.options.sqnrWarningDb;
    const head = h(
      'header',
      { class: 'detail-head' },
      h(
        'div',
        { class: 'detail-title' },
        h('h2', null, below ? h('span', { class: 'marker marker-warn', 'aria-label': 'own SQNR below threshold' }, '⚠ ') : null, layer.node),
        h('div', { class: 'detail-sub muted' }, `${layer.op} → ${layer.integerKernel ?? 'float (not fused)'} · output ${layer.output}`),
      ),
      h(
        'div',
        { class: 'detail-badges' },
        h(
          'span',
          { class: 'pill', title: 'Only this layer quantized, float inputs: the error it makes itself' },
          'own SQNR ',
          h('vscode-badge', { class: below ? 'badge-bad' : '' }, `${formatDb(layer.isolated.integer.sqnrDb)} dB`),
        ),
        h(
          'span',
          { class: 'pill', title: 'Whole model quantized: includes the error inherited from upstream' },
          'accumulated ',
          h('vscode-badge', null, `${formatDb(layer.integer.sqnrDb)} dB`),
        ),
        layer.sensitivity ? h('span', { class: 'pill' }, 'sensitivity ', h('vscode-badge', null, `#${layer.sensitivity.rank}`)) : null,
        this.options.onReveal ? this.revealButton(layer.node) : null,
      ),
    );

    const grid = h(
      'div',
      { class: 'detail-grid' },
      this.histogramPanel(row, choices, current, theme),
      this.klPanel(current?.tensor, theme),
      this.weightPanel(row, theme),
      this.errorPanel(row, theme),
      this.integerDiffSection(row, theme),
      statsPanel(row, this.options.report.sensitivityInfo?.samples ?? null, samplesNote(this.options.report)),
    );

    clear(this.element);
    this.element.append(head, grid);
    // Charts are created after insertion: Chart.js sizes them from their (now laid out) containers.
    for (const create of this.pending) create();
    this.pending = [];
  }

  private chartBox(id: string, label: string, create: (canvas: HTMLCanvasElement) => Chart): HTMLElement {
    const canvas = h('canvas', { id, role: 'img', 'aria-label': label });
    this.pending.push(() => this.charts.push(create(canvas)));
    return h('div', { class: 'chart-box' }, canvas);
  }

  private revealButton(node: string): HTMLElement {
    const button = h('vscode-button', { secondary: true, title: 'Show this node in the model outline' }, 'Reveal in outline');
    button.addEventListener('click', () => this.options.onReveal?.(node));
    return button;
  }

  private histogramPanel(row: LayerRow, choices: TensorChoice[], current: TensorChoice | undefined, theme: Theme): HTMLElement {
    const panel = h('div', { class: 'panel panel-wide' }, h('h3', null, 'Value histogram and calibration thresholds'));
    if (!current) {
      panel.append(h('p', { class: 'muted' }, `No tensor statistics for ${row.layer.output}.`));
      return panel;
    }
    if (choices.length > 1) {
      const group = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Tensor shown' });
      for (const choice of choices) {
        const pressed = choice === current;
        const button = h(
          'button',
          { type: 'button', class: `seg${pressed ? ' active' : ''}`, 'aria-pressed': String(pressed), title: choice.tensor.name },
          h('span', { class: 'seg-role' }, choice.role),
          ' ',
          shortName(choice.tensor.name, row.layer.node),
        );
        button.addEventListener('click', () => {
          this.tensorChoice.set(row.layer.node, choice.tensor.name);
          this.render();
          this.element.querySelector<HTMLButtonElement>('.segmented .seg.active')?.focus();
        });
        group.append(button);
      }
      panel.append(group);
    }
    const t = current.tensor;
    if (t.degenerate)
      panel.append(
        h(
          'div',
          { class: 'banner banner-warning compact' },
          `Degenerate tensor: ${t.degenerate}${t.nanCount || t.infCount ? ` (${t.nanCount} NaN, ${t.infCount} Inf)` : ''}.`,
        ),
      );
    const whatIf = whatIfApplies(t) ? new WhatIfPanel({ tensor: t, config: this.options.report.config, theme, onRemeasure: this.options.onWhatIf }) : null;
    if (!t.histogram.counts.some((c) => c > 0)) panel.append(h('p', { class: 'muted' }, 'No histogram recorded for this tensor.'));
    else
      panel.append(
        this.chartBox('histogram-chart', `Histogram of ${t.name} with calibration thresholds`, (c) => {
          const chart = histogramChart(c, t, theme);
          whatIf?.attach(chart);
          return chart;
        }),
      );
    const override = this.options.report.config.tensorOverrides?.find((o) => o.tensor === t.name);
    if (override)
      panel.append(
        h(
          'p',
          { class: 'banner compact' },
          h('strong', null, 'Override: '),
          `this tensor's range comes from the configuration's tensor override${override.range ? ` [${formatNumber(override.range.lo)}, ${formatNumber(override.range.hi)}]` : override.calibration ? ` (${override.calibration})` : ''}, not from ${this.options.report.config.calibration}.`,
        ),
      );
    panel.append(h('div', { class: 'threshold-row' }, thresholdTable(t, theme), whatIf?.element ?? null));
    return panel;
  }

  private klPanel(tensor: TensorReport | undefined, theme: Theme): HTMLElement {
    const panel = h('div', { class: 'panel' }, h('h3', null, 'KL divergence (entropy calibration)'));
    const curve = tensor?.klCurve?.filter((p) => Number.isFinite(p.value) && Number.isFinite(p.threshold)) ?? [];
    if (!tensor || curve.length === 0) {
      panel.append(
        h(
          'p',
          { class: 'note muted' },
          tensor?.kind === 'weight' ? 'Weights are calibrated with min/max only: there is no KL curve.' : 'No KL curve recorded for this tensor.',
        ),
      );
      return panel;
    }
    const amax = entropyAmax(tensor);
    const picked = amax !== null ? klPointAt(curve, amax) : null;
    panel.append(
      this.chartBox('kl-chart', `KL divergence per candidate threshold for ${tensor.name}`, (c) => klChart(c, tensor, theme)),
      h(
        'p',
        { class: 'caption muted', id: 'kl-caption' },
        `${shortName(tensor.name, '')}: entropy picks amax ${formatNumber(amax)}`,
        picked ? `, KL ${formatNumber(picked.value)}${picked.isMinimum ? ' (the minimum of the curve)' : ''}` : '',
        `. ${curve.length} of the search's candidates shown (downsampled keeping every bucket's minimum); infinite KL values are left out.`,
      ),
    );
    return panel;
  }

  private weightPanel(row: LayerRow, theme: Theme): HTMLElement {
    const panel = h('div', { class: 'panel' }, h('h3', null, 'Weight ranges per output channel'));
    const weights = row.weights;
    if (weights.length === 0) {
      panel.append(h('p', { class: 'note muted' }, 'This layer has no quantized weights.'));
      return panel;
    }
    const chosenName = this.weightChoice.get(row.layer.node);
    const w = weights.find((t) => t.name === chosenName) ?? weights.find((t) => t.channelRanges?.length) ?? weights[0];
    if (weights.length > 1) {
      const group = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Weight shown' });
      for (const t of weights) {
        const pressed = t === w;
        const b = h(
          'button',
          { type: 'button', class: `seg${pressed ? ' active' : ''}`, 'aria-pressed': String(pressed), title: t.name },
          shortName(t.name, row.layer.node),
        );
        b.addEventListener('click', () => {
          this.weightChoice.set(row.layer.node, t.name);
          this.render();
        });
        group.append(b);
      }
      panel.append(group);
    }
    if (w.channelRanges && w.channelRanges.length > 0) {
      panel.append(this.chartBox('weight-chart', `Per-channel ranges of ${w.name}`, (c) => weightChart(c, w, theme)));
      const caption = w.channelRangesBeforeFold
        ? `${w.channelRanges.length} channels. Folding BatchNorm rescales each channel, which can widen the spread the per-channel scales must cover.`
        : `Scale per channel: ${formatScalarOrChannels(w.chosen?.scale ?? [])}.`;
      panel.append(h('p', { class: 'caption muted' }, caption));
    } else {
      const range = w.chosen?.range ?? { lo: w.min, hi: w.max };
      panel.append(
        h(
          'dl',
          { class: 'kv' },
          h('dt', null, 'Tensor'),
          h('dd', null, w.name),
          h('dt', null, 'Per-tensor range'),
          h('dd', null, formatRange(range.lo, range.hi)),
          h('dt', null, 'Observed'),
          h('dd', null, formatRange(w.min, w.max)),
          h('dt', null, 'Scale'),
          h('dd', null, w.chosen ? formatScalarOrChannels(w.chosen.scale) : '–'),
          h('dt', null, 'Zero point'),
          h('dd', null, w.chosen ? formatScalarOrChannels(w.chosen.zeroPoint) : '–'),
          h('dt', null, 'Clip rate'),
          h('dd', null, formatPercent(w.clipRate)),
        ),
      );
    }
    return panel;
  }

  /** Simulated vs integer reference vs onnxruntime, in codes: only for layers the engine compared. */
  private integerDiffSection(row: LayerRow, theme: Theme): HTMLElement | null {
    const diff = integerDiffOf(row.layer);
    if (!diff) return null;
    const context = {
      u8s8Possible: u8s8Hazard(this.options.report.platform),
      totalSamples: this.options.report.samples,
      share: diff.share ?? this.options.report.integerDiffShare ?? 1,
    };
    return integerDiffPanel(diff, row.layer.node, theme, (id, label, create) => this.chartBox(id, label, create), context);
  }

  private errorPanel(row: LayerRow, theme: Theme): HTMLElement {
    const panel = h('div', { class: 'panel panel-error' }, h('h3', null, 'Integer error distribution'));
    const { lsb, counts } = row.layer.errorHistogram;
    if (lsb.length === 0 || counts.every((c) => c === 0)) {
      panel.append(h('p', { class: 'note muted' }, 'No error histogram recorded for this layer.'));
      return panel;
    }
    const total = counts.reduce((a, b) => a + b, 0);
    const exact = counts[lsb.indexOf(0)] ?? 0;
    const within1 = lsb.reduce((acc, v, i) => acc + (Math.abs(v) <= 1 ? counts[i] : 0), 0);
    panel.append(
      this.chartBox('error-chart', `Distribution of the integer error of ${row.layer.node} in LSB`, (c) => errorChart(c, row.layer, theme)),
      h(
        'p',
        { class: 'caption muted' },
        `${formatCount(total)} values: ${formatPercent(exact / total, 1)} exact, ${formatPercent(within1 / total, 1)} within ±1 LSB; outer bars are clamped at ±16.`,
      ),
    );
    return panel;
  }
}

function tensorChoices(row: LayerRow): TensorChoice[] {
  const out: TensorChoice[] = [];
  const seen = new Set<string>();
  const add = (role: TensorRole, tensor: TensorReport | undefined) => {
    if (!tensor || seen.has(tensor.name)) return;
    seen.add(tensor.name);
    out.push({ role, tensor });
  };
  for (const t of row.inputs) add('input', t);
  add('output', row.output);
  for (const t of row.weights) add('weight', t);
  return out;
}

/** Weight names repeat the node name as a prefix; dropping it keeps the buttons short. */
function shortName(name: string, node: string): string {
  return node && name.startsWith(`${node}:`) ? name.slice(node.length + 1) : name;
}

function thresholdTable(t: TensorReport, theme: Theme): HTMLElement {
  const chosen = t.chosen;
  const rows = CALIBRATION_METHODS.filter((m) => t.thresholds[m]).map((m) => {
    const r = t.thresholds[m]!;
    const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
    swatch.style.backgroundColor = methodColor(theme, m);
    const isChosen = chosen?.method === m;
    return h(
      'tr',
      { class: isChosen ? 'chosen' : null },
      h('th', { scope: 'row' }, swatch, m, isChosen ? h('span', { class: 'tag' }, 'chosen') : null),
      h('td', { class: 'num' }, formatNumber(r.lo)),
      h('td', { class: 'num' }, formatNumber(r.hi)),
    );
  });
  return h(
    'div',
    { class: 'threshold-block' },
    h(
      'table',
      { class: 'mini thresholds' },
      h('thead', null, h('tr', null, h('th', null, 'method'), h('th', { class: 'num' }, 'lo'), h('th', { class: 'num' }, 'hi'))),
      h('tbody', null, rows),
    ),
    h(
      'dl',
      { class: 'kv compact' },
      h('dt', null, 'Observed'),
      h('dd', null, `${formatRange(t.min, t.max)} over ${formatCount(t.count)} values`),
      h('dt', null, 'Grid'),
      h('dd', null, chosen ? `${formatRange(chosen.range.lo, chosen.range.hi)} (${chosen.method})` : 'not quantized'),
      h('dt', null, 'Scale / zero point'),
      h('dd', null, chosen ? `${formatScalarOrChannels(chosen.scale)} / ${formatScalarOrChannels(chosen.zeroPoint)}` : '–'),
      h('dt', null, 'Clip rate'),
      h('dd', { class: t.clipRate > 0.01 ? 'warn' : null }, formatPercent(t.clipRate)),
      h('dt', null, 'Degenerate'),
      h('dd', { class: t.degenerate ? 'bad' : null }, t.degenerate ?? 'no'),
    ),
  );
}

function errorRow(name: string, m: ErrorMetrics): HTMLElement {
  return h(
    'tr',
    null,
    h('th', { scope: 'row' }, name),
    h('td', { class: 'num' }, formatDb(m.sqnrDb)),
    h('td', { class: 'num' }, formatFixed(m.cosine, 4)),
    h('td', { class: 'num' }, formatNumber(m.mse)),
    h('td', { class: 'num' }, formatNumber(m.maxAbs)),
  );
}

function outputRow(name: string, m: ModelOutputMetrics): HTMLElement {
  return h(
    'tr',
    null,
    h('th', { scope: 'row' }, name),
    h('td', { class: 'num' }, m.top1 === null ? 'n/a' : formatPercent(m.top1)),
    h('td', { class: 'num' }, formatPercent(m.agreement)),
    h('td', { class: 'num' }, formatDb(m.outputSqnrDb)),
  );
}

/**
 * What the layer's figures rest on: accumulated errors cover all samples; isolated errors and the
 * code-level detail the first ones (reports before sampled isolated errors covered all).
 */
export function samplesNote(r: { samples: number; isolatedSamples?: number; detailSamples?: number }): { isolated: string; detail: string } {
  const of = (n: number | undefined) => (n === undefined || n >= r.samples ? 'all samples' : `first ${n} of ${r.samples} samples`);
  return { isolated: of(r.isolatedSamples), detail: of(r.detailSamples) };
}

function statsPanel(row: LayerRow, sensitivitySamples: number | null, samples: { isolated: string; detail: string }): HTMLElement {
  const l = row.layer;
  const errHead = h(
    'thead',
    null,
    h(
      'tr',
      null,
      h('th', null, ''),
      h('th', { class: 'num' }, 'SQNR dB'),
      h('th', { class: 'num' }, 'cosine'),
      h('th', { class: 'num' }, 'MSE'),
      h('th', { class: 'num' }, 'max |err|'),
    ),
  );
  const out = row.output;
  const chosen = out?.chosen;
  return h(
    'div',
    { class: 'panel panel-stats' },
    h('h3', null, 'Layer statistics'),
    h(
      'div',
      { class: 'stats-grid' },
      h(
        'div',
        null,
        h('h4', null, 'Accumulated (whole model quantized)'),
        h('table', { class: 'mini' }, errHead, h('tbody', null, errorRow('simulated', l.simulated), errorRow('integer', l.integer))),
        h('h4', null, `Isolated (only this layer, float inputs; ${samples.isolated})`),
        h(
          'table',
          { class: 'mini' },
          errHead.cloneNode(true),
          h('tbody', null, errorRow('simulated', l.isolated.simulated), errorRow('integer', l.isolated.integer)),
        ),
      ),
      h(
        'div',
        null,
        h(
          'h4',
          null,
          l.sensitivity
            ? `Sensitivity (rank #${l.sensitivity.rank}${sensitivitySamples ? `, on ${l.sensitivity.onlyThis.samples ?? sensitivitySamples} samples` : ''})`
            : 'Sensitivity',
        ),
        l.sensitivity
          ? h(
              'table',
              { class: 'mini' },
              h(
                'thead',
                null,
                h(
                  'tr',
                  null,
                  h('th', null, 'model output'),
                  h('th', { class: 'num' }, 'top-1'),
                  h('th', { class: 'num' }, 'agreement'),
                  h('th', { class: 'num' }, 'SQNR dB'),
                ),
              ),
              h(
                'tbody',
                null,
                outputRow('only this layer', l.sensitivity.onlyThis),
                ...(l.sensitivity.allButThis ? [outputRow('all but this', l.sensitivity.allButThis)] : []),
              ),
            )
          : h('p', { class: 'muted' }, 'Not measured (analysis ran without sensitivity).'),
        ...(l.sensitivity?.aboveLeader ? [h('p', { class: 'muted' }, stoppedAtPilot(l.sensitivity.aboveLeader))] : []),
        h('h4', null, 'Output quantization'),
        h(
          'dl',
          { class: 'kv compact' },
          h('dt', null, 'Sim ≠ int codes'),
          h('dd', null, `${formatRate(l.simVsIntMismatch)} (${samples.detail}), max ${formatFixed(l.simVsIntMaxLsb, 0)} LSB`),
          h('dt', null, 'Method'),
          h('dd', null, chosen ? chosen.method : '–'),
          h('dt', null, 'Scale'),
          h('dd', null, chosen ? formatScalarOrChannels(chosen.scale) : '–'),
          h('dt', null, 'Zero point'),
          h('dd', null, chosen ? formatScalarOrChannels(chosen.zeroPoint) : '–'),
          h('dt', null, 'Clip rate'),
          h('dd', { class: out && out.clipRate > 0.01 ? 'warn' : null }, out ? formatPercent(out.clipRate) : '–'),
          h('dt', null, 'Degenerate'),
          h('dd', { class: out?.degenerate ? 'bad' : null }, out ? (out.degenerate ?? 'no') : '–'),
        ),
      ),
    ),
  );
}

/** Why a layer's sensitivity stopped after the pilot: the paired comparison with the leader. */
function stoppedAtPilot(a: { leader: string; diffDb: Interval }): string {
  if (a.diffDb.estimate === Infinity) return `Stopped after the pilot: it reproduced every pilot sample exactly, so it cannot do more damage than ${a.leader}.`;
  return `Stopped after the pilot: on the same samples its output SQNR is ${formatDb(a.diffDb.estimate)} dB above ${a.leader}'s (95% interval ${formatDb(a.diffDb.low)} to ${formatDb(a.diffDb.high)} dB, ${a.diffDb.method}), so it cannot be the most damaging layer.`;
}
