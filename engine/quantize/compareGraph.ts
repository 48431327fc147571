/**
 * One model that runs the float graph and a quantized graph side by side on the same inputs and
 * returns, instead of their tensors, the handful of sums every error metric needs. Fetching a
 * layer's activations into JavaScript costs more than computing them (copies, allocation, a JS
 * loop per element); here onnxruntime reduces them natively and hands back one vector per batch.
 *
 * Per compared pair (x float, y quantized, dequantized): sum x^2, sum y^2, sum (x-y)^2, max |x-y|
 * and the element count. A model fed its float tensors (`floatFrom`) leaves out sum x^2 and the
 * count: they are the float tensor's own, already in the vector of the model that computed it.
 * (Clip rates are read from the calibration histogram: analysis/clipRate.ts.)
 * The float graph's names get a prefix so they cannot clash with the quantized graph's.
 */
import { clone } from '@bufbuild/protobuf';
import { type GraphProto, type ModelProto, type NodeProto, NodeProtoSchema, type TensorProto, TensorProtoSchema } from 'onnx-buf';
import { makeNode, untypedValueInfo } from '../onnx/graph';
import { cloneModel, opsetOf } from '../onnx/model';
import { DT, makeTensor } from '../onnx/tensor';
import { raiseOpsetForIntegerKernels } from './qdqRewrite';
import { nodeReads, typedValueInfo } from '../onnx/slice';
import { type Gate, ISO_PREFIX, gateIsolated } from './isolatedGate';

export const FLOAT_PREFIX = 'quantlens_float::';
/** Codes the simulated model computes for the integer one (CodesInput), as it names them. */
export const CODES_PREFIX = 'quantlens_codes::';
export const SUMS_OUTPUT = 'quantlens::sums';
/** The gated pairs' sums (FED_PAIR_SUMS each), zeros on a run fed ISOLATED_FLAG false. */
export const GATED_SUMS_OUTPUT = 'quantlens::isolated_sums';
/** Boolean graph input: run the gated (isolated) pairs on this batch. */
export const ISOLATED_FLAG = 'quantlens::isolated';
/** Values per compared pair in the sums vector: sum x^2, y^2, (x-y)^2, max |x-y|, elements. */
export const PAIR_SUMS = 5;
/** Values per pair of a model fed its float tensors: sum y^2, (x-y)^2, max |x-y|. */
export const FED_PAIR_SUMS = 3;

export interface ComparedPair {
  /** Float tensor (a name of the float graph, before prefixing). */
  float: string;
  /** Quantized real values (a name of the quantized graph, e.g. a DequantizeLinear output). */
  quant: string;
  /**
   * The float tensor holds Inf/NaN or values near float32's limit (its squares overflow from
   * |x| ~ 1.8e19): sum in float64 over its finite elements only. Costs two casts and a mask per
   * element, so only where the calibration statistics ask for it.
   */
  robust?: boolean;
  /** The float tensor's rank, when known (onnxruntime's dims): its reductions then need no Reshape. */
  rank?: number;
  /**
   * Run this pair (and the isolated nodes it reads) only on batches fed ISOLATED_FLAG true
   * (isolatedGate.ts); pairs with the same gate share an If. Its sums (sum y^2, (x-y)^2, max
   * |x-y|) go to GATED_SUMS_OUTPUT; sum x^2 and the count are those of an ungated pair on the same
   * float tensor, which the caller must compare too.
   */
  gate?: string;
}

interface Scalar {
  name: string;
  type: number;
  /** 0: a rank-0 scalar; r > 0: a reduction kept at rank r (shape [1, ..., 1]). */
  rank: number;
}

/**
 * Inputs per gathering node. Session creation grows faster than linearly with the inputs of one
 * gathering node (measured with onnxruntime 1.30: 1,200 reductions gathered by one Concat 0.8 s,
 * by Concats of 32 0.16 s; 2,400: 3.5 s against 0.45 s).
 */
