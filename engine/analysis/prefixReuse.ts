/**
 * Reuse of a measured configuration's upstream work. A fix search measures candidates that differ
 * from a configuration it already measured (the plan so far) in one layer or a few; every node
 * upstream of the first difference computes exactly what it computed then. So each measurement
 * keeps, per batch, the integer CODES entering the layers the search may change, and a candidate
 * runs only from there: its nodes minus the longest prefix it shares node for node (same op,
 * attributes, inputs, and initializer contents) with a measured model, fed with that model's
 * codes at the cut.
 *
 * Cuts lie only at codes (a QuantizeLinear output), so onnxruntime fuses the suffix's first
 * DequantizeLinear -> Conv -> QuantizeLinear into the same integer kernel as in the whole model:
 * the suffix computes the same integers, and the measurement is the whole model's (a test checks
 * it to the bit). Anything else the suffix reads from the prefix (a float tensor between a
 * DequantizeLinear and a fused kernel, a model output) is recomputed back to kept codes.
 */
import { equals } from '@bufbuild/protobuf';
import { NodeProtoSchema, type TensorProto, TensorProtoSchema } from 'onnx-buf';
import { type GraphProto, untypedValueInfo } from '../onnx/graph';
import { emptyClone, type ModelProto } from '../onnx/model';
import { nodeReads, typedValueInfo } from '../onnx/slice';
import type { NodeProto } from '../onnx/graph';

/** How far back (nodes) from a layer a change to it can reach (Conv -> Relu -> QuantizeLinear producing its input). */
const PRODUCER_DEPTH = 6;

/** Where a change to a layer can be cut off, and the codes tensors crossing there. */
export interface CutPoint {
  /** `<layer>|own` (changes to its weights or output) or `<layer>|input` (to its input's grid). */
  key: string;
  /** Position in graph order: nodes before it are not touched by such a change. */
  at: number;
  tensors: string[];
}

/**
 * Two cut points per layer. A change to the layer's weights or output grid touches nothing before
 * the layer's node; one to its input's grid changes the QuantizeLinear onnxruntime fuses into the
 * PRODUCER's kernel, so that cut lies before the producer (walking back from the layer's inputs
 * through float nodes). At each, the codes tensors (QuantizeLinear outputs) made before it and
 * read after it, skip connections included.
 */
export function cutPoints(model: ModelProto, layers: readonly string[]): CutPoint[] {
  const nodes = model.graph!.node;
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const lastRead = new Map<string, number>();
  nodes.forEach((n, i) => nodeReads(n).forEach((r) => lastRead.set(r, i)));
  for (const o of model.graph!.output) lastRead.set(o.name, nodes.length);
  // Where each codes tensor is last needed: by its DequantizeLinear readers' outputs' readers.
  const dequantizedRead = new Map<string, number>();
  for (const n of nodes)
    if (n.opType === 'DequantizeLinear') dequantizedRead.set(n.input[0], Math.max(dequantizedRead.get(n.input[0]) ?? -1, lastRead.get(n.output[0]) ?? -1));
  const codes: { tensor: string; made: number; needed: number }[] = [];
  nodes.forEach((n, i) => {
    if (n.opType !== 'QuantizeLinear' || !n.output[0]) return;
    const needed = Math.max(lastRead.get(n.output[0]) ?? -1, dequantizedRead.get(n.output[0]) ?? -1);
    codes.push({ tensor: n.output[0], made: i, needed });
  });
  const crossing = (at: number) => codes.filter((c) => c.made < at && c.needed >= at).map((c) => c.tensor);
  const byName = new Map(nodes.map((n, i) => [n.name, i]));
  const producerStart = (at: number): number => {
    let first = at;
    const walk = (i: number, depth: number) => {
      first = Math.min(first, i);
      if (depth === 0) return;
      for (const r of nodes[i].input) {
        const p = producer.get(r);
        if (p !== undefined && nodes[p].opType !== 'DequantizeLinear') walk(p, depth - 1);
      }
    };
    for (const r of nodes[at].input) {
      const d = producer.get(r);
      // through the layer's input DequantizeLinear and QuantizeLinear to the float producer
      const q = d !== undefined && nodes[d].opType === 'DequantizeLinear' ? producer.get(nodes[d].input[0]) : undefined;
      if (q !== undefined && nodes[q].opType === 'QuantizeLinear') walk(q, PRODUCER_DEPTH);
    }
    return first;
  };
  return layers.flatMap((l) => {
    const at = byName.get(l);
    if (at === undefined) return [];
    const start = producerStart(at);
    return [
      { key: `${l}|own`, at, tensors: crossing(at) },
      { key: `${l}|input`, at: start, tensors: crossing(start) },
    ];
  });
}

/**
 * The same node. A QuantizeLinear or DequantizeLinear of the com.microsoft domain counts as the
 * ONNX one with the same inputs and attributes: a configuration with one 16-bit grid writes every
 * Q/DQ of the model in that domain (qdqRewrite.ts qdqDomain), with the same definition on 8-bit
 * grids, and onnxruntime fuses both into the same kernels (prefix-reuse.test.ts checks the numbers).
 */
