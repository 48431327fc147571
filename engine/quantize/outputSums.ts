/**
 * Per-sample comparison of a model's outputs with reference values, computed inside the model.
 * Sensitivity runs one downstream part per layer per batch; fetching each run's outputs (a text
 * recogniser's logits are 265k values per sample) and comparing them in JavaScript cost more than
 * the runs: JS passes per output and gigabytes of short-lived buffers for the garbage collector.
 * Here the model takes the float outputs as extra inputs and returns, per sample and output, two
 * sums (and the argmax rows of one output): a few hundred bytes per run.
 *
 * Per sample and output, in float32 like onnxruntime's other reductions (compareGraph.ts):
 *   sum y^2, sum (x-y)^2
 * (what per-sample SQNR, the output SQNR and the cosine need; max |x-y| is not taken: sensitivity
 * reports none, and each pass over a recogniser's logits costs seconds over all layers).
 * sum x^2 is the float output's own (the caller has it), and sum xy = (sx2 + sy2 - sd2) / 2. A
 * NaN or infinite quantized value makes sum y^2 non-finite: the caller then fetches the outputs
 * themselves (still graph outputs) and counts exactly.
 */
import type { ModelProto, NodeProto } from 'onnx-buf';
import { makeNode, untypedValueInfo } from '../onnx/graph';
import { cloneModel, opsetOf } from '../onnx/model';
import { typedValueInfo } from '../onnx/slice';
import { DT, makeTensor } from '../onnx/tensor';

export const OUTPUT_SUMS = 'quantlens::output_sums';
export const REF_PREFIX = 'quantlens_ref::';
/** Values per sample per output in OUTPUT_SUMS: sum y^2, sum (x-y)^2. */
export const SUMS_PER_OUTPUT = 2;

export interface OutputSumsModel {
  model: ModelProto;
  /** Outputs to fetch: the sums [N, 2 x outputs], and the argmax rows when asked. */
  fetch: string[];
  /** Name of the argmax output (int64, the output's shape without its last axis), if asked. */
  argmax: string | null;
}

/**
 * `model` (opset 9 or later) with its `outputs` (float32, batch first) compared in-graph with
 * reference inputs REF_PREFIX + name: adds OUTPUT_SUMS [N, SUMS_PER_OUTPUT * outputs.length] in the
 * order given, and the last-axis argmax of `argmaxOf` (ties go to the first index). The original
 * outputs stay fetchable.
 */
export function withOutputSums(source: ModelProto, outputs: readonly string[], argmaxOf: { name: string; rank: number } | null): OutputSumsModel {
  const model = cloneModel(source);
  const g = model.graph!;
  const opset = opsetOf(model);
  let k = 0;
  const nodes: NodeProto[] = [];
  const op = (type: string, ins: string[], attrs: Record<string, number | number[]> = {}, out = `quantlens::os_${type}_${k++}`): string => {
    nodes.push(makeNode(type, ins, [out], out, attrs));
    return out;
  };
  const constant = (dims: number[], values: BigInt64Array) => {
    const name = `quantlens::os_c${k++}`;
    g.initializer.push(makeTensor(name, DT.INT64, dims, values));
    return name;
  };
  // Reductions over axis 1 of [N, per]: `axes` became an input in opset 18.
  const axis1 = opset >= 18 ? constant([1], BigInt64Array.of(1n)) : '';
  const reduce = (type: string, x: string) => (axis1 ? op(type, [x, axis1], { keepdims: 1 }) : op(type, [x], { axes: [1], keepdims: 1 }));
  const flat = constant([2], BigInt64Array.of(0n, -1n)); // [N, ...] -> [N, per]
  const columns: string[] = [];
  for (const o of outputs) {
    const ref = REF_PREFIX + o;
    g.input.push(typedValueInfo(ref, DT.FLOAT));
    const y = op('Reshape', [o, flat]);
    const d = op('Sub', [op('Reshape', [ref, flat]), y]);
    columns.push(reduce('ReduceSumSquare', y), reduce('ReduceSumSquare', d));
  }
  op('Concat', columns, { axis: 1 }, OUTPUT_SUMS);
  // A negative axis needs opset 11.
  const argmax = argmaxOf ? op('ArgMax', [argmaxOf.name], { axis: argmaxOf.rank - 1, keepdims: 0 }, 'quantlens::os_argmax') : null;
  g.node.push(...nodes);
  g.output.push(untypedValueInfo(OUTPUT_SUMS), ...(argmax ? [untypedValueInfo(argmax)] : []));
  return { model, fetch: [OUTPUT_SUMS, ...(argmax ? [argmax] : [])], argmax };
}