const GATHER_FAN_IN = 32;

function chunks<T>(xs: readonly T[], size = GATHER_FAN_IN): T[][] {
  const out: T[][] = [];
  for (let k = 0; k < xs.length; k += size) out.push(xs.slice(k, k + size));
  return out;
}

/**
 * One-element tensors of a few element types gathered into one float64 vector, in the order
 * pushed, with a handful of nodes whatever their number: per element type and rank a tree of Concats
 * (reductions kept at their input's rank, [1, ..., 1], concatenate along axis 0) and one Reshape,
 * rank-0 scalars stacked by ConcatFromSequence (opset 11) or else reshaped one by one; one Cast
 * per type, then a Concat and a Gather back into push order. onnxruntime costs ~0.3 ms per node to
 * create a session and microseconds per node per run: a Reshape and a Cast per scalar made the
 * comparison models of real detectors 10x larger than the models they compare.
 */
class ScalarVector {
  /** Per element type, per rank: the names pushed. */
  private readonly groups = new Map<number, Map<number, string[]>>();
  private readonly pushed: { type: number; rank: number; index: number }[] = [];

  constructor(
    private readonly op: (type: string, ins: string[], attrs?: Record<string, number | number[]>, out?: string) => string,
    private readonly constant: (base: string, values: bigint[]) => string,
    private readonly sequences: boolean,
  ) {}

  get empty(): boolean {
    return this.pushed.length === 0;
  }

  push(...scalars: Scalar[]): void {
    for (const s of scalars) {
      const byRank = this.groups.get(s.type) ?? new Map<number, string[]>();
      this.groups.set(s.type, byRank);
      const list = byRank.get(s.rank) ?? [];
      byRank.set(s.rank, list);
      this.pushed.push({ type: s.type, rank: s.rank, index: list.length });
      list.push(s.name);
    }
  }

  /** Emit the nodes; the vector is named `output`. */
  build(output: string): void {
    const { op } = this;
    let flat = '';
    const reshape = (x: string, shape: bigint[]) => op('Reshape', [x, this.constant('shape', shape)]);
    // Concatenated GATHER_FAN_IN at a time, in a tree (see GATHER_FAN_IN for why).
    const concat = (names: string[]): string => {
      let level = names;
      while (level.length > 1) level = chunks(level).map((c) => (c.length === 1 ? c[0] : op('Concat', c, { axis: 0 })));
      return level[0];
    };
    const vectorOf = (names: string[], rank: number) => {
      if (rank > 0) {
        const joined = concat(names);
        if (rank === 1) return joined;
        flat ||= this.constant('flat', [-1n]);
        return op('Reshape', [joined, flat]);
      }
      if (this.sequences) return concat(chunks(names).map((c) => op('ConcatFromSequence', [op('SequenceConstruct', c)], { axis: 0, new_axis: 1 })));
      return concat(names.map((n) => reshape(n, [1n])));
    };
    const start = new Map<string, number>();
    const vectors: string[] = [];
    let offset = 0;
    for (const [type, byRank] of this.groups) {
      const parts: string[] = [];
      for (const [rank, names] of byRank) {
        start.set(`${type}|${rank}`, offset);
        offset += names.length;
        parts.push(vectorOf(names, rank));
      }
      const v = parts.length === 1 ? parts[0] : op('Concat', parts, { axis: 0 });
      vectors.push(type === DT.DOUBLE ? v : op('Cast', [v], { to: DT.DOUBLE }));
    }
    const all = vectors.length === 1 ? vectors[0] : op('Concat', vectors, { axis: 0 });
    const index = this.pushed.map((s) => start.get(`${s.type}|${s.rank}`)! + s.index);
    if (index.every((v, i) => v === i)) op('Identity', [all], {}, output);
    else op('Gather', [all, this.constant('order', index.map(BigInt))], { axis: 0 }, output);
  }
}

