/**
 * Integer-only executor for small transformer graphs (I-BERT style): everything between the
 * input QuantizeLinear and the final logits runs on integers.
 *
 *   calibrate   the float model in onnxruntime with every intermediate tensor exposed as an
 *               extra graph output; per-tensor symmetric MinMax (amax) per tensor.
 *   compile     walk the ONNX graph once and lower each node to an integer step. Weights are
 *               quantized int8 per output channel (symmetric), biases and other additive
 *               constants to int32 at the accumulator's scale, and every scale ratio becomes a
 *               gemmlowp fixed-point multiplier. All of that is float work done ONCE, here.
 *   run         the steps on integer typed arrays; scales never touch an element.
 *
 * Lowering (what each op becomes):
 *   MatMul/Gemm       int8 x int8 -> int32 (exact accumulation, `gemmInteger`/`matMulInteger`),
 *                     bias / any constant Add folded in as int32 at the accumulator scale;
 *   Add (2 tensors)   residual add: both operands rescaled by fixed-point multipliers to the
 *                     output's int16 grid, summed, saturated;
 *   Mul/Div by a positive scalar constant: scale bookkeeping only (attention's 1/sqrt(d));
 *   Div(sqrt2) -> Erf -> Add(1) -> Mul(x) -> Mul(0.5): pattern-matched into i-GELU;
 *   Softmax           i-Softmax straight on the int32 QK^T accumulator (16-bit output);
 *   LayerNormalization i-LayerNorm (integer mean/variance/isqrt), gamma 16-bit, beta int32;
 *   ReduceMean        integer sum; the divide by the count folds into the consumer's fixed-point
 *                     requantization multiplier;
 *   Reshape/Transpose integer data movement.
 * Requantization is inserted where a consumer needs a narrower type: int8 (scale amax/127) for
 * every GEMM operand, int16 (amax/32767) for everything else that needs a per-tensor grid
 * (residual stream, GELU input, pooled LayerNorm output). "amax" is the calibrated MinMax of the
 * tensor being requantized.
 *
 * `floatOps` lists every step that ran in float between the input quantization and the logits;
 * it is empty unless an I-BERT kernel is explicitly swapped for its float op (`floatKernels`,
 * an ablation that shows which kernel costs accuracy).
 */
import * as ort from 'onnxruntime-node';
import { ErrorAccumulator, argmaxRows } from '../analysis/metrics';
import { GraphIndex, type NodeProto, attr, attrFloat, attrInt, attrInts, untypedValueInfo } from '../onnx/graph';
import { type LoadedModel, cloneModel, loadModel } from '../onnx/model';
import { readFloatTensor, readTensor } from '../onnx/tensor';
import { createSession } from '../runtime/session';
import { iGelu, iLayerNorm, iSoftmax, geluPlan, quantizeLayerNormAffine, softmaxPlan } from './ibert';
import { gelu, layerNormRows, softmaxRows } from './ibertReference';
import { gemmInteger, matMulInteger } from './matmul';
import { multiplyByQuantizedMultiplier, quantizeMultiplier } from './requantize';
import { InputError } from './types';

export type IBertKernel = 'i-GELU' | 'i-Softmax' | 'i-LayerNorm';

export interface KernelError {
  /** The ONNX node the kernel replaces (the Erf node for a matched GELU). */
  node: string;
  kernel: IBertKernel;
  /** 10 log10(sum ref^2 / sum (ref - kernel)^2), ref = the float op on the kernel's dequantized input. */
  sqnrDb: number;
  /** Largest |ref - kernel| (real units). */
  maxAbsError: number;
  /** Elements compared. */
  count: number;
}

export interface IntegerGraphOptions {
  /** Run these I-BERT kernels as float ops instead (ablation). Each such node lands in `floatOps`. */
  floatKernels?: IBertKernel[];
  /** Output bits of i-Softmax (probabilities at scale 2^-bits). Default 16. */
  softmaxBits?: number;
  /** Compare each I-BERT kernel with its float op on the same input (default true). */
  measureKernels?: boolean;
}

type IntData = Int8Array | Int16Array | Int32Array;

/** Static description of an integer tensor: how its codes map to reals, and their bound. */
export interface IntegerValueDesc {
  /** Per tensor, or per channel of the LAST axis (accumulators of per-channel weights). */
  scale: number | Float64Array;
  /** Bound on |code|. */
  bound: number;
}

interface RVal {
  dims: number[];
  data: IntData;
}

interface RunContext {
  env: Map<string, RVal>;
  input: { data: Float32Array; dims: number[] };
  output?: { logits: Float32Array; dims: number[] };
  overflow: number;
  saturated: number;
  kernelAcc: Map<string, ErrorAccumulator> | null;
}

interface Step {
  node: string;
  op: string;
  /** True when the step computes on floats (only the explicit float-kernel ablation). */
  float: boolean;
  run(ctx: RunContext): void;
}

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;
const Q8 = 127;
const Q16 = 32767;

function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function allocLike(src: IntData, n: number): IntData {
  if (src instanceof Int8Array) return new Int8Array(n);
  if (src instanceof Int16Array) return new Int16Array(n);
  return new Int32Array(n);
}

function toInt32(d: IntData): Int32Array {
  return d instanceof Int32Array ? d : Int32Array.from(d);
}

/** Per-channel (or single) scale value c of an IntegerValueDesc. */
function scaleAt(s: number | Float64Array, c: number): number {
  return typeof s === 'number' ? s : s[c];
}

