/**
 * The deployed grids of a twin expressed on a reference float graph: the twin itself (names are
 * the same), the user's original float model (--float), or the twin of another quantized version
 * of the same model (compare). Tensors match by name, else through the node that produces or reads
 * them (same node name), else through a Relu the quantizer folded away; weights match by node name
 * and input index when the shapes agree. What does not match is reported, never guessed.
 */
import { GraphIndex, type GraphProto } from '../onnx/graph';
import type { FixedCodes } from '../quantize/plan';
import type { QuantParams } from '../quantize/scheme';
import { sameGrid } from './codes';
import { type DeployedGrids, layerNodesOf } from './deployedPlan';
import type { Twin } from './twin';

export interface Unmatched {
  tensors: string[];
  layers: string[];
  weights: string[];
}

/** The twin's grids on its own graph. */
export function twinGrids(twin: Twin): DeployedGrids {
  const fixed = new Map<string, Map<number, FixedCodes>>();
  for (const n of twin.model.graph!.node) {
    n.input.forEach((t, i) => {
      const c = twin.constants.get(t);
      if (!c) return;
      if (!fixed.has(n.name)) fixed.set(n.name, new Map());
      fixed.get(n.name)!.set(i, c);
    });
  }
  return {
    activations: twin.grids,
    fixed,
    layerOutput: twin.layerOutput,
    quantized: new Set(twin.quantized.keys()),
    dynamicNodes: twin.dynamicNodes,
    blockedNodes: twin.blockedNodes,
  };
}

/** Map `own` (grids on the twin's graph) onto `target`. */
export function matchGrids(twin: Twin, own: DeployedGrids, target: GraphProto): { grids: DeployedGrids; unmatched: Unmatched } {
  const src = new GraphIndex(twin.model.graph!);
  const dst = new GraphIndex(target);
  const dstNodes = new Map(target.node.map((n) => [n.name, n]));
  const exists = (t: string) => dst.producer.has(t) || dst.graphInputs.has(t);
  const unmatched: Unmatched = { tensors: [], layers: [], weights: [] };

  const mapTensor = (t: string, depth = 0): string | undefined => {
    if (exists(t)) return t;
    const p = src.producer.get(t);
    const q = p && dstNodes.get(p.name);
    if (p && q && q.opType === p.opType) return q.output[p.output.indexOf(t)];
    for (const c of src.consumers.get(t) ?? []) {
      const d = dstNodes.get(c.name);
      if (d && d.opType === c.opType && d.input[c.input.indexOf(t)]) return d.input[c.input.indexOf(t)];
    }
    // A Relu the twin made explicit: the reference has its own Relu after the same value.
    if (p && p.opType === 'Relu' && depth < 4) {
      const before = mapTensor(p.input[0], depth + 1);
      const readers = before ? (dst.consumers.get(before) ?? []) : [];
      if (readers.length === 1 && readers[0].opType === 'Relu') return readers[0].output[0];
    }
    return undefined;
  };

  const activations = new Map<string, QuantParams>();
  const renamed = new Map<string, string>();
  for (const [t, g] of own.activations) {
    const m = mapTensor(t);
    const prior = m ? activations.get(m) : undefined;
    if (!m || (prior && !sameGrid(prior, g))) {
      unmatched.tensors.push(t);
      continue;
    }
    activations.set(m, g);
    renamed.set(t, m);
  }

  const fixed = new Map<string, Map<number, FixedCodes>>();
  for (const [node, inputs] of own.fixed) {
    const d = dstNodes.get(node);
    if (!d) continue; // reported with the layers below
    for (const [i, codes] of inputs) {
      const init = dst.initializers.get(d.input[i] ?? '');
      const dims = init?.dims.map(Number);
      if (!dims || dims.length !== codes.dims.length || dims.some((v, k) => v !== codes.dims[k])) {
        unmatched.weights.push(`${node} input ${i}`);
        continue;
      }
      if (!fixed.has(node)) fixed.set(node, new Map());
      fixed.get(node)!.set(i, codes);
    }
  }

  for (const n of layerNodesOf(own)) if (!dstNodes.has(n)) unmatched.layers.push(n);
  const layerOutput = new Map<string, string>();
  for (const [n, t] of own.layerOutput) {
    const m = renamed.get(t);
    if (m && dstNodes.has(n)) layerOutput.set(n, m);
  }
  const keep = (s: Set<string>) => new Set([...s].filter((n) => dstNodes.has(n)));
  return {
    grids: { activations, fixed, layerOutput, quantized: keep(own.quantized), dynamicNodes: keep(own.dynamicNodes), blockedNodes: keep(own.blockedNodes) },
    unmatched,
  };
}