/**
 * A float tensor the integer model reads only to quantize it for an isolated layer (a layer's
 * input that is no layer's output: with separate activation nodes, half of what it would read).
 * It reads the codes instead: the simulated model runs the same QuantizeLinear on the same
 * values, so the same onnxruntime kernel gives the same codes, and returns a quarter of the bytes
 * (the recogniser: 20.7 of the 42.9 MB of float tensors per text line).
 */
export interface CodesInput {
  /** The codes' name in the integer model, where they are a graph input. */
  name: string;
  /** The float tensor quantized (float-graph name, unprefixed). */
  float: string;
  /** The QuantizeLinear node as it was in the integer model, and its scale and zero point. */
  node: NodeProto;
  initializers: TensorProto[];
}

export interface ComparisonOptions {
  /** Float-graph tensors to expose as outputs (fetched on some batches only; see fetch lists). */
  exposeFloat?: readonly string[];
  /** Codes another comparison model reads as inputs: quantized here and exposed (CODES_PREFIX + name). */
  exposeCodes?: readonly CodesInput[];
  /**
   * Read the float tensors the comparison needs as graph inputs instead of running the float graph
   * again: another comparison model on the same batch computed them (and exposes them). Gives each
   * one's element type, by its float-graph name.
   */
  floatFrom?: (tensor: string) => number | undefined;
}

export interface ComparisonModel {
  model: ModelProto;
  /** With `floatFrom`: the float tensors to feed, by their float-graph names (unprefixed). */
  floatInputs: string[];
  /** With `floatFrom`: the codes to feed instead of the float tensors they quantize. */
  codesInputs: CodesInput[];
  /** Offset of pair k in its sums vector (SUMS_OUTPUT, or GATED_SUMS_OUTPUT for a gated pair). */
  pairOffset: (k: number) => number;
  /** Some pairs are gated: the model has the ISOLATED_FLAG input and the GATED_SUMS_OUTPUT output. */
  gated: boolean;
  /** Float model outputs as exposed (prefixed names), by original name. */
  floatOutputs: Map<string, string>;
  /** The name a float-graph tensor has in the combined model. */
  floatName: (tensor: string) => string;
}

/** Rename every name a graph defines (outputs, initializers) and every use of them, bodies included. */
function prefixGraph(g: GraphProto, prefix: string, keep: ReadonlySet<string>): void {
  const defined = new Set<string>();
  for (const n of g.node) for (const o of n.output) if (o) defined.add(o);
  for (const t of g.initializer) defined.add(t.name);
  const rename = (x: string) => (x && defined.has(x) && !keep.has(x) ? prefix + x : x);
  const renameBody = (body: GraphProto) => {
    // A body's own names stay; its reads of the enclosing graph's names follow the renaming.
    const local = new Set<string>([...body.input.map((i) => i.name), ...body.initializer.map((t) => t.name)]);
    for (const n of body.node) for (const o of n.output) local.add(o);
    for (const n of body.node) {
      n.input = n.input.map((i) => (local.has(i) ? i : rename(i)));
      for (const a of n.attribute) {
        if (a.g) renameBody(a.g);
        for (const sub of a.graphs) renameBody(sub);
      }
    }
  };
  for (const n of g.node) {
    n.name = prefix + n.name;
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
    for (const a of n.attribute) {
      if (a.g) renameBody(a.g);
      for (const sub of a.graphs) renameBody(sub);
    }
  }
  for (const t of g.initializer) t.name = rename(t.name);
}

/**
 * `quantized` (a QDQ model, possibly with extra isolated-layer nodes) plus `float` (the float
 * model, same inputs), comparing `pairs`. Both models must declare the
 * same graph inputs.
 */
