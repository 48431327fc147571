/**
 * Writing QuantizeLinear/DequantizeLinear (QDQ) models.
 *
 * Two models are built from one plan:
 *  - the deployable QDQ model (`buildQdqModel`): every planned tensor gets one Q->DQ pair, weights
 *    become integer initializers behind a DQ, biases int32 at scale S_in*S_w. onnxruntime runs it
 *    either as fake-quant float ops (Q/DQ unfused: the simulation) or fuses DQ->op->Q into integer
 *    kernels (QLinearConv, QGemm, QLinearMatMul): the integer execution.
 *  - the isolated model (`buildIsolatedModel`): every layer alone, quantized, its inputs graph
 *    inputs fed from the float pass's tensors, so one run yields every layer's isolated error
 *    without running the float graph again.
 * In both, the layer outputs are read as QuantizeLinear outputs (integer codes): tapping those
 * does not stop onnxruntime from fusing, whereas tapping a float tensor would.
 */
import type { ModelProto } from 'onnx-buf';
import type { QuantConfig, Range } from '../../protocol/report';
import { cloneModel, opsetOf, originOf } from '../onnx/model';
import { GraphIndex, type GraphProto, type NodeProto, makeNode, pruneUnusedInitializers } from '../onnx/graph';
import { liftTensors } from '../onnx/lift';
import { guardFloatLayers } from './floatGuard';
import { allInitializers, graphsOf, modelNameAllocator } from '../onnx/scopes';
import { typedValueInfo } from '../onnx/slice';
import { DT, makeTensor, readFloatTensor } from '../onnx/tensor';
import { EXCLUDED, type FixedCodes, type PlannedLayer, type QuantPlan } from './plan';
import { type QuantParams, paramsFor, quantize } from './scheme';
import { roundHalfEven } from './rounding';
import { create } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, OperatorSetIdProtoSchema, type TensorProto } from 'onnx-buf';

export interface WeightQuant {
  layer: string;
  tensor: string;
  axis: number | null;
  params: QuantParams[];
  ranges: Range[];
  clipRate: number;
  /** The integer codes written into the model, and their shape (the integer reference uses them). */
  codes: Int32Array;
  dims: number[];
  /** int32 bias codes at scale S_in * S_w, when this weight's layer has a quantized bias. */
  bias?: Int32Array;
  /** Bias values beyond the int32 range at that scale, written clamped (grids too fine: 16-bit x 16-bit). */
  biasSaturated?: number;
  /** The smallest bias scale S_in * S_w (for the message). */
  biasScale?: number;
  /** Name of the integer initializer written for it (fused kernels read it: maps them to layers). */
  initializer: string;
}

/** Where a layer's quantized output can be read, and how to turn it back into real numbers. */
export interface OutputTap {
  layer: string;
  /** Tensor to fetch: the QuantizeLinear output (codes), or for 4-bit the DQ output (floats). */
  tensor: string;
  /**
   * The tensor inside its body when `tensor` is a main-graph output lifted out of an If/Loop/Scan
   * body (lifted out of an If branch, `tensor` is empty in runs that took the other branch).
   */
  source?: string;
  isCodes: boolean;
  params: QuantParams;
  /** The DequantizeLinear output of the same tensor: the real values the codes stand for. */
  dq: string;
}

export interface BuiltModel {
  model: ModelProto;
  taps: OutputTap[];
}

function zeroPointType(bits: number, signed: boolean): DT {
  if (bits === 4) return signed ? DT.INT4 : DT.UINT4;
  if (bits === 16) return signed ? DT.INT16 : DT.UINT16;
  return signed ? DT.INT8 : DT.UINT8;
}

/**
 * Standard-domain Q/DQ when the model's opset allows the requested types (per-channel needs 13,
 * 4/16-bit need 21); otherwise onnxruntime's com.microsoft Q/DQ, which has them at any opset, so
 * the model's own operators never change version.
 */
export function qdqDomain(model: ModelProto, config: QuantConfig): string {
  const opset = opsetOf(model);
  const overridden = [
    ...(config.tensorOverrides ?? []).map((o) => o.bits),
    ...(config.layerOverrides ?? []).flatMap((o) => [o.weightBits, o.activationBits]),
  ].filter((b) => b !== undefined);
  const wide = config.weights.bits !== 8 || config.activations.bits !== 8 || overridden.some((b) => b !== 8);
  if (opset >= 21 || (opset >= 13 && !wide)) return '';
  return 'com.microsoft';
}

