// Chart.js set-up and the four detail charts. Only the controllers, elements, scales and plugins
// used here are registered, which keeps the bundle small; Chart.js itself needs no eval and writes
// canvas styles through the CSSOM, so it runs under the webview CSP.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  Tooltip,
  type ChartConfiguration,
  type ChartDataset,
  type ChartType,
  type Plugin,
  type Scale,
} from 'chart.js';
import { CALIBRATION_METHODS, type IntegerDiff, type LayerReport, type Range, type TensorReport } from '../protocol/report';
import { formatCount, formatNumber, formatRange } from './format';
import { COMPARISONS, formatRate, LSB_BINS, lsbBinLabel, lsbCounts, type ComparisonKey } from './integerDiff';
import { methodColor, withAlpha, type Theme } from './theme';
import { klPointAt } from './whatIfData';

export interface Marker {
  value: number;
  label: string;
  color: string;
  /** The configured method's line: thicker and solid, the others dashed. */
  emphasized?: boolean;
  /** A what-if threshold the user is dragging (replaced as it moves). */
  whatIf?: boolean;
}

export interface Band {
  from: number;
  to: number;
  color: string;
}

interface MarkerOptions {
  markers?: Marker[];
  bands?: Band[];
  font?: string;
  labelBackground?: string;
  /** Draw the lines under the datasets (labels stay on top): a point ON a marked line stays visible. */
  behind?: boolean;
}

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    qlMarkers?: MarkerOptions;
  }
}

/**
 * Vertical threshold lines with labels, drawn after the bars so they stay visible over tall bins.
 * Labels that would overlap move down a row, because several methods often agree on a threshold.
 */
/** Marker lines that fall inside the plot, emphasized last so the chosen line is drawn over coincident ones. */
function markerPositions(chart: Chart, markers: Marker[]): { m: Marker; px: number }[] {
  const x = chart.scales.x as Scale | undefined;
  if (!x) return [];
  const { chartArea } = chart;
  return [...markers]
    .sort((a, b) => Number(!!a.emphasized) - Number(!!b.emphasized))
    .map((m) => ({ m, px: x.getPixelForValue(m.value) }))
    .filter(({ px }) => Number.isFinite(px) && px >= chartArea.left - 0.5 && px <= chartArea.right + 0.5);
}

function drawMarkerLines(chart: Chart, positions: { m: Marker; px: number }[]): void {
  const { ctx, chartArea } = chart;
  ctx.save();
  for (const { m, px } of positions) {
    ctx.beginPath();
    ctx.strokeStyle = m.color;
    ctx.lineWidth = m.emphasized ? 3 : 1.5;
    ctx.setLineDash(m.whatIf ? [2, 2] : m.emphasized ? [] : [5, 3]);
    ctx.moveTo(px, chartArea.top);
    ctx.lineTo(px, chartArea.bottom);
    ctx.stroke();
  }
  ctx.restore();
}

const markerPlugin: Plugin = {
  id: 'qlMarkers',
  beforeDatasetsDraw(chart, _args, options: MarkerOptions) {
    const x = chart.scales.x as Scale | undefined;
    if (!x) return;
    if (options.behind && options.markers?.length) drawMarkerLines(chart, markerPositions(chart, options.markers));
    if (!options.bands) return;
    const { ctx, chartArea } = chart;
    ctx.save();
    for (const band of options.bands) {
      const a = Math.max(chartArea.left, Math.min(x.getPixelForValue(band.from), chartArea.right));
      const b = Math.max(chartArea.left, Math.min(x.getPixelForValue(band.to), chartArea.right));
      ctx.fillStyle = band.color;
      ctx.fillRect(Math.min(a, b), chartArea.top, Math.abs(b - a), chartArea.bottom - chartArea.top);
    }
    ctx.restore();
  },
  afterDatasetsDraw(chart, _args, options: MarkerOptions) {
    const x = chart.scales.x as Scale | undefined;
    const markers = options.markers;
    if (!x || !markers || markers.length === 0) return;
    const { ctx, chartArea } = chart;
    const positions = markerPositions(chart, markers);
    if (!options.behind) drawMarkerLines(chart, positions);
    ctx.save();
    ctx.font = options.font ?? '11px sans-serif';
    ctx.textBaseline = 'top';
    const placed: { x: number; width: number; row: number }[] = [];
    const rowHeight = 15;
    // Record what was drawn (canvas pixels are opaque to tests and assistive tech): the count of
    // threshold lines and their labels.
    chart.canvas.dataset.thresholdLines = String(positions.length);
    chart.canvas.setAttribute('aria-label', `histogram with threshold lines: ${positions.map((p) => p.m.label).join(', ')}`);
    // Labels in left-to-right order so the greedy row assignment packs them tightly.
    positions.sort((a, b) => a.px - b.px);
    for (const { m, px } of positions) {
      const text = m.label;
      const width = ctx.measureText(text).width + 8;
      const flip = px + width > chartArea.right;
      const left = flip ? px - width - 2 : px + 2;
      let row = 0;
      while (placed.some((p) => p.row === row && left < p.x + p.width + 2 && p.x < left + width + 2)) row++;
      placed.push({ x: left, width, row });
      const top = chartArea.top + 2 + row * rowHeight;
      ctx.fillStyle = options.labelBackground ?? 'rgba(0,0,0,0.6)';
      ctx.fillRect(left, top, width, rowHeight - 2);
      ctx.fillStyle = m.color;
      ctx.font = `${m.emphasized ? 'bold ' : ''}${options.font ?? '11px sans-serif'}`;
      ctx.fillText(text, left + 4, top + 1);
    }
    ctx.restore();
  },
};

