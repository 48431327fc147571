/**
 * What the executor needs from float runs of the model before it compiles:
 *   probeTypes   the element type of every tensor (one small batch with every node output exposed);
 *   floatRanges  min/max of activations the streamed calibration statistics do not hold (tensors
 *                the plan never calibrates, e.g. a HardSigmoid output), streamed in batches.
 */
import type * as ort from 'onnxruntime-node';
import { type Dataset, batchRanges, batchWithin } from '../data/dataset';
import { untypedValueInfo } from '../onnx/graph';
import { type ModelProto, cloneModel } from '../onnx/model';
import { createSession, feedsFor, runSession } from '../runtime/session';

/** Exposed tensors of one float batch stay under this many bytes. */
const BATCH_BYTES = 64 * 1024 * 1024;

function exposing(model: ModelProto, names: Iterable<string>): ModelProto {
  const m = cloneModel(model);
  const have = new Set(m.graph!.output.map((o) => o.name));
  const inputs = new Set(m.graph!.input.map((i) => i.name));
  for (const t of names) {
    if (have.has(t) || inputs.has(t)) continue;
    have.add(t);
    m.graph!.output.push(untypedValueInfo(t));
  }
  return m;
}

export interface Probe {
  types: Map<string, ort.Tensor.Type>;
  /** Bytes per sample of each tensor (for batch sizing). */
  bytesPerSample: Map<string, number>;
}

/** Types of every graph input and node output, from one run on `feeds` (`count` samples). */
export async function probeTypes(model: ModelProto, feeds: Record<string, ort.Tensor>, count: number): Promise<Probe> {
  const outs = model.graph!.node.flatMap((n) => n.output).filter(Boolean);
  const label = 'float model (type probe)';
  const session = await createSession(exposing(model, outs), 'float', { label });
  const types = new Map<string, ort.Tensor.Type>();
  const bytesPerSample = new Map<string, number>();
  try {
    const res = await runSession(session, feeds, label);
    for (const [name, t] of Object.entries({ ...feeds, ...res })) {
      types.set(name, t.type);
      bytesPerSample.set(name, (t.data as ArrayBufferView).byteLength / Math.max(1, count));
      if (!feeds[name]) t.dispose();
    }
  } finally {
    await session.release();
  }
  return { types, bytesPerSample };
}

/** Samples per batch so that `tensors` of one batch stay under the byte budget. */
export function batchFor(probe: Probe, tensors: Iterable<string>, requested: number): number {
  let bytes = 0;
  for (const t of tensors) bytes += probe.bytesPerSample.get(t) ?? 0;
  return batchWithin(BATCH_BYTES, bytes, requested);
}

/** Min/max of float32 `tensors` over the whole dataset, in batches of `batchSize`. */
export async function floatRanges(model: ModelProto, data: Dataset, tensors: string[], batchSize: number): Promise<Map<string, { min: number; max: number }>> {
  const ranges = new Map<string, { min: number; max: number }>();
  if (tensors.length === 0) return ranges;
  const label = 'float model (activation ranges)';
  const session = await createSession(exposing(model, tensors), 'float', { label });
  const wanted = new Set(tensors);
  try {
    for (const [start, count] of batchRanges(data.samples, batchSize)) {
      const feeds = await feedsFor(data, start, count);
      const res = await runSession(session, feeds, label);
      for (const [name, t] of Object.entries({ ...feeds, ...res })) {
        if (wanted.has(name) && t.type === 'float32') {
          const d = t.data as Float32Array;
          const r = ranges.get(name) ?? { min: Infinity, max: -Infinity };
          for (let i = 0; i < d.length; i++) {
            const v = d[i];
            if (!Number.isFinite(v)) continue;
            if (v < r.min) r.min = v;
            if (v > r.max) r.max = v;
          }
          ranges.set(name, r);
        }
        if (!feeds[name]) t.dispose();
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}
