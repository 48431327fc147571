/**
 * What a lowering sees while the graph is compiled: the grid of every float tensor computed so
 * far, the plan's grids, constants, the plan's weight codes, and helpers that emit steps.
 *
 * Grids, the one policy of the executor:
 *   planned   a tensor the quantization plan covers is stored on the plan's grid
 *             (`Quantized.actParams`: preset, bits, calibration method, symmetry all honoured);
 *   natural   otherwise an op that does not need to rescale keeps the grid its arithmetic
 *             produces: data movement and Relu/Clip/MaxPool keep the input's grid, Mul/Div by a
 *             positive scalar only rescales the grid, I-BERT kernels have their own wide grids
 *             (i-Softmax: 2^-bits probabilities; i-GELU, i-LayerNorm: int32);
 *   free      an op that must rescale (Add, BatchNormalization, pooling averages, tables, float
 *             fallbacks) stores an unplanned output on a 16-bit grid of the activation scheme
 *             over the tensor's calibrated MinMax range: the tensor is float in the simulated
 *             model, so it gets the finest grid a 16-bit integer pipeline has (I-BERT's residual
 *             stream is 16-bit for the same reason).
 * When a natural grid differs from the planned one, one integer rescale step follows.
 */
import type * as ort from 'onnxruntime-node';
import { ErrorAccumulator } from '../analysis/metrics';
import { InputError } from '../errors';
import { GraphIndex, type NodeProto } from '../onnx/graph';
import { type ModelProto, opsetOf } from '../onnx/model';
import { DT, type HostTensor, readFloatTensor, readTensor } from '../onnx/tensor';
import type { WeightQuant } from '../quantize/qdqRewrite';
import type { QuantParams } from '../quantize/scheme';
import { Multipliers, sameGrid, saturate } from './fixedPoint';
import { outerScopeInputs } from './subgraphs';
import type { Decline, Env, IBertKernel, Step } from './types';
import { type Codes, type Raw, type RawArray, type Value, codes, raw } from './values';

export interface CompileSpec {
  /** The graph to run (for a `Quantized`: its BN-folded `prepared` model). */
  model: ModelProto;
  /** Folder external tensor data is read from. */
  dir: string;
  /** Grids the quantization plan fixes (`Quantized.actParams`). */
  planned: Map<string, QuantParams>;
  /** Grid of a float tensor the plan leaves alone, from its calibrated range. */
  free: (tensor: string) => QuantParams;
  /** The plan's weight codes (`buildQdqModel(...).weights`). */
  weights: WeightQuant[];
  /** onnxruntime element type of every graph input and node output (see `probeTypes`). */
  types: Map<string, ort.Tensor.Type>;
  /** Op types or node names that run as float fallbacks whatever lowering exists (ablation). */
  forceFloat?: string[];
  /** i-Softmax output bits (probabilities at scale 2^-bits); default 16. */
  softmaxBits?: number;
  /** Measure each I-BERT kernel against its float op (default true). */
  measureKernels?: boolean;
}

export const ORT_TYPE_OF_DT: Partial<Record<DT, ort.Tensor.Type>> = {
  [DT.FLOAT]: 'float32',
  [DT.DOUBLE]: 'float64',
  [DT.INT64]: 'int64',
  [DT.INT32]: 'int32',
  [DT.INT8]: 'int8',
  [DT.UINT8]: 'uint8',
  [DT.BOOL]: 'bool',
  [DT.INT16]: 'int16',
  [DT.UINT16]: 'uint16',
};

/**
 * Float tensors that carry activations: float32 tensors computed from the graph inputs' DATA.
 * Shape and Size read only metadata, so a float tensor computed from shapes and constants
 * (Shape -> Cast(float) -> ...) is not an activation: it is never quantized and flows raw.
 * Integer inputs count as data (token ids -> Gather(embedding table) is an activation).
 */