export function buildComparisonModel(quantized: ModelProto, float: ModelProto, pairs: readonly ComparedPair[], opts: ComparisonOptions = {}): ComparisonModel {
  const model = cloneModel(quantized);
  const g = model.graph!;
  const floatCopy = cloneModel(float);
  // The QDQ writer raises opset 9 to 10 (fused kernels need it): the float graph must follow.
  if (opsetOf(floatCopy) < opsetOf(model)) raiseOpsetForIntegerKernels(floatCopy);
  const f = floatCopy.graph!;
  const inputs = new Set(f.input.map((i) => i.name));
  prefixGraph(f, FLOAT_PREFIX, inputs);
  const fname = (t: string) => (inputs.has(t) ? t : FLOAT_PREFIX + t);
  const fed = opts.floatFrom;
  if (!fed) {
    // Float nodes first: the isolated layers merged into `quantized` read them (topological order).
    g.node = [...f.node, ...g.node];
    g.initializer.push(...f.initializer);
  }
  const used = new Set<string>([...[...g.node, ...f.node].flatMap((n) => [...n.input, ...n.output, n.name]), ...g.initializer.map((t) => t.name)]);
  let counter = 0;
  const fresh = (base: string) => {
    let name = `quantlens::${base}_${counter++}`;
    while (used.has(name)) name = `quantlens::${base}_${counter++}`;
    used.add(name);
    return name;
  };
  const nodes: NodeProto[] = [];
  const op = (type: string, ins: string[], attrs: Record<string, number | number[]> = {}, out = fresh(type)): string => {
    nodes.push(makeNode(type, ins, [out], out, attrs));
    return out;
  };
  const constant = (base: string, values: bigint[]) => {
    const name = fresh(base);
    g.initializer.push(makeTensor(name, DT.INT64, [values.length], BigInt64Array.from(values)));
    return name;
  };
  // `vector` gathers every sum, in the order pushed, into the sums output.
  const vector = new ScalarVector(op, constant, opsetOf(model) >= 11);
  // A reduction of every element: kept at the input's rank when it is known (concatenated by rank),
  // else a rank-0 scalar. Sums are float32 inside a batch (onnxruntime sums in vectorized blocks)
  // and float64 across batches; robust pairs are float64 throughout.
  const reduce = (type: string, x: string, elem: number, rank = 0, emit = op): Scalar => ({
    name: emit(type, [x], { keepdims: rank > 0 ? 1 : 0 }),
    type: elem,
    rank,
  });
  // float64 0 and 1, for robust pairs only (an unused initializer makes onnxruntime warn).
  let zero = '';
  let one = '';
  /**
   * Per float tensor: the values summed (x itself, or float64 x with non-finite elements zeroed),
   * the mask, and (unless fed: the feeding model has them) sum x^2 and the count.
   */
  const perTensor = new Map<string, { xs: string; ok?: string; sx2?: Scalar; n?: Scalar }>();
  const ofTensor = (x: string, rank: number | undefined, robust = false) => {
    const key = `${robust}|${x}`;
    let t = perTensor.get(key);
    if (t) return t;
    if (!robust) {
      t = { xs: x };
      if (!fed) {
        t.sx2 = reduce('ReduceSumSquare', x, DT.FLOAT, rank);
        t.n = { name: op('Size', [x]), type: DT.INT64, rank: 0 };
      }
    } else {
      if (!zero) {
        [zero, one] = [fresh('zero'), fresh('one')];
        g.initializer.push(makeTensor(zero, DT.DOUBLE, [], [0]), makeTensor(one, DT.DOUBLE, [], [1]));
      }
      const xd = op('Cast', [x], { to: DT.DOUBLE });
      // x - x is 0 for finite x and NaN otherwise, and NaN < 1 is false (Less, not Equal: Equal
      // takes float64 only from opset 11).
      const ok = op('Less', [op('Sub', [xd, xd]), one]);
      const xs = op('Where', [ok, xd, zero]);
      t = { xs, ok };
      if (!fed) {
        t.sx2 = reduce('ReduceSumSquare', xs, DT.DOUBLE, rank);
        t.n = reduce('ReduceSum', op('Cast', [ok], { to: DT.DOUBLE }), DT.DOUBLE, rank);
      }
    }
    perTensor.set(key, t);
    return t;
  };
  // Gated pairs build their reductions into their gate's own nodes and vector (isolatedGate.ts).
  const gates = new Map<string, { nodes: NodeProto[]; op: typeof op; vector: ScalarVector; length: number }>();
  const offsets: number[] = [];
  let ungated = 0;
  for (const p of pairs) {
    const { xs, ok, sx2, n } = ofTensor(fname(p.float), p.rank, p.robust);
    let gate = p.gate === undefined ? undefined : gates.get(p.gate);
    if (p.gate !== undefined && !gate) {
      const gateNodes: NodeProto[] = [];
      const gateOp = (type: string, ins: string[], attrs: Record<string, number | number[]> = {}, out = fresh(type)): string => {
        gateNodes.push(makeNode(type, ins, [out], out, attrs));
        return out;
      };
      gate = { nodes: gateNodes, op: gateOp, vector: new ScalarVector(gateOp, constant, opsetOf(model) >= 11), length: 0 };
      gates.set(p.gate, gate);
    }
    const at = gate?.op ?? op;
    const y = ok ? at('Where', [ok, at('Cast', [p.quant], { to: DT.DOUBLE }), zero]) : p.quant;
    const d = at('Sub', [xs, y]);
    const type = ok ? DT.DOUBLE : DT.FLOAT;
    // sum xy is not summed here: JavaScript derives it as (sx2 + sy2 - sd2) / 2 (it only feeds the
    // cosine, which that identity gives to ~1e-7), saving two passes over every pair.
    const errors = [
      reduce('ReduceSumSquare', y, type, p.rank, at),
      reduce('ReduceSumSquare', d, type, p.rank, at),
      reduce('ReduceMax', at('Abs', [d]), type, p.rank, at),
    ];
    if (gate) {
      offsets.push(gate.length); // made absolute once every gate's length is known
      gate.vector.push(...errors);
      gate.length += FED_PAIR_SUMS;
      continue;
    }
    offsets.push(ungated++ * (fed ? FED_PAIR_SUMS : PAIR_SUMS));
    if (sx2) vector.push(sx2);
    vector.push(...errors);
    if (n) vector.push(n);
  }
  if (vector.empty) vector.push({ name: op('Size', [[...inputs][0]]), type: DT.INT64, rank: 0 });
  vector.build(SUMS_OUTPUT);
  g.node.push(...nodes);
  for (const c of opts.exposeCodes ?? []) exposeCodes(g, c, fname(c.float), fresh);
  const codesInputs = fed ? readCodes(g, new Set(f.node.flatMap((n) => n.output))) : [];
  const floatInputs = fed ? feedFloat(g, f, fed) : [];
  if (gates.size) {
    const list: Gate[] = [];
    const start = new Map<string, number>();
    let total = 0;
    for (const [key, gate] of gates) {
      const output = fresh('gate_sums');
      gate.vector.build(output);
      list.push({ key, sums: gate.nodes, output, length: gate.length });
      start.set(key, total);
      total += gate.length;
    }
    pairs.forEach((p, k) => {
      if (p.gate !== undefined) offsets[k] += start.get(p.gate)!;
    });
    g.input.push(typedValueInfo(ISOLATED_FLAG, DT.BOOL));
    const parts = gateIsolated(g, list, ISOLATED_FLAG, fresh);
    const from = nodes.length;
    let level = parts;
    while (level.length > 1) level = chunks(level).map((c) => (c.length === 1 ? c[0] : op('Concat', c, { axis: 0 })));
    g.node.push(...nodes.slice(from), makeNode('Identity', [level[0]], [GATED_SUMS_OUTPUT], GATED_SUMS_OUTPUT));
    g.output.push(untypedValueInfo(GATED_SUMS_OUTPUT));
  }
  g.node = interleave(g.node, new Map(float.graph!.node.map((n, i) => [n.name, i])));
  g.output.push(untypedValueInfo(SUMS_OUTPUT));
  const floatOutputs = new Map<string, string>();
  for (const o of fed ? [] : float.graph!.output) {
    const name = fname(o.name);
    floatOutputs.set(o.name, name);
    if (!g.output.some((x) => x.name === name)) g.output.push(untypedValueInfo(name));
  }
  for (const t of opts.exposeFloat ?? []) {
    const name = fname(t);
    if (!g.output.some((x) => x.name === name)) g.output.push(untypedValueInfo(name));
  }
  return { model, floatInputs, codesInputs, pairOffset: (k) => offsets[k], gated: gates.size > 0, floatOutputs, floatName: fname };
}

