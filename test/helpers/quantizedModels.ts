/**
 * Tiny quantized ONNX graphs (QDQ and QOperator) for the float-twin tests, and running a model and
 * its twin side by side in onnxruntime.
 */
import { create } from '@bufbuild/protobuf';
import { type ModelProto, type NodeProto, OperatorSetIdProtoSchema, type TensorProto } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../engine/onnx/model';
import { buildTwin, type Twin } from '../../engine/quantized/twin';
import { DT, buildModel, makeTensor, valueInfo } from './tinyModels';

export interface Grid {
  scale: number;
  zp: number;
  type: DT;
}

/** Scale and zero point initializers named `<base>_s` / `<base>_zp`. */
export function gridInits(base: string, g: Grid | { scale: number[]; zp: number[]; type: DT }): TensorProto[] {
  const per = Array.isArray(g.scale);
  const s = per ? (g.scale as number[]) : [g.scale as number];
  const z = per ? (g.zp as number[]) : [g.zp as number];
  return [makeTensor(`${base}_s`, DT.FLOAT, per ? [s.length] : [], s), makeTensor(`${base}_zp`, g.type, per ? [z.length] : [], z)];
}

/** A model with com.microsoft in its opset imports. */
export function quantizedModel(spec: {
  nodes: NodeProto[];
  inputs: [string, number[]][];
  outputs: [string, number[]][];
  initializers: TensorProto[];
  opset?: number;
}): ModelProto {
  const m = buildModel({
    nodes: spec.nodes,
    inputs: spec.inputs.map(([n, d]) => valueInfo(n, d)),
    outputs: spec.outputs.map(([n, d]) => valueInfo(n, d)),
    initializers: spec.initializers,
    opset: spec.opset ?? 13,
  });
  m.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }));
  return m;
}

/** Values exactly on a grid (so quantizing them is exact): codes drawn from `r` over the grid's range. */
export function onGrid(n: number, g: Grid, r: () => number, lo = 0, hi = 255): Float32Array {
  return Float32Array.from({ length: n }, () => Math.fround((lo + Math.floor(r() * (hi - lo + 1)) - g.zp) * g.scale));
}

async function run(model: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 4 });
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

/** Run the quantized model and its float twin on the same feeds. */
export async function runBoth(
  model: ModelProto,
  feeds: Record<string, { data: Float32Array; dims: number[] }>,
): Promise<{ quantized: Float32Array; twin: Float32Array; t: Twin }> {
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]));
  const t = buildTwin(model, 'tiny.onnx');
  return { quantized: await run(model, tensors), twin: await run(t.model, tensors), t };
}

/**
 * Largest |quantized - twin| with the twin's values clamped to the output grid's range (given):
 * QuantizeLinear saturates there, which is clipping, not a difference of the twin.
 */
export function maxAbsDiff(quantized: Float32Array, twin: Float32Array, grid?: Grid): number {
  const lo = grid ? (0 - grid.zp) * grid.scale : -Infinity;
  const hi = grid ? ((grid.type === DT.INT8 ? 127 : 255) - grid.zp) * grid.scale : Infinity;
  let m = 0;
  for (let i = 0; i < quantized.length; i++) m = Math.max(m, Math.abs(quantized[i] - Math.min(hi, Math.max(lo, twin[i]))));
  return m;
}