/**
 * onnxruntime fuses QDQ groups into ONNX-domain QLinearConv/QLinearMatMul, which exist only from
 * opset 10: an opset-9 model would then fail to load. So raise 9 -> 10, converting the operators
 * whose signature changed (Slice and TopK took attributes that became inputs). Upsample has no
 * exact opset-10 form; a model with it stays at 9 (its integer session then reports the error).
 */
export function raiseOpsetForIntegerKernels(model: ModelProto): boolean {
  const imp = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const g = model.graph!;
  if (!imp || imp.version >= 10n) return false;
  if (g.node.some((n) => n.domain === '' && n.opType === 'Upsample')) return false;
  const fresh = modelNameAllocator(model);
  const int64Input = (node: NodeProto, attrName: string) => {
    const a = node.attribute.find((x) => x.name === attrName);
    if (!a) return '';
    const values = a.type === AttributeProto_AttributeType.INT ? [a.i] : a.ints;
    const name = fresh(`${node.name || node.opType}_${attrName}`);
    g.initializer.push(makeTensor(name, DT.INT64, a.type === AttributeProto_AttributeType.INT ? [1] : [values.length], BigInt64Array.from(values)));
    node.attribute = node.attribute.filter((x) => x !== a);
    return name;
  };
  for (const n of g.node) {
    if (n.domain !== '') continue;
    if (n.opType === 'Slice') {
      const starts = int64Input(n, 'starts');
      const ends = int64Input(n, 'ends');
      const axes = int64Input(n, 'axes');
      n.input = axes ? [n.input[0], starts, ends, axes] : [n.input[0], starts, ends];
    } else if (n.opType === 'TopK') {
      n.input = [n.input[0], int64Input(n, 'k')];
    }
  }
  imp.version = 10n;
  return true;
}

/**
 * The integer type a grid is stored in, from its code range: signed when codes go below 0; 4, 8 or
 * 16 bits by the number of levels (a narrow int8 grid has 255). Each tensor carries its own grid,
 * so per-tensor bit overrides and the analysis's shifted uint8 grid need no other bookkeeping.
 */
export function gridType(p: Pick<QuantParams, 'qmin' | 'qmax'>): { bits: 4 | 8 | 16; signed: boolean } {
  const levels = p.qmax - p.qmin + 1;
  const bits = levels <= 16 ? 4 : levels <= 256 ? 8 : 16;
  return { bits, signed: p.qmin < 0 };
}

/** A layer's weight scheme: the configuration's, with this layer's override (bits, granularity) applied. */
export function weightScheme(config: QuantConfig, node: string): QuantConfig['weights'] {
  const o = config.layerOverrides?.find((x) => x.node === node);
  if (!o || (o.weightBits === undefined && o.perChannel === undefined)) return config.weights;
  return {
    ...config.weights,
    ...(o.weightBits !== undefined ? { bits: o.weightBits } : {}),
    ...(o.perChannel !== undefined ? { perChannel: o.perChannel } : {}),
  };
}

/** Min and max of a weight per slice along `axis` (one range for null), and the channel of each flat index. */
export function channelRanges(w: { data: ArrayLike<number>; dims: number[] }, axis: number | null): { ranges: Range[]; chanOf: (i: number) => number } {
  const channels = axis === null ? 1 : w.dims[axis];
  const inner = axis === null ? w.data.length : w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const ranges: Range[] = Array.from({ length: channels }, () => ({ lo: Infinity, hi: -Infinity }));
  const chanOf = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  for (let i = 0; i < w.data.length; i++) {
    const r = ranges[chanOf(i)];
    if (w.data[i] < r.lo) r.lo = w.data[i];
    if (w.data[i] > r.hi) r.hi = w.data[i];
  }
  return { ranges, chanOf };
}

/** A weight's quantization apart from where it sits (layer, tensor, bias). */
type QuantizedWeight = Omit<WeightQuant, 'layer' | 'tensor' | 'bias' | 'initializer'>;

