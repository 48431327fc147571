// The charts of the Sensitivity, Sweep and Mixed precision tabs, on the Chart.js set-up of
// charts.ts (makeChart registers the shared pieces and applies the theme).
import { Chart, ScatterController, type ActiveElement, type ChartEvent, type ChartType, type Plugin, type Scale } from 'chart.js';
import { atMost } from '../protocol/budget';
import type { MixedPrecisionResult, SweepEntry } from '../protocol/report';
import { makeChart } from './charts';
import { formatDb, formatNumber, formatPercent } from './format';
import { withAlpha, type Theme } from './theme';
import { changeText } from './diagnosisData';
import {
  basisShort,
  budgetText,
  judgedBySqnr,
  stepFigureText,
  agreementText,
  dropPhrase,
  formatDrop,
  kilobytes,
  planSteps,
  stepChanges,
  paretoFront,
  plottable,
  symlog,
  type DropBasis,
  type SensitivityData,
} from './viewData';

/** A reference line across the plot: a budget, a baseline. */
export interface RefLine {
  axis: 'x' | 'y';
  value: number;
  label: string;
  color: string;
  dashed?: boolean;
}

interface RefLineOptions {
  lines?: RefLine[];
  font?: string;
  labelBackground?: string;
}

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    qlRefLines?: RefLineOptions;
  }
}

const refLinePlugin: Plugin = {
  id: 'qlRefLines',
  afterDatasetsDraw(chart, _args, options: RefLineOptions) {
    const lines = options.lines;
    if (!lines || lines.length === 0) return;
    const { ctx, chartArea } = chart;
    ctx.save();
    ctx.font = options.font ?? '11px sans-serif';
    ctx.textBaseline = 'bottom';
    for (const line of lines) {
      const scale = chart.scales[line.axis] as Scale | undefined;
      if (!scale) continue;
      const px = scale.getPixelForValue(line.value);
      const horizontal = line.axis === 'y';
      if (!Number.isFinite(px) || px < (horizontal ? chartArea.top : chartArea.left) - 0.5 || px > (horizontal ? chartArea.bottom : chartArea.right) + 0.5)
        continue;
      ctx.beginPath();
      ctx.strokeStyle = line.color;
      ctx.lineWidth = 1.5;
      ctx.setLineDash(line.dashed ? [6, 4] : []);
      if (horizontal) {
        ctx.moveTo(chartArea.left, px);
        ctx.lineTo(chartArea.right, px);
      } else {
        ctx.moveTo(px, chartArea.top);
        ctx.lineTo(px, chartArea.bottom);
      }
      ctx.stroke();
      ctx.setLineDash([]);
      const width = ctx.measureText(line.label).width + 8;
      // Horizontal lines are labelled at the left end above the line (drop curves start high and
      // fall to the right); vertical ones at the bottom, left of the line, where a ranked bar chart
      // has its shortest bars.
      let x = horizontal ? chartArea.left + 4 : px - width - 3;
      if (!horizontal && x < chartArea.left) x = px + 3;
      const y = horizontal ? (px - 16 < chartArea.top ? px + 17 : px - 2) : chartArea.bottom - 3;
      ctx.fillStyle = options.labelBackground ?? 'rgba(0,0,0,0.6)';
      ctx.fillRect(x, y - 14, width, 14);
      ctx.fillStyle = line.color;
      ctx.fillText(line.label, x + 4, y - 1);
    }
    ctx.restore();
  },
};

let registered = false;
function ensureRegistered(): void {
  if (registered) return;
  Chart.register(ScatterController, refLinePlugin);
  registered = true;
}

function tooltipStyle(theme: Theme) {
  return {
    backgroundColor: withAlpha(theme.background, 0.95),
    titleColor: theme.foreground,
    bodyColor: theme.foreground,
    footerColor: theme.muted,
    borderColor: theme.grid,
    borderWidth: 1,
  };
}

function labelFont(theme: Theme): string {
  return `${Math.max(10, theme.fontSize - 2)}px ${theme.fontFamily}`;
}

/** Long node names would eat the chart: keep their tail, which names the layer. */
function shortNode(name: string, max = 30): string {
  return name.length <= max ? name : `…${name.slice(name.length - max + 1)}`;
}

