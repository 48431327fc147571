/**
 * Keeping a float Conv/ConvTranspose/Gemm in float when onnxruntime would quantize it anyway.
 *
 * onnxruntime 1.20+ (its WeightBiasQuantization pass, on whenever QDQ fusion is on) rewrites a
 * Conv, ConvTranspose or Gemm whose input 0 comes straight from a per-tensor DequantizeLinear,
 * whose output reaches a QuantizeLinear (through Relu/Clip only) and whose weight is a float
 * constant: it quantizes the weight itself (int8, per tensor, from its min/max) and the bias to
 * int32, and then fuses the layer into an integer kernel. That is exactly the shape of a layer the
 * plan keeps in float between quantized neighbours (excluded by the user, chosen as a fix, left
 * out by mixed precision): without a guard such a layer does not run in float on onnxruntime, and
 * in a model below opset 11 the Round the pass inserts does not exist, so the file does not load.
 *
 * The guard is a single-input Max (the identity, defined since opset 1) between the
 * DequantizeLinear and the layer: onnxruntime neither removes it (it does remove Identity, before
 * this pass) nor moves a DequantizeLinear across it, so the layer reads a float tensor and stays a
 * float kernel. Other runtimes see an elementwise copy.
 */
import type { ModelProto } from 'onnx-buf';
import { GraphIndex, makeNode } from '../onnx/graph';
import { allInitializers, graphsOf, modelNameAllocator } from '../onnx/scopes';

/** The operators onnxruntime's pass rewrites. */
export const FLOAT_GUARDED_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm']);

/**
 * Insert the guard before every float-weight Conv/ConvTranspose/Gemm that reads a dequantized
 * tensor (and that `guard` accepts). Returns the guarded nodes.
 */
export function guardFloatLayers(model: ModelProto, guard: (node: string) => boolean = () => true): string[] {
  const initializers = allInitializers(model);
  // Names are allocated only once a layer needs a guard (most models written have none).
  let allocator: ((base: string) => string) | undefined;
  const fresh = (base: string) => (allocator ??= modelNameAllocator(model))(base);
  const guarded: string[] = [];
  for (const { graph: g } of graphsOf(model)) {
    const idx = new GraphIndex(g);
    const floatConstant = (t: string | undefined) => !!t && (initializers.has(t) || idx.producer.get(t)?.opType === 'Constant');
    const nodes = [];
    for (const n of g.node) {
      const from = idx.producer.get(n.input[0] ?? '');
      if (n.domain === '' && FLOAT_GUARDED_OPS.has(n.opType) && guard(n.name) && from?.opType === 'DequantizeLinear' && floatConstant(n.input[1])) {
        const copy = fresh(`${n.input[0]}_float`);
        nodes.push(makeNode('Max', [n.input[0]], [copy], fresh(`${n.name || n.output[0]}_keep_float`)));
        n.input[0] = copy;
        guarded.push(n.name);
      }
      nodes.push(n);
    }
    g.node = nodes;
  }
  return guarded;
}