/**
 * An evaluation builds the same layer's quantized weight several times (simulated, integer,
 * isolated, deployed models), and every configuration of a sweep or a diagnosis quantizes a clone
 * of the same model: the codes depend only on the float tensor and the scheme, so they are
 * computed once per (initializer, scheme, axis) and kept as long as the original initializer
 * (`originOf`: the prepared float model's) lives.
 */
const weightCache = new WeakMap<object, Map<string, QuantizedWeight>>();

function quantizeWeight(tensor: import('onnx-buf').TensorProto, dir: string, c: QuantConfig['weights'], roleAxis: number | null): QuantizedWeight {
  const key = `${JSON.stringify(c)}|${roleAxis}`;
  const owner = originOf(tensor);
  let byScheme = weightCache.get(owner);
  const hit = byScheme?.get(key);
  if (hit) return hit;
  const w = readFloatTensor(tensor, dir);
  let axis: number | null = null;
  if (c.perChannel && roleAxis !== null && w.dims.length >= 2) axis = roleAxis < 0 ? w.dims.length + roleAxis : roleAxis;
  const { ranges, chanOf } = channelRanges(w, axis);
  const params = ranges.map((r) => paramsFor(r.lo, r.hi, c));
  const codes = new Int32Array(w.data.length);
  let clipped = 0;
  for (let i = 0; i < w.data.length; i++) {
    const p = params[chanOf(i)];
    const raw = roundHalfEven(w.data[i] / p.scale) + p.zeroPoint;
    if (raw < p.qmin || raw > p.qmax) clipped++;
    codes[i] = quantize(w.data[i], p);
  }
  const result = { axis, params, ranges, clipRate: clipped / w.data.length, codes, dims: w.dims };
  if (!byScheme) weightCache.set(owner, (byScheme = new Map()));
  byScheme.set(key, result);
  return result;
}

/** Shared machinery: adds Q/DQ nodes and quantized initializers to one graph. */
class QdqWriter {
  readonly fresh: (base: string) => string;
  /** Weight/bias DQ nodes of the graph being written (`begin` starts a graph). */
  head: NodeProto[] = [];
  /** The graph new initializers go into: the one holding the layer being quantized. */
  target: GraphProto;