let registered = false;
function ensureRegistered(): void {
  if (registered) return;
  Chart.register(
    BarController,
    BarElement,
    LineController,
    LineElement,
    PointElement,
    CategoryScale,
    LinearScale,
    LogarithmicScale,
    Tooltip,
    Legend,
    markerPlugin,
  );
  // Charts are rebuilt on every selection; animating them only delays the numbers.
  Chart.defaults.animation = false;
  registered = true;
}

function applyTheme(theme: Theme): void {
  Chart.defaults.color = theme.muted;
  Chart.defaults.borderColor = theme.grid;
  Chart.defaults.font.family = theme.fontFamily;
  Chart.defaults.font.size = Math.max(10, theme.fontSize - 1);
}

function markerFont(theme: Theme): string {
  return `${Math.max(10, theme.fontSize - 2)}px ${theme.fontFamily}`;
}

/** Log axes show only powers of ten: the 2s and 5s between them are clutter at chart size. */
function powerOfTenTick(value: number | string): string {
  const v = Number(value);
  if (v < 1) return '';
  const exponent = Math.log10(v);
  if (Math.abs(exponent - Math.round(exponent)) > 1e-9) return '';
  return v >= 1e4 ? `1e${Math.round(exponent)}` : String(v);
}

function baseOptions(theme: Theme) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false as const,
    interaction: { mode: 'nearest' as const, intersect: false, axis: 'x' as const },
    plugins: {
      legend: { display: false },
      tooltip: {
        backgroundColor: withAlpha(theme.background, 0.95),
        titleColor: theme.foreground,
        bodyColor: theme.foreground,
        borderColor: theme.grid,
        borderWidth: 1,
      },
    },
  };
}

export function makeChart(canvas: HTMLCanvasElement, config: ChartConfiguration<ChartType, unknown[]>, theme: Theme): Chart {
  ensureRegistered();
  applyTheme(theme);
  return new Chart(canvas, config as ChartConfiguration);
}

/** The thresholds every method proposed, as lines: both ends for signed tensors, else the upper one. */
export function thresholdMarkers(tensor: TensorReport, theme: Theme): Marker[] {
  const markers: Marker[] = [];
  // A deployed model's grid is its own: no calibration method chose it, so none is emphasized.
  const chosen = tensor.chosen?.deployed ? undefined : tensor.chosen?.method;
  for (const method of CALIBRATION_METHODS) {
    const range = tensor.thresholds[method];
    if (!range) continue;
    const color = methodColor(theme, method);
    const emphasized = method === chosen;
    if (range.lo < 0) markers.push({ value: range.lo, label: method, color, emphasized });
    markers.push({ value: range.hi, label: method, color, emphasized });
  }
  return markers;
}

