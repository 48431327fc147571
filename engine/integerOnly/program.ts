/**
 * Compile a graph once into integer steps (the op table, `ops/index.ts`, else the float
 * fallback), then run batches through them.
 *
 * At run time the float inputs are quantized onto their grids (QuantizeLinear), every step works
 * on integer codes, and a value is dropped as soon as its last reader has run, so memory holds
 * about one layer's worth of tensors per batch.
 */
import { create } from '@bufbuild/protobuf';
import type * as ort from 'onnxruntime-node';
import { type TensorProto, TensorProtoSchema } from 'onnx-buf';
import { InputError } from '../errors';
import type { NodeProto } from '../onnx/graph';
import { type ModelProto, cloneModel } from '../onnx/model';
import { DT, makeTensor } from '../onnx/tensor';
import type { QuantParams } from '../quantize/scheme';
import { type CompileSpec, LowerCtx } from './context';
import { dequantize, floatFallback, quantizeTo } from './floatFallback';
import { loweringsFor } from './ops/index';
import { outerScopeInputs } from './subgraphs';
import { type Env, type FloatOp, type IBertKernel, type RunStats, type Step, isDecline } from './types';
import { type RawArray, type Value, codes, raw } from './values';

/** A feed: onnxruntime tensors or anything shaped like them. */
export type Feed = { type: ort.Tensor.Type; data: ort.Tensor['data']; dims: readonly number[] };

/** Constant nodes of every form as initializers, so lowerings see one kind of constant. */
function hoistAllConstants(model: ModelProto): ModelProto {
  const m = cloneModel(model);
  const g = m.graph!;
  g.node = g.node.filter((n) => {
    if (n.opType !== 'Constant' || (n.domain !== '' && n.domain !== 'ai.onnx') || n.output.length !== 1) return true;
    const name = n.output[0];
    const a = n.attribute[0];
    if (!a) return true;
    let t: TensorProto | undefined;
    if (a.name === 'value' && a.t) t = create(TensorProtoSchema, { ...a.t, name });
    else if (a.name === 'value_float') t = makeTensor(name, DT.FLOAT, [], [a.f]);
    else if (a.name === 'value_floats') t = makeTensor(name, DT.FLOAT, [a.floats.length], a.floats);
    else if (a.name === 'value_int') t = makeTensor(name, DT.INT64, [], BigInt64Array.of(a.i));
    else if (a.name === 'value_ints') t = makeTensor(name, DT.INT64, [a.ints.length], BigInt64Array.from(a.ints));
    if (!t) return true;
    g.initializer.push(t);
    return false;
  });
  return m;
}

export class Program {
  constructor(
    readonly ctx: LowerCtx,
    private readonly steps: Step[],
    /** Step index -> tensors no later step reads. */
    private readonly frees: Map<number, string[]>,
    readonly floatOps: FloatOp[],
    /** Op type -> nodes run in integers. */
    readonly ops: Record<string, number>,
    readonly inputs: string[],
    readonly outputs: string[],
    private readonly releases: (() => Promise<void>)[],
  ) {}

  get kernels(): { node: string; kernel: IBertKernel }[] {
    return this.ctx.kernels;
  }

  /** Grid of a tensor held as codes (undefined for raw tensors). */
  gridOf(t: string): QuantParams | undefined {
    return this.ctx.grids.get(t);
  }

  /** One line per step: "op node", float fallbacks marked. */
  describe(): string[] {
    return this.steps.map((s) => `${s.float ? '[float] ' : ''}${s.op} ${s.node}`);
  }

  /** Run one batch; returns the graph outputs (codes on `gridOf(name)`, or raw). */
  async run(feeds: Record<string, Feed>, stats: RunStats): Promise<Map<string, Value>> {
    const env: Env = { values: new Map(), stats };
    for (const t of this.inputs) {
      const f = feeds[t];
      if (!f) throw new InputError(`integer-only: no data for model input ${t}`);
      if (this.ctx.isCodes(t)) {
        if (f.type !== 'float32') throw new InputError(`integer-only: input ${t} must be float32, got ${f.type}`);
        env.values.set(t, codes([...f.dims], quantizeTo(f.data as Float32Array, this.ctx.grid(t), stats)));
      } else {
        env.values.set(t, raw(f.type, [...f.dims], f.data as RawArray));
      }
    }
    for (let i = 0; i < this.steps.length; i++) {
      await this.steps[i].run(env);
      for (const t of this.frees.get(i) ?? []) env.values.delete(t);
    }
    const out = new Map<string, Value>();
    for (const o of this.outputs) out.set(o, this.ctx.value(env, o));
    return out;
  }