function transpose(src: IntData, dims: readonly number[], perm: readonly number[]): RVal {
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p]);
  const srcStride = new Array<number>(rank);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) { srcStride[i] = acc; acc *= dims[i]; }
  const st = perm.map((p) => srcStride[p]);
  const n = src.length;
  const out = allocLike(src, n);
  const idx = new Int32Array(rank);
  let off = 0;
  for (let o = 0; o < n; o++) {
    out[o] = src[off];
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      off += st[ax];
      if (idx[ax] < outDims[ax]) break;
      off -= st[ax] * outDims[ax];
      idx[ax] = 0;
    }
  }
  return { dims: outDims, data: out };
}

/**
 * Fixed-point requantization to a per-tensor grid with saturation at +-bound: one gemmlowp
 * multiplier per channel of the last axis. A multiplier > 1 shifts left first; values that
 * would leave int32 there saturate directly instead of wrapping.
 */
class Requantizer {
  readonly mult: Int32Array;
  readonly shift: Int32Array;
  constructor(inScale: number | Float64Array, outScale: number, readonly bound: number) {
    const n = typeof inScale === 'number' ? 1 : inScale.length;
    this.mult = new Int32Array(n);
    this.shift = new Int32Array(n);
    for (let c = 0; c < n; c++) {
      const q = quantizeMultiplier(scaleAt(inScale, c) / outScale);
      this.mult[c] = q.multiplier;
      this.shift[c] = q.shift;
    }
  }

  get channels(): number {
    return this.mult.length;
  }

  /** One code (channel c); `ctx` counts saturations. */
  code(v: number, c: number, ctx: RunContext): number {
    const sh = this.shift[c];
    const b = this.bound;
    if (sh > 0) {
      const lim = INT32_MAX >> sh;
      if (v > lim) { ctx.saturated++; return b; }
      if (v < -lim) { ctx.saturated++; return -b; }
    }
    const r = multiplyByQuantizedMultiplier(v, this.mult[c], sh);
    if (r > b) { ctx.saturated++; return b; }
    if (r < -b) { ctx.saturated++; return -b; }
    return r;
  }

  apply(src: IntData, dst: IntData, ctx: RunContext): void {
    const C = this.channels;
    if (C === 1) {
      for (let i = 0; i < src.length; i++) dst[i] = this.code(src[i], 0, ctx);
    } else {
      if (src.length % C !== 0) throw new InputError(`requantize: ${src.length} values for ${C} channels`);
      for (let i = 0, c = 0; i < src.length; i++) {
        dst[i] = this.code(src[i], c, ctx);
        if (++c === C) c = 0;
      }
    }
  }
}

/** Symmetric int8 per-channel weights along `axis` of a 2-D [R, C] matrix (axis 0: rows, 1: columns). */
function quantizeWeight(w: Float32Array, rows: number, cols: number, axis: 0 | 1): { q: Int8Array; scale: Float64Array } {
  const n = axis === 0 ? rows : cols;
  const scale = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = axis === 0 ? r : c;
      scale[ch] = Math.max(scale[ch], Math.abs(w[r * cols + c]));
    }
  }
  for (let ch = 0; ch < n; ch++) scale[ch] = scale[ch] > 0 ? scale[ch] / Q8 : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = Math.round(w[r * cols + c] / scale[axis === 0 ? r : c]);
      q[r * cols + c] = v > Q8 ? Q8 : v < -Q8 ? -Q8 : v;
    }
  }
  return { q, scale };
}

/** An integer-lowered ONNX graph. Build with `compileIntegerGraph`. */
export class IntegerGraph {
  constructor(
    readonly inputName: string,
    readonly outputName: string,
    private readonly steps: Step[],
    /** Static descriptions (for inspection/tests): scale, bound per value key. */
    readonly descs: Map<string, IntegerValueDesc>,
    readonly kernels: { node: string; kernel: IBertKernel }[],
  ) {}

  /** One line per step: "op node" (float steps marked). */
  describe(): string[] {
    return this.steps.map((s) => `${s.float ? '[float] ' : ''}${s.op} ${s.node}`);
  }

  /** Nodes whose step computes in float (between input quantization and output dequantization). */
  floatOps(): string[] {
    return this.steps.filter((s) => s.float).map((s) => `${s.op} ${s.node}`);
  }

  /**
   * Run one batch: `input` float [N, ...] in, float logits out (dequantized from the final int32
   * accumulator, the only float step after the input quantization). Integer stats and kernel
   * errors accumulate into `stats`.
   */
  run(input: Float32Array, dims: number[], stats?: RunStats): { logits: Float32Array; dims: number[] } {
    const ctx: RunContext = {
      env: new Map(),
      input: { data: input, dims },
      overflow: 0,
      saturated: 0,
      kernelAcc: stats?.kernelAcc ?? null,
    };
    for (const s of this.steps) s.run(ctx);
    const out = ctx.output;
    if (!out) throw new Error('integer graph produced no output');
    if (stats) {
      stats.overflowCount += ctx.overflow;
      stats.saturationCount += ctx.saturated;
    }
    return out;
  }
}

export interface RunStats {
  /** int32 accumulators whose exact value left int32 (wrapped). */
  overflowCount: number;
  /** Codes clamped by a requantization (values beyond the calibrated range). */
  saturationCount: number;
  kernelAcc: Map<string, ErrorAccumulator> | null;
}

export function newRunStats(measure: boolean): RunStats {
  return { overflowCount: 0, saturationCount: 0, kernelAcc: measure ? new Map() : null };
}

/**
 * Lower a float ONNX model to integer steps, given calibrated per-tensor amax values (for every
 * activation tensor a requantization may target) and options.
 */