/**
 * The isolated layers' QuantizeLinear nodes whose float input (made by the float graph) nothing
 * else reads become graph inputs of their codes (CodesInput). Removes those nodes from `g`.
 */
function readCodes(g: GraphProto, floatMade: ReadonlySet<string>): CodesInput[] {
  const readers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const r of new Set(nodeReads(n))) {
      const list = readers.get(r);
      if (list) list.push(n);
      else readers.set(r, [n]);
    }
  }
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const out: CodesInput[] = [];
  for (const [t, users] of readers) {
    const q = users[0];
    if (!floatMade.has(t) || users.length !== 1 || q.opType !== 'QuantizeLinear' || !q.name.startsWith(ISO_PREFIX) || q.input[0] !== t) continue;
    const initializers = q.input.slice(1).map((x) => inits.get(x));
    // the zero point decides the codes' type (uint8 when it is absent, as ONNX defines)
    if (initializers.length === 0 || initializers.some((x) => !x)) continue;
    const zp = initializers[1];
    g.input.push(typedValueInfo(q.output[0], zp ? zp.dataType : DT.UINT8));
    out.push({ name: q.output[0], float: t.slice(FLOAT_PREFIX.length), node: q, initializers: initializers as TensorProto[] });
  }
  const removed = new Set(out.map((c) => c.node));
  g.node = g.node.filter((n) => !removed.has(n));
  return out;
}

