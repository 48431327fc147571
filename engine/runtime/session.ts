/**
 * onnxruntime-node sessions in the three modes QuantLens compares:
 *  - float:      the float model;
 *  - simulated:  a QDQ model with Q/DQ kept as separate float ops (fake-quant), via the session
 *                option disable_quant_qdq at the full optimization level;
 *  - integer:    the same QDQ model at the full optimization level, where onnxruntime fuses
 *                DQ -> op -> Q into integer kernels (QLinearConv, QGemm, QLinearMatMul, ...).
 * onnxruntime's failures on a model (load or run) become one-line InputErrors naming the model.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { type ModelProto, ModelProtoSchema } from 'onnx-buf';
import { InputError } from '../errors';
import { encodeModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { stateBatch } from '../data/inputs';
import { DT } from '../onnx/tensor';
import { ortInputError } from './ortErrors';

export type RunMode = 'float' | 'simulated' | 'integer';

export interface SessionOptions {
  /** Save the graph onnxruntime actually runs (after fusion) to this file. */
  optimizedModelPath?: string;
  /** The model in error messages: its path, or "quantized model of <path>". */
  label?: string;
}

/**
 * A session on a model (onnxruntime gets bytes: the model must hold its data, as loadModel leaves
 * it). onnxruntime's load errors (invalid graph, unknown op, bad attribute, type or shape
 * inference) become an InputError of one line naming `opts.label` and, when it says, the node.
 */
export async function createSession(model: ModelProto | Uint8Array, mode: RunMode, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    // Fatal only: errors come back as exceptions (made into one line here), not printed to stderr.
    logSeverityLevel: 4,
    // The analysis keeps several sessions alive at once: without the arena each run's activation
    // memory is returned when the run ends instead of staying reserved per session.
    enableCpuMemArena: false,
    // Memory patterns plan one block for the whole run from the node order; without them each
    // tensor is freed after its last reader (a 512x512 comparison model: 2.2 GB -> 1.3 GB peak).
    enableMemPattern: false,
  };
  if (mode === 'simulated') options.extra = { session: { disable_quant_qdq: '1' } };
  if (opts.optimizedModelPath) options.optimizedModelFilePath = opts.optimizedModelPath;
  const check = !(model instanceof Uint8Array) && holds4BitTensors(model);
  const scratch = check && !opts.optimizedModelPath ? fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-ort-')) : undefined;
  if (scratch) options.optimizedModelFilePath = path.join(scratch, 'optimized.onnx');
  let session: ort.InferenceSession;
  try {
    const bytes = model instanceof Uint8Array ? model : encodeModel(model);
    session = await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    throw ortInputError(e, opts.label ?? 'model', 'load');
  }
  if (check) {
    try {
      checkOutputsSurvived(options.optimizedModelFilePath!, opts.label ?? 'model');
    } catch (e) {
      await session.release();
      throw e;
    } finally {
      if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    }
  }
  return session;
}

/** Does the model hold 4-bit tensors (the zero points of 4-bit QuantizeLinear/DequantizeLinear)? */
function holds4BitTensors(model: ModelProto): boolean {
  return model.graph?.initializer.some((t) => t.dataType === DT.INT4 || t.dataType === DT.UINT4) ?? false;
}

/**
 * onnxruntime 1.30's graph optimizer can remove the node producing a graph output when 4-bit
 * Q/DQ pairs surround it (Q(int4) -> DQ [output] -> Relu -> Q -> DQ, with disable_quant_qdq), and
 * fetching that output then crashes the whole process (SIGSEGV in the Node binding). The optimized
 * graph onnxruntime wrote shows it: every graph output must still have a producer.
 */
function checkOutputsSurvived(optimizedPath: string, label: string): void {
  const g = fromBinary(ModelProtoSchema, fs.readFileSync(optimizedPath)).graph;
  if (!g) return;
  const produced = new Set([...g.node.flatMap((n) => n.output), ...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name)]);
  const lost = g.output.find((o) => !produced.has(o.name));
  if (lost) {
    throw new InputError(
      `${label}: onnxruntime ${ortVersion} optimizes away the node that produces ${lost.name} when 4-bit QuantizeLinear/DequantizeLinear surround it, and reading it would crash; use 8- or 16-bit activations for this model`,
    );
  }
}

/**
 * `session.run`, with a failure a malformed model only shows at run time (a Reshape to an
 * impossible shape, an index out of range) turned into a one-line InputError naming `label`.
 */
export async function runSession(
  session: ort.InferenceSession,
  feeds: ort.InferenceSession.FeedsType,
  label = 'model',
  /** Outputs to compute and return (default: all); onnxruntime runs only what these need. */
  fetches?: readonly string[],
): Promise<ort.InferenceSession.ReturnType> {
  try {
    return fetches ? await session.run(feeds, fetches) : await session.run(feeds);
  } catch (e) {
    throw ortInputError(e, label, 'run');
  }
}

const ORT_TYPE: Partial<Record<DT, ort.Tensor.Type>> = {
  [DT.FLOAT]: 'float32', [DT.INT64]: 'int64', [DT.INT32]: 'int32', [DT.UINT8]: 'uint8', [DT.INT8]: 'int8', [DT.DOUBLE]: 'float64', [DT.BOOL]: 'bool',
};

/**
 * onnxruntime feeds for samples [start, start + count), read from the dataset: sample inputs,
 * constants (the same tensor every run) and states (each sample's carried state, stacked).
 */
export async function feedsFor(data: Dataset, start: number, count: number): Promise<Record<string, ort.Tensor>> {
  const arrays = await data.read(start, count);
  const feeds: Record<string, ort.Tensor> = {};
  data.inputs.forEach((inp, k) => {
    feeds[inp.name] = new ort.Tensor(ORT_TYPE[inp.dataType] ?? 'float32', arrays[k] as Float32Array, [count, ...inp.shape]);
  });
  for (const c of data.constants ?? []) feeds[c.name] = new ort.Tensor(ORT_TYPE[c.dataType] ?? 'float32', c.data as Float32Array, c.dims);
  for (const s of data.states ?? []) {
    if (!s.values) throw new Error(`state ${s.name} read before the state pass filled it`);
    const { data: v, dims } = stateBatch(s, start, count);
    feeds[s.name] = new ort.Tensor('float32', v, dims);
  }
  return feeds;
}

export const ortVersion: string = (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