export function histogramChart(canvas: HTMLCanvasElement, tensor: TensorReport, theme: Theme): Chart {
  const { edges, counts } = tensor.histogram;
  const chosen = tensor.chosen?.range ?? null;
  const points = counts.map((c, i) => ({ x: (edges[i] + edges[i + 1]) / 2, y: c > 0 ? c : null }));
  const inside = withAlpha(theme.blue, 0.75);
  const clipped = withAlpha(theme.red, 0.8);
  // Bins outside the chosen grid are the values that saturate: colour them so clipping is visible.
  const colors = counts.map((_, i) => (chosen && (edges[i + 1] <= chosen.lo || edges[i] >= chosen.hi) ? clipped : inside));

  let lo = edges.length ? edges[0] : 0;
  let hi = edges.length ? edges[edges.length - 1] : 1;
  // The chosen grid can be wider than the data (a symmetric grid on a ReLU output): show the waste.
  if (chosen) {
    lo = Math.min(lo, chosen.lo);
    hi = Math.max(hi, chosen.hi);
  }
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = (hi - lo) * 0.02;
  const markers = thresholdMarkers(tensor, theme);
  if (chosen) {
    const color = theme.foreground;
    const what = tensor.chosen?.deployed ? 'deployed' : 'chosen';
    markers.push({ value: chosen.lo, label: `${what} lo`, color, emphasized: true });
    markers.push({ value: chosen.hi, label: `${what} hi`, color, emphasized: true });
  }
  const base = baseOptions(theme);
  return makeChart(
    canvas,
    {
      type: 'bar',
      data: {
        datasets: [
          {
            label: 'count',
            data: points,
            backgroundColor: colors,
            borderWidth: 0,
            barPercentage: 1,
            categoryPercentage: 1,
            grouped: false,
          },
        ],
      },
      options: {
        ...base,
        scales: {
          x: {
            type: 'linear',
            min: lo - pad,
            max: hi + pad,
            title: { display: true, text: 'value' },
            // The axis limits are padded data bounds, not round numbers: labelling them adds noise.
            ticks: { maxTicksLimit: 9, includeBounds: false, callback: (v: number | string) => formatNumber(Number(v), 3) },
            grid: { display: false },
          },
          y: {
            type: 'logarithmic',
            min: 0.5,
            title: { display: true, text: 'count (log)' },
            ticks: { callback: powerOfTenTick, autoSkip: true },
          },
        },
        plugins: {
          ...base.plugins,
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items: { dataIndex: number }[]) => {
                const i = items[0]?.dataIndex ?? 0;
                return formatRange(edges[i], edges[i + 1]);
              },
              label: (item: { dataIndex: number }) => `count ${formatCount(counts[item.dataIndex] ?? 0)}`,
            },
          },
          qlMarkers: {
            markers,
            bands: chosen ? [{ from: chosen.lo, to: chosen.hi, color: withAlpha(theme.foreground, 0.05) }] : [],
            font: markerFont(theme),
            labelBackground: withAlpha(theme.background, 0.85),
          },
        },
      },
    },
    theme,
  );
}

/** The entropy method's amax: the threshold the KL curve was minimised over (|x|, so one number). */
export function entropyAmax(tensor: TensorReport): number | null {
  const r = tensor.thresholds.entropy;
  if (!r) return null;
  return Math.max(Math.abs(r.lo), Math.abs(r.hi));
}

export function klChart(canvas: HTMLCanvasElement, tensor: TensorReport, theme: Theme): Chart {
  // Infinite KL (candidate thresholds that leave empty quantized bins) cannot be plotted.
  const curve = (tensor.klCurve ?? []).filter((p) => Number.isFinite(p.threshold) && Number.isFinite(p.value));
  const points = curve.map((p) => ({ x: p.threshold, y: p.value }));
  const amax = entropyAmax(tensor);
  const chosen = amax !== null ? klPointAt(curve, amax) : null;
  const color = methodColor(theme, 'entropy');
  const markers: Marker[] = [];
  if (amax !== null) markers.push({ value: amax, label: `entropy ${formatNumber(amax, 3)}`, color, emphasized: tensor.chosen?.method === 'entropy' });
  if (chosen) canvas.dataset.chosenKl = String(chosen.value);
  const base = baseOptions(theme);
  return makeChart(
    canvas,
    {
      type: 'line',
      data: {
        datasets: [
          {
            // The picked threshold as a point ON the curve, drawn above it (lower order is drawn last).
            label: 'entropy threshold',
            data: chosen ? [{ x: chosen.threshold, y: chosen.value }] : [],
            showLine: false,
            pointRadius: 5.5,
            pointHoverRadius: 7,
            pointBackgroundColor: color,
            pointBorderColor: theme.foreground,
            pointBorderWidth: 1.5,
            order: 0,
          },
          {
            label: 'KL divergence',
            data: points,
            borderColor: theme.blue,
            backgroundColor: theme.blue,
            borderWidth: 1.5,
            pointRadius: 0,
            pointHoverRadius: 3,
            order: 1,
          },
        ],
      },
      options: {
        ...base,
        scales: {
          x: {
            type: 'linear',
            // Keep the entropy marker on the axis even when it sits just past the last finite KL value.
            suggestedMin: amax !== null ? Math.min(amax, points[0]?.x ?? amax) : undefined,
            suggestedMax: amax ?? undefined,
            title: { display: true, text: 'threshold |x|' },
            ticks: { maxTicksLimit: 8, includeBounds: false, callback: (v: number | string) => formatNumber(Number(v), 3) },
            grid: { display: false },
          },
          y: { type: 'linear', title: { display: true, text: 'KL divergence' }, beginAtZero: true },
        },
        plugins: {
          ...base.plugins,
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items: { parsed: { x: number | null } }[]) => `threshold ${formatNumber(items[0]?.parsed.x ?? NaN)}`,
              label: (item: { parsed: { y: number | null }; datasetIndex: number }) =>
                `${item.datasetIndex === 0 ? 'picked by entropy: ' : ''}KL ${formatNumber(item.parsed.y ?? NaN)}`,
            },
          },
          // The marker line goes under the curve so the picked point sits visibly on top of it.
          qlMarkers: { markers, behind: true, font: markerFont(theme), labelBackground: withAlpha(theme.background, 0.85) },
        },
      },
    },
    theme,
  );
}

