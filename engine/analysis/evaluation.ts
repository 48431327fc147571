/**
 * What an evaluation measured, handed from evaluate.ts to report.ts (a module of its own so the
 * two import it rather than each other).
 */
import type { Warning } from '../../protocol/report';
import type { LayerDiffFeed } from './integerDiffs';
import type { KernelMap } from './kernels';
import type { LayerComparison } from './layerCompare';
import { Top1Counter } from './metrics';
import type { ModelOutputComparison } from './outputMetrics';
import type { UserMetricSeries } from './userMetric';
import type * as ort from 'onnxruntime-node';
import type { QdqResult, WeightQuant } from '../quantize/qdqRewrite';
import type { CodesInput } from '../quantize/compareGraph';

/** Model-output comparison of a candidate against the float outputs. */
export class OutputComparer {
  readonly top1 = new Top1Counter();
  /** Every output, per sample (intervals, classifier metrics); the user's metric when given. */
  constructor(
    readonly outputs: ModelOutputComparison,
    readonly user: UserMetricSeries | null,
  ) {}
}

/** Everything the evaluation measured; `buildReport` turns it into the report. */
export interface Evaluation {
  layerAcc: Map<string, LayerComparison>;
  out: { sim: OutputComparer; int: OutputComparer };
  floatTop1: Top1Counter;
  diffFeeds: LayerDiffFeed[];
  /** Samples the integer reference checked, per layer (absent: none). */
  diffSeen: ReadonlyMap<string, number>;
  /** Each layer's share of its samples' output rows the reference compared. */
  diffShares: ReadonlyMap<string, number>;
  /** Samples the code-level detail (sim vs integer codes, error in LSB) covers: the first ones. */
  detailSamples: number;
  /** Samples the isolated layers ran on: the first ones. */
  isolatedSamples: number;
  /** Kernels of the analysis's integer session, and of the file `quantize` writes (onnxruntime CPU). */
  kernels: KernelMap;
  deployed: KernelMap;
  shift: number;
  warnings: Warning[];
  weights: WeightQuant[];
  timings: Record<string, number>;
}

/** The simulated or integer comparison model, and where each layer's sums sit in its output. */
export interface Comparison {
  session: ort.InferenceSession;
  /** Per layer: offsets of the accumulated and the isolated sums. */
  offsets: Map<string, { acc: number; iso: number | null }>;
  /** Float tensors this model reads as inputs, from the simulated model's run of the batch (float-graph names). */
  floatInputs: string[];
  /** Codes this model reads as inputs, quantized by the simulated model's run of the batch. */
  codesInputs: CodesInput[];
  /** Fed the float tensors: its sums leave out theirs (sum x^2, count), the simulated run has them. */
  fed: boolean;
  /** Its isolated layers are gated (ISOLATED_FLAG input, GATED_SUMS_OUTPUT output). */
  gated: boolean;
  /** Float model outputs as exposed, by original name. */
  floatOutputs: Map<string, string>;
  floatName: (tensor: string) => string;
  /** What every batch fetches (sums and model outputs); detail batches fetch the taps too. */
  fetch: string[];
  detailFetch: string[];
  /** Layer output codes (and input codes, for the integer reference) as exposed in this model. */
  qdq: QdqResult;
}
