/**
 * Integer-only executor for QUANTIZED CNN graphs: the BN-folded working graph of a `Quantized`
 * configuration, run with the plan's activation grids and the QDQ rewrite's weight codes.
 *
 *   grids     every tensor gets a (scale, zero point, qmin, qmax) grid: the plan's own
 *             (`q.actParams`); for data-movement ops (Relu, MaxPool, Flatten, Reshape, ...) the
 *             input's grid; otherwise a MinMax grid with the activation scheme, from the streamed
 *             calibration statistics (`prepared.stats`) or, for tensors those do not cover, from
 *             one float onnxruntime pass over the data with the tensors exposed as outputs.
 *   compile   each node becomes one integer step; every real scale ratio becomes a fixed-point
 *             multiplier (M0, shift) once, here.
 *   run       the steps on integer codes (held in Int32Array); the input is quantized once with
 *             its grid, the graph output is dequantized once for the argmax.
 *
 * Requantization is the single-rounding fixed point `roundFixedExact(acc, M0, shift, 'half-away')`
 * then + zero point and saturation to the grid.
 *
 * Ops that cannot run in integers run in float between a dequantize and a quantize, and are
 * listed in `floatOps` with the reason.
 */
import * as ort from 'onnxruntime-node';
import type { Prepared, Quantized } from '../analysis/analyze';
import { argmaxRows } from '../analysis/metrics';
import { GraphIndex, type NodeProto, attr, attrFloat, attrInt, attrInts, untypedValueInfo } from '../onnx/graph';
import { cloneModel } from '../onnx/model';
import { readFloatTensor, readTensor } from '../onnx/tensor';
import { buildQdqModel, type WeightQuant } from '../quantize/qdqRewrite';
import { type QuantParams, paramsFor, quantize } from '../quantize/scheme';
import { batchRanges } from '../data/dataset';
import { createSession, feedsFor } from '../runtime/session';
import { convInteger, type AutoPad } from './conv';
import { roundFixedExact } from './diffArith';
import { gemmInteger } from './matmul';
import { quantizeMultiplier } from './requantize';
import { InputError, type QuantArray } from './types';

export interface IntegerCnnOptions {
  /** Run BatchNormalization in float (listed in `floatOps`) instead of the integer affine. */
  floatBatchNorm?: boolean;
  /** Weight codes from a previous `buildQdqModel` (default: built here from `q`). */
  weights?: WeightQuant[];
  /** Samples per batch (default `prepared.batchSize`). */
  batchSize?: number;
}

export interface FloatOp {
  node: string;
  op: string;
  reason: string;
}

export interface IntegerCnnResult {
  /** Top-1 of the integer-only execution against the labels (null without labels). */
  top1: number | null;
  /** Top-1 of the float model (onnxruntime) on the same samples (null without labels). */
  floatTop1: number | null;
  /** Fraction of samples where the integer-only prediction equals the float model's. */
  agreement: number;
  /** Nodes that ran in float between a dequantize and a quantize, and why. */
  floatOps: FloatOp[];
  /** int32 accumulations whose exact value left int32. */
  overflowCount: number;
  /** Codes clamped to their grid at a requantization. */
  saturationCount: number;
  /** Op type -> number of nodes executed in integers. */
  ops: Record<string, number>;
  /** Grid of every tensor the executor assigned one to (for inspection). */
  grids: Map<string, QuantParams>;
  samples: number;
}

interface QVal {
  dims: number[];
  data: Int32Array;
}

interface Ctx {
  env: Map<string, QVal>;
  overflow: number;
  saturated: number;
}

type Step = (ctx: Ctx) => void;

/** Ops whose output lies on the input's grid (codes move or are clamped, never rescaled). */
const PASS_THROUGH = new Set(['Relu', 'Clip', 'MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']);
/** Elementwise ops with a float fallback. */
const FLOAT_UNARY: Record<string, (x: number) => number> = {
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Tanh: (x) => Math.tanh(x),
  Exp: (x) => Math.exp(x),
  Erf: (x) => erf(x),
  Softplus: (x) => Math.log1p(Math.exp(x)),
};

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), only for the float fallback.
  const s = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}

function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function sameGrid(a: QuantParams, b: QuantParams): boolean {
  return a.scale === b.scale && a.zeroPoint === b.zeroPoint && a.qmin === b.qmin && a.qmax === b.qmax;
}

