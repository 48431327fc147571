/**
 * The user's own quality metric (`--metric metric.mjs`), for models whose accuracy is not a top-1
 * (detectors, OCR, segmentation, regression). The contract is documented in docs/metric.md: an ES
 * module whose default export (or named export `metric`) scores ONE sample,
 *
 *   metric(float, quantized, label, { sample }) -> number   (or a Promise of one)
 *
 * where float and quantized map every output name to { data, dims } for that sample (a copy, batch
 * axis kept with size 1), label is the sample's integer label or null. Higher is better unless the
 * module exports `higherIsBetter = false`. The float model's own score is the same function with
 * the float outputs in both places, so the loss is a paired per-sample difference with an interval.
 */
import type { UserMetricSummary } from '../../protocol/metrics';
export type { UserMetricSummary } from '../../protocol/metrics';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InputError } from '../errors';
import { statRegularFile } from '../io/files';
import type { TensorData } from './outputMetrics';
import { LEVEL, meanInterval, pairedMeanDifference } from './statistics';

/** One output of one sample, as the user's function receives it. */
export interface SampleTensor {
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array | Uint8Array | Int8Array | ArrayLike<number>;
  dims: number[];
}
export type SampleOutputs = Record<string, SampleTensor>;
export type UserMetricFunction = (float: SampleOutputs, quantized: SampleOutputs, label: number | null, info: { sample: number }) => unknown;

export interface UserMetric {
  /** Absolute path of the module. */
  file: string;
  /** The module's `name` export, else the file name. */
  name: string;
  higherIsBetter: boolean;
  /** Score `candidate` against `reference` for one sample; InputError naming the file and sample on failure. */
  score(reference: SampleOutputs, candidate: SampleOutputs, label: number | null, sample: number): Promise<number>;
}

const firstLine = (s: string): string =>
  s
    .split('\n')
    .find((l) => l.trim())
    ?.trim() ?? s;

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function hasNonFinite(outputs: SampleOutputs): boolean {
  for (const t of Object.values(outputs)) {
    const d = t.data;
    if (d instanceof BigInt64Array || d instanceof BigUint64Array) continue;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i] as number)) return true;
  }
  return false;
}

/** Load and check a metric module. The URL carries the file's mtime so an edited metric is reloaded by a long-lived engine. */
export async function loadUserMetric(file: string): Promise<UserMetric> {
  const abs = path.resolve(file);
  const st = statRegularFile(abs, 'metric');
  let mod: Record<string, unknown>;
  try {
    mod = await import(`${pathToFileURL(abs).href}?mtime=${st.mtimeMs}&size=${st.size}`);
  } catch (e) {
    throw new InputError(`metric ${abs} could not be loaded: ${firstLine(e instanceof Error ? e.message : String(e))}`);
  }
  const fn = typeof mod.default === 'function' ? mod.default : typeof mod.metric === 'function' ? mod.metric : null;
  if (!fn) {
    throw new InputError(
      `metric ${abs} exports no function: it needs \`export default function (float, quantized, label) { return aNumber; }\` (or a named export \`metric\`)`,
    );
  }
  if (mod.higherIsBetter !== undefined && typeof mod.higherIsBetter !== 'boolean') {
    throw new InputError(`metric ${abs}: higherIsBetter must be true or false, got ${describe(mod.higherIsBetter)}`);
  }
  if (mod.name !== undefined && (typeof mod.name !== 'string' || !mod.name.trim())) {
    throw new InputError(`metric ${abs}: the export \`name\` must be a non-empty string, got ${describe(mod.name)}`);
  }
  const f = fn as UserMetricFunction;
  return {
    file: abs,
    name: (mod.name as string | undefined) ?? path.basename(abs),
    higherIsBetter: mod.higherIsBetter !== false,
    async score(reference, candidate, label, sample) {
      let v: unknown;
      try {
        v = await f(reference, candidate, label, { sample });
      } catch (e) {
        throw new InputError(`metric ${abs} failed on sample ${sample}: ${firstLine(e instanceof Error ? e.message : String(e))}`);
      }
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        const hint = hasNonFinite(candidate) ? ' (the outputs it was given hold NaN or infinite values)' : '';
        throw new InputError(`metric ${abs} returned ${describe(v)} for sample ${sample}; it must return a finite number${hint}`);
      }
      return v;
    },
  };
}

