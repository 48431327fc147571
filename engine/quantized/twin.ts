/**
 * The float twin of a quantized model, and the grids the model deploys.
 *
 * The twin computes what the quantized model computes, minus the rounding: integer weights are
 * dequantized (the twin's weights ARE the deployed values), QuantizeLinear/DequantizeLinear are
 * removed, and every QOperator node becomes its float operator. Alongside, every activation's
 * deployed scale and zero point and every weight's integer codes are kept, keyed by twin tensor,
 * so the analysis can run the deployed grids against the twin instead of calibrating new ones.
 */
import { clone } from '@bufbuild/protobuf';
import { type ModelProto, TensorProto_DataType as DT, ValueInfoProtoSchema } from 'onnx-buf';
import { InputError } from '../errors';
import { type NodeProto, attrInts, ensureNodeNames, hoistConstants, makeNode } from '../onnx/graph';
import { cloneModel, opsetOf } from '../onnx/model';
import { nodeReads } from '../onnx/slice';
import type { FixedCodes } from '../quantize/plan';
import type { QuantParams } from '../quantize/scheme';
import { isCodeType } from './codes';
import { type QuantizationCensus, detectQuantization, isQOperatorNode } from './detect';
import { INTEGER_NODES } from './integerNodes';
import { QLINEAR } from './qlinearNodes';
import { dequantizeLinear, dynamicQuantizeLinear, otherNode, quantizeLinear } from './qdqNodes';
import { TwinBuilder } from './twinBuilder';

export interface Twin {
  model: ModelProto;
  census: QuantizationCensus;
  /** Twin activation tensor -> its deployed grid. */
  grids: Map<string, QuantParams>;
  /** Twin initializer -> the integer codes the deployed model holds for it. */
  constants: Map<string, FixedCodes>;
  /** Twin node -> the deployed operator it stands for (QOperator nodes); QDQ layers are found from their grids. */
  quantized: Map<string, string>;
  /** Twin node -> the tensor holding its deployed output grid, where that is not its own output (an explicit Relu). */
  layerOutput: Map<string, string>;
  /** Twin nodes whose activations the deployed model quantizes at run time, or whose weights are block-quantized. */
  dynamicNodes: Set<string>;
  blockedNodes: Set<string>;
  notes: string[];
}

type Converter = (b: TwinBuilder, n: NodeProto) => void;

const CONVERTERS: Record<string, Converter> = {
  QuantizeLinear: quantizeLinear,
  'com.microsoft.QuantizeLinear': quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  'com.microsoft.DequantizeLinear': dequantizeLinear,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
  ...QLINEAR,
  ...INTEGER_NODES,
};

function qualified(n: NodeProto): string {
  return n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
}

/** Build the float twin of `proto` (never modified); `file` names the model in errors. */
export function buildTwin(proto: ModelProto, file: string): Twin {
  const source = cloneModel(proto);
  hoistConstants(source);
  ensureNodeNames(source.graph!);
  const census = detectQuantization(source.graph!);
  const b = new TwinBuilder(source.graph!, file, opsetOf(source));
  for (const n of source.graph!.node) {
    if (b.absorbed.has(n)) continue;
    const convert = CONVERTERS[qualified(n)];
    if (convert) convert(b, n);
    else if (isQOperatorNode(n)) throw new InputError(`${b.where(n)}: QuantLens cannot turn ${qualified(n)} into a float operator yet`);
    else otherNode(b, n);
  }
  const model = assemble(source, b);
  const live = new Set([...model.graph!.node.flatMap((n) => n.output), ...model.graph!.input.map((i) => i.name)]);
  const grids = new Map([...b.grids].filter(([t]) => live.has(t)));
  const nodes = new Set(model.graph!.node.map((n) => n.name));
  const inits = new Set(model.graph!.initializer.map((i) => i.name));
  return {
    model,
    census,
    grids,
    constants: new Map([...b.constants].filter(([t]) => inits.has(t))),
    quantized: new Map([...b.quantized].filter(([n]) => nodes.has(n))),
    layerOutput: new Map([...b.layerOutput].filter(([n, t]) => nodes.has(n) && live.has(t))),
    dynamicNodes: b.dynamicNodes,
    blockedNodes: b.blockedNodes,
    notes: b.notes,
  };
}

/** The twin model: the converted nodes, graph outputs under their own names, dead nodes and constants dropped. */
function assemble(source: ModelProto, b: TwinBuilder): ModelProto {
  const model = cloneModel(source);
  const g = model.graph!;
  const nodes = b.nodes;
  const outputs = g.output.map((o) => o.name);
  for (const o of outputs) nameOutput(b, nodes, o, outputs);
  g.output = g.output.map((o) => {
    const c = clone(ValueInfoProtoSchema, o);
    if (c.type?.value.case === 'tensorType' && isCodeType(c.type.value.value.elemType)) c.type.value.value.elemType = DT.FLOAT;
    return c;
  });
  const outs = new Set(outputs);
  let live = liveNodes(nodes, outs);
  // Sinking one transpose can let another pair cancel, which frees the next one to sink.
  do {
    cancelTransposes(live, outs);
    live = liveNodes(live, outs);
  } while (sinkTransposes(live, outs, b));
  g.node = live;
  const used = new Set(g.node.flatMap(nodeReads));
  g.initializer = [...source.graph!.initializer, ...b.initializers].filter((t) => used.has(t.name));
  const inits = new Set(g.initializer.map((t) => t.name));
  const sourceInits = new Set(source.graph!.initializer.map((t) => t.name));
  g.input = g.input.filter((i) => !sourceInits.has(i.name) || inits.has(i.name));
  g.valueInfo = []; // integer tensors became float ones under the same names: old types would conflict
  return model;
}