export function compileIntegerGraph(model: LoadedModel, calibration: Calibration, opts: IntegerGraphOptions = {}): IntegerGraph {
  const { amax, shapes } = calibration;
  const g = model.proto.graph!;
  const idx = new GraphIndex(g);
  const floatKernels = new Set(opts.floatKernels ?? []);
  const softmaxBits = opts.softmaxBits ?? 16;
  const measure = opts.measureKernels ?? true;
  const inputs = [...idx.graphInputs];
  if (inputs.length !== 1 || g.output.length !== 1) throw new InputError('integer executor: the model must have one input and one output');
  const inputName = inputs[0];
  const outputName = g.output[0].name;

  const steps: Step[] = [];
  const descs = new Map<string, IntegerValueDesc>();
  const kernels: { node: string; kernel: IBertKernel }[] = [];
  const skip = new Set<NodeProto>();

  const constNode = (name: string) => {
    const p = idx.producer.get(name);
    return p?.opType === 'Constant' ? attr(p, 'value')?.t : undefined;
  };
  const isConst = (name: string) => idx.initializers.has(name) || constNode(name) !== undefined;
  const constTensor = (name: string) => {
    const t = idx.initializers.get(name) ?? constNode(name);
    if (!t) throw new InputError(`integer executor: ${name} is not a constant`);
    return t;
  };
  const constFloat = (name: string) => readFloatTensor(constTensor(name), model.dir);
  const constInts = (name: string): number[] => {
    const h = readTensor(constTensor(name), model.dir);
    return Array.from(h.data as ArrayLike<number | bigint>, (v) => Number(v));
  };
  const scalarConst = (name: string): number | undefined => {
    if (!isConst(name)) return undefined;
    const t = constFloat(name);
    return t.data.length === 1 ? t.data[0] : undefined;
  };
  const amaxOf = (name: string): number => {
    const a = amax.get(name);
    if (a === undefined) throw new InputError(`integer executor: no calibrated range for tensor ${name}`);
    return a > 0 ? a : 1;
  };
  const desc = (key: string): IntegerValueDesc => {
    const d = descs.get(key);
    if (!d) throw new InputError(`integer executor: value ${key} is not computed (unsupported producer?)`);
    return d;
  };
  const get = (ctx: RunContext, key: string): RVal => {
    const v = ctx.env.get(key);
    if (!v) throw new Error(`integer executor: value ${key} missing at run time`);
    return v;
  };
  const unsupported = (n: NodeProto, why: string): never => {
    throw new InputError(`integer executor: ${n.opType} ${n.name}: ${why}`);
  };

  /** Consumers reached through Reshape/Transpose are all GEMM operands: requantize to int8 once, early. */
  const feedsOnlyGemms = (name: string): boolean => {
    const cs = idx.consumers.get(name) ?? [];
    if (cs.length === 0) return false;
    return cs.every((c) => (c.opType === 'Reshape' || c.opType === 'Transpose' ? c.input[0] === name && feedsOnlyGemms(c.output[0]) : c.opType === 'MatMul' || (c.opType === 'Gemm' && c.input[0] === name)));
  };

  /**
   * The key of `name` in the requested form, inserting a requantization step if needed:
   * 'i8' = per tensor, |code| <= 127; 'i16' = per tensor, |code| <= 32767; 'tensor' = any per-tensor
   * grid (a per-channel accumulator becomes int16).
   */
  const ensure = (name: string, want: 'i8' | 'i16' | 'tensor', node: string): string => {
    const d = desc(name);
    const perTensor = typeof d.scale === 'number';
    if (perTensor && (want === 'tensor' || (want === 'i16' && d.bound <= Q16) || (want === 'i8' && d.bound <= Q8))) return name;
    const kind = want === 'i8' ? 'i8' : 'i16';
    const key = `${name}@${kind}`;
    if (descs.has(key)) return key;
    const bound = kind === 'i8' ? Q8 : Q16;
    const outScale = amaxOf(name) / bound;
    const rq = new Requantizer(d.scale, outScale, bound);
    descs.set(key, { scale: outScale, bound });
    steps.push({
      node,
      op: `Requantize(${kind})`,
      float: false,
      run(ctx) {
        const v = get(ctx, name);
        const out = kind === 'i8' ? new Int8Array(v.data.length) : new Int16Array(v.data.length);
        rq.apply(v.data, out, ctx);
        ctx.env.set(key, { dims: v.dims, data: out });
      },
    });
    return key;
  };
  const operandKind = (name: string): 'i8' | 'tensor' => (feedsOnlyGemms(name) ? 'i8' : 'tensor');

  /** Record the kernel's error against the float op on the same (dequantized) input. */
  const measureKernel = (ctx: RunContext, node: string, ref: ArrayLike<number>, got: ArrayLike<number>, gotScale: number) => {
    if (!ctx.kernelAcc) return;
    let acc = ctx.kernelAcc.get(node);
    if (!acc) ctx.kernelAcc.set(node, (acc = new ErrorAccumulator()));
    const y = new Float64Array(got.length);
    for (let i = 0; i < y.length; i++) y[i] = got[i] * gotScale;
    acc.add(ref, y);
  };
  const dequant = (data: IntData, scale: number): Float64Array => {
    const x = new Float64Array(data.length);
    for (let i = 0; i < x.length; i++) x[i] = data[i] * scale;
    return x;
  };

  // ---- input quantization (the float -> integer boundary) ----
  {
    const s = amaxOf(inputName) / Q8;
    descs.set(inputName, { scale: s, bound: Q8 });
    steps.push({
      node: inputName,
      op: 'QuantizeInput',
      float: false, // the boundary itself, not an op between input and logits
      run(ctx) {
        const { data: x, dims } = ctx.input;
        const q = new Int8Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const v = Math.round(x[i] / s);
          q[i] = v > Q8 ? Q8 : v < -Q8 ? -Q8 : v;
        }
        ctx.env.set(inputName, { dims, data: q });
      },
    });
  }

  // ---- GELU pattern: Div(x, sqrt2) -> Erf -> Add(., 1) -> Mul(x, .) -> Mul(., 0.5) (either operand order) ----
  const onlyConsumer = (name: string, op: string): NodeProto | undefined => {
    const cs = idx.consumers.get(name) ?? [];
    return cs.length === 1 && cs[0].opType === op ? cs[0] : undefined;
  };
  const otherInput = (n: NodeProto, name: string) => (n.input[0] === name ? n.input[1] : n.input[0]);
  const matchGelu = (div: NodeProto): { x: string; erf: NodeProto; nodes: NodeProto[]; out: string } | undefined => {
    const c = scalarConst(div.input[1]);
    if (c === undefined || Math.abs(c - Math.SQRT2) > 1e-6) return undefined;
    const x = div.input[0];
    const erf = onlyConsumer(div.output[0], 'Erf');
    if (!erf) return undefined;
    const add = onlyConsumer(erf.output[0], 'Add');
    if (!add || scalarConst(otherInput(add, erf.output[0])) !== 1) return undefined;
    const mul = onlyConsumer(add.output[0], 'Mul');
    if (!mul || otherInput(mul, add.output[0]) !== x) return undefined;
    const half = onlyConsumer(mul.output[0], 'Mul');
    if (!half || scalarConst(otherInput(half, mul.output[0])) !== 0.5) return undefined;
    return { x, erf, nodes: [div, erf, add, mul, half], out: half.output[0] };
  };

  for (const n of g.node) {
    if (skip.has(n)) continue;
    if (n.domain !== '' && n.domain !== 'ai.onnx') unsupported(n, `domain ${n.domain} is not supported`);
    const name = n.name || n.output[0];
    switch (n.opType) {
      case 'Constant':
        break;

      case 'Reshape': {
        const src = ensure(n.input[0], operandKind(n.input[0]), name);
        const shape = constInts(n.input[1]);
        const allowZero = attrInt(n, 'allowzero', 0) === 1;
        const out = n.output[0];
        descs.set(out, desc(src));
        steps.push({
          node: name,
          op: 'Reshape',
          float: false,
          run(ctx) {
            const v = get(ctx, src);
            const dims = shape.map((s, i) => (s === 0 && !allowZero ? v.dims[i] : s));
            const known = dims.reduce((a, b) => (b === -1 ? a : a * b), 1);
            const total = v.data.length;
            const full = dims.map((d) => (d === -1 ? total / known : d));
            if (numel(full) !== total) throw new InputError(`Reshape ${name}: cannot reshape [${v.dims}] to [${shape}]`);
            ctx.env.set(out, { dims: full, data: v.data });
          },
        });
        break;
      }

      case 'Transpose': {
        const src = ensure(n.input[0], operandKind(n.input[0]), name);
        const perm = attrInts(n, 'perm');
        const out = n.output[0];
        descs.set(out, desc(src));
        steps.push({
          node: name,
          op: 'Transpose',
          float: false,
          run(ctx) {
            const v = get(ctx, src);
            const p = perm ?? v.dims.map((_, i) => v.dims.length - 1 - i);
            ctx.env.set(out, transpose(v.data, v.dims, p));
          },
        });
        break;
      }

      case 'MatMul': {
        const [aName, bName] = n.input;
        const out = n.output[0];
        if (isConst(aName)) unsupported(n, 'a constant first operand is not supported');
        const a = ensure(aName, 'i8', name);
        const sa = desc(a).scale as number;
        if (isConst(bName)) {
          const w = constFloat(bName);
          if (w.dims.length !== 2) unsupported(n, 'weights must be 2-D');
          const [K, N] = w.dims;
          const wq = quantizeWeight(w.data, K, N, 1);
          const scale = Float64Array.from(wq.scale, (s) => s * sa);
          descs.set(out, { scale, bound: INT32_MAX });
          steps.push({
            node: name,
            op: 'MatMulInteger(int8 x int8 weight)',
            float: false,
            run(ctx) {
              const v = get(ctx, a);
              const k = v.dims[v.dims.length - 1];
              if (k !== K) throw new InputError(`MatMul ${name}: inner dimension ${k} vs weight ${K}`);
              const rows = v.data.length / K;
              const r = gemmInteger({ dims: [rows, K], data: v.data as Int8Array }, { dims: [K, N], data: wq.q });
              ctx.overflow += r.overflowCount;
              ctx.env.set(out, { dims: [...v.dims.slice(0, -1), N], data: r.data });
            },
          });
        } else {
          const b = ensure(bName, 'i8', name);
          const sb = desc(b).scale as number;
          descs.set(out, { scale: sa * sb, bound: INT32_MAX });
          steps.push({
            node: name,
            op: 'MatMulInteger(int8 x int8)',
            float: false,
            run(ctx) {
              const va = get(ctx, a);
              const vb = get(ctx, b);
              const r = matMulInteger({ dims: va.dims, data: va.data as Int8Array }, { dims: vb.dims, data: vb.data as Int8Array });
              ctx.overflow += r.overflowCount;
              ctx.env.set(out, { dims: r.dims, data: r.data });
            },
          });
        }
        break;
      }

      case 'Gemm': {
        const [aName, bName, cName] = n.input;
        const out = n.output[0];
        if (attrInt(n, 'transA', 0) !== 0) unsupported(n, 'transA is not supported');
        if (attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1) unsupported(n, 'alpha/beta other than 1 are not supported');
        if (!isConst(bName)) unsupported(n, 'B must be a constant');
        const transB = attrInt(n, 'transB', 0) === 1;
        const a = ensure(aName, 'i8', name);
        const sa = desc(a).scale as number;
        const w = constFloat(bName);
        const [R, C] = w.dims;
        const wq = quantizeWeight(w.data, R, C, transB ? 0 : 1);
        const N = transB ? R : C;
        const K = transB ? C : R;
        const scale = Float64Array.from(wq.scale, (s) => s * sa);
        let bias: Int32Array | undefined;
        if (cName) {
          if (!isConst(cName)) unsupported(n, 'C must be a constant');
          const c = constFloat(cName);
          if (c.data.length !== N && c.data.length !== 1) unsupported(n, 'C must be a scalar or have N values');
          bias = new Int32Array(N);
          for (let j = 0; j < N; j++) {
            const v = Math.round(c.data[c.data.length === 1 ? 0 : j] / scale[j]);
            if (v > INT32_MAX || v < INT32_MIN) unsupported(n, 'bias does not fit int32 at the accumulator scale');
            bias[j] = v;
          }
        }
        descs.set(out, { scale, bound: INT32_MAX });
        steps.push({
          node: name,
          op: 'GemmInteger(int8 x int8 weight + int32 bias)',
          float: false,
          run(ctx) {
            const v = get(ctx, a);
            if (v.dims.length !== 2 || v.dims[1] !== K) throw new InputError(`Gemm ${name}: A is [${v.dims}], expected [M, ${K}]`);
            const r = gemmInteger({ dims: v.dims, data: v.data as Int8Array }, { dims: [R, C], data: wq.q }, { transB, bias });
            ctx.overflow += r.overflowCount;
            ctx.env.set(out, { dims: r.dims, data: r.data });
          },
        });
        break;
      }

      case 'Add': {
        const [x0, x1] = n.input;
        const out = n.output[0];
        const c0 = isConst(x0), c1 = isConst(x1);
        if (c0 && c1) unsupported(n, 'constant folding is not supported');
        if (c0 || c1) {
          // Constant (bias, positional embedding) added to an integer tensor at that tensor's scale:
          // exact for int32 accumulators (their scale is fine); on an int8/int16 tensor the
          // constant is rounded to that tensor's coarser grid.
          const xName = c0 ? x1 : x0;
          const cst = constFloat(c0 ? x0 : x1);
          const xd = desc(xName);
          const cDims = [...cst.dims];
          while (cDims.length && cDims[0] === 1) cDims.shift();
          const channels = typeof xd.scale === 'number' ? 1 : xd.scale.length;
          const cLast = cDims.length ? cDims[cDims.length - 1] : 1;
          let cData = cst.data;
          if (channels > 1 && cLast !== channels) {
            if (cst.data.length !== 1) unsupported(n, 'constant does not broadcast along the per-channel axis');
            cData = new Float32Array(channels).fill(cst.data[0]);
            cDims.splice(0, cDims.length, channels);
          }
          const cInt = new Float64Array(cData.length);
          for (let j = 0; j < cData.length; j++) cInt[j] = Math.round(cData[j] / scaleAt(xd.scale, channels > 1 ? j % channels : 0));
          descs.set(out, { scale: xd.scale, bound: INT32_MAX });
          steps.push({
            node: name,
            op: 'Add(int32 constant)',
            float: false,
            run(ctx) {
              const v = get(ctx, xName);
              const tail = v.dims.slice(v.dims.length - cDims.length);
              if (cDims.length > v.dims.length || tail.some((d, i) => d !== cDims[i])) {
                throw new InputError(`Add ${name}: constant [${cst.dims}] does not broadcast onto [${v.dims}]`);
              }
              const m = cInt.length;
              const res = new Int32Array(v.data.length);
              let ov = 0;
              for (let i = 0, j = 0; i < res.length; i++) {
                const s = v.data[i] + cInt[j];
                if (s > INT32_MAX || s < INT32_MIN) ov++;
                res[i] = s;
                if (++j === m) j = 0;
              }
              ctx.overflow += ov;
              ctx.env.set(out, { dims: v.dims, data: res });
            },
          });
        } else {
          // Residual add: both operands onto the output's int16 grid, then an exact sum.
          const outScale = amaxOf(out) / Q16;
          const d0 = desc(x0), d1 = desc(x1);
          const r0 = new Requantizer(d0.scale, outScale, INT32_MAX);
          const r1 = new Requantizer(d1.scale, outScale, INT32_MAX);
          descs.set(out, { scale: outScale, bound: Q16 });
          steps.push({
            node: name,
            op: 'Add(rescale to int16)',
            float: false,
            run(ctx) {
              const a = get(ctx, x0), b = get(ctx, x1);
              if (a.data.length !== b.data.length) throw new InputError(`Add ${name}: broadcasting two activations is not supported ([${a.dims}] + [${b.dims}])`);
              const res = new Int16Array(a.data.length);
              const C0 = r0.channels, C1 = r1.channels;
              for (let i = 0, c0i = 0, c1i = 0; i < res.length; i++) {
                let s = r0.code(a.data[i], c0i, ctx) + r1.code(b.data[i], c1i, ctx);
                if (s > Q16) { s = Q16; ctx.saturated++; } else if (s < -Q16) { s = -Q16; ctx.saturated++; }
                res[i] = s;
                if (++c0i === C0) c0i = 0;
                if (++c1i === C1) c1i = 0;
              }
              ctx.env.set(out, { dims: a.dims, data: res });
            },
          });
        }
        break;
      }

      case 'Div':
      case 'Mul': {
        if (n.opType === 'Div') {
          const m = matchGelu(n);
          if (m) {
            for (const p of m.nodes) skip.add(p);
            lowerGelu(m.x, m.out, m.erf.name || m.erf.output[0]);
            break;
          }
        }
        const [x0, x1] = n.input;
        const out = n.output[0];
        const cIdx = n.opType === 'Div' ? (isConst(x1) ? 1 : -1) : isConst(x1) ? 1 : isConst(x0) ? 0 : -1;
        if (cIdx < 0) unsupported(n, 'only multiplication/division by a constant is supported');
        const c = scalarConst(n.input[cIdx]);
        if (c === undefined || !(c > 0)) unsupported(n, 'the constant must be a positive scalar');
        const xName = n.input[1 - cIdx];
        const xd = desc(xName);
        const f = n.opType === 'Div' ? 1 / c! : c!;
        // Scale bookkeeping only: the codes are unchanged, the real value per code scales by f.
        descs.set(out, { scale: typeof xd.scale === 'number' ? xd.scale * f : Float64Array.from(xd.scale, (s) => s * f), bound: xd.bound });
        steps.push({
          node: name,
          op: `${n.opType}(scalar, folded into the scale)`,
          float: false,
          run(ctx) {
            ctx.env.set(out, get(ctx, xName));
          },
        });
        break;
      }

      case 'Softmax': {
        const axis = attrInt(n, 'axis', -1);
        const src = ensure(n.input[0], 'tensor', name);
        const sd = desc(src);
        const s = sd.scale as number;
        const out = n.output[0];
        const inFloat = floatKernels.has('i-Softmax');
        kernels.push({ node: name, kernel: 'i-Softmax' });
        const outScale = softmaxPlan(s, 1, softmaxBits).outScale;
        descs.set(out, { scale: outScale, bound: 2 ** softmaxBits - 1 });
        steps.push({
          node: name,
          op: inFloat ? 'Softmax (float)' : 'i-Softmax',
          float: inFloat,
          run(ctx) {
            const v = get(ctx, src);
            const rank = v.dims.length;
            if (axis !== -1 && axis !== rank - 1) throw new InputError(`Softmax ${name}: only the last axis is supported`);
            const cols = v.dims[rank - 1];
            const rows = v.data.length / cols;
            const need = inFloat || (measure && ctx.kernelAcc);
            const ref = need ? softmaxRows(dequant(v.data, s), rows, cols) : null;
            let q: Int32Array;
            if (inFloat) {
              q = new Int32Array(v.data.length);
              const top = 2 ** softmaxBits - 1;
              for (let i = 0; i < q.length; i++) q[i] = Math.min(top, Math.round(ref![i] / outScale));
            } else {
              q = iSoftmax(toInt32(v.data), s, rows, cols, softmaxBits).q;
              if (ref) measureKernel(ctx, name, ref, q, outScale);
            }
            ctx.env.set(out, { dims: v.dims, data: q });
          },
        });
        break;
      }

      case 'LayerNormalization': {
        const axis = attrInt(n, 'axis', -1);
        const eps = attrFloat(n, 'epsilon', 1e-5);
        const src = ensure(n.input[0], 'tensor', name);
        const s = desc(src).scale as number;
        const gamma = constFloat(n.input[1]).data;
        const beta = n.input[2] ? constFloat(n.input[2]).data : new Float32Array(gamma.length);
        const cols = gamma.length;
        const aff = quantizeLayerNormAffine(gamma, beta, cols);
        const out = n.output[0];
        const inFloat = floatKernels.has('i-LayerNorm');
        kernels.push({ node: name, kernel: 'i-LayerNorm' });
        const outScale = inFloat ? amaxOf(out) / Q16 : aff.gammaScale * 2 ** -aff.fracBits;
        descs.set(out, { scale: outScale, bound: inFloat ? Q16 : INT32_MAX });
        steps.push({
          node: name,
          op: inFloat ? 'LayerNormalization (float)' : 'i-LayerNorm',
          float: inFloat,
          run(ctx) {
            const v = get(ctx, src);
            const rank = v.dims.length;
            if ((axis !== -1 && axis !== rank - 1) || v.dims[rank - 1] !== cols) throw new InputError(`LayerNormalization ${name}: only the last axis (${cols}) is supported`);
            const rows = v.data.length / cols;
            const need = inFloat || (measure && ctx.kernelAcc);
            const ref = need ? layerNormRows(dequant(v.data, s), rows, cols, gamma, beta, eps) : null;
            let q: Int32Array;
            if (inFloat) {
              q = new Int32Array(v.data.length);
              for (let i = 0; i < q.length; i++) q[i] = Math.max(-Q16, Math.min(Q16, Math.round(ref![i] / outScale)));
            } else {
              q = iLayerNorm(v.data, s, rows, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits, eps }).q;
              if (ref) measureKernel(ctx, name, ref, q, outScale);
            }
            ctx.env.set(out, { dims: v.dims, data: q });
          },
        });
        break;
      }

      case 'ReduceMean': {
        const axes = attrInts(n, 'axes') ?? (n.input[1] ? constInts(n.input[1]) : undefined);
        const keep = attrInt(n, 'keepdims', 1) === 1;
        if (!axes || axes.length !== 1) unsupported(n, 'exactly one reduction axis is supported');
        const src = ensure(n.input[0], 'i16', name);
        const sd = desc(src);
        const out = n.output[0];
        const ax0 = axes![0];
        // The mean's 1/count goes into the output scale (S / count): the count must be static.
        const inShape = shapes.get(n.input[0]);
        const axStatic = inShape ? (ax0 < 0 ? ax0 + inShape.length : ax0) : -1;
        if (!inShape || axStatic <= 0) unsupported(n, 'the reduced axis must be a non-batch axis of known length');
        const count = inShape![axStatic];
        descs.set(out, { scale: (sd.scale as number) / count, bound: sd.bound * count });
        steps.push({
          node: name,
          op: 'ReduceMean(integer sum; 1/count folded into the next requantization)',
          float: false,
          run(ctx) {
            const v = get(ctx, src);
            const rank = v.dims.length;
            const ax = ax0 < 0 ? ax0 + rank : ax0;
            const len = v.dims[ax];
            if (len !== count) throw new InputError(`ReduceMean ${name}: reduced length changed (${count} -> ${len})`);
            const outer = numel(v.dims.slice(0, ax));
            const inner = numel(v.dims.slice(ax + 1));
            const res = new Int32Array(outer * inner);
            for (let o = 0; o < outer; o++) {
              for (let k = 0; k < len; k++) {
                const base = (o * len + k) * inner;
                for (let i = 0; i < inner; i++) res[o * inner + i] += v.data[base + i];
              }
            }
            const dims = keep ? v.dims.map((d, i) => (i === ax ? 1 : d)) : v.dims.filter((_, i) => i !== ax);
            ctx.env.set(out, { dims, data: res });
          },
        });
        break;
      }

      default:
        unsupported(n, 'operator not supported by the integer executor');
    }
  }

  // ---- the logits: dequantize the final accumulator (the integer -> float boundary) ----
  {
    const od = desc(outputName);
    steps.push({
      node: outputName,
      op: 'DequantizeOutput',
      float: false, // the boundary
      run(ctx) {
        const v = get(ctx, outputName);
        const C = typeof od.scale === 'number' ? 1 : od.scale.length;
        const logits = new Float32Array(v.data.length);
        for (let i = 0, c = 0; i < logits.length; i++) {
          logits[i] = v.data[i] * scaleAt(od.scale, c);
          if (++c === C) c = 0;
        }
        ctx.output = { logits, dims: v.dims };
      },
    });
  }
  return new IntegerGraph(inputName, outputName, steps, descs, kernels);

  // ---- helpers needing the closure ----

  function lowerGelu(x: string, out: string, node: string): void {
    const src = ensure(x, 'i16', node);
    const sd = desc(src);
    const s = sd.scale as number;
    const inFloat = floatKernels.has('i-GELU');
    kernels.push({ node, kernel: 'i-GELU' });
    const plan = geluPlan(s, sd.bound);
    const outScale = inFloat ? amaxOf(out) / Q16 : plan.outScale;
    descs.set(out, { scale: outScale, bound: inFloat ? Q16 : INT32_MAX });
    steps.push({
      node,
      op: inFloat ? 'GELU (float)' : 'i-GELU',
      float: inFloat,
      run(ctx) {
        const v = get(ctx, src);
        const need = inFloat || (measure && ctx.kernelAcc);
        let ref: Float64Array | null = null;
        if (need) {
          ref = new Float64Array(v.data.length);
          for (let i = 0; i < ref.length; i++) ref[i] = gelu(v.data[i] * s);
        }
        let q: Int32Array;
        if (inFloat) {
          q = new Int32Array(v.data.length);
          for (let i = 0; i < q.length; i++) q[i] = Math.max(-Q16, Math.min(Q16, Math.round(ref![i] / outScale)));
        } else {
          q = iGelu(toInt32(v.data), s, { maxAbs: sd.bound }).q;
          if (ref) measureKernel(ctx, node, ref, q, outScale);
        }
        ctx.env.set(out, { dims: v.dims, data: q });
      },
    });
  }
}

