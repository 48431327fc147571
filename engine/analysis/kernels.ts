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
import type { OutputTap } from '../quantize/qdqRewrite';
import type { QuantParams } from '../quantize/scheme';
import { createSession } from '../runtime/session';

export interface KernelMap {
  /** Per layer: the fused kernel that writes its output codes, or null (it ran in float between DQ and Q). */
  byLayer: Map<string, string | null>;
  /** Every op in the optimized graph, counted (If/Loop/Scan bodies included). */
  counts: Record<string, number>;
}

/**
 * Fused kernels in onnxruntime's optimized graph, mapped back to layers through the tensors they
 * write (the layer's output codes). Layout Transposes that the NHWC transformer inserts after a
 * fused kernel are walked through.
 */
export function kernelsFrom(optimized: ModelProto, taps: OutputTap[]): KernelMap {
  const counts: Record<string, number> = {};
  const producer = new Map<string, { op: string; input: string }>();
  // onnxruntime optimizes If/Loop/Scan bodies too: a layer in a body is found by its tensor there.
  for (const { graph } of graphsOf(optimized)) {
    for (const n of graph.node) {
      const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
      counts[op] = (counts[op] ?? 0) + 1;
      for (const o of n.output) producer.set(o, { op, input: n.input[0] });
    }
  }
  const byLayer = new Map<string, string | null>();
  for (const tap of taps) {
    let p = producer.get(tap.source ?? tap.tensor);
    for (let hops = 0; p && p.op === 'Transpose' && hops < 4; hops++) p = producer.get(p.input);
    const op = p?.op ?? null;
    byLayer.set(tap.layer, op && !/(Quantize|Dequantize)Linear$/.test(op) ? op.replace(/^com\.microsoft\./, '') : null);
  }
  return { byLayer, counts };
}

/** Create an integer-mode session for `model` that also saves the optimized graph, and read its kernels. */
export async function integerSessionWithKernels(model: ModelProto, taps: OutputTap[], label: string) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-'));
  const optimizedPath = path.join(tmp, 'integer-optimized.onnx');
  try {
    const session = await createSession(model, 'integer', { optimizedModelPath: optimizedPath, label });
    const kernels = kernelsFrom(decodeModel(fs.readFileSync(optimizedPath), optimizedPath).proto, taps);
    return { session, kernels };
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