  constructor(
    readonly model: ModelProto,
    readonly source: { initializers: Map<string, TensorProto>; dir: string },
    readonly config: QuantConfig,
    readonly domain: string,
  ) {
    this.fresh = modelNameAllocator(model);
    this.target = model.graph!;
    raiseOpsetForIntegerKernels(model);
    if (domain && !model.opsetImport.some((o) => o.domain === domain)) {
      model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain, version: 1n }));
    }
  }

  /** Write into graph `g` from now on, with an empty head. */
  begin(g: GraphProto): void {
    this.target = g;
    this.head = [];
  }

  private init(name: string, type: DT, dims: number[], data: ArrayLike<number>): string {
    const n = this.fresh(name);
    this.target.initializer.push(makeTensor(n, type, dims, data));
    return n;
  }

  private scaleZp(base: string, params: QuantParams[], scheme: { bits: number; signed: boolean }, perChannel: boolean) {
    const dims = perChannel ? [params.length] : [];
    const s = this.init(
      `${base}_scale`,
      DT.FLOAT,
      dims,
      params.map((p) => p.scale),
    );
    const z = this.init(
      `${base}_zero_point`,
      zeroPointType(scheme.bits, scheme.signed),
      dims,
      params.map((p) => p.zeroPoint),
    );
    return { s, z };
  }

  /** x -> Q -> DQ; returns the Q output (codes) and DQ output names. */
  qdq(x: string, p: QuantParams, into: NodeProto[], dqOutput?: string): { q: string; dq: string } {
    const { s, z } = this.scaleZp(x, [p], gridType(p), false);
    const q = this.fresh(`${x}_quantized`);
    const dq = dqOutput ?? this.fresh(`${x}_dequantized`);
    into.push(makeNode('QuantizeLinear', [x, s, z], [q], this.fresh(`${x}_QuantizeLinear`), {}, this.domain));
    into.push(makeNode('DequantizeLinear', [q, s, z], [dq], this.fresh(`${x}_DequantizeLinear`), {}, this.domain));
    return { q, dq };
  }

  /** Just Q (isolated branches end in codes; nothing downstream needs floats). */
  q(x: string, p: QuantParams, into: NodeProto[]): string {
    const { s, z } = this.scaleZp(x, [p], gridType(p), false);
    const q = this.fresh(`${x}_quantized`);
    into.push(makeNode('QuantizeLinear', [x, s, z], [q], this.fresh(`${x}_QuantizeLinear`), {}, this.domain));
    return q;
  }

  /** Integer weight initializer behind a DQ; returns the DQ output and what was chosen. */
  weight(layer: PlannedLayer, inputIndex: number, roleAxis: number | null): { dq: string; wq: WeightQuant } {
    const name = layer.node.input[inputIndex];
    const tensor = this.source.initializers.get(name)!;
    const fixed = layer.fixed?.get(inputIndex);
    if (fixed) return this.fixedWeight(layer, name, readFloatTensor(tensor, this.source.dir), fixed);
    const c = weightScheme(this.config, layer.node.name);
    const { axis, params, ranges, clipRate, codes, dims } = quantizeWeight(tensor, this.source.dir, c, roleAxis);
    const base = `${layer.node.name}_${name}`;
    const wq = this.init(`${base}_quantized`, zeroPointType(c.bits, c.signed), dims, codes);
    const { s, z } = this.scaleZp(base, params, c, axis !== null);
    const dq = this.fresh(`${base}_dequantized`);
    const attrs: Record<string, number> = axis !== null ? { axis } : {};
    this.head.push(makeNode('DequantizeLinear', [wq, s, z], [dq], this.fresh(`${base}_DequantizeLinear`), attrs, this.domain));
    return { dq, wq: { layer: layer.node.name, tensor: name, axis, params, ranges, clipRate, codes, dims, initializer: wq } };
  }

  /**
   * A deployed model's weight exactly as it holds it: its codes, type and grid. Ranges are those
   * of the float values the codes stand for; nothing is clipped (the codes are given).
   */
  private fixedWeight(layer: PlannedLayer, name: string, w: { dims: number[]; data: Float32Array }, f: FixedCodes): { dq: string; wq: WeightQuant } {
    const axis = f.params.length > 1 ? f.axis : null;
    const channels = axis === null ? 1 : f.dims[axis];
    const inner = axis === null ? w.data.length : f.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const ranges: Range[] = Array.from({ length: channels }, () => ({ lo: Infinity, hi: -Infinity }));
    for (let i = 0; i < w.data.length; i++) {
      const r = ranges[axis === null ? 0 : Math.floor(i / inner) % channels];
      if (w.data[i] < r.lo) r.lo = w.data[i];
      if (w.data[i] > r.hi) r.hi = w.data[i];
    }
    const type = gridType(f.params[0]);
    const base = `${layer.node.name}_${name}`;
    const wq = this.init(`${base}_quantized`, zeroPointType(type.bits, type.signed), f.dims, f.codes);
    const { s, z } = this.scaleZp(base, f.params, type, axis !== null);
    const dq = this.fresh(`${base}_dequantized`);
    this.head.push(makeNode('DequantizeLinear', [wq, s, z], [dq], this.fresh(`${base}_DequantizeLinear`), axis !== null ? { axis } : {}, this.domain));
    return { dq, wq: { layer: layer.node.name, tensor: name, axis, params: f.params, ranges, clipRate: 0, codes: f.codes, dims: f.dims, initializer: wq } };
  }

  /** int32 bias at scale S_x * S_w (per channel when the weight is), zero point 0; a deployed bias keeps its codes and scales. */
  bias(layer: PlannedLayer, inputIndex: number, xp: QuantParams | undefined, wq: WeightQuant): string | null {
    const name = layer.node.input[inputIndex];
    const b = readFloatTensor(this.source.initializers.get(name)!, this.source.dir);
    const fixed = layer.fixed?.get(inputIndex);
    if (!fixed && !xp) return null;
    if (b.dims.length !== 1 || (wq.axis !== null && b.data.length !== wq.params.length)) return null;
    const scales = fixed ? fixed.params.map((p) => p.scale) : wq.params.map((p) => Math.fround(Math.fround(xp!.scale) * Math.fround(p.scale)));
    const perChannel = fixed ? fixed.params.length > 1 : wq.axis !== null;
    let saturated = 0;
    const codes = fixed
      ? fixed.codes
      : Int32Array.from(b.data, (v, i) => {
          const c = roundHalfEven(v / scales[perChannel ? i : 0]);
          if (c > 2 ** 31 - 1 || c < -(2 ** 31)) saturated++;
          return Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, c));
        });
    wq.bias = codes;
    if (saturated) {
      wq.biasSaturated = saturated;
      wq.biasScale = Math.min(...scales);
    }
    const base = `${layer.node.name}_${name}`;
    const bq = this.init(`${base}_quantized`, DT.INT32, b.dims, codes);
    const s = this.init(`${base}_scale`, DT.FLOAT, perChannel ? [scales.length] : [], scales);
    const z = this.init(
      `${base}_zero_point`,
      DT.INT32,
      perChannel ? [scales.length] : [],
      scales.map(() => 0),
    );
    const dq = this.fresh(`${base}_dequantized`);
    this.head.push(makeNode('DequantizeLinear', [bq, s, z], [dq], this.fresh(`${base}_DequantizeLinear`), perChannel ? { axis: 0 } : {}, this.domain));
    return dq;
  }

  /** Rewrite a layer's weight and bias inputs; activation inputs are mapped by `act`. */
  quantizeInputs(layer: PlannedLayer, node: NodeProto, act: (i: number) => string, actParams: (t: string) => QuantParams | undefined): WeightQuant[] {
    const weights: WeightQuant[] = [];
    const wqByInput = new Map<number, WeightQuant>();
    layer.roles.forEach((r, i) => {
      if (r.kind === 'activation') node.input[i] = act(i);
      if (r.kind === 'weight') {
        const { dq, wq } = this.weight(layer, i, r.axis);
        node.input[i] = dq;
        weights.push(wq);
        wqByInput.set(i, wq);
      }
    });
    layer.roles.forEach((r, i) => {
      if (r.kind !== 'bias') return;
      const wq = wqByInput.get(r.weightInput);
      if (!wq) return;
      const dq = this.bias(layer, i, actParams(layer.node.input[r.activationInput]), wq);
      if (dq) node.input[i] = dq;
    });
    return weights;
  }
}

