/**
 * Walks over everything a model holds, at any depth: the main graph, the subgraphs of If / Loop /
 * Scan (and any other graph-valued attribute), and model-local functions. Each tensor comes with
 * a description naming where it sits, for one-line error messages.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';

/** A node for messages: its name and op, or its op, position and first output when it has no name. */
export function nodeLabel(n: NodeProto, index?: number): string {
  if (n.name) return `node ${n.name} (${n.opType})`;
  const at = index === undefined ? '' : ` #${index}`;
  return `${n.opType} node${at} (no name, output ${n.output[0] || 'none'})`;
}

/** The graphs a node carries in its attributes (If's branches, Loop's and Scan's bodies, ...). */
export function subgraphsOf(n: NodeProto): { attr: string; graph: GraphProto }[] {
  const out: { attr: string; graph: GraphProto }[] = [];
  for (const a of n.attribute) {
    if (a.g) out.push({ attr: a.name, graph: a.g });
    a.graphs.forEach((g, k) => out.push({ attr: `${a.name}[${k}]`, graph: g }));
  }
  return out;
}

/** The words that place something inside a subgraph: " in subgraph body of node loop1 (Loop)". */
export function subgraphScope(outer: string, attr: string, n: NodeProto, index: number): string {
  return ` in subgraph ${attr} of ${nodeLabel(n, index)}${outer}`;
}

export interface TensorSite {
  tensor: TensorProto;
  /** "initializer conv1.weight", "the value of node c1 (Constant) in subgraph body of ...". */
  where: string;
}

/** Every TensorProto in the model: initializers, sparse initializers, tensor attributes, at any depth. */
export function* tensorSites(model: ModelProto): Generator<TensorSite> {
  if (model.graph) yield* graphTensors(model.graph, '');
  for (const f of model.functions) yield* nodeTensors(f.node, ` in function ${f.name}`);
}

function* graphTensors(g: GraphProto, scope: string): Generator<TensorSite> {
  for (const t of g.initializer) yield { tensor: t, where: `initializer ${t.name}${scope}` };
  for (const s of g.sparseInitializer) {
    const name = s.values?.name ?? '';
    if (s.values) yield { tensor: s.values, where: `values of sparse initializer ${name}${scope}` };
    if (s.indices) yield { tensor: s.indices, where: `indices of sparse initializer ${name}${scope}` };
  }
  yield* nodeTensors(g.node, scope);
}

function* nodeTensors(nodes: readonly NodeProto[], scope: string): Generator<TensorSite> {
  for (const [i, n] of nodes.entries()) {
    const of = `${nodeLabel(n, i)}${scope}`;
    for (const a of n.attribute) {
      const what = n.opType === 'Constant' && a.name.startsWith('value') ? 'the value of' : `attribute ${a.name} of`;
      if (a.t) yield { tensor: a.t, where: `${what} ${of}` };
      for (const [k, t] of a.tensors.entries()) yield { tensor: t, where: `attribute ${a.name}[${k}] of ${of}` };
      const sparse = [...(a.sparseTensor ? [a.sparseTensor] : []), ...a.sparseTensors];
      for (const s of sparse) {
        if (s.values) yield { tensor: s.values, where: `values of sparse ${what} ${of}` };
        if (s.indices) yield { tensor: s.indices, where: `indices of sparse ${what} ${of}` };
      }
    }
    for (const { attr, graph } of subgraphsOf(n)) yield* graphTensors(graph, subgraphScope(scope, attr, n, i));
  }
}
