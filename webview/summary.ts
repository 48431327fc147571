// The top of the page: which model and configuration, then the Diagnosis card (the drop with its
// interval, the culprits, the fix), then the configuration, data, accuracy and integer execution.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import { agreementApplies, formatWithInterval, intervalNote } from '../protocol/format';
import { u8s8Hazard } from '../protocol/platform';
import type { Interval, ModelOutputMetrics, QuantConfig, Report, TensorSchemeConfig } from '../protocol/report';
import { diagnosisCard, type DiagnosisCardOptions } from './diagnosisCard';
import { h } from './dom';
import { basename, formatDb, formatNumber } from './format';
import { configLabel } from './viewData';

function schemeText(s: TensorSchemeConfig, granularity: string): string {
  const parts = [`${s.bits}-bit`, s.signed ? 'signed' : 'unsigned', granularity, s.symmetric ? 'symmetric' : 'asymmetric'];
  if (s.narrowRange) parts.push('narrow range');
  if (s.powerOfTwo) parts.push('power-of-two scale');
  return parts.join(', ');
}

function configList(c: QuantConfig): HTMLElement {
  const calibration = c.calibration === 'percentile' ? `percentile (${c.percentile})` : c.calibration;
  const items: [string, string | Node][] = [
    ['Preset', c.preset],
    ['Calibration', calibration],
    ['Weights', `W${c.weights.bits} · ${schemeText(c.weights, c.weights.perChannel ? 'per-channel' : 'per-tensor')}`],
    ['Activations', `A${c.activations.bits} · ${schemeText(c.activations, 'per-tensor')}`],
    ['Placement', c.placement === 'compute' ? 'compute ops (Conv/Gemm/MatMul)' : 'extended (also Add/Mul/Concat/pooling)'],
    ['BatchNorm', c.foldBatchNorm ? 'folded into Conv' : 'not folded'],
  ];
  if (c.exclude.length) items.push(['Kept float', c.exclude.join(', ')]);
  const overrides = overrideTexts(c);
  if (overrides.length)
    items.push([
      'Overrides',
      h(
        'ul',
        { class: 'overrides' },
        overrides.map((o) => h('li', null, o)),
      ),
    ]);
  return definitionList(items);
}

/** Per-tensor and per-layer changes on top of the configuration, one line each. */
export function overrideTexts(c: QuantConfig): string[] {
  const out: string[] = [];
  for (const o of c.tensorOverrides ?? []) {
    const parts: string[] = [];
    if (o.range) parts.push(`range [${formatNumber(o.range.lo)}, ${formatNumber(o.range.hi)}]`);
    else if (o.calibration) parts.push(o.calibration === 'percentile' && o.percentile ? `percentile ${o.percentile}` : o.calibration);
    if (o.bits) parts.push(`${o.bits}-bit`);
    out.push(`${o.tensor}: ${parts.join(', ') || 'unchanged'}`);
  }
  for (const o of c.layerOverrides ?? []) {
    const parts: string[] = [];
    if (o.weightBits) parts.push(`W${o.weightBits}`);
    if (o.perChannel !== undefined) parts.push(o.perChannel ? 'per-channel' : 'per-tensor');
    if (o.activationBits) parts.push(`A${o.activationBits}`);
    out.push(`${o.node}: ${parts.join(', ') || 'unchanged'}`);
  }
  return out;
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
    [
      'Scheme',
      `W${report.config.weights.bits} · ${schemeText(report.config.weights, report.config.weights.perChannel ? 'per-channel' : 'per-tensor')} · A${report.config.activations.bits} · ${schemeText(report.config.activations, 'per-tensor')}`,
    ],
  ];
  const unmatched = z.unmatched ? z.unmatched.tensors.length + z.unmatched.layers.length + z.unmatched.weights.length : 0;
  if (unmatched) items.push(['Not matched', `${unmatched} tensors/layers/weights of the quantized model are not in the float model (see the JSON report)`]);
  return [h('h2', null, 'Deployed model'), definitionList(items), ...z.notes.slice(0, 1).map((n) => h('p', { class: 'muted' }, n))];
}