function copyRange(d: TensorData['data'], start: number, end: number): SampleTensor['data'] {
  if (ArrayBuffer.isView(d)) return (d as unknown as Float32Array).slice(start, end);
  return Float64Array.from(Array.prototype.slice.call(d, start, end) as number[]);
}

/**
 * One sample's outputs cut from a batch: a copy of its slice, dims with the batch axis kept as 1.
 * With one sample per batch an output without a batch axis is passed whole.
 */
export function sliceSample(batch: Record<string, TensorData>, index: number, samples: number): SampleOutputs {
  const out: SampleOutputs = {};
  for (const [name, t] of Object.entries(batch)) {
    if (t.dims.length > 0 && t.dims[0] === samples) {
      const per = t.data.length / samples;
      out[name] = { data: copyRange(t.data, index * per, (index + 1) * per), dims: [1, ...t.dims.slice(1)] };
    } else if (samples === 1) {
      out[name] = { data: copyRange(t.data, 0, t.data.length), dims: [...t.dims] };
    } else {
      throw new InputError(
        `output ${name} has shape [${t.dims.join(', ')}]: its first axis is not the batch of ${samples} samples, so the metric cannot get it per sample (run with batch size 1)`,
      );
    }
  }
  return out;
}

/**
 * Score `samples` samples of a batch whose first dataset index is `first`: `metric(reference,
 * candidate)` per sample, each call on fresh copies (a metric that edits its inputs in place cannot
 * skew the next call).
 */
export async function scoreBatch(
  metric: UserMetric,
  reference: Record<string, TensorData>,
  candidate: Record<string, TensorData>,
  samples: number,
  labels: ArrayLike<number> | null,
  first: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let s = 0; s < samples; s++) {
    out.push(await metric.score(sliceSample(reference, s, samples), sliceSample(candidate, s, samples), labels ? labels[s] : null, first + s));
  }
  return out;
}

/** The summary of paired per-sample scores: float (scored against itself) and quantized. */
export function userMetricSummary(m: UserMetric, float: ArrayLike<number>, quantized: ArrayLike<number>, level = LEVEL): UserMetricSummary {
  return {
    name: m.name,
    file: m.file,
    higherIsBetter: m.higherIsBetter,
    quantized: meanInterval(quantized, { level }),
    float: meanInterval(float, { level }),
    loss: m.higherIsBetter ? pairedMeanDifference(float, quantized, { level }) : pairedMeanDifference(quantized, float, { level }),
  };
}

/** Scores every sample twice (quantized against float, float against itself) and keeps both series. */
export class UserMetricSeries {
  private floatScores: number[] = [];
  private quantScores: number[] = [];

  constructor(readonly metric: UserMetric) {}

  /** One batch of `samples` samples whose first dataset index is `first`. */
  async addBatch(
    float: Record<string, TensorData>,
    quantized: Record<string, TensorData>,
    samples: number,
    labels: ArrayLike<number> | null,
    first: number,
  ): Promise<void> {
    this.floatScores.push(...(await scoreBatch(this.metric, float, float, samples, labels, first)));
    this.quantScores.push(...(await scoreBatch(this.metric, float, quantized, samples, labels, first)));
  }

  values(): { float: Float64Array; quantized: Float64Array } {
    return { float: Float64Array.from(this.floatScores), quantized: Float64Array.from(this.quantScores) };
  }

  summary(level = LEVEL): UserMetricSummary {
    const { float, quantized } = this.values();
    return userMetricSummary(this.metric, float, quantized, level);
  }
}