  /** An output as real numbers: codes dequantized, raw values converted. */
  real(name: string, v: Value): Float32Array {
    if (v.kind === 'codes') return dequantize(v.data, this.ctx.grid(name));
    return Float32Array.from(v.data as ArrayLike<number | bigint>, Number);
  }

  /** Release the float fallbacks' sessions. */
  async release(): Promise<void> {
    await Promise.all(this.releases.splice(0).map((r) => r()));
  }
}

/** Compile `spec.model`: one lowering per node from the op table, else a float fallback. */
export async function compile(specIn: CompileSpec): Promise<Program> {
  const spec = { ...specIn, model: hoistAllConstants(specIn.model) };
  const ctx = new LowerCtx(spec);
  const g = spec.model.graph!;
  const inputs = g.input.map((i) => i.name).filter((t) => ctx.idx.graphInputs.has(t));
  const outputs = g.output.map((o) => o.name);
  for (const t of inputs) if (ctx.isCodes(t)) ctx.setGrid(t, ctx.target(t));
  const steps: Step[] = [];
  const floatOps: FloatOp[] = [];
  const ops: Record<string, number> = {};
  const releases: (() => Promise<void>)[] = [];
  const groups: { end: number; reads: string[]; writes: string[] }[] = [];
  try {
    for (const n of g.node) {
      if (ctx.consumed.has(n)) continue;
      const name = n.name || n.output[0];
      const seen = ctx.consumed.size;
      let reason = ctx.forced(n) ? 'run in float by request' : `no integer lowering for ${n.opType}`;
      let lowered: Step[] | undefined;
      if (!ctx.forced(n) && (n.domain === '' || n.domain === 'ai.onnx')) {
        for (const l of loweringsFor(n.opType)) {
          const r = await l.lower(n, ctx);
          if (isDecline(r)) {
            reason = r.decline;
            continue;
          }
          lowered = Array.isArray(r) ? r : [r];
          break;
        }
      } else if (n.domain && n.domain !== 'ai.onnx') {
        reason = `operator domain ${n.domain}`;
      }
      const group: NodeProto[] = [n, ...[...ctx.consumed].slice(seen)];
      if (lowered) {
        for (const k of group) ops[k.opType] = (ops[k.opType] ?? 0) + 1;
      } else {
        const fb = await floatFallback(n, ctx, reason);
        releases.push(fb.release);
        lowered = [fb.step];
        floatOps.push({ node: name, op: n.opType, reason });
      }
      steps.push(...lowered);
      groups.push({
        end: steps.length - 1,
        reads: group.flatMap((k) => [...k.input, ...outerScopeInputs(k)]).filter(Boolean),
        writes: group.flatMap((k) => k.output).filter(Boolean),
      });
    }
  } catch (e) {
    await Promise.all(releases.map((r) => r()));
    throw e;
  }
  return new Program(ctx, steps, freeSchedule(groups, new Set(outputs)), floatOps, ops, inputs, outputs, releases);
}

/** After which step each tensor can be dropped (its last reader, or its producer if unread). */
function freeSchedule(groups: { end: number; reads: string[]; writes: string[] }[], keep: Set<string>): Map<number, string[]> {
  const last = new Map<string, number>();
  groups.forEach((gr) => {
    for (const t of gr.writes) if (!last.has(t)) last.set(t, gr.end);
    for (const t of gr.reads) last.set(t, gr.end);
  });
  const frees = new Map<number, string[]>();
  for (const [t, end] of last) {
    if (keep.has(t)) continue;
    const list = frees.get(end) ?? [];
    list.push(t);
    frees.set(end, list);
  }
  return frees;
}