/** Fixed-point multipliers for real ratios (one per channel); `node` names the node in errors. */
class Multipliers {
  readonly m0: Int32Array;
  readonly shift: Int32Array;
  constructor(real: ArrayLike<number>, node: string) {
    this.m0 = new Int32Array(real.length);
    this.shift = new Int32Array(real.length);
    for (let c = 0; c < real.length; c++) {
      // Scales 2^30 apart (or not finite) come from weights or activations of absurd magnitude
      // (the model's own problem, e.g. |w| ~ 1e38): say so rather than fail as a bug.
      if (!(real[c] >= 0 && real[c] < 2 ** 30)) {
        throw new InputError(`node ${node}: its requantization multiplier ${real[c].toExponential(2)} is outside the fixed-point range (scales over 2^30 apart: weights or activations of absurd magnitude), so it cannot run in integers`);
      }
      const q = quantizeMultiplier(real[c]);
      this.m0[c] = q.multiplier;
      this.shift[c] = q.shift;
    }
  }
  /** round(acc * M_c), one rounding, ties away from zero. */
  apply(acc: number, c: number): number {
    return roundFixedExact(acc, this.m0[c], this.shift[c], 'half-away');
  }
}

function clampCode(v: number, p: QuantParams, ctx: Ctx): number {
  if (v > p.qmax) { ctx.saturated++; return p.qmax; }
  if (v < p.qmin) { ctx.saturated++; return p.qmin; }
  return v;
}

/** Codes as the narrow typed array the integer kernels take. */
function toQuant(data: Int32Array, p: QuantParams): QuantArray {
  if (p.qmin >= 0 && p.qmax <= 255) return Uint8Array.from(data);
  if (p.qmin >= -128 && p.qmax <= 127) return Int8Array.from(data);
  if (p.qmin >= 0 && p.qmax <= 65535) return Uint16Array.from(data);
  if (p.qmin >= -32768 && p.qmax <= 32767) return Int16Array.from(data);
  throw new InputError(`grid [${p.qmin}, ${p.qmax}] is wider than 16 bits`);
}

/** Output index -> input index strides for numpy broadcasting of `dims` onto `out`. */
function broadcastStrides(dims: readonly number[], out: readonly number[]): number[] {
  const r = out.length;
  const st = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    const ax = r - dims.length + i;
    st[ax] = dims[i] === 1 ? 0 : acc;
    acc *= dims[i];
  }
  return st;
}

function broadcastShape(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new InputError(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Iterate the output of a broadcast binary op: f(outIndex, aIndex, bIndex). */
function forBroadcast(outDims: number[], sa: number[], sb: number[], f: (o: number, ia: number, ib: number) => void): void {
  const r = outDims.length;
  const n = numel(outDims);
  const idx = new Int32Array(r);
  let ia = 0, ib = 0;
  for (let o = 0; o < n; o++) {
    f(o, ia, ib);
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]++;
      ia += sa[ax];
      ib += sb[ax];
      if (idx[ax] < outDims[ax]) break;
      ia -= sa[ax] * outDims[ax];
      ib -= sb[ax] * outDims[ax];
      idx[ax] = 0;
    }
  }
}

function transposeCodes(src: Int32Array, dims: readonly number[], perm: readonly number[]): QVal {
  const outDims = perm.map((p) => dims[p]);
  const srcStride = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) { srcStride[i] = acc; acc *= dims[i]; }
  const st = perm.map((p) => srcStride[p]);
  const out = new Int32Array(src.length);
  const zero = new Array<number>(outDims.length).fill(0);
  forBroadcast(outDims, st, zero, (o, i) => { out[o] = src[i]; });
  return { dims: outDims, data: out };
}

function attrString(n: NodeProto, name: string, dflt: string): string {
  const a = attr(n, name);
  return a ? new TextDecoder().decode(a.s) : dflt;
}

/**
 * Run the quantized CNN graph of `q` with integer arithmetic on `prepared.data`.
 */
