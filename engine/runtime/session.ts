/**
 * onnxruntime-node sessions in the three modes QuantLens compares:
 *  - float:      the float model;
 *  - simulated:  a QDQ model with Q/DQ kept as separate float ops (fake-quant), via the session
 *                option disable_quant_qdq at the full optimization level;
 *  - integer:    the same QDQ model at the full optimization level, where onnxruntime fuses
 *                DQ -> op -> Q into integer kernels (QLinearConv, QGemm, QLinearMatMul, ...).
 * onnxruntime's failures on a model (load or run) become one-line InputErrors naming the model.
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { InputError } from '../errors';
import { encodeModel } from '../onnx/model';
import { type DimPins, withPinnedInputs } from '../onnx/pinShapes';
import type { Dataset } from '../data/dataset';
import { stateBatch } from '../data/inputs';
import { DT } from '../onnx/tensor';
import { ortInputError } from './ortErrors';

export type RunMode = 'float' | 'simulated' | 'integer';

export interface SessionOptions {
  /** Save the graph onnxruntime actually runs (after fusion) to this file. */
  optimizedModelPath?: string;
  /**
   * The session is created only for its optimized graph and never run: no weight prepacking (MLAS
   * repacks every integer kernel's weights at creation) and one thread. The saved graph is the
   * same byte for byte (checked on the demo, the classifier, the recogniser and the 512x512 model).
   */
  graphOnly?: boolean;
  /** The model in error messages: its path, or "quantized model of <path>". */
  label?: string;
  /**
   * Dims the inputs will be fed with (`feedPins`): a session on known shapes is created faster.
   * Ignored for integer sessions: with shapes known onnxruntime may pick other kernels (the
   * float ones differ in the last bits), and the integer kernels must be the ones a deployment of
   * the written model gets.
   */
  pins?: DimPins;
}

/** One pin set per dataset (feedPins), so that a refusal is remembered for all its sessions. */
const pinsOf = new WeakMap<Dataset, DimPins>();
/** Pin sets onnxruntime refused on some model of the analysis (createSession): not tried again. */
const refusedPins = new WeakSet<DimPins>();

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
  options.extra = {
    session: {
      // onnxruntime's threads spin for a while after each run. An analysis alternates between
      // sessions (simulated and integer per batch, one downstream part per layer in sensitivity),
      // and each run's spinning threads took the cores from the next session's run: PaddleOCR
      // cls's sensitivity stage took 2.2x as long (docs/performance.md).
      intra_op: { allow_spinning: '0' },
      ...(mode === 'simulated' ? { disable_quant_qdq: '1' } : {}),
      ...(opts.graphOnly ? { disable_prepacking: '1' } : {}),
    },
  };
  if (opts.graphOnly) options.intraOpNumThreads = 1;
  if (opts.optimizedModelPath) options.optimizedModelFilePath = opts.optimizedModelPath;
  const q4 = model instanceof Uint8Array ? undefined : activation4BitQuantize(model);
  if (q4) {
    throw new InputError(
      `${opts.label ?? 'model'}: 4-bit activations (QuantizeLinear ${q4}) cannot be run: onnxruntime ${ortVersion}'s 4-bit QuantizeLinear (com.microsoft) corrupts memory in these graphs and the process aborts; use 8- or 16-bit activations`,
    );
  }
  const pins = opts.pins && !refusedPins.has(opts.pins) ? opts.pins : undefined;
  const pinned = pins && mode !== 'integer' && !(model instanceof Uint8Array) ? withPinnedInputs(model, pins) : undefined;
  if (pins && pinned && pinned !== model) {
    try {
      return await ort.InferenceSession.create(encodeModel(pinned), options);
    } catch {
      // Known dims can make onnxruntime's static shape inference refuse a branch the data never
      // takes (Silero VAD's If on the sample rate): then the model as it is, which says why if
      // it fails too. Every later session of the analysis holds that branch too, so they skip
      // the pinned attempt (an encode and a failed creation each).
      refusedPins.add(pins);
    }
  }
  try {
    const bytes = model instanceof Uint8Array ? model : encodeModel(model);
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw ortInputError(e, opts.label ?? 'model', 'load');
  }
}

/**
 * The first com.microsoft QuantizeLinear to 4 bits of a computed tensor (an activation, not a
 * weight), or undefined. onnxruntime 1.30 corrupts the heap running such graphs (a tiny CNN with
 * --act-bits 4 aborts with "corrupted double-linked list" or SIGSEGV; 4-bit weights are fine).
 */
export function activation4BitQuantize(model: ModelProto): string | undefined {
  const g = model.graph;
  if (!g) return undefined;
  const four = new Set(g.initializer.filter((t) => t.dataType === DT.INT4 || t.dataType === DT.UINT4).map((t) => t.name));
  if (four.size === 0) return undefined;
  const constant = new Set(g.initializer.map((t) => t.name));
  const n = g.node.find((x) => x.opType === 'QuantizeLinear' && x.domain === 'com.microsoft' && four.has(x.input[2] ?? '') && !constant.has(x.input[0]));
  return n ? n.name || n.output[0] : undefined;
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
  [DT.FLOAT]: 'float32',
  [DT.INT64]: 'int64',
  [DT.INT32]: 'int32',
  [DT.UINT8]: 'uint8',
  [DT.INT8]: 'int8',
  [DT.DOUBLE]: 'float64',
  [DT.BOOL]: 'bool',
};

/**
 * The dims `feedsFor` feeds every sample input and constant with, the batch dim left open; states
 * are left out (their batch axis is not always the first).
 */
export function feedPins(data: Dataset): DimPins {
  const known = pinsOf.get(data);
  if (known) return known;
  const pins = new Map<string, (number | null)[]>();
  for (const i of data.inputs) pins.set(i.name, [null, ...i.shape]);
  for (const c of data.constants ?? []) pins.set(c.name, [...c.dims]);
  pinsOf.set(data, pins);
  return pins;
}

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