/** Replace the what-if threshold lines of a histogram chart (null removes them); no re-layout. */
export function setWhatIfMarkers(chart: Chart, range: Range | null, theme: Theme): void {
  const opts = chart.options.plugins?.qlMarkers;
  if (!opts) return;
  const kept = (opts.markers ?? []).filter((m) => !m.whatIf);
  if (range) {
    const color = theme.orange;
    if (range.lo < 0) kept.push({ value: range.lo, label: `what-if ${formatNumber(range.lo, 3)}`, color, emphasized: true, whatIf: true });
    kept.push({ value: range.hi, label: `what-if ${formatNumber(range.hi, 3)}`, color, emphasized: true, whatIf: true });
  }
  opts.markers = kept;
  chart.update('none');
}

export function weightChart(canvas: HTMLCanvasElement, tensor: TensorReport, theme: Theme): Chart {
  const after = tensor.channelRanges ?? [];
  const before = tensor.channelRangesBeforeFold;
  const labels = after.map((_, i) => String(i));
  const toBars = (ranges: Range[]) => ranges.map((r) => [r.lo, r.hi] as [number, number]);
  const datasets: ChartDataset<'bar', [number, number][]>[] = [];
  if (before) {
    datasets.push({
      label: 'before BatchNorm folding',
      data: toBars(before),
      backgroundColor: withAlpha(theme.orange, 0.45),
      borderColor: theme.orange,
      borderWidth: 1,
      barPercentage: 0.9,
      categoryPercentage: 0.9,
    });
  }
  datasets.push({
    label: before ? 'after BatchNorm folding' : 'channel range',
    data: toBars(after),
    backgroundColor: withAlpha(theme.blue, 0.7),
    borderColor: theme.blue,
    borderWidth: 1,
    barPercentage: before ? 0.9 : 0.8,
    categoryPercentage: 0.9,
  });
  const scales = Array.isArray(tensor.chosen?.scale) ? tensor.chosen.scale : null;
  const base = baseOptions(theme);
  return makeChart(
    canvas,
    {
      type: 'bar',
      data: { labels, datasets },
      options: {
        ...base,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { type: 'category', title: { display: true, text: 'output channel' }, ticks: { maxTicksLimit: 16, autoSkip: true }, grid: { display: false } },
          y: { type: 'linear', title: { display: true, text: 'weight value' } },
        },
        plugins: {
          ...base.plugins,
          legend: { display: !!before, position: 'top', labels: { boxWidth: 12, color: theme.foreground } },
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items: { dataIndex: number }[]) => `channel ${items[0]?.dataIndex ?? 0}`,
              label: (item: { raw: unknown; dataset: { label?: string } }) => {
                const [a, b] = item.raw as [number, number];
                return `${item.dataset.label ?? ''}: ${formatRange(a, b)}`;
              },
              afterBody: (items: { dataIndex: number }[]) => {
                const i = items[0]?.dataIndex ?? 0;
                return scales && scales[i] !== undefined ? `scale ${formatNumber(scales[i])}` : '';
              },
            },
          },
        },
      },
    },
    theme,
  );
}