export interface Calibration {
  /** max |x| per float tensor over the calibration samples. */
  amax: Map<string, number>;
  /** Dims of each tensor in the first calibration batch (first axis = that batch's size). */
  shapes: Map<string, number[]>;
}

/**
 * Float run in onnxruntime with every node output exposed: per-tensor symmetric MinMax (max |x|)
 * for each float tensor. Also returns the float model's own outputs for `outputs` names.
 */
export async function calibrate(
  model: LoadedModel,
  input: Float32Array,
  dims: number[],
  opts: { batchSize?: number; keepOutputs?: string[] } = {},
): Promise<Calibration & { outputs: Map<string, Float32Array> }> {
  const g = model.proto.graph!;
  const idx = new GraphIndex(g);
  const inputName = [...idx.graphInputs][0];
  const tap = cloneModel(model.proto);
  const have = new Set(g.output.map((o) => o.name));
  for (const n of g.node) {
    if (n.opType === 'Constant') continue;
    for (const o of n.output) if (o && !have.has(o)) { tap.graph!.output.push(untypedValueInfo(o)); have.add(o); }
  }
  const session = await createSession(tap, 'float');
  const amax = new Map<string, number>();
  const shapes = new Map<string, number[]>();
  const keep = new Set(opts.keepOutputs ?? []);
  const kept = new Map<string, Float32Array[]>();
  const N = dims[0];
  const per = numel(dims.slice(1));
  const bs = opts.batchSize ?? 50;
  const observe = (name: string, d: Float32Array, td: readonly number[]) => {
    let m = amax.get(name) ?? 0;
    for (let i = 0; i < d.length; i++) {
      const a = d[i] < 0 ? -d[i] : d[i];
      if (a > m) m = a;
    }
    amax.set(name, m);
    if (!shapes.has(name)) shapes.set(name, [...td]);
  };
  try {
    for (let start = 0; start < N; start += bs) {
      const count = Math.min(bs, N - start);
      const x = input.subarray(start * per, (start + count) * per);
      const feeds = { [inputName]: new ort.Tensor('float32', x, [count, ...dims.slice(1)]) };
      observe(inputName, x, [count, ...dims.slice(1)]);
      const res = await session.run(feeds);
      for (const [name, t] of Object.entries(res)) {
        if (t.type === 'float32') {
          observe(name, t.data as Float32Array, t.dims);
          if (keep.has(name)) {
            const list = kept.get(name) ?? [];
            list.push(Float32Array.from(t.data as Float32Array));
            kept.set(name, list);
          }
        }
        t.dispose();
      }
    }
  } finally {
    await session.release();
  }
  const outputs = new Map<string, Float32Array>();
  for (const [name, parts] of kept) {
    const total = parts.reduce((a, p) => a + p.length, 0);
    const all = new Float32Array(total);
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    outputs.set(name, all);
  }
  return { amax, shapes, outputs };
}

