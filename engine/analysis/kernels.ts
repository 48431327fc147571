/**
 * Which kernels onnxruntime really runs, read from its own optimized graph, and the integer grid
 * the analysis runs on x86.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { QuantConfig } from '../../protocol/report';
import { decodeModel, type ModelProto } from '../onnx/model';
import { graphsOf } from '../onnx/scopes';
import type { QuantParams } from '../quantize/scheme';
import { createSession } from '../runtime/session';

export interface KernelMap {
  /** Per layer: the fused kernel that writes its output codes, or null (it ran in float between DQ and Q). */
  byLayer: Map<string, string | null>;
  /** Every op in the optimized graph, counted (If/Loop/Scan bodies included). */
  counts: Record<string, number>;
}

/**
 * Fused kernels in onnxruntime's optimized graph, mapped back to layers. Output tensor names do not
 * survive fusion (Conv -> Q -> DQ -> Relu -> Q collapses into one QLinearConv writing the Relu's
 * codes), so a kernel is matched by what it reads: the layer's quantized weight initializer (named
 * `<layer>_<weight>_quantized` by the QDQ writer, kept by onnxruntime) or, for layers without
 * weights (Add, pooling), its node name (onnxruntime names a fused node after the node it replaces,
 * with `_token_<k>` appended by its NHWC layout pass).
 */
export function kernelsFrom(optimized: ModelProto, layers: readonly { name: string; weights: readonly string[] }[]): KernelMap {
  const counts: Record<string, number> = {};
  const byLayer = new Map<string, string | null>(layers.map((l) => [l.name, null]));
  const byWeight = new Map<string, string>();
  for (const l of layers) for (const w of l.weights) byWeight.set(w, l.name);
  const byName = new Map(layers.map((l) => [l.name, l.name]));
  // onnxruntime optimizes If/Loop/Scan bodies too: a layer inside a body is fused there.
  for (const n of graphsOf(optimized).flatMap((g) => g.graph.node)) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    counts[op] = (counts[op] ?? 0) + 1;
    if (/(Quantize|Dequantize)Linear$|^Transpose$/.test(op)) continue;
    const layer = n.input.map((i) => byWeight.get(i)).find(Boolean) ?? byName.get(n.name) ?? byName.get(n.name.replace(/_token_\d+$/, ''));
    // Only a kernel that works on integers counts (a float Conv left between DQ and Q does not).
    if (layer && /^(QLinear|QGemm|QAttention|MatMulInteger|ConvInteger|MatMulIntegerToFloat|DynamicQuantize|MatMulNBits|QOrdered)/.test(n.opType)) {
      byLayer.set(layer, op.replace(/^com\.microsoft\./, ''));
    }
  }
  return { byLayer, counts };
}

/** What `kernelsFrom` needs of a QDQ build: each layer's name and its quantized weight initializers. */
export function layerKeys(
  built: { weights: readonly { layer: string; initializer: string }[] },
  layers: readonly string[],
): { name: string; weights: string[] }[] {
  return layers.map((name) => ({ name, weights: built.weights.filter((w) => w.layer === name).map((w) => w.initializer) }));
}

/**
 * The kernels onnxruntime fuses `model` into: an integer-mode session created only to save its
 * optimized graph (never run, so created without weight prepacking), released at once.
 */
export async function optimizedKernels(model: ModelProto, layers: { name: string; weights: string[] }[], label: string): Promise<KernelMap> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-'));
  const optimizedPath = path.join(tmp, 'integer-optimized.onnx');
  try {
    const session = await createSession(model, 'integer', { optimizedModelPath: optimizedPath, label, graphOnly: true });
    await session.release();
    return kernelsFrom(decodeModel(fs.readFileSync(optimizedPath), optimizedPath).proto, layers);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * onnxruntime's x86 kernels fuse uint8 activations most widely. A symmetric signed 8-bit grid
 * (zero point 0) is EXACTLY the unsigned grid shifted by 128 (same scale, zero point 128): every
 * code, accumulation and output is the same integer arithmetic. The analysis's integer session
 * runs that encoding, so the TensorRT scheme is measured on real integer kernels here; the report
 * says so, and separately which kernels the WRITTEN (int8) file gets.
 */
export function integerEncoding(config: QuantConfig): { config: QuantConfig; shift: number } {
  const a = config.activations;
  if (process.arch !== 'x64' || a.bits !== 8 || !a.signed || !a.symmetric) return { config, shift: 0 };
  return { config: { ...config, activations: { ...a, signed: false } }, shift: 128 };
}

/** Shift every signed 8-bit grid by `shift` (other grids, e.g. 16-bit overrides, stay as they are). */
export function shiftParams(m: Map<string, QuantParams>, shift: number): Map<string, QuantParams> {
  if (!shift) return m;
  const eightBitSigned = (p: QuantParams) => p.qmin < 0 && p.qmax <= 127;
  return new Map([...m].map(([k, p]) => [k, eightBitSigned(p) ? { ...p, zeroPoint: p.zeroPoint + shift, qmin: p.qmin + shift, qmax: p.qmax + shift } : p]));
}