export function errorChart(canvas: HTMLCanvasElement, layer: LayerReport, theme: Theme): Chart {
  const { lsb, counts } = layer.errorHistogram;
  const max = lsb.length ? Math.max(...lsb.map(Math.abs)) : 0;
  // The outermost bins are clamped (|error| >= 16 LSB), so they are labelled as open-ended.
  const labels = lsb.map((v) => (v === max && max > 0 ? `≥${v}` : v === -max && max > 0 ? `≤${v}` : String(v)));
  const colors = lsb.map((v) => {
    const a = Math.abs(v);
    if (a === 0) return withAlpha(theme.green, 0.8);
    if (a === 1) return withAlpha(theme.blue, 0.8);
    if (a === max) return withAlpha(theme.red, 0.85);
    return withAlpha(theme.orange, 0.75);
  });
  const base = baseOptions(theme);
  return makeChart(
    canvas,
    {
      type: 'bar',
      data: {
        labels,
        datasets: [
          {
            label: 'count',
            data: counts.map((c) => (c > 0 ? c : null)),
            backgroundColor: colors,
            borderWidth: 0,
            barPercentage: 0.95,
            categoryPercentage: 0.95,
          },
        ],
      },
      options: {
        ...base,
        scales: {
          x: {
            type: 'category',
            title: { display: true, text: 'integer − float error (output LSB)' },
            grid: { display: false },
            ticks: { autoSkip: true, maxRotation: 0 },
          },
          y: { type: 'logarithmic', min: 0.5, title: { display: true, text: 'count (log)' }, ticks: { callback: powerOfTenTick } },
        },
        plugins: {
          ...base.plugins,
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items: { dataIndex: number }[]) => `${labels[items[0]?.dataIndex ?? 0]} LSB`,
              label: (item: { dataIndex: number }) => `count ${formatCount(counts[item.dataIndex] ?? 0)}`,
            },
          },
        },
      },
    },
    theme,
  );
}

/** One colour per comparison, shared by the cards' swatches and the LSB chart. */
export function comparisonColor(theme: Theme, key: ComparisonKey): string {
  switch (key) {
    case 'simulatedVsOrt':
      return theme.blue;
    case 'referenceVsOrt':
      return theme.orange;
    case 'simulatedVsReference':
      return theme.purple;
  }
}

/** Code differences of the three comparisons side by side, −8..8 LSB (ends clamped), log counts. */
export function lsbDiffChart(canvas: HTMLCanvasElement, diff: IntegerDiff, theme: Theme): Chart {
  const labels = LSB_BINS.map(lsbBinLabel);
  const series = COMPARISONS.map((c) => ({ c, counts: lsbCounts(diff[c.key], diff.elements) }));
  const base = baseOptions(theme);
  return makeChart(
    canvas,
    {
      type: 'bar',
      data: {
        labels,
        datasets: series.map(({ c, counts }) => {
          const color = comparisonColor(theme, c.key);
          return {
            label: c.short,
            data: counts.map((n) => (n > 0 ? n : null)),
            // The exact bin dwarfs the others on purpose (log axis); fainter so the mismatches stand out.
            backgroundColor: LSB_BINS.map((v) => withAlpha(color, v === 0 ? 0.4 : 0.85)),
            borderColor: color,
            borderWidth: LSB_BINS.map((v) => (v === 0 ? 1 : 0)),
            barPercentage: 0.9,
            categoryPercentage: 0.85,
          };
        }),
      },
      options: {
        ...base,
        interaction: { mode: 'index', intersect: false, axis: 'x' },
        scales: {
          x: {
            type: 'category',
            title: { display: true, text: 'code difference a − b (output LSB)' },
            grid: { display: false },
            ticks: { autoSkip: false, maxRotation: 0 },
          },
          y: { type: 'logarithmic', min: 0.5, title: { display: true, text: 'codes (log)' }, ticks: { callback: powerOfTenTick } },
        },
        plugins: {
          ...base.plugins,
          legend: { display: true, position: 'top', align: 'start', labels: { boxWidth: 12, color: theme.foreground } },
          tooltip: {
            ...base.plugins.tooltip,
            callbacks: {
              title: (items: { dataIndex: number }[]) => {
                const v = LSB_BINS[items[0]?.dataIndex ?? 0];
                return v === 0 ? 'exact (0 LSB)' : `${labels[items[0]?.dataIndex ?? 0]} LSB`;
              },
              label: (item: { dataIndex: number; datasetIndex: number }) => {
                const s = series[item.datasetIndex];
                const n = s?.counts[item.dataIndex] ?? 0;
                const share = diff.elements > 0 ? ` (${formatRate(n / diff.elements)})` : '';
                return `${s?.c.short ?? ''}: ${formatCount(n)} codes${share}`;
              },
            },
          },
        },
      },
    },
    theme,
  );
}
