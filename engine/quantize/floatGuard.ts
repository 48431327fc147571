/**
 * Keeping float what the plan keeps float when onnxruntime would quantize it anyway.
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
 * copy only, so the walk back to a DequantizeLinear is generous. An excluded node of another kind
 * (an Add onnxruntime would fuse into a QLinearAdd) gets the guard on each dequantized input.
 */
import type { ModelProto, NodeProto } from 'onnx-buf';
import { GraphIndex, makeNode } from '../onnx/graph';
import { allInitializers, graphsOf, modelNameAllocator } from '../onnx/scopes';

/** The operators onnxruntime's pass rewrites (MatMul: after it becomes a Gemm with its bias Add). */
const FLOAT_GUARDED_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

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
 * The layers onnxruntime would quantize itself in a model as it stands: float-weight
 * Conv/ConvTranspose/Gemm/MatMul, and MatMuls of two dequantized tensors, reading a dequantized
 * tensor directly or across data-movement ops, in any graph. `guard` limits them to the nodes a
 * caller may change.
 */
function rewrites(model: ModelProto, lk: Lookups, guard: (node: string) => boolean): NodeProto[] {
  return graphsOf(model).flatMap(({ graph }) =>
    graph.node.filter(
      (n) => n.domain === '' && FLOAT_GUARDED_OPS.has(n.opType) && !!n.input[0] && guard(n.name) && lk.readsDequantized(n.input[0]) && lk.rewritable(n),
    ),
  );
}

type Lookups = ReturnType<typeof lookups>;

/** What the guard decisions read of a model: where a tensor comes from, across scopes and data movement. */
function lookups(model: ModelProto) {
  const initializers = allInitializers(model);
  // Producers across scopes: a body reads its enclosing graphs' tensors (names are unique in a model).
  const producer = new Map<string, NodeProto>();
  for (const { graph } of graphsOf(model)) for (const [t, n] of new GraphIndex(graph).producer) producer.set(t, n);
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
  return { readsDequantized, rewritable, producer };
}

/**
 * Insert the guard before every layer onnxruntime would quantize itself (onnxruntimeRewrites)
 * that `guard` accepts: `guard` says which nodes are float by the plan (a quantized layer of two
 * activations reads dequantized tensors too). Nodes the user excluded (`excluded`: any operator,
 * Add and pooling too, which onnxruntime fuses into QLinearAdd... from dequantized inputs and a
 * quantized output) get the guard on every input that reads a dequantized tensor. Returns the
 * guarded nodes.
 */
export function guardFloatLayers(model: ModelProto, guard: (node: string) => boolean = () => true, excluded: ReadonlySet<string> = new Set()): string[] {
  const lk = lookups(model);
  const { readsDequantized } = lk;
  const targets = new Map<NodeProto, number[]>(rewrites(model, lk, guard).map((n) => [n, [0]]));
  for (const { graph } of graphsOf(model))
    for (const n of graph.node) {
      if (!excluded.has(n.name)) continue;
      const inputs = n.input.flatMap((t, i) => (t && readsDequantized(t) ? [i] : []));
      if (inputs.length) targets.set(n, inputs);
    }
  if (targets.size === 0) return [];
  const fresh = modelNameAllocator(model);
  for (const { graph: g } of graphsOf(model)) {
    const nodes = [];
    for (const n of g.node) {
      for (const i of targets.get(n) ?? []) {
        const copy = fresh(`${n.input[i]}_float`);
        nodes.push(makeNode('Max', [n.input[i]], [copy], fresh(`${n.name || n.output[0]}_keep_float`)));
        n.input[i] = copy;
      }
      nodes.push(n);
    }
    g.node = nodes;
  }
  return [...targets.keys()].map((n) => n.name);
}

/**
 * How an already-quantized file treats its float layers, as onnxruntime loads it: `unguarded`,
 * those it leaves for onnxruntime to quantize (between DQ and Q, no guard); `guarded`, those it
 * keeps float with the guard (an input read through a single-input Max of a dequantized tensor).
 */
export function fileFloatLayers(model: ModelProto): { unguarded: Set<string>; guarded: Set<string> } {
  const lk = lookups(model);
  const guarded = new Set<string>();
  for (const { graph } of graphsOf(model))
    for (const n of graph.node)
      if (
        n.input.some((t) => {
          const p = t ? lk.producer.get(t) : undefined;
          return p?.opType === 'Max' && p.input.length === 1 && lk.readsDequantized(p.input[0]);
        })
      )
        guarded.add(n.name);
  return { unguarded: new Set(rewrites(model, lk, () => true).map((n) => n.name)), guarded };
}