/**
 * The twin must produce each graph output under its name. When the value lives in another tensor
 * (a DequantizeLinear output was the graph output), rename that tensor if nothing else depends on
 * its name, else add an Identity.
 */
function nameOutput(b: TwinBuilder, nodes: NodeProto[], o: string, outputs: string[]): void {
  const f = b.float(o);
  if (f === o) return;
  const producer = nodes.find((n) => n.output.includes(f));
  const renamable = producer && !outputs.includes(f) && !b.src.graphInputs.has(f) && !nodes.some((n) => n.output.includes(o));
  if (!renamable) {
    nodes.push(makeNode('Identity', [f], [o], b.fresh(`${o}_identity`)));
    return;
  }
  for (const n of nodes) {
    n.input = n.input.map((t) => (t === f ? o : t));
    n.output = n.output.map((t) => (t === f ? o : t));
  }
  const g = b.grids.get(f);
  if (g) b.grids.set(o, g);
  for (const [k, v] of b.layerOutput) if (v === f) b.layerOutput.set(k, o);
  for (const [k, v] of b.alias) if (v === f) b.alias.set(k, o);
}

/** Elementwise operators of one input: they commute with a transpose. */
const ELEMENTWISE = new Set(['Relu', 'Identity', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Abs', 'Neg', 'Exp']);
/** Binary elementwise operators: they commute with the same transpose on both inputs (the inputs' shapes are equal there). */
const SAME_SHAPE_BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * Move one transpose below an elementwise operator (Transpose -> Relu becomes Relu -> Transpose),
 * so the layout transposes around onnxruntime's channels-last kernels meet and cancel. The
 * operator keeps its output name (and grid) on the original layout. Returns whether it moved one.
 */
function sinkTransposes(nodes: NodeProto[], outputs: Set<string>, b: TwinBuilder): boolean {
  {
    const producer = new Map<string, NodeProto>();
    const readers = new Map<string, number>();
    for (const n of nodes) {
      for (const o of n.output) producer.set(o, n);
      for (const i of n.input) readers.set(i, (readers.get(i) ?? 0) + 1);
    }
    for (const u of [...nodes]) {
      if (!(ELEMENTWISE.has(u.opType) && u.input.length === 1) && !SAME_SHAPE_BINARY.has(u.opType)) continue;
      const ts = u.input.map((x) => producer.get(x));
      const perm = ts[0]?.opType === 'Transpose' ? String(attrInts(ts[0], 'perm')) : '';
      const movable =
        perm &&
        ts.every((t) => t && t.opType === 'Transpose' && String(attrInts(t, 'perm')) === perm && readers.get(t.output[0]) === 1 && !outputs.has(t.output[0]));
      if (!movable || outputs.has(u.output[0])) continue;
      const old = u.output[0];
      const moved = b.fresh(`${old}_moved`);
      for (const m of nodes) if (m !== u) m.input = m.input.map((x) => (x === old ? moved : x));
      const [t, ...rest] = ts as NodeProto[];
      u.input = ts.map((x) => x!.input[0]);
      t.input = [old];
      t.output = [moved];
      for (const r of [t, ...rest]) nodes.splice(nodes.indexOf(r), 1);
      nodes.splice(nodes.indexOf(u) + 1, 0, t);
      const g = b.grids.get(old);
      if (g) b.grids.set(moved, g);
      return true;
    }
  }
  return false;
}

/** Transpose(p2) of Transpose(p1) with p1[p2[i]] = i is the identity: readers take the original tensor. */
function cancelTransposes(nodes: NodeProto[], outputs: Set<string>): void {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  for (const n of nodes) {
    if (n.opType !== 'Transpose' || outputs.has(n.output[0])) continue;
    const first = producer.get(n.input[0]);
    if (!first || first.opType !== 'Transpose') continue;
    const p1 = attrInts(first, 'perm');
    const p2 = attrInts(n, 'perm');
    if (!p1 || !p2 || p1.length !== p2.length || !p2.every((v, i) => p1[v] === i)) continue;
    const from = n.output[0];
    const to = first.input[0];
    for (const m of nodes) m.input = m.input.map((t) => (t === from ? to : t));
  }
}

/** Nodes something downstream (another live node or a graph output) reads, in order. */
function liveNodes(nodes: NodeProto[], outputs: Set<string>): NodeProto[] {
  const needed = new Set(outputs);
  const keep: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.output.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const t of nodeReads(n)) needed.add(t);
  }
  return keep.reverse();
}
