/**
 * The Model Outline: the graph as readable text, one line per node
 *   NAME  OP  (input, input) -> (output)
 * plus hover text for nodes and tensors from the last report. Pure: no I/O.
 */
import type { ErrorMetrics, LayerReport, Report, TensorReport } from '../../protocol/report';
import type { ModelProto } from '../onnx/model';
import { formatRate } from '../../protocol/format';

export interface Outline {
  text: string;
  /** 0-based line of each node. */
  nodeLines: Map<string, number>;
  nodes: Set<string>;
  tensors: Set<string>;
}

export function buildOutline(model: ModelProto, modelPath: string): Outline {
  const g = model.graph!;
  const lines = [
    `# QuantLens model outline: ${modelPath}`,
    `# ${g.node.length} nodes, opset ${model.opsetImport.map((o) => `${o.domain || 'ai.onnx'}=${o.version}`).join(' ')}. Hover a node or tensor name for its quantization stats.`,
    `# inputs: ${g.input.map((i) => i.name).join(', ')}   outputs: ${g.output.map((o) => o.name).join(', ')}`,
  ];
  const nodeLines = new Map<string, number>();
  const tensors = new Set<string>();
  g.node.forEach((n, i) => {
    const name = n.name || `${n.opType}_${i}`;
    nodeLines.set(name, lines.length);
    n.input.forEach((t) => t && tensors.add(t));
    n.output.forEach((t) => t && tensors.add(t));
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    lines.push(`${name}  ${op}  (${n.input.filter(Boolean).join(', ')}) -> (${n.output.join(', ')})`);
  });
  return { text: lines.join('\n') + '\n', nodeLines, nodes: new Set(nodeLines.keys()), tensors };
}

/** The name-like token under a cursor (node and tensor names hold / . : - too). */
export function tokenAt(line: string, character: number, pattern = /[\w./:-]+/g): string | null {
  for (const m of line.matchAll(pattern)) {
    if (m.index! <= character && character <= m.index! + m[0].length) return m[0];
  }
  return null;
}

const db = (x: number | string) => (typeof x === 'string' ? x : Number.isFinite(x) ? `${x.toFixed(1)} dB` : x > 0 ? '∞ dB' : '-∞ dB');
const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`);
const metrics = (m: ErrorMetrics) => `SQNR ${db(m.sqnrDb)}, cosine ${m.cosine.toFixed(4)}, max |err| ${m.maxAbs.toPrecision(3)}`;

/** "all 300 samples", or "first 16 of 300 samples" for figures measured on the first samples only. */
const samplesOf = (n: number | undefined, total: number) => (n === undefined || n >= total ? `all ${total} samples` : `first ${n} of ${total} samples`);

export function layerHover(l: LayerReport, r: Report, sqnrWarningDb: number): string {
  const out = r.tensors.find((t) => t.name === l.output && t.kind === 'activation');
  // Flag the error the layer makes itself (isolated), not the accumulated error it may inherit.
  const flag = l.isolated.integer.sqnrDb < sqnrWarningDb ? ` ⚠ own SQNR below ${sqnrWarningDb} dB` : '';
  const lines = [
    `**${l.node}** (${l.op}) — integer kernel: \`${l.integerKernel ?? 'float'}\`${flag}`,
    '',
    `- accumulated, simulated: ${metrics(l.simulated)}`,
    `- accumulated, integer: ${metrics(l.integer)}`,
    `- isolated (float inputs, ${samplesOf(r.isolatedSamples, r.samples)}): simulated ${db(l.isolated.simulated.sqnrDb)}, integer ${db(l.isolated.integer.sqnrDb)}`,
    `- simulated vs integer codes: ${formatRate(l.simVsIntMismatch)} differ (${samplesOf(r.detailSamples, r.samples)}), max ${l.simVsIntMaxLsb} LSB`,
  ];
  if (l.sensitivity) {
    const s = l.sensitivity;
    lines.push(
      `- sensitivity rank #${s.rank}: only this quantized → agreement ${pct(s.onlyThis.agreement)}, output ${db(s.onlyThis.outputSqnrDb)}${s.allButThis ? `; all but this → agreement ${pct(s.allButThis.agreement)}` : ''}`,
    );
  }
  if (out) lines.push('', tensorLines(out));
  return lines.join('\n');
}

function tensorLines(t: TensorReport): string {
  const th = Object.entries(t.thresholds)
    .map(([m, v]) => `${m} [${v!.lo.toPrecision(3)}, ${v!.hi.toPrecision(3)}]`)
    .join(', ');
  const chosen = t.chosen
    ? `${t.chosen.method}, scale ${Array.isArray(t.chosen.scale) ? `${t.chosen.scale.length} channels` : t.chosen.scale.toPrecision(4)}, zero point ${Array.isArray(t.chosen.zeroPoint) ? '…' : t.chosen.zeroPoint}`
    : 'not quantized';
  return [
    `\`${t.name}\` (${t.kind}) range [${t.min.toPrecision(4)}, ${t.max.toPrecision(4)}]${t.degenerate ? ` — ${t.degenerate}` : ''}`,
    `- thresholds: ${th}`,
    `- chosen: ${chosen}; clip rate ${pct(t.clipRate)}${clipBounds(t)}`,
  ].join('\n');
}

/** The clip rate's bounds when the histogram's edge bins leave it uncertain at the printed precision. */
function clipBounds(t: TensorReport): string {
  const b = t.clipRateBounds;
  return b && pct(b.low) !== pct(b.high) ? ` (between ${pct(b.low)} and ${pct(b.high)})` : '';
}

export function tensorHover(t: TensorReport): string {
  return tensorLines(t);
}

/** Layers whose node name has `identifier` as a path segment (torch.onnx.export naming). */
export function layersForIdentifier(r: Report, identifier: string): LayerReport[] {
  return r.layers.filter((l) => l.node.split(/[/.:]/).includes(identifier));
}
