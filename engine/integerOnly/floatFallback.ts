/**
 * The float fallback: any node onnxruntime can run, run alone in float between a dequantize of
 * its activation inputs and a quantize of its float outputs onto their grids.
 *
 * The node goes into a one-node ONNX model with its attributes (subgraphs of If/Loop/Scan
 * included), the model's opsets, its constant inputs as initializers, and, as extra graph inputs,
 * the outer-scope tensors its subgraphs read. One session per node is created when the program
 * is compiled and released with the program. Raw (non-activation) tensors pass through as they
 * are: int64 shapes, bool masks.
 */
import { clone, create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import {
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type ModelProto,
  type NodeProto,
} from 'onnx-buf';
import { InputError } from '../errors';
import { untypedValueInfo } from '../onnx/graph';
import { DT, makeTensor, readTensor } from '../onnx/tensor';
import { roundHalfEven } from '../quantize/rounding';
import type { QuantParams } from '../quantize/scheme';
import { createSession, runSession } from '../runtime/session';
import type { LowerCtx } from './context';
import { saturate } from './fixedPoint';
import { outerScopeInputs } from './subgraphs';
import type { Env, RunStats, Step } from './types';
import { type RawArray, type Value, codes, raw } from './values';

const DT_OF: Partial<Record<ort.Tensor.Type, DT>> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  int64: DT.INT64,
  int32: DT.INT32,
  int8: DT.INT8,
  uint8: DT.UINT8,
  bool: DT.BOOL,
  int16: DT.INT16,
  uint16: DT.UINT16,
};

function typedInput(name: string, elemType: DT) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType }) } }),
  });
}

/** The node alone in a model; `inputs` are its run-time inputs (activations and raw tensors). */
export function nodeModel(n: NodeProto, ctx: LowerCtx): { model: ModelProto; inputs: string[] } {
  const wanted = [...new Set([...n.input, ...outerScopeInputs(n)].filter(Boolean))];
  const inputs: string[] = [];
  const graphInputs = [];
  const initializer = [];
  for (const t of wanted) {
    if (ctx.isConst(t)) {
      const init = ctx.idx.initializers.get(t)!;
      if (init.dataLocation === TensorProto_DataLocation.EXTERNAL) {
        const h = readTensor(init, ctx.spec.dir);
        initializer.push(makeTensor(t, h.dataType, h.dims, h.data as ArrayLike<number>));
      } else {
        initializer.push(clone(TensorProtoSchema, init));
      }
      continue;
    }
    const type = ctx.isCodes(t) ? 'float32' : ctx.typeOf(t);
    const dt = type ? DT_OF[type] : undefined;
    if (dt === undefined) throw new InputError(`integer-only: ${n.opType} ${n.name}: input ${t} has an unknown or unsupported type (${type})`);
    inputs.push(t);
    graphInputs.push(typedInput(t, dt));
  }
  const src = ctx.spec.model;
  const model = create(ModelProtoSchema, {
    irVersion: src.irVersion,
    opsetImport: [...src.opsetImport],
    graph: create(GraphProtoSchema, {
      name: 'fallback',
      node: [clone(NodeProtoSchema, n)],
      input: graphInputs,
      output: n.output.filter(Boolean).map((o) => untypedValueInfo(o)),
      initializer,
    }),
  });
  return { model, inputs };
}

/** Dequantize codes to float32 ((q - z) * S, what DequantizeLinear computes). */
export function dequantize(data: Int32Array, g: QuantParams): Float32Array {
  const f = new Float32Array(data.length);
  for (let i = 0; i < f.length; i++) f[i] = (data[i] - g.zeroPoint) * g.scale;
  return f;
}

/** QuantizeLinear onto a grid (half to even, saturation counted; NaN maps to the zero point). */
export function quantizeTo(x: ArrayLike<number>, g: QuantParams, stats: RunStats): Int32Array {
  const q = new Int32Array(x.length);
  for (let i = 0; i < q.length; i++) {
    const v = x[i];
    q[i] = v !== v ? g.zeroPoint : saturate(roundHalfEven(v / g.scale) + g.zeroPoint, g, stats);
  }
  return q;
}

/** Run-time feeds of a one-node model. */
export function feedsOf(ctx: LowerCtx, env: Env, inputs: string[]): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of inputs) {
    const v = ctx.value(env, t);
    feeds[t] = v.kind === 'codes' ? new ort.Tensor('float32', dequantize(v.data, ctx.grid(t)), v.dims) : new ort.Tensor(v.type, v.data, v.dims);
  }
  return feeds;
}

export interface FallbackStep {
  step: Step;
  release(): Promise<void>;
}

/** Compile `n` as a float fallback; its float outputs land on their target grids. */
export async function floatFallback(n: NodeProto, ctx: LowerCtx, reason: string): Promise<FallbackStep> {
  const name = n.name || n.output[0];
  const { model, inputs } = nodeModel(n, ctx);
  const label = `${n.opType} ${name} run alone in float`;
  let session: ort.InferenceSession;
  try {
    session = await createSession(model, 'float', { label });
  } catch (e) {
    throw new InputError(
      `integer-only: ${n.opType} ${name} has no integer lowering (${reason}) and onnxruntime cannot run it alone: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const outs = n.output.filter(Boolean);
  for (const o of outs) if (ctx.isCodes(o)) ctx.setGrid(o, ctx.target(o));
  const step: Step = {
    node: name,
    op: `${n.opType} (float)`,
    float: true,
    async run(env) {
      const res = await runSession(session, feedsOf(ctx, env, inputs), label);
      for (const o of outs) {
        const t = res[o];
        const value: Value = ctx.isCodes(o)
          ? codes([...t.dims], quantizeTo(t.data as Float32Array, ctx.grid(o), env.stats))
          : raw(t.type, [...t.dims], t.data as RawArray);
        env.values.set(o, value);
      }
    },
  };
  return { step, release: () => session.release() };
}