export interface IntegerOnlyData {
  /** float32 input [N, ...] for the model's single input. */
  input: Float32Array;
  dims: number[];
  labels?: ArrayLike<number | bigint> | null;
  /** Calibration samples (default: `input`). */
  calibration?: { input: Float32Array; dims: number[] };
}

export interface IntegerOnlyResult {
  /** Top-1 of the integer-only model against the labels (null without labels). */
  top1: number | null;
  /** Top-1 of the float model (onnxruntime) on the same samples. */
  floatTop1: number | null;
  /** Fraction of samples where the integer-only model predicts what the float model predicts. */
  agreement: number;
  /** SQNR (dB) of the integer-only logits against the float model's logits. */
  logitSqnrDb: number;
  /** Dequantized logits [N, classes] (the only float step after input quantization). */
  logits: Float32Array;
  logitDims: number[];
  /** Per I-BERT kernel: its output vs the float op on the same dequantized input. */
  kernelErrors: KernelError[];
  /** Ops computed in float between input quantization and the logits: empty unless ablated. */
  floatOps: string[];
  /** int32 accumulations whose exact value left int32 (wrapped, as hardware would). */
  overflowCount: number;
  /** Codes clamped at a requantization (activations beyond their calibrated range). */
  saturationCount: number;
  steps: string[];
  timings: { calibrateMs: number; compileMs: number; runMs: number };
}

