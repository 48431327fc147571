/**
 * onnxruntime-node sessions in the three modes QuantLens compares:
 *  - float:      the float model;
 *  - simulated:  a QDQ model with Q/DQ kept as separate float ops (fake-quant), via the session
 *                option disable_quant_qdq at the full optimization level;
 *  - integer:    the same QDQ model at the full optimization level, where onnxruntime fuses
 *                DQ -> op -> Q into integer kernels (QLinearConv, QGemm, QLinearMatMul, ...).
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from 'onnx-buf';
import { encodeModel } from '../onnx/model';
import type { Dataset } from '../data/dataset';
import { DT } from '../onnx/tensor';

export type RunMode = 'float' | 'simulated' | 'integer';

export interface SessionOptions {
  /** Save the graph onnxruntime actually runs (after fusion) to this file. */
  optimizedModelPath?: string;
  /** What the model is, for error messages (the user's model path, "quantized model of ..."). */
  label?: string;
}

export async function createSession(model: ModelProto | Uint8Array, mode: RunMode, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
    // The analysis keeps several sessions alive at once: without the arena each run's activation
    // memory is returned when the run ends instead of staying reserved per session.
    enableCpuMemArena: false,
  };
  if (mode === 'simulated') options.extra = { session: { disable_quant_qdq: '1' } };
  if (opts.optimizedModelPath) options.optimizedModelFilePath = opts.optimizedModelPath;
  return ort.InferenceSession.create(bytes, options);
}

const ORT_TYPE: Partial<Record<DT, ort.Tensor.Type>> = {
  [DT.FLOAT]: 'float32', [DT.INT64]: 'int64', [DT.INT32]: 'int32', [DT.UINT8]: 'uint8', [DT.INT8]: 'int8', [DT.DOUBLE]: 'float64',
};

/** onnxruntime feeds for samples [start, start + count), read from the dataset. */
export async function feedsFor(data: Dataset, start: number, count: number): Promise<Record<string, ort.Tensor>> {
  const arrays = await data.read(start, count);
  const feeds: Record<string, ort.Tensor> = {};
  data.inputs.forEach((inp, k) => {
    feeds[inp.name] = new ort.Tensor(ORT_TYPE[inp.dataType] ?? 'float32', arrays[k] as Float32Array, [count, ...inp.shape]);
  });
  return feeds;
}

export const ortVersion: string = (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