export async function runIntegerCnn(prepared: Prepared, q: Quantized, opts: IntegerCnnOptions = {}): Promise<IntegerCnnResult> {
  const model = q.prepared;
  const g = model.graph!;
  const idx = new GraphIndex(g);
  const dir = prepared.loaded.dir;
  const data = prepared.data;
  if (data.inputs.length !== 1) throw new InputError(`integer CNN executor: one model input expected, got ${data.inputs.length}`);
  const inputName = data.inputs[0].name;
  const outputName = g.output[0].name;
  const weightsList = opts.weights ?? buildQdqModel(model, dir, q.plan, q.actParams, q.config, false).weights;
  const weightOf = new Map(weightsList.map((w) => [`${w.layer}|${w.tensor}`, w]));
  const bs = opts.batchSize ?? prepared.batchSize;
  const scheme = q.config.activations;

  // ---- which tensors need a fresh MinMax grid that the streamed statistics do not hold ----
  const natural = new Set<string>(); // tensors whose grid is their producer's input grid
  for (const n of g.node) if (PASS_THROUGH.has(n.opType) && !q.actParams.has(n.output[0])) natural.add(n.output[0]);
  const needStats: string[] = [];
  for (const n of g.node) {
    for (const o of n.output) {
      if (!o || q.actParams.has(o) || natural.has(o) || prepared.stats.has(o)) continue;
      needStats.push(o);
    }
  }
  if (!q.actParams.has(inputName) && !prepared.stats.has(inputName)) needStats.push(inputName);

  // ---- one float pass: the float model's predictions (agreement) and the missing ranges ----
  const floatPred: number[] = [];
  const ranges = new Map<string, { min: number; max: number }>();
  {
    const tap = cloneModel(model);
    const have = new Set(tap.graph!.output.map((o) => o.name));
    for (const t of needStats) if (!have.has(t) && !idx.graphInputs.has(t)) { tap.graph!.output.push(untypedValueInfo(t)); have.add(t); }
    const session = await createSession(tap, 'float');
    try {
      for (const [start, count] of batchRanges(data.samples, bs)) {
        const feeds = await feedsFor(data, start, count);
        const res = await session.run(feeds);
        const all: Record<string, ort.Tensor> = { ...feeds, ...res };
        for (const t of needStats) {
          const tensor = all[t];
          if (!tensor || tensor.type !== 'float32') continue;
          const d = tensor.data as Float32Array;
          const r = ranges.get(t) ?? { min: Infinity, max: -Infinity };
          for (let i = 0; i < d.length; i++) {
            const v = d[i];
            if (v < r.min) r.min = v;
            if (v > r.max) r.max = v;
          }
          ranges.set(t, r);
        }
        const out = res[outputName];
        const classes = out.dims[out.dims.length - 1];
        for (const p of argmaxRows(out.data as Float32Array, classes)) floatPred.push(p);
        for (const [name, t] of Object.entries(res)) if (!feeds[name]) t.dispose();
      }
    } finally {
      await session.release();
    }
  }

  // ---- grids ----
  const grids = new Map<string, QuantParams>();
  const minMaxGrid = (t: string): QuantParams => {
    const s = prepared.stats.get(t) ?? ranges.get(t);
    if (!s || !Number.isFinite(s.min) || !Number.isFinite(s.max)) throw new InputError(`no calibration range for tensor ${t}`);
    return paramsFor(s.min, s.max, scheme);
  };
  /** The grid a tensor is stored on: the plan's, else a MinMax grid. */
  const targetGrid = (t: string): QuantParams => q.actParams.get(t) ?? minMaxGrid(t);
  const gridOf = (t: string): QuantParams => {
    const p = grids.get(t);
    if (!p) throw new InputError(`tensor ${t} has no integer grid (is it produced by a supported node?)`);
    return p;
  };

  const isConst = (t: string) => idx.initializers.has(t);
  const constFloat = (t: string) => readFloatTensor(idx.initializers.get(t)!, dir);
  const constInts = (t: string): number[] => Array.from(readTensor(idx.initializers.get(t)!, dir).data as ArrayLike<number | bigint>, Number);

  const steps: Step[] = [];
  const floatOps: FloatOp[] = [];
  const ops: Record<string, number> = {};
  const counted = (op: string) => { ops[op] = (ops[op] ?? 0) + 1; };
  const get = (ctx: Ctx, t: string): QVal => {
    const v = ctx.env.get(t);
    if (!v) throw new InputError(`tensor ${t} was not computed`);
    return v;
  };

  /** Integer rescale from one grid to another (fixed point): a step on its own. */
  const rescaleStep = (node: string, src: string, dst: string, from: QuantParams, to: QuantParams): Step => {
    const m = new Multipliers([from.scale / to.scale], node);
    return (ctx) => {
      const v = get(ctx, src);
      const out = new Int32Array(v.data.length);
      for (let i = 0; i < out.length; i++) out[i] = clampCode(to.zeroPoint + m.apply(v.data[i] - from.zeroPoint, 0), to, ctx);
      ctx.env.set(dst, { dims: v.dims, data: out });
    };
  };

  /**
   * A pass-through op computed its output on the input grid `p`: keep it there unless the plan
   * gives the output a grid of its own, then rescale (integer) onto it.
   */
  const finishPassThrough = (name: string, out: string, p: QuantParams, compute: Step) => {
    const want = q.actParams.get(out);
    if (!want || sameGrid(want, p)) {
      grids.set(out, p);
      steps.push(compute);
      return;
    }
    grids.set(out, want);
    const tmp = `${out}#${name}#natural`;
    steps.push((ctx) => {
      compute(ctx);
      ctx.env.set(tmp, get(ctx, out));
    });
    steps.push(rescaleStep(name, tmp, out, p, want));
  };

  /** Constant tensor as codes on its own MinMax grid. */
  const constCodes = (t: string): { val: QVal; p: QuantParams } => {
    const c = constFloat(t);
    let lo = Infinity, hi = -Infinity;
    for (const v of c.data) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const p = paramsFor(lo, hi, scheme);
    return { val: { dims: c.dims, data: Int32Array.from(c.data, (v) => quantize(v, p)) }, p };
  };

  // ---- input ----
  grids.set(inputName, targetGrid(inputName));

  // ---- compile ----
  for (const n of g.node) {
    const name = n.name || n.output[0];
    const out = n.output[0];
    switch (n.opType) {
      case 'Conv':
      case 'Gemm': {
        const x = n.input[0];
        const w = weightOf.get(`${n.name}|${n.input[1]}`);
        if (!w) { floatFallback(n, 'the plan does not quantize this layer\'s weights'); break; }
        const gx = gridOf(x);
        const go = targetGrid(out);
        grids.set(out, go);
        const M = w.params.length;
        const wCodes = Int8Array.from(w.codes);
        if (w.params.some((p) => p.qmin < -128 || p.qmax > 127)) throw new InputError(`${name}: only 8-bit weights are supported`);
        const wZero = w.params.map((p) => p.zeroPoint);
        const bias = w.bias ?? (n.input[2] ? undefined : new Int32Array(M));
        if (!bias) { floatFallback(n, 'the bias is not quantized to int32'); break; }
        let alpha = 1;
        if (n.opType === 'Gemm') {
          alpha = attrFloat(n, 'alpha', 1);
          if (n.input[2] && attrFloat(n, 'beta', 1) !== 1) { floatFallback(n, 'Gemm beta != 1'); break; }
          if (attrInt(n, 'transA', 0) !== 0) { floatFallback(n, 'Gemm transA'); break; }
        }
        const mult = new Multipliers(w.params.map((p) => (alpha * gx.scale * p.scale) / go.scale), name);
        if (n.opType === 'Conv') {
          const autoPad = attrString(n, 'auto_pad', 'NOTSET') as AutoPad;
          const attrs = {
            autoPad,
            dilations: attrInts(n, 'dilations'),
            group: attrInt(n, 'group', 1),
            kernelShape: attrInts(n, 'kernel_shape'),
            pads: attrInts(n, 'pads'),
            strides: attrInts(n, 'strides'),
          };
          if (w.axis !== 0 && w.params.length > 1) throw new InputError(`${name}: per-channel weights must be on axis 0`);
          steps.push((ctx) => {
            const v = get(ctx, x);
            const acc = convInteger({ dims: v.dims, data: toQuant(v.data, gx) }, { dims: w.dims, data: wCodes }, gx.zeroPoint, wZero.length === 1 ? wZero[0] : wZero, attrs, {}, bias);
            ctx.overflow += acc.overflowCount;
            const C = acc.dims[1];
            const inner = numel(acc.dims.slice(2));
            const res = new Int32Array(acc.data.length);
            for (let i = 0; i < res.length; i++) {
              const c = M === 1 ? 0 : Math.floor(i / inner) % C;
              res[i] = clampCode(go.zeroPoint + mult.apply(acc.data[i], c), go, ctx);
            }
            ctx.env.set(out, { dims: acc.dims, data: res });
          });
        } else {
          const transB = attrInt(n, 'transB', 0) === 1;
          // Output channels are the rows of B when transposed, its columns otherwise.
          const chanAxis = transB ? 0 : 1;
          if (w.params.length > 1 && w.axis !== chanAxis) throw new InputError(`${name}: per-channel weights on axis ${w.axis} do not match the output channels`);
          steps.push((ctx) => {
            const v = get(ctx, x);
            if (v.dims.length !== 2) throw new InputError(`${name}: Gemm input must be 2-D, got [${v.dims}]`);
            const acc = gemmInteger({ dims: v.dims, data: toQuant(v.data, gx) }, { dims: w.dims, data: wCodes }, { transB, aZeroPoint: gx.zeroPoint, bZeroPoint: wZero.length === 1 ? wZero[0] : wZero, bias });
            ctx.overflow += acc.overflowCount;
            const N = acc.dims[1];
            const res = new Int32Array(acc.data.length);
            for (let i = 0; i < res.length; i++) res[i] = clampCode(go.zeroPoint + mult.apply(acc.data[i], M === 1 ? 0 : i % N), go, ctx);
            ctx.env.set(out, { dims: acc.dims, data: res });
          });
        }
        counted(n.opType);
        break;
      }

      case 'Relu':
      case 'Clip': {
        const x = n.input[0];
        const p = gridOf(x);
        let lo = p.zeroPoint, hi = p.qmax;
        if (n.opType === 'Clip') {
          const minV = n.input[1] ? constFloat(n.input[1]).data[0] : attr(n, 'min') ? attrFloat(n, 'min', -Infinity) : -Infinity;
          const maxV = n.input[2] ? constFloat(n.input[2]).data[0] : attr(n, 'max') ? attrFloat(n, 'max', Infinity) : Infinity;
          lo = Number.isFinite(minV) ? quantize(minV, p) : p.qmin;
          hi = Number.isFinite(maxV) ? quantize(maxV, p) : p.qmax;
        }
        finishPassThrough(name, out, p, (ctx) => {
          const v = get(ctx, x);
          const res = new Int32Array(v.data.length);
          for (let i = 0; i < res.length; i++) { const c = v.data[i]; res[i] = c < lo ? lo : c > hi ? hi : c; }
          ctx.env.set(out, { dims: v.dims, data: res });
        });
        counted(n.opType);
        break;
      }

      case 'Identity':
      case 'Dropout': {
        const x = n.input[0];
        finishPassThrough(name, out, gridOf(x), (ctx) => ctx.env.set(out, get(ctx, x)));
        counted(n.opType);
        break;
      }

      case 'Flatten':
      case 'Reshape':
      case 'Squeeze':
      case 'Unsqueeze': {
        const x = n.input[0];
        const op = n.opType;
        const shape = op === 'Reshape' ? constInts(n.input[1]) : undefined;
        const axes = attrInts(n, 'axes') ?? (n.input[1] && op !== 'Reshape' ? constInts(n.input[1]) : undefined);
        const axis = attrInt(n, 'axis', 1);
        finishPassThrough(name, out, gridOf(x), (ctx) => {
          const v = get(ctx, x);
          const r = v.dims.length;
          let dims: number[];
          if (op === 'Flatten') {
            const a = axis < 0 ? axis + r : axis;
            dims = [numel(v.dims.slice(0, a)), numel(v.dims.slice(a))];
          } else if (op === 'Reshape') {
            dims = shape!.map((d, i) => (d === 0 ? v.dims[i] : d));
            const known = dims.reduce((acc, d) => (d === -1 ? acc : acc * d), 1);
            dims = dims.map((d) => (d === -1 ? v.data.length / known : d));
          } else if (op === 'Squeeze') {
            const ax = (axes ?? v.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + r : a));
            dims = v.dims.filter((_, i) => !ax.includes(i));
          } else {
            const rr = r + axes!.length;
            const ax = axes!.map((a) => (a < 0 ? a + rr : a));
            dims = [];
            let k = 0;
            for (let i = 0; i < rr; i++) dims.push(ax.includes(i) ? 1 : v.dims[k++]);
          }
          ctx.env.set(out, { dims, data: v.data });
        });
        counted(op);
        break;
      }

      case 'Transpose': {
        const x = n.input[0];
        const perm = attrInts(n, 'perm');
        finishPassThrough(name, out, gridOf(x), (ctx) => {
          const v = get(ctx, x);
          ctx.env.set(out, transposeCodes(v.data, v.dims, perm ?? v.dims.map((_, i) => v.dims.length - 1 - i)));
        });
        counted(n.opType);
        break;
      }

      case 'MaxPool': {
        const x = n.input[0];
        const kernel = attrInts(n, 'kernel_shape')!;
        if (kernel.length !== 2) { floatFallback(n, 'only 2-D MaxPool is lowered'); break; }
        if (attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET' || attrInt(n, 'ceil_mode', 0) !== 0) { floatFallback(n, 'auto_pad / ceil_mode'); break; }
        const geo = poolGeometry(n, kernel);
        finishPassThrough(name, out, gridOf(x), (ctx) => {
          const v = get(ctx, x);
          ctx.env.set(out, pool2d(v, geo, (vals) => { let m = -Infinity; for (const c of vals) if (c > m) m = c; return m; }));
        });
        counted(n.opType);
        break;
      }

      case 'AveragePool':
      case 'GlobalAveragePool': {
        const x = n.input[0];
        const gx = gridOf(x);
        const go = targetGrid(out);
        grids.set(out, go);
        if (n.opType === 'GlobalAveragePool') {
          const cache = new Map<number, Multipliers>();
          steps.push((ctx) => {
            const v = get(ctx, x);
            const [N, C] = v.dims;
            const hw = numel(v.dims.slice(2));
            let m = cache.get(hw);
            if (!m) cache.set(hw, (m = new Multipliers([gx.scale / (hw * go.scale)], name)));
            const res = new Int32Array(N * C);
            for (let i = 0; i < N * C; i++) {
              let s = 0;
              for (let k = 0; k < hw; k++) s += v.data[i * hw + k];
              res[i] = clampCode(go.zeroPoint + m.apply(s - hw * gx.zeroPoint, 0), go, ctx);
            }
            ctx.env.set(out, { dims: [N, C, ...v.dims.slice(2).map(() => 1)], data: res });
          });
        } else {
          const kernel = attrInts(n, 'kernel_shape')!;
          if (kernel.length !== 2 || attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET' || attrInt(n, 'ceil_mode', 0) !== 0) { floatFallback(n, 'only 2-D AveragePool without auto_pad / ceil_mode is lowered'); break; }
          const includePad = attrInt(n, 'count_include_pad', 0) === 1;
          const geo = poolGeometry(n, kernel);
          const full = kernel[0] * kernel[1];
          const mults = new Map<number, Multipliers>();
          const multFor = (cnt: number) => {
            let m = mults.get(cnt);
            if (!m) mults.set(cnt, (m = new Multipliers([gx.scale / (cnt * go.scale)], name)));
            return m;
          };
          steps.push((ctx) => {
            const v = get(ctx, x);
            ctx.env.set(out, pool2d(v, geo, (vals) => {
              let s = 0;
              for (const c of vals) s += c - gx.zeroPoint;
              const cnt = includePad ? full : vals.length;
              return clampCode(go.zeroPoint + multFor(cnt).apply(s, 0), go, ctx);
            }));
          });
        }
        counted(n.opType);
        break;
      }

      case 'Add':
      case 'Sub':
      case 'Mul': {
        const operands = n.input.map((t) => {
          if (isConst(t)) {
            const c = constCodes(t);
            return { name: t, p: c.p, constant: c.val };
          }
          return { name: t, p: gridOf(t), constant: undefined as QVal | undefined };
        });
        const [A, B] = operands;
        const go = targetGrid(out);
        grids.set(out, go);
        const op = n.opType;
        // Add/Sub: both inputs onto a common fine grid (2^20 steps per max scale), summed, one
        // final fixed-point rescale. Mul: the exact product of centred codes, one rescale.
        const LEFT = 20;
        const twiceMax = 2 * Math.max(A.p.scale, B.p.scale);
        const mA = new Multipliers([A.p.scale / twiceMax], name);
        const mB = new Multipliers([B.p.scale / twiceMax], name);
        const mOut = new Multipliers([op === 'Mul' ? (A.p.scale * B.p.scale) / go.scale : twiceMax / (2 ** LEFT * go.scale)], name);
        const sign = op === 'Sub' ? -1 : 1;
        steps.push((ctx) => {
          const a = A.constant ?? get(ctx, A.name);
          const b = B.constant ?? get(ctx, B.name);
          const dims = broadcastShape(a.dims, b.dims, name);
          const res = new Int32Array(numel(dims));
          const za = A.p.zeroPoint, zb = B.p.zeroPoint;
          forBroadcast(dims, broadcastStrides(a.dims, dims), broadcastStrides(b.dims, dims), (o, ia, ib) => {
            const ca = a.data[ia] - za, cb = b.data[ib] - zb;
            let r: number;
            if (op === 'Mul') {
              const prod = ca * cb;
              if (prod > 2147483647 || prod < -2147483648) ctx.overflow++;
              r = mOut.apply(prod, 0);
            } else {
              const s = mA.apply(ca * 2 ** LEFT, 0) + sign * mB.apply(cb * 2 ** LEFT, 0);
              if (s > 2147483647 || s < -2147483648) ctx.overflow++;
              r = mOut.apply(s, 0);
            }
            res[o] = clampCode(go.zeroPoint + r, go, ctx);
          });
          ctx.env.set(out, { dims, data: res });
        });
        counted(op);
        break;
      }

      case 'Concat': {
        const go = targetGrid(out);
        grids.set(out, go);
        const axis = attrInt(n, 'axis', 0);
        const parts = n.input.map((t) => {
          if (isConst(t)) { const c = constCodes(t); return { name: t, p: c.p, constant: c.val as QVal | undefined }; }
          return { name: t, p: gridOf(t), constant: undefined as QVal | undefined };
        });
        const mults = parts.map((pt) => new Multipliers([pt.p.scale / go.scale], name));
        steps.push((ctx) => {
          const vals = parts.map((pt) => pt.constant ?? get(ctx, pt.name));
          const r = vals[0].dims.length;
          const ax = axis < 0 ? axis + r : axis;
          const outer = numel(vals[0].dims.slice(0, ax));
          const dims = [...vals[0].dims];
          dims[ax] = vals.reduce((s, v) => s + v.dims[ax], 0);
          const res = new Int32Array(numel(dims));
          const rowOut = numel(dims.slice(ax));
          let off = 0;
          vals.forEach((v, k) => {
            const row = numel(v.dims.slice(ax));
            const same = sameGrid(parts[k].p, go);
            for (let o = 0; o < outer; o++) {
              for (let i = 0; i < row; i++) {
                const c = v.data[o * row + i];
                res[o * rowOut + off + i] = same ? c : clampCode(go.zeroPoint + mults[k].apply(c - parts[k].p.zeroPoint, 0), go, ctx);
              }
            }
            off += row;
          });
          ctx.env.set(out, { dims, data: res });
        });
        counted(n.opType);
        break;
      }

      case 'BatchNormalization': {
        if (opts.floatBatchNorm) { floatFallback(n, 'BatchNormalization not folded into a Conv (float by request)'); break; }
        // y = a_c x + b_c per channel (axis 1). Integer: acc = sign(a_c) (q - z_in) 2^8 + B_c with
        // B_c = round(b_c 2^8 / (|a_c| s_in)), then one fixed-point rescale by |a_c| s_in / (2^8 s_out).
        const x = n.input[0];
        const gx = gridOf(x);
        const go = targetGrid(out);
        grids.set(out, go);
        const eps = attrFloat(n, 'epsilon', 1e-5);
        const [gamma, beta, mean, variance] = n.input.slice(1, 5).map((t) => constFloat(t).data);
        const C = gamma.length;
        const UP = 8;
        const signs = new Int32Array(C);
        const biasInt = new Float64Array(C);
        const real = new Float64Array(C);
        for (let c = 0; c < C; c++) {
          const a = gamma[c] / Math.sqrt(variance[c] + eps);
          const b = beta[c] - a * mean[c];
          const absA = Math.abs(a) || 1e-30;
          signs[c] = a < 0 ? -1 : a > 0 ? 1 : 0;
          biasInt[c] = Math.round((b * 2 ** UP) / (absA * gx.scale));
          real[c] = (absA * gx.scale) / (2 ** UP * go.scale);
          if (Math.abs(biasInt[c]) > 2 ** 30) throw new InputError(`${name}: BatchNormalization bias of channel ${c} does not fit int32 at the input scale`);
        }
        const mult = new Multipliers(real, name);
        steps.push((ctx) => {
          const v = get(ctx, x);
          if (v.dims[1] !== C) throw new InputError(`${name}: ${v.dims[1]} channels, BatchNormalization has ${C}`);
          const inner = numel(v.dims.slice(2));
          const res = new Int32Array(v.data.length);
          for (let i = 0; i < res.length; i++) {
            const c = Math.floor(i / inner) % C;
            const acc = signs[c] * (v.data[i] - gx.zeroPoint) * 2 ** UP + biasInt[c];
            res[i] = clampCode(go.zeroPoint + mult.apply(acc, c), go, ctx);
          }
          ctx.env.set(out, { dims: v.dims, data: res });
        });
        counted('BatchNormalization');
        break;
      }

      default:
        if (FLOAT_UNARY[n.opType]) floatFallback(n, `${n.opType} has no integer kernel`);
        else if (n.opType === 'HardSigmoid') floatFallback(n, 'HardSigmoid has no integer kernel');
        else throw new InputError(`integer CNN executor: ${n.opType} (${name}) is not supported, not even as a float fallback`);
    }
  }

  const outGrid = gridOf(outputName);

  // ---- run ----
  const ctx: Ctx = { env: new Map(), overflow: 0, saturated: 0 };
  const pred: number[] = [];
  const inGrid = gridOf(inputName);
  const inp = data.inputs[0];
  for (const [start, count] of batchRanges(data.samples, bs)) {
    const [x] = await data.read(start, count);
    if (!(x instanceof Float32Array)) throw new InputError(`input ${inputName} is not float32`);
    ctx.env = new Map();
    ctx.env.set(inputName, { dims: [count, ...inp.shape], data: Int32Array.from(x, (v) => quantize(v, inGrid)) });
    for (const s of steps) s(ctx);
    const o = get(ctx, outputName);
    const classes = o.dims[o.dims.length - 1];
    const logits = Float32Array.from(o.data, (c) => (c - outGrid.zeroPoint) * outGrid.scale);
    for (const p of argmaxRows(logits, classes)) pred.push(p);
  }

  const labels = data.labels;
  let hits = 0, fHits = 0, agree = 0;
  for (let i = 0; i < pred.length; i++) {
    if (labels && pred[i] === labels[i]) hits++;
    if (labels && floatPred[i] === labels[i]) fHits++;
    if (pred[i] === floatPred[i]) agree++;
  }
  const N = pred.length;
  return {
    top1: labels ? hits / N : null,
    floatTop1: labels ? fHits / N : null,
    agreement: N ? agree / N : 0,
    floatOps,
    overflowCount: ctx.overflow,
    saturationCount: ctx.saturated,
    ops,
    grids,
    samples: N,
  };

  // ---- float fallback: dequantize, the float op, quantize onto the output's grid ----
  function floatFallback(n: NodeProto, reason: string): void {
    const name = n.name || n.output[0];
    const x = n.input[0];
    const gx = gridOf(x);
    const out = n.output[0];
    const go = targetGrid(out);
    grids.set(out, go);
    let f: (v: number, c: number) => number;
    let perChannel = false;
    if (n.opType === 'BatchNormalization') {
      const eps = attrFloat(n, 'epsilon', 1e-5);
      const [gamma, beta, mean, variance] = n.input.slice(1, 5).map((t) => constFloat(t).data);
      perChannel = true;
      f = (v, c) => ((v - mean[c]) / Math.sqrt(variance[c] + eps)) * gamma[c] + beta[c];
    } else if (n.opType === 'HardSigmoid') {
      const alpha = attrFloat(n, 'alpha', 0.2), beta = attrFloat(n, 'beta', 0.5);
      f = (v) => Math.max(0, Math.min(1, alpha * v + beta));
    } else if (FLOAT_UNARY[n.opType]) {
      const u = FLOAT_UNARY[n.opType];
      f = (v) => u(v);
    } else {
      throw new InputError(`integer CNN executor: ${n.opType} (${name}) cannot run in integers (${reason}) and has no float fallback`);
    }
    floatOps.push({ node: name, op: n.opType, reason });
    steps.push((ctx) => {
      const v = get(ctx, x);
      const inner = perChannel ? numel(v.dims.slice(2)) : 1;
      const C = perChannel ? v.dims[1] : 1;
      const res = new Int32Array(v.data.length);
      for (let i = 0; i < res.length; i++) {
        const c = perChannel ? Math.floor(i / inner) % C : 0;
        res[i] = quantize(f((v.data[i] - gx.zeroPoint) * gx.scale, c), go);
      }
      ctx.env.set(out, { dims: v.dims, data: res });
    });
  }
}

interface PoolGeometry {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
}

function poolGeometry(n: NodeProto, kernel: number[]): PoolGeometry {
  return {
    kernel,
    strides: attrInts(n, 'strides') ?? [1, 1],
    pads: attrInts(n, 'pads') ?? [0, 0, 0, 0],
    dilations: attrInts(n, 'dilations') ?? [1, 1],
  };
}

/** 2-D pooling over codes: `reduce` gets the in-bounds window values (padding left out). */
function pool2d(v: QVal, geo: PoolGeometry, reduce: (vals: number[]) => number): QVal {
  const [N, C, H, W] = v.dims;
  const [KH, KW] = geo.kernel;
  const [SH, SW] = geo.strides;
  const [DH, DW] = geo.dilations;
  const [PT, PL, PB, PR] = geo.pads;
  const OH = Math.floor((H + PT + PB - ((KH - 1) * DH + 1)) / SH) + 1;
  const OW = Math.floor((W + PL + PR - ((KW - 1) * DW + 1)) / SW) + 1;
  const res = new Int32Array(N * C * OH * OW);
  const vals: number[] = [];
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        vals.length = 0;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH - PT + kh * DH;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW - PL + kw * DW;
            if (iw < 0 || iw >= W) continue;
            vals.push(v.data[base + ih * W + iw]);
          }
        }
        res[(nc * OH + oh) * OW + ow] = reduce(vals);
      }
    }
  }
  return { dims: [N, C, OH, OW], data: res };
}
