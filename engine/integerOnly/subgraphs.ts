/**
 * Subgraph attributes (If branches, Loop and Scan bodies) may read tensors of the enclosing
 * graph by name. To run such a node alone, those outer-scope names must be supplied to it.
 */
import type { GraphProto, NodeProto } from '../onnx/graph';

/** Graphs held in a node's attributes (GRAPH and GRAPHS attributes). */
export function subgraphsOf(n: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of n.attribute) {
    if (a.g) out.push(a.g);
    out.push(...a.graphs);
  }
  return out;
}

/** Names a graph reads that it does not define itself (inputs, initializers, node outputs), nested graphs included. */
function freeNames(g: GraphProto, out: Set<string>): void {
  const defined = new Set<string>([...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name)]);
  for (const n of g.node) {
    const reads = [...n.input];
    for (const sub of subgraphsOf(n)) {
      const inner = new Set<string>();
      freeNames(sub, inner);
      reads.push(...inner);
    }
    for (const r of reads) if (r && !defined.has(r)) out.add(r);
    for (const o of n.output) if (o) defined.add(o);
  }
  for (const o of g.output) if (!defined.has(o.name)) out.add(o.name);
}

/** Outer-scope tensors a node's subgraphs read, in first-seen order (empty for ordinary nodes). */
export function outerScopeInputs(n: NodeProto): string[] {
  const subs = subgraphsOf(n);
  if (subs.length === 0) return [];
  const names = new Set<string>();
  for (const g of subs) freeNames(g, names);
  return [...names];
}
