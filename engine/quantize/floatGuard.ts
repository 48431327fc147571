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
 * "Straight from" is after onnxruntime's other passes: its QDQ propagation moves a
 * DequantizeLinear forward across data-movement ops (Reshape, Transpose, MaxPool...), a MatMul
 * with a constant weight and a bias Add becomes a Gemm, and an If with a constant condition is
 * inlined, so a layer reading an enclosing graph's tensor counts too.
 *
 * The guard is a single-input Max (the identity, defined since opset 1) right before the layer:
 * onnxruntime neither removes it (it does remove Identity, before this pass) nor moves a
 * DequantizeLinear across it, so the layer reads a float tensor and stays a float kernel. Other
 * runtimes see an elementwise copy. Guarding a layer that would have stayed float anyway costs that
 * copy only, so the walk back to a DequantizeLinear is generous.
 */
import type { ModelProto, NodeProto } from 'onnx-buf';
import { GraphIndex, makeNode } from '../onnx/graph';
import { allInitializers, graphsOf, modelNameAllocator } from '../onnx/scopes';

/** The operators onnxruntime's pass rewrites (MatMul: after it becomes a Gemm with its bias Add). */
export const FLOAT_GUARDED_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/** Single-data-input operators a DequantizeLinear can be moved across (or that only move data). */
const DATA_MOVEMENT = new Set([
  'Reshape',
  'Transpose',
  'Squeeze',
  'Unsqueeze',
  'Flatten',
  'Slice',
  'Gather',
  'MaxPool',
  'Identity',
  'Expand',
  'Tile',
  'DepthToSpace',
  'SpaceToDepth',
  'Resize',
  'Split',
]);

/**
 * Insert the guard before every float-weight Conv/ConvTranspose/Gemm/MatMul, and every MatMul of
 * two dequantized tensors, that reads a dequantized tensor, directly or across data-movement ops,
 * in any graph. `guard` says which nodes are float by the plan (a quantized layer of two
 * activations reads dequantized tensors too). Returns the guarded nodes.
 */
export function guardFloatLayers(model: ModelProto, guard: (node: string) => boolean = () => true): string[] {
  const initializers = allInitializers(model);
  const graphs = graphsOf(model);
  // Producers across scopes: a body reads its enclosing graphs' tensors (names are unique in a model).
  const producer = new Map<string, NodeProto>();
  for (const { graph } of graphs) for (const [t, n] of new GraphIndex(graph).producer) producer.set(t, n);
  const floatConstant = (t: string | undefined) => !!t && (initializers.has(t) || producer.get(t)?.opType === 'Constant');
  const readsDequantized = (tensor: string): boolean => {
    for (let t = tensor, hops = 0; hops < 64; hops++) {
      const p = producer.get(t);
      if (!p) return false;
      if (p.opType === 'DequantizeLinear') return true;
      if (!DATA_MOVEMENT.has(p.opType) || !p.input[0]) return false;
      t = p.input[0];
    }
    return false;
  };
  // What onnxruntime turns into an integer kernel once input 0 is dequantized: a float-weight
  // Conv/ConvTranspose/Gemm/MatMul (WeightBiasQuantization), and a MatMul of two dequantized
  // tensors (MatMulIntegerToFloat).
  const rewritable = (n: NodeProto) => floatConstant(n.input[1]) || (n.opType === 'MatMul' && !!n.input[1] && readsDequantized(n.input[1]));
  // Names are allocated only once a layer needs a guard (most models written have none).
  let allocator: ((base: string) => string) | undefined;
  const fresh = (base: string) => (allocator ??= modelNameAllocator(model))(base);
  const guarded: string[] = [];
  for (const { graph: g } of graphs) {
    const nodes = [];
    for (const n of g.node) {
      const input = n.input[0];
      if (n.domain === '' && FLOAT_GUARDED_OPS.has(n.opType) && input && guard(n.name) && readsDequantized(input) && rewritable(n)) {
        const copy = fresh(`${input}_float`);
        nodes.push(makeNode('Max', [input], [copy], fresh(`${n.name || n.output[0]}_keep_float`)));
        n.input[0] = copy;
        guarded.push(n.name);
      }
      nodes.push(n);
    }
    g.node = nodes;
  }
  return guarded;
}