export interface QdqResult extends BuiltModel {
  weights: WeightQuant[];
  /** Per layer, where its activation inputs' codes can be read (same order as the node's activation inputs). */
  inputTaps: Map<string, OutputTap[]>;
}

/**
 * The deployable QDQ model. `prepared` is the BN-folded working copy; it is not modified. Layers
 * inside If/Loop/Scan bodies are quantized in their bodies: each graph gets the Q/DQ pairs of the
 * tensors it defines (read by its nodes and by nested bodies), and the quantized weights of its layers.
 */
export function buildQdqModel(
  prepared: ModelProto,
  dir: string,
  plan: QuantPlan,
  actParams: Map<string, QuantParams>,
  config: QuantConfig,
  /** Also expose each layer's output codes as graph outputs (analysis); false for deployment. */
  /** Expose layer output (and input) codes as graph outputs: all of them, none, or those a filter keeps. */
  exposeTaps: boolean | ((tap: OutputTap) => boolean),
): QdqResult {
  const model = cloneModel(prepared);
  const w = new QdqWriter(model, { initializers: allInitializers(prepared), dir }, config, qdqDomain(prepared, config));
  const quantized = new Set(plan.activations.filter((t) => actParams.has(t)));
  const dqName = new Map<string, string>();
  const codeName = new Map<string, string>();
  const layerByName = new Map(plan.layers.map((l) => [l.node.name, l]));
  const weights: WeightQuant[] = [];
  // Parents before bodies: a body's layers then read the DQ outputs of enclosing-scope tensors.
  for (const { graph: g } of graphsOf(model)) {
    w.begin(g);
    const idx = new GraphIndex(g);
    const bodyInputs = new Set(g.input.map((i) => i.name).filter((n) => !idx.initializers.has(n)));
    const afterProducer = new Map<string, NodeProto[]>();
    // Q/DQ pairs: graph outputs keep their name on the DQ side; other tensors get a new DQ name
    // and every consumer reads it (float consumers see the same fake-quantized values deployment does).
    const inputsQdq: NodeProto[] = [];
    const local = [...quantized].filter((t) => idx.producer.has(t) || bodyInputs.has(t));
    const renames = new Map<string, string>();
    for (const t of local) {
      const producer = idx.producer.get(t);
      const list: NodeProto[] = producer ? (afterProducer.get(producer.name) ?? []) : inputsQdq;
      let source = t;
      let dqOut: string | undefined;
      if (idx.graphOutputs.has(t) && producer) {
        source = w.fresh(`${t}_float`);
        producer.output = producer.output.map((o) => (o === t ? source : o));
        dqOut = t;
      }
      const { q, dq } = w.qdq(source, actParams.get(t)!, list, dqOut);
      if (producer) afterProducer.set(producer.name, list);
      dqName.set(t, dq);
      codeName.set(t, q);
      if (dq !== t) renames.set(t, dq);
    }
    renameReads(g, renames);
    for (const n of g.node) {
      const layer = layerByName.get(n.name);
      if (!layer) continue;
      weights.push(
        ...w.quantizeInputs(
          layer,
          n,
          (i) => n.input[i],
          (t) => actParams.get(t),
        ),
      );
    }
    g.node = [...w.head, ...inputsQdq, ...g.node.flatMap((n) => [n, ...(afterProducer.get(n.name) ?? [])])];
  }
  const taps = plan.layers
    .filter((l) => quantized.has(l.output))
    .map((l) => outputTap(l.node.name, codeName.get(l.output)!, dqName.get(l.output)!, actParams.get(l.output)!, config));
  const inputTaps = new Map(
    plan.layers.map((l) => [
      l.node.name,
      l.node.input
        .filter((t, i) => l.roles[i]?.kind === 'activation' && quantized.has(t))
        .map((t) => outputTap(l.node.name, codeName.get(t)!, dqName.get(t)!, actParams.get(t)!, config)),
    ]),
  );
  // an excluded node of any kind (an Add, a pooling) stays float too
  const excluded = new Set([...plan.skipped.filter((x) => x.code === undefined && x.reason === EXCLUDED).map((x) => x.node), ...(plan.guarded ?? [])]);
  guardPlanFloat(model, plan.layers, plan.unguarded, excluded);
  pruneUnusedInitializers(model.graph!);
  if (exposeTaps) {
    const all = [...taps, ...[...inputTaps.values()].flat()];
    addTapOutputs(model, exposeTaps === true ? all : all.filter(exposeTaps));
  }
  return { model, taps, weights, inputTaps };
}

