/**
 * Small helpers over an ONNX graph: attribute access, node/value construction, and an index of
 * who produces and who consumes each tensor.
 */
import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType as AT,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  NodeProtoSchema,
  type TensorProto,
  ValueInfoProtoSchema,
} from 'onnx-buf';

import { nodeReads } from './slice';

export type { GraphProto, NodeProto, TensorProto };

export function attr(node: NodeProto, name: string) {
  return node.attribute.find((a) => a.name === name);
}
export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? Number(a.i) : dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? a.f : dflt;
}
export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

type AttrValue = number | number[] | string | TensorProto | { float: number };

/** Build a node. Integers become INT/INTS attributes; wrap a float as `{float: x}`. */
export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttrValue> = {}, domain = ''): NodeProto {
  const attribute = Object.entries(attrs).map(([k, v]) => {
    if (typeof v === 'number') return create(AttributeProtoSchema, { name: k, type: AT.INT, i: BigInt(v) });
    if (typeof v === 'string') return create(AttributeProtoSchema, { name: k, type: AT.STRING, s: new TextEncoder().encode(v) });
    if (Array.isArray(v)) return create(AttributeProtoSchema, { name: k, type: AT.INTS, ints: v.map((x) => BigInt(x)) });
    if ('float' in v) return create(AttributeProtoSchema, { name: k, type: AT.FLOAT, f: v.float });
    return create(AttributeProtoSchema, { name: k, type: AT.TENSOR, t: v as TensorProto });
  });
  return create(NodeProtoSchema, { opType, input: inputs, output: outputs, name, attribute, domain });
}

/** A graph output entry with no type: onnxruntime accepts these and infers the type. */
export function untypedValueInfo(name: string) {
  return create(ValueInfoProtoSchema, { name });
}

/** Names for nodes without one, so every layer can be reported and excluded by name. */
export function ensureNodeNames(graph: GraphProto): void {
  const used = new Set(graph.node.map((n) => n.name).filter(Boolean));
  graph.node.forEach((n, i) => {
    if (n.name) return;
    let name = `${n.opType}_${i}`;
    while (used.has(name)) name += '_';
    n.name = name;
    used.add(name);
  });
}

export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly graphInputs: Set<string>;
  readonly graphOutputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const n of graph.node) {
      for (const o of n.output) if (o) this.producer.set(o, n);
      for (const i of n.input) {
        if (!i) continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    this.graphOutputs = new Set(graph.output.map((o) => o.name));
    // Initializers may also be listed as inputs (IR < 4); only the others are real inputs.
    this.graphInputs = new Set(graph.input.map((i) => i.name).filter((n) => !this.initializers.has(n)));
  }

  /** A value known before inference: an initializer or the output of a Constant node. */
  isConstant(name: string): boolean {
    if (this.initializers.has(name)) return true;
    return this.producer.get(name)?.opType === 'Constant';
  }
}

/**
 * Move every Constant node's tensor into the initializer list (in a model we are rewriting, never
 * the user's): weights then live in one place whatever the exporter did.
 */
export function hoistConstants(model: ModelProto): void {
  hoistGraphConstants(model.graph!);
}

/** Constant nodes of one graph (not its bodies) -> initializers of that graph. */
export function hoistGraphConstants(g: GraphProto): void {
  const keep: NodeProto[] = [];
  for (const n of g.node) {
    const value = n.opType === 'Constant' && n.domain === '' ? attr(n, 'value') : undefined;
    if (value?.t && n.output.length === 1) {
      value.t.name = n.output[0];
      g.initializer.push(value.t);
    } else {
      keep.push(n);
    }
  }
  g.node = keep;
}

/** Adds every name a graph declares or produces (nodes, their tensors, initializers, inputs, outputs). */
export function collectNames(graph: GraphProto, used: Set<string>): Set<string> {
  for (const n of graph.node) {
    used.add(n.name);
    n.input.forEach((i) => used.add(i));
    n.output.forEach((o) => used.add(o));
  }
  graph.initializer.forEach((t) => used.add(t.name));
  graph.input.forEach((i) => used.add(i.name));
  graph.output.forEach((o) => used.add(o.name));
  return used;
}

/** A generator of names not in `used` (`base`, then `base_1`, `base_2`...); each name it gives is then used. */
export function allocatorOver(used: Set<string>): (base: string) => string {
  return (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
}

/** Unique-name generator for tensors and nodes added to a graph. */
export function nameAllocator(graph: GraphProto): (base: string) => string {
  return allocatorOver(collectNames(graph, new Set()));
}

/**
 * Drop initializers nothing reads (e.g. float weights replaced by quantized ones), in `graph` and
 * in every If/Loop/Scan body at any depth. A body may read an initializer of an enclosing graph:
 * those reads keep it.
 */
export function pruneUnusedInitializers(graph: GraphProto): void {
  const used = new Set<string>();
  for (const n of graph.node) {
    for (const r of nodeReads(n)) used.add(r);
    for (const a of n.attribute) for (const body of [...(a.g ? [a.g] : []), ...a.graphs]) pruneUnusedInitializers(body);
  }
  for (const o of graph.output) used.add(o.name);
  const inits = new Set(graph.initializer.map((t) => t.name));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  // IR < 4 lists initializers as inputs too: a dropped one must not stay behind as an input to feed
  graph.input = graph.input.filter((i) => used.has(i.name) || !inits.has(i.name));
}
