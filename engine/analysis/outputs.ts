/**
 * Whole-model comparisons: a candidate model's outputs against the float model's, on the same
 * samples (top-1 vs labels, top-1 agreement with float, output SQNR). Used by sensitivity, sweeps,
 * mixed precision and the CI gate.
 *
 * Float outputs are computed once and kept while they are small (logits: N x classes); models
 * with large outputs recompute them per batch instead, so memory never grows with N.
 */
import type * as ort from 'onnxruntime-node';
import type { ModelOutputMetrics } from '../../protocol/report';
import type { ModelProto } from '../onnx/model';
import { batchRanges } from '../data/dataset';
import { type RunMode, createSession, feedsFor, runSession } from '../runtime/session';
import { ErrorAccumulator, Top1Counter, argmaxRows } from './metrics';
import type { Prepared } from './analyze';
import { checkCancel } from './cancel';

const CACHE_BYTES = 64 * 1024 * 1024;

interface FloatBatch {
  outputs: Float32Array[];
  pred: Int32Array;
}

export class FloatReference {
  private cache: FloatBatch[] | null = [];
  private session: ort.InferenceSession | undefined;
  cols = 1;

  private constructor(readonly p: Prepared, readonly samples: number) {}

  static async create(p: Prepared, samples = p.data.samples): Promise<FloatReference> {
    const ref = new FloatReference(p, Math.min(samples, p.data.samples));
    ref.session = await createSession(p.float, 'float', { label: p.loaded.path });
    return ref;
  }

  ranges(): [number, number][] {
    return [...batchRanges(this.samples, this.p.batchSize)];
  }

  async batch(k: number, start: number, count: number): Promise<FloatBatch> {
    const hit = this.cache?.[k];
    if (hit) return hit;
    const r = await runSession(this.session!, await feedsFor(this.p.data, start, count), this.p.loaded.path);
    const logits = r[this.p.outputs[0]];
    this.cols = logits.dims[logits.dims.length - 1] ?? 1;
    const b = { outputs: this.p.outputs.map((o) => r[o].data as Float32Array), pred: argmaxRows(logits.data as Float32Array, this.cols) };
    if (this.cache) {
      this.cache[k] = b;
      const bytes = this.cache.reduce((a, x) => a + (x ? x.outputs.reduce((s, o) => s + o.byteLength, 0) : 0), 0);
      if (bytes > CACHE_BYTES) this.cache = null; // large outputs: recompute per batch from now on
    }
    return b;
  }

  /** Run `model` in `mode` and compare its outputs with the float model's. */
  async measure(model: ModelProto | ort.InferenceSession, mode: RunMode, signal?: AbortSignal): Promise<ModelOutputMetrics> {
    const own = !('run' in model);
    const s = own ? await createSession(model as ModelProto, mode, { label: `quantized model of ${this.p.loaded.path}` }) : (model as ort.InferenceSession);
    const acc = new ErrorAccumulator();
    const top = new Top1Counter();
    const labels = this.p.data.labels;
    try {
      let k = 0;
      for (const [start, count] of this.ranges()) {
        checkCancel(signal);
        const f = await this.batch(k++, start, count);
        const r = await runSession(s, await feedsFor(this.p.data, start, count), `quantized model of ${this.p.loaded.path}`);
        this.p.outputs.forEach((o, i) => acc.add(f.outputs[i], r[o].data as Float32Array));
        top.add(argmaxRows(r[this.p.outputs[0]].data as Float32Array, this.cols), labels?.subarray(start, start + count) ?? null, f.pred);
        for (const t of Object.values(r)) t.dispose();
      }
    } finally {
      if (own) await s.release();
    }
    return { top1: top.top1(labels !== null), agreement: top.agreement(), outputSqnrDb: acc.result().sqnrDb };
  }

  /** Float top-1 on these samples (null without labels). */
  async floatTop1(): Promise<number | null> {
    const labels = this.p.data.labels;
    if (!labels) return null;
    let hits = 0;
    let k = 0;
    for (const [start, count] of this.ranges()) {
      const f = await this.batch(k++, start, count);
      for (let i = 0; i < count; i++) if (f.pred[i] === labels[start + i]) hits++;
    }
    return hits / this.samples;
  }

  async release(): Promise<void> {
    await this.session?.release();
  }
}

/** Accuracy drop in points: labelled top-1 when labels exist, else agreement with float. */
export function dropPoints(floatTop1: number | null, m: ModelOutputMetrics): number {
  return floatTop1 !== null && m.top1 !== null ? (floatTop1 - m.top1) * 100 : (1 - m.agreement) * 100;
}