/**
 * Layers the plan keeps in float stay float in onnxruntime (floatGuard.ts). Not guarded: quantized
 * layers (their dequantized inputs are meant to fuse), and what a deployed file leaves for
 * onnxruntime to quantize (the analysis runs the file as onnxruntime does). Isolated copies
 * (`<node>__isolated`) are guarded as their layer is.
 */
function guardPlanFloat(model: ModelProto, layers: readonly PlannedLayer[], unguarded?: ReadonlySet<string>, excluded: ReadonlySet<string> = new Set()): void {
  const byName = new Map(layers.map((l) => [l.node.name, l]));
  // quantized: a weight on its grid, or two activations (a deployed layer may keep its weight float)
  const quantized = (node: string) => {
    const roles = byName.get(node)?.roles ?? [];
    return roles.some((r) => r.kind === 'weight') || roles.filter((r) => r.kind === 'activation').length === 2;
  };
  guardFloatLayers(
    model,
    (name) => {
      const node = name.replace(/__isolated$/, '');
      return !quantized(node) && !unguarded?.has(node);
    },
    excluded,
  );
}

/** Reads of renamed tensors, in `g`'s nodes and in every body nested in them (enclosing-scope reads). */
function renameReads(g: GraphProto, renames: Map<string, string>): void {
  if (renames.size === 0) return;
  for (const n of g.node) {
    n.input = n.input.map((i) => renames.get(i) ?? i);
    for (const a of n.attribute) for (const body of [...(a.g ? [a.g] : []), ...a.graphs]) renameNested(body, renames);
  }
}

function renameNested(g: GraphProto, renames: Map<string, string>): void {
  renameReads(g, renames);
  // a body may return an enclosing-scope value directly
  for (const o of g.output) o.name = renames.get(o.name) ?? o.name;
}

function outputTap(layer: string, codes: string, dq: string, params: QuantParams, _config: QuantConfig): OutputTap {
  // onnxruntime-node cannot hand int4 tensors to JavaScript (the process dies): read the DQ output.
  const isCodes = gridType(params).bits !== 4;
  return { layer, tensor: isCodes ? codes : dq, isCodes, params, dq };
}