function pts(v: number): string {
  return `${formatDrop(v)} pts`;
}

const symexp = (t: number): number => Math.sign(t) * (10 ** Math.abs(t) - 1);
const LOG_TICKS = [0, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
const SIGNED_LOG_TICKS = [
  ...LOG_TICKS.slice(1)
    .map((v) => -v)
    .reverse(),
  ...LOG_TICKS,
].map(symlog);

/** The drop axis, linear or log (see symlog); min/max are in plotted units. */
function dropAxis(log: boolean, title: string, lo: number, hi: number) {
  const text = log ? `${title}, log scale` : title;
  if (!log) {
    return {
      type: 'linear' as const,
      suggestedMin: Math.min(0, lo),
      suggestedMax: hi,
      title: { display: true, text },
      ticks: { callback: (v: number | string) => formatNumber(Number(v), 3) },
    };
  }
  // Round the ends out to labelled ticks, so the top of the plot says how high it goes.
  const top = SIGNED_LOG_TICKS.find((t) => t >= hi - 1e-9) ?? hi;
  const bottom = [...SIGNED_LOG_TICKS].reverse().find((t) => t <= Math.min(0, lo) + 1e-9) ?? lo;
  return {
    type: 'linear' as const,
    min: bottom,
    max: top,
    title: { display: true, text },
    afterBuildTicks: (scale: Scale) => {
      // ±0.5 crowds 0 and 1 once the axis reaches past 20 points.
      const crowded = scale.max - scale.min > symlog(20);
      scale.ticks = SIGNED_LOG_TICKS.filter(
        (t) => t >= scale.min - 1e-9 && t <= scale.max + 1e-9 && !(crowded && Math.abs(Math.abs(t) - symlog(0.5)) < 1e-9),
      ).map((value) => ({ value }));
    },
    ticks: { callback: (v: number | string) => formatNumber(symexp(Number(v)), 3) },
  };
}

// --------------------------------------------------------------------------- sensitivity

export function sensitivityChart(canvas: HTMLCanvasElement, data: SensitivityData, rows: SensitivityData['rows'], theme: Theme): Chart {
  ensureRegistered();
  const basisAxis = data.basis === 'top1' ? 'top-1 accuracy drop vs float (points)' : 'agreement drop vs float (points)';
  canvas.setAttribute(
    'aria-label',
    `Sensitivity of ${rows.length} layers, most sensitive first, in ${basisAxis}: ${rows
      .slice(0, 5)
      .map((r) => `${r.node} ${formatDrop(r.damage)}`)
      .join(', ')}`,
  );
  return makeChart(
    canvas,
    {
      type: 'bar',
      data: {
        labels: rows.map((r) => r.node),
        datasets: [
          {
            label: 'damage: drop with ONLY this layer quantized',
            data: rows.map((r) => r.damage),
            backgroundColor: withAlpha(theme.red, 0.75),
            borderColor: theme.red,
            borderWidth: 1,
            barPercentage: 0.9,
            categoryPercentage: 0.8,
          },
          {
            label: `recovery: drop won back with ALL BUT this layer quantized (of ${pts(data.fullDrop)})`,
            data: rows.map((r) => r.recovery ?? 0),
            backgroundColor: withAlpha(theme.green, 0.7),
            borderColor: theme.green,
            borderWidth: 1,
            barPercentage: 0.9,
            categoryPercentage: 0.8,
          },
        ],
      },
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', axis: 'y', intersect: false },
        scales: {
          x: {
            type: 'linear',
            beginAtZero: true,
            title: { display: true, text: basisAxis },
            ticks: { callback: (v: number | string) => formatNumber(Number(v), 3) },
          },
          y: {
            type: 'category',
            grid: { display: false },
            ticks: {
              autoSkip: false,
              color: theme.foreground,
              callback: (_v: number | string, i: number) => `#${rows[i]?.rank ?? ''} ${shortNode(rows[i]?.node ?? '')}`,
            },
          },
        },
        plugins: {
          legend: { display: true, position: 'top', align: 'start', labels: { boxWidth: 12, color: theme.foreground } },
          tooltip: {
            ...tooltipStyle(theme),
            callbacks: {
              title: (items: { dataIndex: number }[]) => {
                const r = rows[items[0]?.dataIndex ?? 0];
                return r ? `#${r.rank} ${r.node} (${r.op})` : '';
              },
              label: (item: { dataIndex: number; datasetIndex: number }) => {
                const r = rows[item.dataIndex];
                if (!r) return '';
                const acc = (m: typeof r.onlyThis) =>
                  data.basis === 'top1' && m.top1 !== null ? `top-1 ${formatPercent(m.top1)}` : `agreement ${formatPercent(m.agreement)}`;
                return item.datasetIndex === 0
                  ? `only this quantized: drop ${pts(r.damage)} (${acc(r.onlyThis)}), output SQNR ${formatDb(r.onlyThis.outputSqnrDb)} dB`
                  : r.allButThis && r.allButDrop !== null && r.recovery !== null
                    ? `all but this quantized: drop ${pts(r.allButDrop)}, recovers ${pts(r.recovery)} (${acc(r.allButThis)}), output SQNR ${formatDb(r.allButThis.outputSqnrDb)} dB`
                    : 'all but this quantized: not measured';
              },
            },
          },
          qlRefLines: {
            lines: [{ axis: 'x', value: data.fullDrop, label: `all layers quantized: ${pts(data.fullDrop)}`, color: theme.muted, dashed: true }],
            font: labelFont(theme),
            labelBackground: withAlpha(theme.background, 0.85),
          },
        },
      },
    },
    theme,
  );
}