function labelsOf(l: ArrayLike<number | bigint>): Int32Array {
  return Int32Array.from(l as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * The whole pipeline on one model: calibrate (float, onnxruntime), compile, run every sample
 * through the integer-only graph in batches, and score it.
 */
export async function runIntegerOnly(modelPath: string | LoadedModel, data: IntegerOnlyData, opts: IntegerGraphOptions & { batchSize?: number } = {}): Promise<IntegerOnlyResult> {
  const model = typeof modelPath === 'string' ? loadModel(modelPath) : modelPath;
  const outName = model.proto.graph!.output[0].name;
  const bs = opts.batchSize ?? 50;
  let t0 = performance.now();
  const cal = data.calibration ?? { input: data.input, dims: data.dims };
  const c = await calibrate(model, cal.input, cal.dims, { batchSize: bs, keepOutputs: data.calibration ? [] : [outName] });
  let floatLogits = c.outputs.get(outName);
  if (!floatLogits) floatLogits = (await calibrate(model, data.input, data.dims, { batchSize: bs, keepOutputs: [outName] })).outputs.get(outName)!;
  const calibrateMs = performance.now() - t0;
  t0 = performance.now();
  const graph = compileIntegerGraph(model, c, opts);
  const compileMs = performance.now() - t0;
  t0 = performance.now();
  const stats = newRunStats(opts.measureKernels ?? true);
  const N = data.dims[0];
  const per = numel(data.dims.slice(1));
  const parts: Float32Array[] = [];
  let logitDims: number[] = [];
  for (let start = 0; start < N; start += bs) {
    const count = Math.min(bs, N - start);
    const r = graph.run(data.input.subarray(start * per, (start + count) * per), [count, ...data.dims.slice(1)], stats);
    parts.push(r.logits);
    logitDims = r.dims;
  }
  const runMs = performance.now() - t0;
  const classes = logitDims[logitDims.length - 1];
  const logits = new Float32Array(N * classes);
  let o = 0;
  for (const p of parts) { logits.set(p, o); o += p.length; }
  const pred = argmaxRows(logits, classes);
  const fPred = argmaxRows(floatLogits, classes);
  const labels = data.labels ? labelsOf(data.labels) : null;
  let hits = 0, fHits = 0, agree = 0;
  for (let i = 0; i < N; i++) {
    if (labels && pred[i] === labels[i]) hits++;
    if (labels && fPred[i] === labels[i]) fHits++;
    if (pred[i] === fPred[i]) agree++;
  }
  const logitErr = new ErrorAccumulator();
  logitErr.add(floatLogits, logits);
  const kernelErrors: KernelError[] = graph.kernels.map(({ node, kernel }) => {
    const acc = stats.kernelAcc?.get(node);
    const m = acc?.result();
    return { node, kernel, sqnrDb: m ? m.sqnrDb : Number.NaN, maxAbsError: m ? m.maxAbs : Number.NaN, count: acc?.count ?? 0 };
  });
  return {
    top1: labels ? hits / N : null,
    floatTop1: labels ? fHits / N : null,
    agreement: agree / N,
    logitSqnrDb: logitErr.result().sqnrDb,
    logits,
    logitDims: [N, ...logitDims.slice(1)],
    kernelErrors,
    floatOps: graph.floatOps(),
    overflowCount: stats.overflowCount,
    saturationCount: stats.saturationCount,
    steps: graph.describe(),
    timings: { calibrateMs: Math.round(calibrateMs), compileMs: Math.round(compileMs), runMs: Math.round(runMs) },
  };
}