function sameNode(a: NodeProto, b: NodeProto): boolean {
  if (a.domain === b.domain) return equals(NodeProtoSchema, a, b);
  const qdq = (n: NodeProto) => /^(Quantize|Dequantize)Linear$/.test(n.opType) && ['', 'ai.onnx', 'com.microsoft'].includes(n.domain);
  if (!qdq(a) || !qdq(b)) return false;
  const asOnnx = (n: NodeProto) => ({ ...n, domain: '' });
  return equals(NodeProtoSchema, asOnnx(a) as NodeProto, asOnnx(b) as NodeProto);
}

function sameTensor(a: TensorProto, b: TensorProto): boolean {
  if (a === b) return true;
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  if (a.rawData.length || b.rawData.length) return a.rawData === b.rawData || Buffer.compare(a.rawData, b.rawData) === 0;
  return equals(TensorProtoSchema, a, b);
}

export interface Suffix {
  /** The candidate without its shared prefix: the cut tensors are graph inputs. */
  model: ModelProto;
  /** Cut tensors fed from the measured model's run. */
  frontier: string[];
  /** Nodes of the candidate that run (the rest came from the measured model). */
  nodes: number;
  total: number;
}

/**
 * The part of `candidate` left to run when `measured`'s tensors `kept` are known: the nodes
 * outside the longest prefix the two models share node for node, plus the prefix nodes needed to
 * recompute what the rest reads and was not kept. Null when all of it must run. (Main graph
 * only: a body's nodes belong to their If/Loop/Scan node, compared whole.)
 */
export function reusableSuffix(measured: ModelProto, candidate: ModelProto, kept: ReadonlySet<string>, types: (t: string) => number): Suffix | null {
  const mg = measured.graph!;
  const cg = candidate.graph!;
  const mByOutput = new Map<string, NodeProto>();
  for (const n of mg.node) if (n.output[0]) mByOutput.set(n.output[0], n);
  const mInit = new Map(mg.initializer.map((t) => [t.name, t]));
  const cInit = new Map(cg.initializer.map((t) => [t.name, t]));
  const mInputs = new Set(mg.input.map((i) => i.name));
  const sameInit = new Map<string, boolean>();
  const initShared = (name: string) => {
    let v = sameInit.get(name);
    if (v === undefined) {
      const a = mInit.get(name);
      const b = cInit.get(name);
      v = !!a && !!b && sameTensor(a, b);
      sameInit.set(name, v);
    }
    return v;
  };
  // The shared prefix: nodes equal to the measured model's node writing the same output, reading
  // only graph inputs, equal initializers and the prefix's own tensors (graph order is topological).
  const shared = new Set<NodeProto>();
  const sharedTensors = new Set<string>();
  for (const n of cg.node) {
    const m = n.output[0] ? mByOutput.get(n.output[0]) : undefined;
    if (!m || !sameNode(m, n)) continue;
    const ok = nodeReads(n).every((r) => sharedTensors.has(r) || (cInit.has(r) ? initShared(r) : mInputs.has(r)));
    if (!ok) continue;
    shared.add(n);
    for (const o of n.output) if (o) sharedTensors.add(o);
  }
  // What the rest reads from the prefix: kept tensors come from the measured run; any other (a
  // float between a DequantizeLinear and its kernel, a model output) is recomputed, with its
  // producer's own inputs in turn, back to kept codes (a prefix node is not taken out of the
  // prefix: its other readers keep their kept inputs).
  const producer = new Map<string, NodeProto>();
  for (const n of cg.node) if (shared.has(n)) for (const o of n.output) if (o) producer.set(o, n);
  const run = new Set(cg.node.filter((n) => !shared.has(n)));
  const frontier = new Set<string>();
  const pending = [...[...run].flatMap(nodeReads), ...cg.output.map((o) => o.name)];
  for (let t = pending.pop(); t !== undefined; t = pending.pop()) {
    const p = producer.get(t);
    if (!p || run.has(p)) continue;
    if (kept.has(t)) frontier.add(t);
    else {
      run.add(p);
      pending.push(...nodeReads(p));
    }
  }
  for (const n of run) for (const o of n.output) frontier.delete(o);
  if (run.size === cg.node.length) return null;
  const rest = cg.node.filter((n) => run.has(n));
  const reads = new Set(rest.flatMap(nodeReads));
  const model = emptyClone(candidate);
  const g = model.graph as GraphProto;
  g.node = rest;
  g.initializer = cg.initializer.filter((t) => reads.has(t.name));
  g.input = [...cg.input.filter((i) => reads.has(i.name)), ...[...frontier].map((t) => typedValueInfo(t, types(t)))];
  g.output = cg.output.map((o) => o);
  return { model, frontier: [...frontier], nodes: rest.length, total: cg.node.length };
}

/** Add `tensors` to `model`'s outputs, in place (those it produces and does not output yet); returns those added. */
export function expose(model: ModelProto, tensors: readonly string[]): string[] {
  const g = model.graph!;
  const made = new Set(g.node.flatMap((n) => n.output));
  const have = new Set(g.output.map((o) => o.name));
  const exposed = tensors.filter((t) => made.has(t) && !have.has(t));
  g.output.push(...exposed.map((t) => untypedValueInfo(t)));
  return exposed;
}
