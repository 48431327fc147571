/**
 * Isolated layers run on some batches only. onnxruntime runs every node of a graph whatever a
 * run fetches, so the only way to skip a part of it is an If: each isolated layer (its Q/DQ
 * nodes, the layer copy, and the reductions comparing it with the float output) moves into the
 * then-branch of an If on a boolean graph input; the else-branch is a vector of zeros. On the
 * recogniser the isolated copies were about a quarter of the comparison runs (docs/performance.md,
 * seventeenth round); a branch runs where its layer runs, so memory stays as it was.
 *
 * Everything a branch defines (nodes, initializers it alone reads, copies of those it shares) is
 * inside it under names of its own, so the QDQ fusion onnxruntime applies in a subgraph sees its
 * weights and grids as the branch's constants, as it sees them in the main graph.
 */
import { create } from '@bufbuild/protobuf';
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, type GraphProto, GraphProtoSchema, type NodeProto } from 'onnx-buf';
import { makeNode } from '../onnx/graph';
import { nodeReads, typedValueInfo } from '../onnx/slice';
import { DT, makeTensor } from '../onnx/tensor';

/** Names of the isolated layers' nodes in a comparison model (mergeIsolated, compareGraph.ts). */
export const ISO_PREFIX = 'quantlens_iso::';

/** One isolated layer's part of a comparison model. */
export interface Gate {
  /** The layer (its If is named ISO_PREFIX + key, which places it at the layer: compareGraph's interleave). */
  key: string;
  /** The reductions comparing the layer's isolated output with the float one (not in the graph yet). */
  sums: NodeProto[];
  /** Their float64 vector, `length` long. */
  output: string;
  length: number;
}

/**
 * Move each gate's isolated nodes (those named ISO_PREFIX... its reductions read, transitively) and
 * its reductions into an If on `flag`. A node another part of the graph also reads stays outside,
 * read from the branch as an outer-scope value; a node two gates read is copied into both.
 * Returns each gate's If output (its sums, or zeros when `flag` is false), in gate order.
 */
export function gateIsolated(g: GraphProto, gates: readonly Gate[], flag: string, fresh: (base: string) => string): string[] {
  const producer = new Map<string, number>();
  g.node.forEach((n, i) => {
    for (const o of n.output) if (o) producer.set(o, i);
  });
  // Which gates each isolated node serves.
  const claims = new Map<number, Set<number>>();
  gates.forEach((gate, k) => {
    const stack = gate.sums.flatMap(nodeReads);
    while (stack.length) {
      const i = producer.get(stack.pop()!);
      if (i === undefined || !g.node[i].name.startsWith(ISO_PREFIX)) continue;
      const s = claims.get(i) ?? new Set<number>();
      claims.set(i, s);
      if (s.has(k)) continue;
      s.add(k);
      stack.push(...nodeReads(g.node[i]));
    }
  });
  // Nodes read from outside every gate (or graph outputs) stay where they are, and so do the
  // nodes those read, which the fixpoint below reaches through them.
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const moved = new Set([...claims.keys()].filter((i) => !g.node[i].output.some((o) => graphOutputs.has(o))));
  for (let changed = true; changed; ) {
    changed = false;
    for (const [i, n] of g.node.entries()) {
      if (moved.has(i)) continue;
      for (const r of nodeReads(n)) {
        const j = producer.get(r);
        if (j !== undefined && moved.delete(j)) changed = true;
      }
    }
  }
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  // Readers of each initializer: the gates whose branch reads it, and whether anything outside does.
  const initReaders = new Map<string, { gates: Set<number>; outside: boolean }>();
  const noteRead = (name: string, gate: number | null) => {
    if (!inits.has(name)) return;
    const r = initReaders.get(name) ?? { gates: new Set<number>(), outside: false };
    initReaders.set(name, r);
    if (gate === null) r.outside = true;
    else r.gates.add(gate);
  };
  const branchNodes = gates.map((gate, k) => [
    ...[...moved]
      .filter((i) => claims.get(i)!.has(k))
      .sort((a, b) => a - b)
      .map((i) => g.node[i]),
    ...gate.sums,
  ]);
  branchNodes.forEach((nodes, k) => {
    for (const n of nodes) for (const r of nodeReads(n)) noteRead(r, k);
  });
  for (const [i, n] of g.node.entries()) if (!moved.has(i)) for (const r of nodeReads(n)) noteRead(r, null);
  for (const o of g.output) noteRead(o.name, null);

  const outputs: string[] = [];
  gates.forEach((gate, k) => {
    const suffix = `@${k}`;
    const local = new Set<string>(branchNodes[k].flatMap((n) => n.output.filter(Boolean)));
    const initializer = [];
    for (const [name, r] of initReaders) {
      if (!r.gates.has(k)) continue;
      local.add(name);
      initializer.push({ ...inits.get(name)!, name: name + suffix });
    }
    const rename = (x: string) => (local.has(x) ? x + suffix : x);
    const node = branchNodes[k].map((n) => ({ ...n, name: n.name + suffix, input: n.input.map(rename), output: n.output.map(rename) }));
    const thenBranch = create(GraphProtoSchema, {
      name: `${ISO_PREFIX}${gate.key}::then`,
      node,
      initializer,
      output: [typedValueInfo(rename(gate.output), DT.DOUBLE)],
    });
    const zeros = `${ISO_PREFIX}${gate.key}::zeros`;
    const elseBranch = create(GraphProtoSchema, {
      name: `${ISO_PREFIX}${gate.key}::else`,
      node: [makeNode('Constant', [], [zeros], zeros, { value: makeTensor(zeros, DT.DOUBLE, [gate.length], new Float64Array(gate.length)) })],
      output: [typedValueInfo(zeros, DT.DOUBLE)],
    });
    const out = fresh('isolated_sums');
    const gateNode = makeNode('If', [flag], [out], ISO_PREFIX + gate.key);
    gateNode.attribute = [
      create(AttributeProtoSchema, { name: 'then_branch', type: AT.GRAPH, g: thenBranch }),
      create(AttributeProtoSchema, { name: 'else_branch', type: AT.GRAPH, g: elseBranch }),
    ];
    g.node.push(gateNode);
    outputs.push(out);
  });
  g.node = g.node.filter((_, i) => !moved.has(i));
  // An initializer only branches read now lives in them.
  g.initializer = g.initializer.filter((t) => {
    const r = initReaders.get(t.name);
    return !r || r.outside || r.gates.size === 0;
  });
  return outputs;
}
