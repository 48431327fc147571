/**
 * Running tiny graphs through the integer-only executor with grids the test chooses, and the
 * independent references the per-op tests compare with: onnxruntime's own float result on the
 * dequantized inputs, or onnxruntime run on the integer codes themselves (as float32, exact) for
 * ops that only move or select elements.
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { type Program, type RunStats, type Value, compile, newRunStats, probeTypes } from '../../engine/integerOnly';
import { untypedValueInfo } from '../../engine/onnx/graph';
import { cloneModel } from '../../engine/onnx/model';
import { DT, makeTensor } from '../../engine/onnx/tensor';
import { buildQdqModel, type WeightQuant } from '../../engine/quantize/qdqRewrite';
import { planQuantization } from '../../engine/quantize/plan';
import { resolveConfig } from '../../engine/quantize/presets';
import { type QuantParams, type TensorScheme, paramsFor, quantize } from '../../engine/quantize/scheme';
import { createSession } from '../../engine/runtime/session';
import { buildModel, type GraphSpec } from './tinyModels';

export const U8: TensorScheme = { bits: 8, signed: false, symmetric: false, narrowRange: false, powerOfTwo: false };
export const I8: TensorScheme = { bits: 8, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false };
export const U16: TensorScheme = { bits: 16, signed: false, symmetric: false, narrowRange: false, powerOfTwo: false };

export function grid(lo: number, hi: number, s: TensorScheme = U8): QuantParams {
  return paramsFor(lo, hi, s);
}

/** Untyped outputs (onnxruntime infers them) for `buildModel`. */
export function outs(...names: string[]) {
  return names.map((n) => untypedValueInfo(n));
}

export function model(spec: Omit<GraphSpec, 'outputs'> & { outputs: string[] }): ModelProto {
  return buildModel({ ...spec, outputs: outs(...spec.outputs) });
}

export interface IntegerRun {
  out: Map<string, Value>;
  program: Program;
  stats: RunStats;
}

/**
 * Compile and run `m` on float `feeds`. `planned`: grids the plan fixes; `free`: grids for
 * tensors an op must rescale (a missing one fails the test loudly).
 */
export async function integerRun(
  m: ModelProto,
  feeds: Record<string, ort.Tensor>,
  o: { planned?: Record<string, QuantParams>; free?: Record<string, QuantParams>; weights?: WeightQuant[]; forceFloat?: string[]; softmaxBits?: number } = {},
): Promise<IntegerRun> {
  const first = Object.values(feeds)[0];
  const probe = await probeTypes(m, feeds, first.dims[0] ?? 1);
  const program = await compile({
    model: m,
    dir: '.',
    planned: new Map(Object.entries(o.planned ?? {})),
    free: (t) => {
      const g = o.free?.[t] ?? o.planned?.[t];
      if (!g) throw new Error(`the test gave no grid for ${t}`);
      return g;
    },
    weights: o.weights ?? [],
    types: probe.types,
    forceFloat: o.forceFloat,
    softmaxBits: o.softmaxBits,
  });
  const stats = newRunStats(true);
  try {
    return { out: await program.run(feeds, stats), program, stats };
  } finally {
    await program.release();
  }
}

/** onnxruntime's float result. */
export async function floatRun(m: ModelProto, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const s = await createSession(m, 'float');
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

export function codesOf(v: Value | undefined): Int32Array {
  if (!v || v.kind !== 'codes') throw new Error(`expected integer codes, got ${v?.kind}`);
  return v.data;
}

/** Float feeds quantized then dequantized: exactly what the executor's integer inputs stand for. */
export function onGrid(x: Float32Array, g: QuantParams): { codes: Int32Array; real: Float32Array } {
  const codes = Int32Array.from(x, (v) => quantize(v, g));
  return { codes, real: Float32Array.from(codes, (c) => (c - g.zeroPoint) * g.scale) };
}

export function tensor(data: Float32Array, dims: number[]): ort.Tensor {
  return new ort.Tensor('float32', data, dims);
}

/** Weight codes of the Conv/Gemm/MatMul layers of `m` as the plan writes them (`planned` = activation grids). */
export function planWeights(m: ModelProto, planned: Record<string, QuantParams>, preset: 'ort-cpu' | 'tensorrt' | 'qnn' = 'ort-cpu'): WeightQuant[] {
  const config = resolveConfig(preset, { placement: 'compute' });
  const plan = planQuantization(m.graph!, 'compute', []);
  return buildQdqModel(m, '.', plan, new Map(Object.entries(planned)), config, false).weights;
}

/** Largest |a - b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic values in [lo, hi). */
export function uniform(r: () => number, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/**
 * The float model with each planned weight replaced by its dequantized codes and each quantized
 * bias by its dequantized int32 codes (at S_x S_w, float32 as the QDQ model stores it): the
 * real-valued function the integer layer computes before its final rounding.
 */
export function withDequantizedWeights(m: ModelProto, weights: WeightQuant[], planned: Record<string, QuantParams>): ModelProto {
  const copy = cloneModel(m);
  const g = copy.graph!;
  for (const w of weights) {
    const node = g.node.find((n) => n.name === w.layer)!;
    const per = w.axis === null ? 1 : w.dims[w.axis];
    const inner = w.axis === null ? w.codes.length : w.dims.slice(w.axis + 1).reduce((a, b) => a * b, 1);
    const ch = (i: number) => (w.axis === null ? 0 : Math.floor(i / inner) % per);
    const real = Float32Array.from(w.codes, (c, i) => (c - w.params[ch(i)].zeroPoint) * w.params[ch(i)].scale);
    const wi = g.initializer.findIndex((t) => t.name === w.tensor);
    g.initializer[wi] = makeTensor(w.tensor, DT.FLOAT, w.dims, real);
    if (w.bias) {
      const sx = planned[node.input[0]].scale;
      const b = node.input[2];
      const bi = g.initializer.findIndex((t) => t.name === b);
      const bReal = Float32Array.from(w.bias, (c, i) => c * Math.fround(Math.fround(sx) * Math.fround(w.params[w.params.length === 1 ? 0 : i].scale)));
      g.initializer[bi] = makeTensor(b, DT.FLOAT, [w.bias.length], bReal);
    }
  }
  return copy;
}

/** Round half away from zero. */
export const roundAway = (v: number) => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5));

/** clamp(roundAway(v) + z) on a grid: the single-rounding requantization, by definition. */
export function requant(v: number, g: QuantParams): number {
  return Math.min(g.qmax, Math.max(g.qmin, roundAway(v) + g.zeroPoint));
}

/** Dequantize codes. */
export function real(codes: ArrayLike<number>, g: QuantParams): Float64Array {
  return Float64Array.from(codes as ArrayLike<number>, (c) => (c - g.zeroPoint) * g.scale);
}