function definitionList(items: [string, string | Node][]): HTMLElement {
  return h(
    'dl',
    { class: 'kv' },
    items.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
}

function accuracyTable(report: Report): HTMLElement {
  const a = report.accuracy;
  const n = (m: { samples?: number }) => m.samples ?? report.samples;
  // The value, and its interval in smaller type under it: the same numbers as "x [lo, hi]" elsewhere.
  const cell = (share: number | null, iv: Interval | null | undefined, samples: number) => {
    if (share === null) return h('td', { class: 'num' }, 'n/a');
    const text = formatWithInterval(share, iv, 100, 2);
    const at = text.indexOf(' [');
    return h(
      'td',
      { class: 'num', title: intervalNote(iv, samples) },
      at < 0 ? text : [h('div', null, text.slice(0, at)), h('div', { class: 'iv muted' }, text.slice(at + 1))],
    );
  };
  const row = (name: string, m: ModelOutputMetrics | null, cls = '') =>
    h(
      'tr',
      { class: cls || null },
      h('th', { scope: 'row' }, name),
      m ? cell(m.top1, m.top1Interval, n(m)) : cell(a.float.top1, a.float.top1Interval, report.samples),
      !agreementApplies(report)
        ? h('td', { class: 'num', title: 'the first output holds no class scores' }, 'n/a')
        : m
          ? cell(m.agreement, m.agreementInterval, n(m))
          : h('td', { class: 'num' }, '100'),
      h('td', { class: 'num' }, m ? formatDb(m.outputSqnrDb) : '–'),
    );
  return h(
    'div',
    null,
    h(
      'table',
      { class: 'mini accuracy', id: 'accuracy-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', null, ''),
          h('th', { scope: 'col', class: 'num', title: 'Top-1 accuracy against the labels, percent, with its 95% interval' }, 'top-1 %'),
          h(
            'th',
            { scope: 'col', class: 'num', title: "Share of samples whose top-1 equals the float model's, percent, with its 95% interval" },
            'agreement %',
          ),
          h('th', { scope: 'col', class: 'num', title: 'SQNR of all model outputs vs float' }, 'output SQNR dB'),
        ),
      ),
      h('tbody', null, row('float', null), row('simulated', a.simulated), row('integer', a.integer, 'integer-row')),
    ),
    h(
      'p',
      { class: 'caption muted' },
      `[95% interval] on ${report.samples} samples${a.mcnemarP !== null && a.mcnemarP !== undefined ? ` · McNemar p = ${a.mcnemarP.toPrecision(2)}` : ''}`,
    ),
  );
}

function platformLine(report: Report): HTMLElement | null {
  const p = report.platform;
  if (!p) return null;
  const target = p.target === 'this' ? 'this machine' : p.target === 'vnni' ? 'a CPU with VNNI' : 'an x86 CPU without VNNI';
  return h(
    'p',
    { class: 'platform muted', id: 'platform' },
    `Ran on ${p.cpu} (${p.arch}${p.vnni ? ', VNNI' : ''}); target: ${target}. `,
    u8s8Hazard(p) ? 'u8×s8 pair sums can saturate int16 there.' : 'u8×s8 saturation cannot happen there.',
  );
}

function kernelList(report: Report): HTMLElement {
  const entries = Object.entries(report.integerKernels)
    .filter(([op]) => /^(com\.microsoft\.)?(QLinear|QGemm|MatMulInteger|ConvInteger|DynamicQuantize)/.test(op))
    .sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return h('p', { class: 'muted' }, 'No fused integer kernels ran.');
  return h(
    'ul',
    { class: 'chips' },
    entries.map(([op, n]) => h('li', null, op.replace(/^com\.microsoft\./, ''), h('span', { class: 'chip-count' }, `×${n}`))),
  );
}

function warningsBlock(report: Report): HTMLElement | null {
  const n = report.warnings.length;
  const badge = h('vscode-badge', { variant: 'counter' }, String(n));
  // "Warnings 0" on the first screen reads as "nothing wrong"; the diagnosis says what is.
  if (n === 0) return null;
  return h(
    'details',
    { class: 'warnings' },
    h('summary', null, 'Analysis notes ', badge),
    h(
      'ul',
      null,
      report.warnings.map((w) =>
        h(
          'li',
          null,
          h('code', { class: 'warning-code' }, w.code),
          ' ',
          w.message,
          w.node ? h('span', { class: 'muted' }, ` (node ${w.node})`) : null,
          w.tensor && !w.node ? h('span', { class: 'muted' }, ` (tensor ${w.tensor})`) : null,
        ),
      ),
    ),
  );
}

