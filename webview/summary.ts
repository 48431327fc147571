// The top of the page: which model, which configuration, and how much accuracy quantization cost.
// The accuracy drop is the headline; everything else explains where it came from.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { QuantConfig, Report, TensorSchemeConfig } from '../protocol/report';
import { h } from './dom';
import { basename, dropSeverity, formatDb, formatNumber, formatPercent } from './format';

function schemeText(s: TensorSchemeConfig, granularity: string): string {
  const parts = [`${s.bits}-bit`, s.signed ? 'signed' : 'unsigned', granularity, s.symmetric ? 'symmetric' : 'asymmetric'];
  if (s.narrowRange) parts.push('narrow range');
  if (s.powerOfTwo) parts.push('power-of-two scale');
  return parts.join(', ');
}

function configList(c: QuantConfig): HTMLElement {
  const calibration = c.calibration === 'percentile' ? `percentile (${c.percentile})` : c.calibration;
  const items: [string, string][] = [
    ['Preset', c.preset],
    ['Calibration', calibration],
    ['Weights', `W${c.weights.bits} · ${schemeText(c.weights, c.weights.perChannel ? 'per-channel' : 'per-tensor')}`],
    ['Activations', `A${c.activations.bits} · ${schemeText(c.activations, 'per-tensor')}`],
    ['Placement', c.placement === 'compute' ? 'compute ops (Conv/Gemm/MatMul)' : 'extended (also Add/Mul/Concat/pooling)'],
    ['BatchNorm', c.foldBatchNorm ? 'folded into Conv' : 'not folded'],
  ];
  if (c.exclude.length) items.push(['Kept float', c.exclude.join(', ')]);
  return definitionList(items);
}

/**
 * An already-quantized model has no configuration that chose its grids: say what was analyzed
 * (its own grids and codes) and against what (its twin, with dequantized weights, or --float).
 */
function configCard(report: Report): (HTMLElement | string)[] {
  const z = report.model.quantization;
  if (!z || z.kind === 'float') return [h('h2', null, 'Configuration'), configList(report.config)];
  const items: [string, string][] = [
    ['Model', `already quantized (${z.kind}), analyzed as deployed`],
    ['Grids', `its own: ${z.grids?.activations ?? 0} activation grids, ${z.grids?.weights ?? 0} weights with their codes (nothing recalibrated)`],
    ['Reference', z.reference === 'user' ? `float model ${basename(z.floatModel ?? '')}` : 'its float twin (weights dequantized)'],
    ['Scheme', `W${report.config.weights.bits} · ${schemeText(report.config.weights, report.config.weights.perChannel ? 'per-channel' : 'per-tensor')} · A${report.config.activations.bits} · ${schemeText(report.config.activations, 'per-tensor')}`],
  ];
  const unmatched = z.unmatched ? z.unmatched.tensors.length + z.unmatched.layers.length + z.unmatched.weights.length : 0;
  if (unmatched) items.push(['Not matched', `${unmatched} tensors/layers/weights of the quantized model are not in the float model (see the JSON report)`]);
  return [h('h2', null, 'Deployed model'), definitionList(items), ...z.notes.slice(0, 1).map((n) => h('p', { class: 'muted' }, n))];
}

