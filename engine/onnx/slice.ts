/**
 * Cutting graphs into parts the analysis runs on their own: the nodes downstream of a layer, the
 * tensors such a part reads from outside itself (including what If/Loop/Scan bodies read from the
 * enclosing graph), and typed graph inputs for them.
 */
import { create } from '@bufbuild/protobuf';
import { type GraphProto, type NodeProto, TypeProtoSchema, TypeProto_TensorSchema, ValueInfoProtoSchema } from 'onnx-buf';

/** Names an If/Loop/Scan body reads from the enclosing scope (recursively). */
export function outerReads(graph: GraphProto): string[] {
  const local = new Set<string>([...graph.input.map((i) => i.name), ...graph.initializer.map((t) => t.name)]);
  for (const n of graph.node) for (const o of n.output) local.add(o);
  const out = new Set<string>();
  for (const n of graph.node) {
    for (const r of nodeReads(n)) if (r && !local.has(r)) out.add(r);
  }
  return [...out];
}

/** Every tensor a node reads: its inputs and, for control flow, what its bodies read from outside. */
export function nodeReads(n: NodeProto): string[] {
  const reads = n.input.filter(Boolean);
  for (const a of n.attribute) {
    if (a.g) reads.push(...outerReads(a.g));
    for (const g of a.graphs) reads.push(...outerReads(g));
  }
  return reads;
}

/** `start` and every node that depends on it, in graph order. */
export function downstreamOf(graph: GraphProto, start: NodeProto): NodeProto[] {
  const reached = new Set<string>(start.output.filter(Boolean));
  const out: NodeProto[] = [];
  let on = false;
  for (const n of graph.node) {
    if (n === start) {
      on = true;
      out.push(n);
      continue;
    }
    if (!on) continue;
    if (nodeReads(n).some((r) => reached.has(r))) {
      out.push(n);
      for (const o of n.output) if (o) reached.add(o);
    }
  }
  return out;
}

/** Tensors `nodes` read that none of them produce (initializers in `constants` excluded). */
export function frontierOf(nodes: readonly NodeProto[], constants: ReadonlySet<string>): string[] {
  const produced = new Set<string>();
  for (const n of nodes) for (const o of n.output) if (o) produced.add(o);
  const out = new Set<string>();
  for (const n of nodes) for (const r of nodeReads(n)) if (!produced.has(r) && !constants.has(r)) out.add(r);
  return [...out];
}

/** A graph input of a known element type and unknown shape. */
export function typedValueInfo(name: string, elemType: number) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType }) } }),
  });
}

/** onnxruntime tensor type names -> ONNX element types. */
export const ELEM_TYPE: Record<string, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
};