export type ConfigAction = 'sweep' | 'mixedPrecision' | 'quantize';

export interface SummaryOptions extends DiagnosisCardOptions {
  /** Act on the report's configuration (VS Code only): sweep around it, mixed precision, write the model. */
  onAct?: (action: ConfigAction) => void;
}

/** Buttons acting on the configuration on screen: what they run is exactly the report's `config`. */
function actionsRow(onAct: (action: ConfigAction) => void): HTMLElement {
  const items: [ConfigAction, string, string][] = [
    ['sweep', 'Sweep around this…', 'Sweep configurations with this one as the base'],
    ['mixedPrecision', 'Mixed precision…', 'Keep the most damaging layers in float until the drop meets a budget, starting from this configuration'],
    ['quantize', 'Write quantized model…', 'Write this configuration as a QDQ model (asks first)'],
  ];
  return h(
    'div',
    { class: 'config-actions', role: 'group', 'aria-label': 'Act on this configuration' },
    h('span', { class: 'muted' }, 'This configuration:'),
    items.map(([action, label, title]) => {
      const b = h('vscode-button', { secondary: true, id: `act-${action}`, title }, label);
      b.addEventListener('click', () => onAct(action));
      return b;
    }),
  );
}

/** The top of the Layers tab: the model, the Diagnosis card, then configuration, data, accuracy and kernels. */
export function renderSummary(report: Report, diagnosis: SummaryOptions): HTMLElement {
  const m = report.model;
  const banner = report.data.synthetic
    ? h(
        'div',
        { class: 'banner banner-warning', role: 'alert' },
        h('strong', null, 'SYNTHETIC data'),
        ' — this analysis ran on random inputs, so the thresholds and errors say nothing about real activations. Provide real samples with a data path.',
      )
    : null;
  const dataItems: [string, string | Node][] = [
    ['Samples', String(report.samples)],
    ['Source', report.data.synthetic ? 'synthetic (random)' : report.data.source],
    ['Labels', report.data.labels ? 'yes' : 'no (agreement with float only)'],
    ['Inputs', report.data.inputs.map((i) => `${i.name} [${i.shape.join('×')}]`).join(', ') || '–'],
  ];
  if (report.primaryMetric) dataItems.push(['Judged by', report.primaryMetric.description]);
  return h(
    'section',
    { id: 'summary', class: 'summary', 'aria-label': 'Summary' },
    banner,
    h(
      'div',
      { class: 'summary-head' },
      h(
        'div',
        { class: 'model' },
        h('h1', { class: 'model-name', title: m.path }, basename(m.path)),
        h('div', { class: 'model-path' }, m.path),
        h(
          'div',
          { class: 'model-meta muted' },
          `${configLabel(report.config)}${overrideTexts(report.config).length ? ` + ${overrideTexts(report.config).length} override(s)` : ''} · opset ${m.opset} · ${m.producer || 'unknown producer'} · ${m.nodes} nodes · ${report.layers.length} quantized layers · sha256 ${m.sha256.slice(0, 12)}…`,
        ),
        diagnosis.onAct ? actionsRow(diagnosis.onAct) : null,
      ),
    ),
    diagnosisCard(report, diagnosis),
    h(
      'div',
      { class: 'summary-grid' },
      h('div', { class: 'card' }, ...configCard(report)),
      h('div', { class: 'card' }, h('h2', null, 'Data'), definitionList(dataItems)),
      h('div', { class: 'card' }, h('h2', null, 'Model output'), accuracyTable(report)),
      h(
        'div',
        { class: 'card' },
        h('h2', null, 'Integer execution'),
        h('p', { class: 'encoding' }, report.integerEncoding || '–'),
        kernelList(report),
        platformLine(report),
      ),
    ),
    h(
      'div',
      { class: 'summary-foot' },
      warningsBlock(report),
      h(
        'span',
        { class: 'muted provenance' },
        `QuantLens ${report.tool.version} · onnxruntime ${report.tool.onnxruntime} · ${new Date(report.createdAt).toLocaleString()} · calibrate ${formatNumber((report.timings.calibrateMs ?? 0) / 1000, 3)} s, evaluate ${formatNumber((report.timings.evaluateMs ?? 0) / 1000, 3)} s`,
      ),
    ),
  );
}