/** Quantize `float` as `c.node` does, under fresh initializer names, and expose the codes. */
function exposeCodes(g: GraphProto, c: CodesInput, float: string, fresh: (base: string) => string): void {
  const names = c.initializers.map((t) => {
    const copy = clone(TensorProtoSchema, t);
    copy.name = fresh('codes_param');
    g.initializer.push(copy);
    return copy.name;
  });
  const q = clone(NodeProtoSchema, c.node);
  q.input = [float, ...names];
  q.output = [CODES_PREFIX + c.name];
  q.name = CODES_PREFIX + c.node.name;
  g.node.push(q);
  g.output.push(untypedValueInfo(q.output[0]));
}

/**
 * Make the (prefixed) float tensors `g` reads into graph inputs, typed by `typeOf`, and copy the
 * float initializers it reads. Returns the fed tensors' float-graph names.
 */
function feedFloat(g: GraphProto, f: GraphProto, typeOf: (tensor: string) => number | undefined): string[] {
  const made = new Set(f.node.flatMap((n) => n.output));
  const inits = new Map(f.initializer.map((t) => [t.name, t]));
  const reads = new Set(g.node.flatMap(nodeReads));
  const names: string[] = [];
  for (const r of reads) {
    const init = inits.get(r);
    if (init) g.initializer.push(init);
    if (!made.has(r)) continue;
    const name = r.slice(FLOAT_PREFIX.length);
    const type = typeOf(name);
    if (type === undefined) throw new Error(`comparison model: no element type known for float tensor ${name}`);
    g.input.push(typedValueInfo(r, type));
    names.push(name);
  }
  return names;
}