export function activationTensors(model: ModelProto, types: Map<string, ort.Tensor.Type>): Set<string> {
  const g = model.graph!;
  const inits = new Set(g.initializer.map((t) => t.name));
  const data = new Set(g.input.map((i) => i.name).filter((name) => !inits.has(name)));
  for (const n of g.node) {
    if (n.opType === 'Shape' || n.opType === 'Size') continue;
    if (![...n.input, ...outerScopeInputs(n)].some((r) => data.has(r))) continue;
    for (const o of n.output) if (o) data.add(o);
  }
  return new Set([...data].filter((t) => types.get(t) === 'float32'));
}

export class LowerCtx {
  readonly idx: GraphIndex;
  readonly opset: number;
  readonly grids = new Map<string, QuantParams>();
  readonly kernels: { node: string; kernel: IBertKernel }[] = [];
  /** Nodes a pattern lowering took over (they get no step of their own). */
  readonly consumed = new Set<NodeProto>();
  readonly softmaxBits: number;
  private readonly act: Set<string>;
  private readonly weightOf: Map<string, WeightQuant>;
  private readonly constValues = new Map<string, Raw>();

  constructor(readonly spec: CompileSpec) {
    this.idx = new GraphIndex(spec.model.graph!);
    this.opset = opsetOf(spec.model);
    this.act = activationTensors(spec.model, spec.types);
    this.weightOf = new Map(spec.weights.map((w) => [`${w.layer}|${w.tensor}`, w]));
    this.softmaxBits = spec.softmaxBits ?? 16;
  }

  // ---- what a tensor is ----

  isConst(t: string): boolean {
    return !!t && this.idx.initializers.has(t);
  }

  /** A float activation held as codes. */
  isCodes(t: string): boolean {
    return !!t && this.act.has(t);
  }

  typeOf(t: string): ort.Tensor.Type | undefined {
    if (this.isConst(t)) return ORT_TYPE_OF_DT[this.idx.initializers.get(t)!.dataType as DT];
    return this.spec.types.get(t);
  }

  /** Grid of a codes tensor computed earlier. */
  grid(t: string): QuantParams {
    const g = this.grids.get(t);
    if (!g) throw new InputError(`integer-only: tensor ${t} has no grid (its producer did not run in integers)`);
    return g;
  }

  planned(t: string): QuantParams | undefined {
    return this.spec.planned.get(t);
  }

  /** The grid an op that rescales stores `t` on: the plan's, else the free 16-bit grid. */
  target(t: string): QuantParams {
    return this.spec.planned.get(t) ?? this.spec.free(t);
  }

  setGrid(t: string, g: QuantParams): void {
    this.grids.set(t, g);
  }

  weight(node: NodeProto, input: number): WeightQuant | undefined {
    return this.weightOf.get(`${node.name}|${node.input[input]}`);
  }

  // ---- constants (compile-time float work: reading and quantizing them) ----

  constHost(t: string): HostTensor {
    const init = this.idx.initializers.get(t);
    if (!init) throw new InputError(`integer-only: ${t} is not a constant`);
    return readTensor(init, this.spec.dir);
  }

  constFloat(t: string): { dims: number[]; data: Float32Array } {
    return readFloatTensor(this.idx.initializers.get(t)!, this.spec.dir);
  }

  constInts(t: string): number[] {
    return Array.from(this.constHost(t).data as ArrayLike<number | bigint>, Number);
  }

  /** The value of a one-element float constant, else undefined. */
  scalar(t: string): number | undefined {
    if (!this.isConst(t)) return undefined;
    const c = this.constFloat(t);
    return c.data.length === 1 ? c.data[0] : undefined;
  }

  /** A constant as a raw run-time value. */
  constValue(t: string): Raw {
    let v = this.constValues.get(t);
    if (!v) {
      const h = this.constHost(t);
      const type = ORT_TYPE_OF_DT[h.dataType];
      if (!type) throw new InputError(`integer-only: constant ${t} has an unsupported type ${DT[h.dataType]}`);
      this.constValues.set(t, (v = raw(type, h.dims, h.data as RawArray)));
    }
    return v;
  }

