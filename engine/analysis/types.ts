/**
 * The shapes the analysis pipeline passes between its stages (prepare -> quantize -> evaluate ->
 * report), declared apart from the code so the stages import types, not each other.
 */
import type { ModelQuantization, Placement, QuantConfig, Warning } from '../../protocol/report';
import type { ActivationStats } from '../calibration/histogram';
import type { TensorThresholds } from '../calibration/choose';
import type { Dataset } from '../data/dataset';
import type { InputSetting } from '../data/inputs';
import type { LoadedModel, ModelProto } from '../onnx/model';
import type { FoldRecord } from '../quantize/bnFold';
import type { QuantPlan } from '../quantize/plan';
import type { QuantParams } from '../quantize/scheme';
import type { UserMetric } from './userMetric';

export interface Progress {
  stage: 'calibrate' | 'evaluate' | 'sensitivity' | 'diagnose' | 'sweep' | 'write';
  done: number;
  total: number;
  message?: string;
}

export interface RunOptions {
  /** Samples per inference batch (an upper bound: memory budgets may lower it). */
  batchSize?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
  /** Worker threads binning calibration histograms (default: one per spare core, none for small jobs). */
  threads?: number;
  /** Bytes of tapped tensors one calibration run may fetch (default taps.ts RUN_BYTES): more groups below it. */
  runBytes?: number;
}

export interface PrepareOptions extends RunOptions {
  dataPath?: string;
  samples?: number;
  /** Per model input: sample / constant (value) / state (from an output), dims (data/inputs.ts); over quantlens.json's `inputs`. */
  inputs?: Record<string, InputSetting>;
  /**
   * The placement of the configuration that will run first: its activations are calibrated in
   * the first float pass (otherwise an 'extended' placement costs quantizeWith a second one).
   */
  placement?: Placement;
}

/** What the float model looks like on the data: computed once, reused by every configuration. */
export interface Prepared {
  loaded: LoadedModel;
  /** Constants hoisted, every node named: the float reference. */
  float: ModelProto;
  data: Dataset;
  /** Largest batch any pass may use: the fixed batch dim, the requested size, else 32 capped by the activations a run touches (workingSetBatch). */
  batchSize: number;
  /** The batch size the model's inputs fix (their first dim), when they fix one. */
  fixedBatch?: number;
  /** Bytes per sample of each float tensor measured so far (sizes every later pass's batches). */
  tensorBytes: Map<string, number>;
  /** Thresholds per tensor, per (bits, signedness, percentile): sweeps compute each once. */
  thresholdCache: Map<string, TensorThresholds>;
  /** Per tensor: streamed statistics (only float32 tensors). */
  stats: Map<string, ActivationStats>;
  /** Tensor name -> is float32 (from onnxruntime's own output types). */
  floatTensors: Set<string>;
  /** Element type onnxruntime reported for every tensor seen (e.g. 'float32', 'int64'). */
  tensorTypes: Map<string, string>;
  /** Rank of every tensor measured (onnxruntime's dims): the comparison models reduce by rank. */
  tensorRanks: Map<string, number>;
  outputs: string[];
  warnings: Warning[];
  timings: Record<string, number>;
  /** Qualified node name (body nodes: `If_0/then_branch/Conv_3`) -> the node's name in the file. */
  nodeNames: Map<string, string>;
  /** Element type of every value at any depth, inferred from the graph (lifting out of If branches needs it). */
  elemTypes: Map<string, number>;
  /** Tensors inside bodies that cannot be read out (onnx/lift.ts), with the reason. */
  unreadable: Map<string, string>;
}

/** A configuration applied to the prepared float statistics: plan, params, models. */
export interface Quantized {
  config: QuantConfig;
  /** The BN-folded working graph the plan refers to. */
  prepared: ModelProto;
  folds: FoldRecord[];
  plan: QuantPlan;
  actParams: Map<string, QuantParams>;
  thresholds: Map<string, TensorThresholds>;
  /**
   * Set when the grids are an already-quantized model's own (engine/quantized/): what the file
   * holds and what it is compared against. Its weights' codes ride on the plan's layers (`fixed`).
   */
  quantization?: ModelQuantization;
}

export interface EvaluateOptions extends RunOptions {
  /** Compare with the integer-only reference per layer (default true). */
  integerDiff?: boolean;
  /**
   * Bytes of codes and float outputs per batch the comparison runs may expose for the code-level
   * detail (default detail.ts EXPOSE_BYTES); above it the detail runs its own sessions, in groups
   * of layers under that budget.
   */
  detailBytes?: number;
  /**
   * Samples (the first ones) each layer's isolated error is measured on: default as many as the
   * code-level detail covers, at least 16 (evaluate.ts isolatedSamplesFor).
   */
  isolatedSamples?: number;
  /** Run per-layer sensitivity; default true. */
  sensitivity?: boolean;
  /** Samples used for sensitivity (default: sized from a pilot's statistics, at most 256). */
  sensitivitySamples?: number;
  /** Also measure "every layer but this one quantized" (one whole-model run per layer). */
  allButThis?: boolean;
  /** The deployment CPU for hazards that depend on it (u8 x s8 saturation without VNNI); default this machine. */
  targetCpu?: 'this' | 'vnni' | 'no-vnni';
  /** The user's metric (`--metric metric.mjs`): scored per sample on float and integer outputs. */
  metric?: UserMetric;
  /**
   * Fill `report.diagnosis`: culprits, causes and a measured fix within the budget: `maxDrop` in the
   * primary loss's unit, `minSqnrDb` for SQNR-judged models (defaults: verdict.ts defaultBudget).
   */
  diagnose?: { maxDrop?: number; minSqnrDb?: number; maxMeasurements?: number };
}