/**
 * Make every tap fetchable: main-graph tensors become outputs, tensors inside bodies are lifted
 * (lift.ts) and the tap then names the lifted output (`source` keeps the name inside the body).
 */
function addTapOutputs(model: ModelProto, taps: OutputTap[]): void {
  // a layer's output codes are often the next layer's input codes: lift each tensor once
  const { lifted } = liftTensors(model, [...new Set(taps.map((t) => t.tensor))]);
  for (const t of taps) {
    const l = lifted.get(t.tensor);
    if (!l || l.output === t.tensor) continue;
    t.source = t.tensor;
    t.tensor = l.output;
  }
}

/** The inputs an isolated layer reads from the float pass: activations and non-constant float inputs. */
export function isolatedInputs(layer: PlannedLayer, isConstant: (t: string) => boolean): string[] {
  return layer.node.input.filter((t, i) => t && (layer.roles[i]?.kind === 'activation' || (layer.roles[i]?.kind === 'float' && !isConstant(t))));
}

/**
 * Each layer ALONE, quantized, fed from the FLOAT tensors: the graph inputs are the layers' float
 * inputs (the float pass fetched them), the outputs the layers' output codes. One run gives every
 * layer's isolated error: only this layer's quantization, none inherited from upstream.
 */
export function buildIsolatedModel(
  prepared: ModelProto,
  dir: string,
  layers: readonly PlannedLayer[],
  actParams: Map<string, QuantParams>,
  config: QuantConfig,
  /** The plan's `unguarded` and `guarded`: what a deployed file leaves for onnxruntime to quantize, and keeps float. */
  deployed?: Pick<QuantPlan, 'unguarded' | 'guarded'>,
): BuiltModel & { inputs: string[] } {
  const inits = allInitializers(prepared);
  const model = cloneModel(prepared);
  const g = model.graph!;
  g.node = [];
  g.initializer = [];
  g.valueInfo = [];
  g.output = [];
  const inputs: string[] = [];
  const usable = layers.filter((l) => actParams.has(l.output) && l.roles.every((r, i) => r.kind !== 'activation' || actParams.has(l.node.input[i])));
  for (const l of usable) for (const t of isolatedInputs(l, (x) => inits.has(x))) if (!inputs.includes(t)) inputs.push(t);
  g.input = inputs.map((t) => typedValueInfo(t, DT.FLOAT));
  // Layer copies first, so the name allocator below sees every name in use.
  const copies = usable.map((l, k) => {
    const copy = makeNode(l.node.opType, [...l.node.input], [`${l.output}__isolated_${k}`], `${l.node.name}__isolated`);
    copy.attribute = l.node.attribute;
    copy.domain = l.node.domain;
    g.node.push(copy);
    return copy;
  });
  const w = new QdqWriter(model, { initializers: inits, dir }, config, qdqDomain(prepared, config));
  const body: NodeProto[] = [];
  const taps: OutputTap[] = [];
  const qdqOf = new Map<string, string>(); // one Q/DQ per float input, shared by the layers reading it
  usable.forEach((l, k) => {
    const copy = copies[k];
    w.quantizeInputs(
      l,
      copy,
      (i) => {
        const t = l.node.input[i];
        if (!qdqOf.has(t)) qdqOf.set(t, w.qdq(t, actParams.get(t)!, body).dq);
        return qdqOf.get(t)!;
      },
      (t) => actParams.get(t),
    );
    // Constant inputs left in float (e.g. a Gemm bias with alpha != 1) are copied as they are.
    l.roles.forEach((r, i) => {
      const t = copy.input[i];
      if (r.kind === 'float' && t && inits.has(t) && !g.initializer.some((x) => x.name === t)) g.initializer.push(inits.get(t)!);
    });
    body.push(copy);
    const outP = actParams.get(l.output)!;
    const { q, dq } = w.qdq(copy.output[0], outP, body);
    const codes = gridType(outP).bits !== 4;
    taps.push({ layer: l.node.name, tensor: codes ? q : dq, isCodes: codes, params: outP, dq });
  });
  g.node = [...w.head, ...body];
  guardPlanFloat(model, usable, deployed?.unguarded, new Set([...(deployed?.guarded ?? [])].map((n) => `${n}__isolated`)));
  addTapOutputs(model, taps);
  return { model, taps, inputs };
}