export { ISO_PREFIX };

/**
 * A topological order that walks the float, quantized and isolated graphs side by side, layer by
 * layer, each reduction right after its inputs: onnxruntime then frees a layer's float and
 * quantized activations before the next layer's exist, instead of holding the whole float graph's
 * activations until the quantized graph catches up (a 512x512 model: gigabytes). Each node's
 * priority is the position in the float model of the node it stems from (same name, or behind a
 * prefix), else that of its latest producer; ties keep the given order.
 */
function interleave(nodes: NodeProto[], floatIndex: Map<string, number>): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.output.forEach((o) => o && producer.set(o, i)));
  const base = (name: string) => floatIndex.get(name.replace(/^quantlens_(float|iso)::/, '').replace(/__isolated$/, ''));
  const key = new Float64Array(nodes.length).fill(NaN);
  const keyOf = (i: number): number => {
    if (!Number.isNaN(key[i])) return key[i];
    key[i] = -1; // guards a malformed cycle
    const own = base(nodes[i].name);
    const deps = nodeReads(nodes[i])
      .map((x) => producer.get(x))
      .filter((d): d is number => d !== undefined);
    key[i] = own ?? (deps.length ? Math.max(...deps.map(keyOf)) + 0.5 : 0);
    return key[i];
  };
  nodes.forEach((_, i) => keyOf(i));
  // Kahn's algorithm, always taking the ready node with the smallest priority.
  const users = nodes.map(() => [] as number[]);
  const waiting = new Int32Array(nodes.length);
  nodes.forEach((n, i) => {
    const deps = new Set(
      nodeReads(n)
        .map((x) => producer.get(x))
        .filter((d): d is number => d !== undefined && d !== i),
    );
    waiting[i] = deps.size;
    for (const d of deps) users[d].push(i);
  });
  const ready = nodes.map((_, i) => i).filter((i) => waiting[i] === 0);
  const order: NodeProto[] = [];
  while (ready.length) {
    let best = 0;
    for (let k = 1; k < ready.length; k++) if (key[ready[k]] < key[ready[best]] || (key[ready[k]] === key[ready[best]] && ready[k] < ready[best])) best = k;
    const i = ready.splice(best, 1)[0];
    order.push(nodes[i]);
    for (const u of users[i]) if (--waiting[u] === 0) ready.push(u);
  }
  return order.length === nodes.length ? order : nodes; // a cycle: leave it to onnxruntime's error
}

/**
 * Put the isolated-layer nodes (buildIsolatedModel) into the quantized model, reading the FLOAT
 * graph's tensors (which buildComparisonModel adds under FLOAT_PREFIX) instead of graph inputs.
 * Returns the name each isolated layer's dequantized output got.
 */
export function mergeIsolated(
  quantized: ModelProto,
  iso: { model: ModelProto; taps: readonly { layer: string; dq: string }[]; inputs: readonly string[] },
): { model: ModelProto; dq: Map<string, string> } {
  const model = cloneModel(quantized);
  const g = model.graph!;
  const ig = cloneModel(iso.model).graph!;
  const isoInputs = new Set(iso.inputs);
  prefixGraph(ig, ISO_PREFIX, isoInputs);
  const mainInputs = new Set(g.input.map((i) => i.name));
  const fname = (t: string) => (mainInputs.has(t) ? t : FLOAT_PREFIX + t);
  for (const n of ig.node) n.input = n.input.map((i) => (isoInputs.has(i) ? fname(i) : i));
  g.node.push(...ig.node);
  g.initializer.push(...ig.initializer);
  for (const imp of iso.model.opsetImport) if (!model.opsetImport.some((o) => o.domain === imp.domain)) model.opsetImport.push(imp);
  return { model, dq: new Map(iso.taps.map((t) => [t.layer, ISO_PREFIX + t.dq])) };
}