// --------------------------------------------------------------------------------- sweep

const hitOrder = (a: { datasetIndex: number; index: number }, b: { datasetIndex: number; index: number }) =>
  b.datasetIndex - a.datasetIndex || a.index - b.index;

interface SweepPoint {
  x: number;
  y: number;
  id: number;
}

export interface SweepChartHandle {
  chart: Chart;
  /** Rings the point of a configuration (undefined: none). */
  highlight(id: number | undefined): void;
}

export function sweepChart(
  canvas: HTMLCanvasElement,
  entries: readonly SweepEntry[],
  basis: DropBasis,
  logY: boolean,
  theme: Theme,
  onPick: (id: number) => void,
  clickHint: boolean,
): SweepChartHandle {
  ensureRegistered();
  const byId = new Map(entries.map((e) => [e.id, e]));
  // An SQNR-judged sweep plots the SQNR itself (the entries hold minus it), on a linear axis.
  const sqnr = basis === 'sqnr';
  const log = logY && !sqnr;
  const y = (d: number) => (sqnr ? -d : log ? symlog(d) : d);
  const point = (e: SweepEntry): SweepPoint => ({ x: kilobytes(e.sizeBytes), y: y(e.drop), id: e.id });
  const drawn = entries.filter(plottable);
  const drops = drawn.map((e) => y(e.drop));
  const lo = drops.length ? Math.min(...drops) : 0;
  const hi = drops.length ? Math.max(...drops) : 1;
  const others = drawn.filter((e) => !e.pareto).map(point);
  const front = paretoFront(entries).map(point);
  const axisText = sqnr ? 'mean output SQNR (dB, higher is better)' : `${basisShort(basis)} drop vs float (points)`;
  const countPlugin: Plugin = {
    id: 'qlPointCount',
    afterDraw(chart) {
      let n = 0;
      for (const i of [0, 1]) if (chart.isDatasetVisible(i)) n += chart.getDatasetMeta(i).data.length;
      chart.canvas.dataset.points = String(n);
    },
  };
  const pick = (event: ChartEvent, _elements: ActiveElement[], chart: Chart) => {
    const hits = chart
      .getElementsAtEventForMode(event.native ?? (event as unknown as Event), 'point', { intersect: true }, false)
      .filter((el) => el.datasetIndex === 0 || el.datasetIndex === 1);
    // The point drawn on top is the one the user sees: Pareto points are drawn over the rest. The
    // tooltip lists coinciding points in the same order, so the first one listed is the one opened.
    const top = hits.sort(hitOrder)[0];
    if (!top) return;
    const raw = chart.data.datasets[top.datasetIndex].data[top.index] as unknown as SweepPoint;
    onPick(raw.id);
  };
  const chart = makeChart(
    canvas,
    {
      type: 'scatter',
      data: {
        datasets: [
          {
            label: 'configuration',
            data: others,
            backgroundColor: withAlpha(theme.blue, 0.55),
            borderColor: theme.blue,
            borderWidth: 1,
            pointRadius: 4.5,
            pointHoverRadius: 6.5,
            pointHitRadius: 5,
            clip: false,
            order: 3,
          },
          {
            label: 'Pareto front',
            data: front,
            backgroundColor: theme.orange,
            borderColor: theme.foreground,
            borderWidth: 1.5,
            pointStyle: 'rectRot',
            pointRadius: 7,
            pointHoverRadius: 9,
            pointHitRadius: 5,
            clip: false,
            // Lower order is drawn on top: the front above the other points.
            order: 1,
          },
          {
            // Staircase through the front: horizontal first, then down at the next, larger model.
            label: 'Pareto staircase',
            data: front,
            type: 'line',
            showLine: true,
            stepped: 'before',
            borderColor: withAlpha(theme.orange, 0.8),
            borderWidth: 1.5,
            borderDash: [5, 3],
            pointRadius: 0,
            pointHoverRadius: 0,
            pointHitRadius: 0,
            pointStyle: 'line',
            fill: false,
            order: 2,
          },
          {
            label: 'selected',
            data: [] as SweepPoint[],
            backgroundColor: 'transparent',
            borderColor: theme.focus,
            borderWidth: 2.5,
            pointRadius: 11,
            pointHoverRadius: 11,
            pointHitRadius: 0,
            clip: false,
            order: 0,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'point', intersect: true },
        scales: {
          x: {
            type: 'linear',
            grace: '5%',
            title: { display: true, text: 'model size (KB)' },
            ticks: { callback: (v: number | string) => formatNumber(Number(v), 3) },
          },
          y: dropAxis(log, axisText, lo, hi),
        },
        layout: { padding: { top: 4, right: 12 } },
        onClick: pick,
        onHover: (event, _elements, c) => {
          const hits = c
            .getElementsAtEventForMode(event.native ?? (event as unknown as Event), 'point', { intersect: true }, false)
            .filter((el) => el.datasetIndex === 0 || el.datasetIndex === 1);
          c.canvas.style.cursor = hits.length ? 'pointer' : 'default';
        },
        plugins: {
          legend: {
            display: true,
            position: 'top',
            align: 'start',
            labels: {
              boxWidth: 12,
              boxHeight: 8,
              color: theme.foreground,
              usePointStyle: true,
              filter: (item: { datasetIndex?: number }) => item.datasetIndex !== 3,
            },
          },
          tooltip: {
            ...tooltipStyle(theme),
            filter: (item: { datasetIndex: number }) => item.datasetIndex === 0 || item.datasetIndex === 1,
            itemSort: (a: { datasetIndex: number; dataIndex: number }, b: { datasetIndex: number; dataIndex: number }) =>
              b.datasetIndex - a.datasetIndex || a.dataIndex - b.dataIndex,
            callbacks: {
              title: () => '',
              label: (item: { raw: unknown }) => {
                const e = byId.get((item.raw as SweepPoint).id);
                return e ? `${e.pareto ? '★ ' : ''}${e.label}` : '';
              },
              afterLabel: (item: { raw: unknown }) => {
                const e = byId.get((item.raw as SweepPoint).id);
                if (!e) return '';
                return `${dropPhrase(e)} · agreement ${agreementText(e)} · output SQNR ${formatDb(e.outputSqnrDb)} dB · ${kilobytes(e.sizeBytes).toFixed(1)} KB`;
              },
              footer: (items: unknown[]) =>
                !clickHint || items.length === 0 ? '' : items.length === 1 ? 'click to analyze this configuration' : 'click analyzes the first one listed',
            },
          },
        },
      },
      plugins: [countPlugin],
    },
    theme,
  );
  const ring = chart.data.datasets[3];
  return {
    chart,
    highlight(id) {
      const e = id === undefined ? undefined : byId.get(id);
      ring.data = e && plottable(e) ? [point(e)] : [];
      chart.update('none');
    },
  };
}

// ------------------------------------------------------------------------ mixed precision

export function mixedChart(canvas: HTMLCanvasElement, result: MixedPrecisionResult, logY: boolean, theme: Theme): Chart {
  ensureRegistered();
  const steps = result.steps;
  // An SQNR-judged search plots the SQNR itself (its steps hold minus it) against its floor, linearly.
  const sqnr = judgedBySqnr(result);
  const y = (d: number) => (sqnr ? -d : logY ? symlog(d) : d);
  const points = steps.map((s, i) => ({ x: i, y: Number.isFinite(s.drop) ? y(s.drop) : null }));
  const drops = points.map((p) => p.y).filter((v): v is number => v !== null);
  const budgetY = y(result.maxDrop);
  // Keep the budget line on the chart even when every step is far from it.
  const lo = sqnr ? Math.min(budgetY - 3, ...drops) : Math.min(0, ...drops);
  const hi = sqnr ? Math.max(budgetY + 3, ...drops) : Math.max(y(result.maxDrop * 1.15), ...drops);
  const within = (d: number) => atMost(d, result.maxDrop);
  const colors = steps.map((s) => (within(s.drop) ? theme.green : theme.red));
  const last = steps.length - 1;
  const basis = sqnr ? 'output SQNR (dB, higher is better)' : `${basisShort(result.dropBasis)} drop vs float (points)`;
  const plan = planSteps(result);
  const xTitle = plan ? 'steps of the plan' : 'layers kept in float';
  canvas.setAttribute(
    'aria-label',
    `${sqnr ? 'Output SQNR' : 'Drop'} versus ${xTitle}: ${steps.map((s, i) => `${i}: ${formatDrop(sqnr ? -s.drop : s.drop)}`).join(', ')}; budget ${budgetText(result)}`,
  );
  return makeChart(
    canvas,
    {
      type: 'line',
      data: {
        datasets: [
          {
            label: 'drop',
            data: points,
            borderColor: withAlpha(theme.blue, 0.9),
            backgroundColor: colors,
            pointBorderColor: colors,
            borderWidth: 2,
            pointRadius: steps.map((_, i) => (i === last ? 7 : 5)),
            pointHoverRadius: 8,
            pointHitRadius: 10,
            tension: 0,
            clip: false,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        layout: { padding: { top: 8, right: 14, left: 4 } },
        scales: {
          x: {
            type: 'linear',
            min: 0,
            max: Math.max(1, last),
            title: { display: true, text: xTitle },
            ticks: { stepSize: 1, precision: 0 },
          },
          y: dropAxis(logY && !sqnr, basis, lo, hi),
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            ...tooltipStyle(theme),
            callbacks: {
              title: (items: { dataIndex: number }[]) => {
                const i = items[0]?.dataIndex ?? 0;
                return plan ? `step ${i}` : `${i} layer${i === 1 ? '' : 's'} in float`;
              },
              label: (item: { dataIndex: number }) => {
                const s = steps[item.dataIndex];
                return s
                  ? `${sqnr ? 'SQNR' : 'drop'} ${stepFigureText(result, s)} · agreement ${formatPercent(s.agreement)} · output SQNR ${formatDb(s.outputSqnrDb)} dB`
                  : '';
              },
              afterLabel: (item: { dataIndex: number }) => {
                const i = item.dataIndex;
                const changes = steps[i] ? stepChanges(steps[i]) : null;
                if (plan && changes) return i === 0 ? 'nothing changed' : changes.map(changeText).join('\n');
                const added = i > 0 ? steps[i]?.kept.filter((k) => !steps[i - 1]?.kept.includes(k)) : [];
                return added && added.length ? `+ ${added.join(', ')}` : i === 0 ? 'every layer quantized' : '';
              },
            },
          },
          qlRefLines: {
            lines: [
              {
                axis: 'y',
                value: budgetY,
                label: `budget ${budgetText(result)}`,
                color: result.met ? theme.green : theme.orange,
                dashed: true,
              },
            ],
            font: labelFont(theme),
            labelBackground: withAlpha(theme.background, 0.85),
          },
        },
      },
    },
    theme,
  );
}