function definitionList(items: [string, string | Node][]): HTMLElement {
  return h('dl', { class: 'kv' }, items.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

interface Drop {
  points: number;
  label: string;
  detail: string;
}

/** Labelled top-1 drop when labels exist; otherwise how often the integer model's top-1 left the float one. */
export function accuracyDrop(report: Report): Drop {
  const a = report.accuracy;
  if (a.dropPoints !== null && Number.isFinite(a.dropPoints)) {
    return {
      points: a.dropPoints,
      label: 'Accuracy drop',
      detail: `top-1 ${formatPercent(a.float.top1)} float → ${formatPercent(a.integer.top1)} integer`,
    };
  }
  return {
    points: (1 - a.integer.agreement) * 100,
    label: 'Agreement drop',
    detail: `no labels: share of samples whose integer top-1 differs from float (${formatPercent(a.integer.agreement)} agree)`,
  };
}

function dropCard(report: Report): HTMLElement {
  const drop = accuracyDrop(report);
  const severity = dropSeverity(drop.points);
  const sign = drop.points < 0 ? '−' : '';
  return h('div', { class: `drop-card sev-${severity}`, id: 'accuracy-drop', role: 'group', 'aria-label': `${drop.label}: ${drop.points.toFixed(2)} points` },
    h('div', { class: 'drop-label' }, `${drop.label} (float → integer)`),
    h('div', { class: 'drop-value' }, `${sign}${Math.abs(drop.points).toFixed(2)}`, h('span', { class: 'drop-unit' }, ' points')),
    h('div', { class: 'drop-detail' }, drop.detail),
  );
}

function accuracyTable(report: Report): HTMLElement {
  const a = report.accuracy;
  const row = (name: string, m: { top1: number | null; agreement: number; outputSqnrDb?: number }, cls = '') =>
    h('tr', { class: cls || null },
      h('th', { scope: 'row' }, name),
      h('td', null, m.top1 === null ? 'n/a' : formatPercent(m.top1)),
      h('td', null, formatPercent(m.agreement)),
      h('td', null, m.outputSqnrDb === undefined ? '–' : formatDb(m.outputSqnrDb)));
  return h('table', { class: 'mini accuracy' },
    h('thead', null, h('tr', null,
      h('th', null, ''),
      h('th', { scope: 'col', title: 'Top-1 accuracy against the labels' }, 'top-1'),
      h('th', { scope: 'col', title: 'Share of samples whose top-1 equals the float model\'s' }, 'agreement'),
      h('th', { scope: 'col', title: 'SQNR of all model outputs vs float' }, 'output SQNR dB'))),
    h('tbody', null,
      row('float', a.float),
      row('simulated', a.simulated),
      row('integer', a.integer, 'integer-row')));
}

function kernelList(report: Report): HTMLElement {
  const entries = Object.entries(report.integerKernels)
    .filter(([op]) => /^(com\.microsoft\.)?(QLinear|QGemm|MatMulInteger|ConvInteger|DynamicQuantize)/.test(op))
    .sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return h('p', { class: 'muted' }, 'No fused integer kernels ran.');
  return h('ul', { class: 'chips' }, entries.map(([op, n]) => h('li', null, op.replace(/^com\.microsoft\./, ''), h('span', { class: 'chip-count' }, `×${n}`))));
}

function warningsBlock(report: Report): HTMLElement {
  const n = report.warnings.length;
  const badge = h('vscode-badge', { variant: 'counter' }, String(n));
  if (n === 0) return h('div', { class: 'warnings none' }, 'Warnings ', badge);
  return h('details', { class: 'warnings' },
    h('summary', null, 'Warnings ', badge),
    h('ul', null, report.warnings.map((w) => h('li', null,
      h('code', { class: 'warning-code' }, w.code), ' ', w.message,
      w.node ? h('span', { class: 'muted' }, ` (node ${w.node})`) : null,
      w.tensor && !w.node ? h('span', { class: 'muted' }, ` (tensor ${w.tensor})`) : null))));
}

export function renderSummary(report: Report): HTMLElement {
  const m = report.model;
  const banner = report.data.synthetic
    ? h('div', { class: 'banner banner-warning', role: 'alert' },
        h('strong', null, 'SYNTHETIC data'),
        ' — this analysis ran on random inputs, so the thresholds and errors say nothing about real activations. Provide real samples with a data path.')
    : null;
  const dataItems: [string, string | Node][] = [
    ['Samples', String(report.samples)],
    ['Source', report.data.synthetic ? 'synthetic (random)' : report.data.source],
    ['Labels', report.data.labels ? 'yes' : 'no (agreement with float only)'],
    ['Inputs', report.data.inputs.map((i) => `${i.name} [${i.shape.join('×')}]`).join(', ') || '–'],
  ];
  return h('section', { id: 'summary', class: 'summary', 'aria-label': 'Summary' },
    banner,
    h('div', { class: 'summary-head' },
      h('div', { class: 'model' },
        h('h1', { class: 'model-name', title: m.path }, basename(m.path)),
        h('div', { class: 'model-path' }, m.path),
        h('div', { class: 'model-meta muted' },
          `opset ${m.opset} · ${m.producer || 'unknown producer'} · ${m.nodes} nodes · ${report.layers.length} quantized layers · sha256 ${m.sha256.slice(0, 12)}…`)),
      dropCard(report)),
    h('div', { class: 'summary-grid' },
      h('div', { class: 'card' }, ...configCard(report)),
      h('div', { class: 'card' }, h('h2', null, 'Data'), definitionList(dataItems)),
      h('div', { class: 'card' }, h('h2', null, 'Model output'), accuracyTable(report)),
      h('div', { class: 'card' },
        h('h2', null, 'Integer execution'),
        h('p', { class: 'encoding' }, report.integerEncoding || '–'),
        kernelList(report))),
    h('div', { class: 'summary-foot' },
      warningsBlock(report),
      h('span', { class: 'muted provenance' },
        `QuantLens ${report.tool.version} · onnxruntime ${report.tool.onnxruntime} · ${new Date(report.createdAt).toLocaleString()} · calibrate ${formatNumber((report.timings.calibrateMs ?? 0) / 1000, 3)} s, evaluate ${formatNumber((report.timings.evaluateMs ?? 0) / 1000, 3)} s`)));
}