  // ---- graph structure ----

  /** The single consumer of `t` when it is an `op` node and `t` is not a graph output. */
  onlyConsumer(t: string, op: string): NodeProto | undefined {
    if (this.idx.graphOutputs.has(t)) return undefined;
    const cs = this.idx.consumers.get(t) ?? [];
    return cs.length === 1 && cs[0].opType === op ? cs[0] : undefined;
  }

  /** The node must run as a float fallback (`forceFloat` names its op type or its name). */
  forced(n: NodeProto): boolean {
    const f = this.spec.forceFloat ?? [];
    return f.includes(n.opType) || f.includes(n.name);
  }

  consume(nodes: NodeProto[]): void {
    for (const n of nodes) this.consumed.add(n);
  }

  // ---- run time ----

  value(env: Env, t: string): Value {
    if (this.isConst(t)) return this.constValue(t);
    const v = env.values.get(t);
    if (!v) throw new InputError(`integer-only: tensor ${t} was not computed`);
    return v;
  }

  codes(env: Env, t: string): Codes {
    const v = this.value(env, t);
    if (v.kind !== 'codes') throw new InputError(`integer-only: tensor ${t} holds ${v.type} values, not integer codes`);
    return v;
  }

  // ---- emitting steps ----

  step(node: NodeProto, op: string, run: (env: Env) => void): Step {
    return { node: node.name || node.output[0], op, float: false, run };
  }

  /** A step that moves codes from grid `from` onto grid `to` (one fixed-point multiply). */
  rescale(node: NodeProto, src: string, dst: string, from: QuantParams, to: QuantParams): Step {
    const m = new Multipliers([from.scale / to.scale], node.name);
    return this.step(node, 'Rescale', (env) => {
      const v = this.codes(env, src);
      const out = new Int32Array(v.data.length);
      for (let i = 0; i < out.length; i++) out[i] = saturate(to.zeroPoint + m.apply(v.data[i] - from.zeroPoint), to, env.stats);
      env.values.set(dst, codes(v.dims, out));
    });
  }

  /**
   * `compute` writes `out` on its natural grid; keep that grid unless the plan fixes another,
   * then rescale onto the plan's grid.
   */
  finish(node: NodeProto, op: string, out: string, natural: QuantParams, compute: (env: Env) => void): Step[] {
    const want = this.planned(out);
    const first = this.step(node, op, compute);
    if (!want || sameGrid(want, natural)) {
      this.setGrid(out, natural);
      return [first];
    }
    this.setGrid(out, want);
    return [first, this.rescale(node, out, out, natural, want)];
  }

  /** Register an I-BERT kernel whose error is reported. */
  kernel(node: string, kernel: IBertKernel): void {
    this.kernels.push({ node, kernel });
  }

  get measuring(): boolean {
    return this.spec.measureKernels ?? true;
  }

  /** Add the kernel's output (codes at `scale`) against the float op's `ref` to its error sums. */
  measure(env: Env, node: string, ref: ArrayLike<number>, got: ArrayLike<number>, scale: number): void {
    const accs = env.stats.kernelAcc;
    if (!accs) return;
    let acc = accs.get(node);
    if (!acc) accs.set(node, (acc = new ErrorAccumulator()));
    const y = new Float64Array(got.length);
    for (let i = 0; i < y.length; i++) y[i] = got[i] * scale;
    acc.add(ref, y);
  }
}

/**
 * One op family's integer lowering. `lower` validates the node first and declines without side
 * effects; once it accepts, it registers the output grids on `ctx` and returns the steps.
 */
export interface OpLowering {
  ops: readonly string[];
  lower(node: NodeProto, ctx: LowerCtx): Step | Step[] | Decline | Promise<Step | Step[] | Decline>;
}
