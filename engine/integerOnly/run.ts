/**
 * Integer-only execution of a quantized configuration, CNNs and transformers alike:
 *   1. the element type of every tensor (one probe run) and the MinMax range of activations the
 *      streamed calibration statistics do not cover (one more float pass, only if there are any);
 *   2. compile the configuration's BN-folded graph with its plan grids and weight codes;
 *   3. run the data in batches through the integer program and, beside it, the float model in
 *      onnxruntime, comparing top-1, agreement and output SQNR.
 */
import type { Prepared, Progress, Quantized } from '../analysis/types';
import { ErrorAccumulator, Top1Counter, argmaxRows } from '../analysis/metrics';
import { type Interval, wilsonInterval } from '../analysis/statistics';
import { batchRanges, modelInputs } from '../data/dataset';
import { InputError } from '../errors';
import { type WeightQuant, buildQdqModel } from '../quantize/qdqRewrite';
import { type QuantParams, paramsFor } from '../quantize/scheme';
import { createSession, feedsFor, runSession } from '../runtime/session';
import { activationTensors } from './context';
import { compile } from './program';
import { batchFor, floatRanges, probeTypes } from './probe';
import { type FloatOp, type IBertKernel, type KernelError, newRunStats } from './types';

export interface IntegerOnlyOptions {
  /** The plan's weight codes from an earlier `buildQdqModel` (default: built here). */
  weights?: WeightQuant[];
  /** Samples per batch (default `prepared.batchSize`). */
  batchSize?: number;
  /** Op types or node names run as float fallbacks whatever lowering exists (ablation). */
  forceFloat?: string[];
  /** i-Softmax output bits (default 16). */
  softmaxBits?: number;
  /** Measure each I-BERT kernel against its float op (default true). */
  measureKernels?: boolean;
  /** Bits of the grids of activations the plan leaves in float (default 16). */
  freeBits?: 8 | 16;
  onProgress?: (p: Progress) => void;
}

export interface IntegerOnlyResult {
  samples: number;
  /** Top-1 of the integer-only execution against the labels (null without labels). */
  top1: number | null;
  /** Top-1 of the float model (onnxruntime) on the same samples (null without labels). */
  floatTop1: number | null;
  /** Fraction of samples whose integer-only prediction equals the float model's. */
  agreement: number;
  /** SQNR (dB) of the integer-only first output against the float model's. */
  outputSqnrDb: number;
  /** Nodes that ran in float between a dequantize and a quantize, and why. */
  floatOps: FloatOp[];
  /** Op type -> nodes executed in integers. */
  ops: Record<string, number>;
  /** int32 accumulations whose exact value left int32 (wrapped, as hardware would). */
  overflowCount: number;
  /** Codes clamped to their grid (values beyond the calibrated range). */
  saturationCount: number;
  /** Codes produced where saturations are counted: saturationCount's denominator. */
  codeCount: number;
  /** 95% Wilson intervals of top1 (null without labels) and agreement. */
  top1Interval: Interval | null;
  agreementInterval: Interval;
  /** Per I-BERT kernel: its output against the float op on the same dequantized input. */
  kernelErrors: KernelError[];
  /** One line per compiled step. */
  steps: string[];
}

/** Run `q` (from `quantizeWith(prepared, config)`) with integer arithmetic on `prepared.data`. */
export async function runIntegerOnly(prepared: Prepared, q: Quantized, opts: IntegerOnlyOptions = {}): Promise<IntegerOnlyResult> {
  const model = q.prepared;
  const data = prepared.data;
  const dir = prepared.loaded.dir;
  const weights = opts.weights ?? buildQdqModel(model, dir, q.plan, q.actParams, q.config, false).weights;
  const fixed = modelInputs(model)
    .map((i) => i.dims[0])
    .find((d) => typeof d === 'number' && d > 0) as number | undefined;
  const bs = fixed ?? opts.batchSize ?? prepared.batchSize;

  const probeCount = Math.min(fixed ?? 1, data.samples);
  const probe = await probeTypes(model, await feedsFor(data, 0, probeCount), probeCount);
  const act = activationTensors(model, probe.types);
  const hasStats = (t: string) => {
    const s = prepared.stats.get(t);
    return !!s && s.count > 0 && Number.isFinite(s.min) && Number.isFinite(s.max);
  };
  const need = [...act].filter((t) => !q.actParams.has(t) && !hasStats(t));
  const ranges = await floatRanges(model, data, need, fixed ?? batchFor(probe, need, bs));

  const scheme = { ...q.config.activations, bits: opts.freeBits ?? 16 };
  const freeGrids = new Map<string, QuantParams>();
  const free = (t: string): QuantParams => {
    let g = freeGrids.get(t);
    if (g) return g;
    const r = hasStats(t) ? prepared.stats.get(t)! : ranges.get(t);
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new InputError(`integer-only: no calibration range for tensor ${t}`);
    freeGrids.set(t, (g = paramsFor(r.min, r.max, scheme)));
    return g;
  };

  const program = await compile({
    model,
    dir,
    planned: q.actParams,
    free,
    weights,
    types: probe.types,
    forceFloat: opts.forceFloat,
    softmaxBits: opts.softmaxBits,
    measureKernels: opts.measureKernels,
  });
  const outName = program.outputs[0];
  const stats = newRunStats(opts.measureKernels ?? true);
  const intTop1 = new Top1Counter();
  const floatTop1 = new Top1Counter();
  const err = new ErrorAccumulator();
  const label = `float model of ${prepared.loaded.path}`;
  const floatSession = await createSession(model, 'float', { label });
  try {
    for (const [start, count] of batchRanges(data.samples, bs)) {
      const feeds = await feedsFor(data, start, count);
      const ref = (await runSession(floatSession, feeds, label))[outName];
      const outs = await program.run(feeds, stats);
      const y = program.real(outName, outs.get(outName)!);
      const x = ref.data as Float32Array;
      const cols = ref.dims[ref.dims.length - 1] ?? 1;
      const fPred = argmaxRows(x, cols);
      const labels = data.labels ? data.labels.subarray(start, start + count) : null;
      floatTop1.add(fPred, labels, null);
      intTop1.add(argmaxRows(y, cols), labels, fPred);
      err.add(x, y);
      ref.dispose();
      opts.onProgress?.({ stage: 'evaluate', done: start + count, total: data.samples });
    }
  } finally {
    await program.release();
    await floatSession.release();
  }
  const hasLabels = data.labels !== null;
  return {
    samples: data.samples,
    top1: intTop1.top1(hasLabels),
    floatTop1: floatTop1.top1(hasLabels),
    agreement: intTop1.agreement(),
    top1Interval: hasLabels ? wilsonInterval(intTop1.hits, intTop1.n) : null,
    agreementInterval: wilsonInterval(intTop1.agree, intTop1.n),
    outputSqnrDb: err.result().sqnrDb,
    floatOps: program.floatOps,
    ops: program.ops,
    overflowCount: stats.overflow,
    saturationCount: stats.saturated,
    codeCount: stats.codes,
    kernelErrors: kernelErrors(program.kernels, stats.kernelAcc),
    steps: program.describe(),
  };
}

function kernelErrors(kernels: { node: string; kernel: IBertKernel }[], accs: Map<string, ErrorAccumulator> | null): KernelError[] {
  return kernels.map(({ node, kernel }) => {
    const acc = accs?.get(node);
    const m = acc?.result();
    return { node, kernel, sqnrDb: m ? m.sqnrDb : Number.NaN, maxAbsError: m ? m.maxAbs : Number.NaN, count: acc?.count ?? 0 };
  });
}
