/**
 * The QuantLens analysis report: the JSON the CLI writes with --report and the engine sends to the
 * extension and webview. Documented field by field in docs/report-schema.md; bump
 * REPORT_SCHEMA_VERSION on any incompatible change.
 */

import type { Interval, OutputSummary, PrimaryMetric } from './metrics';

export type { Interval, MeanSummary, OutputSummary, PrimaryMetric } from './metrics';

export const REPORT_SCHEMA_VERSION = 2;

export type CalibrationMethod = 'minmax' | 'ema' | 'percentile' | 'entropy' | 'mse';
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = ['minmax', 'ema', 'percentile', 'entropy', 'mse'];

export type PresetName = 'tensorrt' | 'ort-cpu' | 'qnn' | 'power-of-two';

/** Which nodes get quantized: only compute (Conv/Gemm/MatMul) or also Add/Mul/Concat/pooling. */
export type Placement = 'compute' | 'extended';

export interface TensorSchemeConfig {
  bits: 4 | 8 | 16;
  signed: boolean;
  symmetric: boolean;
  narrowRange: boolean;
  powerOfTwo: boolean;
}

/**
 * A change to one activation tensor on top of the configuration: its calibration method, an explicit
 * range (a calibration table, a what-if threshold), or its bits.
 */
export interface TensorOverride {
  tensor: string;
  calibration?: CalibrationMethod;
  percentile?: number;
  /** Use exactly this range (real units) instead of any calibration method. */
  range?: Range;
  bits?: 4 | 8 | 16;
}

/** A change to one layer on top of the configuration: its weights' bits and granularity, its activations' bits. */
export interface LayerOverride {
  node: string;
  weightBits?: 4 | 8 | 16;
  perChannel?: boolean;
  /** Bits of this layer's activation inputs and output. */
  activationBits?: 4 | 8 | 16;
}

export interface QuantConfig {
  preset: PresetName;
  calibration: CalibrationMethod;
  /** Percentile for the percentile method, e.g. 99.99. */
  percentile: number;
  weights: TensorSchemeConfig & { perChannel: boolean };
  activations: TensorSchemeConfig;
  placement: Placement;
  /** Node names kept in float. */
  exclude: string[];
  foldBatchNorm: boolean;
  /** Per-tensor changes (a per-layer plan: diagnosis fixes, calibration tables, what-if). */
  tensorOverrides?: TensorOverride[];
  /** Per-layer changes (mixed bits, granularity). */
  layerOverrides?: LayerOverride[];
}

export interface Range {
  lo: number;
  hi: number;
}

export interface ErrorMetrics {
  /** 20*log10(||x|| / ||x - y||) over all samples; Infinity when identical. */
  sqnrDb: number;
  cosine: number;
  mse: number;
  maxAbs: number;
}

export interface TensorReport {
  name: string;
  kind: 'activation' | 'weight';
  min: number;
  max: number;
  count: number;
  /** Set when the tensor is degenerate: all zeros, constant, NaN/Inf present, or never seen. */
  degenerate: 'non-finite' | 'empty' | 'all-zero' | 'constant' | null;
  nanCount: number;
  infCount: number;
  /** Signed histogram for display: counts[i] covers [edges[i], edges[i+1]). */
  histogram: { edges: number[]; counts: number[] };
  /** Every method's range in real units (activations); weights carry only minmax. */
  thresholds: Partial<Record<CalibrationMethod, Range>>;
  /** KL divergence per candidate threshold (entropy method), for plotting. */
  klCurve?: { threshold: number; value: number }[];
  /**
   * The quantization actually used: from the configured method and scheme, or (`deployed`) the
   * grid an already-quantized model holds, read from the file; `method` then names no choice.
   */
  chosen: { method: CalibrationMethod; range: Range; scale: number | number[]; zeroPoint: number | number[]; deployed?: boolean } | null;
  /**
   * Share of values whose code saturates (beyond the grid by more than half a step): exact for
   * weights; for activations read from the calibration histogram of the evaluation data, exact
   * but for the bin at each grid edge, split in proportion (clipRateBounds bound it).
   */
  clipRate: number;
  /** Activations: the true clip rate lies in [low, high] (the edge bins counted all in or all out). */
  clipRateBounds?: { low: number; high: number };
  /** Activations: how much of the chosen grid the evaluation data uses (absent for grids over 16 bits). */
  grid?: GridUse;
  /** Per-channel ranges for weights quantized per channel (after BatchNorm folding when folded). */
  channelRanges?: Range[];
  /** Per-channel ranges of the weight before BatchNorm was folded into it. */
  channelRangesBeforeFold?: Range[];
}

/** How much of an activation's grid the evaluation data uses. */
export interface GridUse {
  /** Codes on the grid (256 for 8 bits). */
  codes: number;
  /** Codes the data quantized to at least once. */
  usedCodes: number;
  /** Share of codes never used: 1 - usedCodes / codes. */
  unusedShare: number;
  /** Share of the grid's real range that [observed min, observed max] covers (clipped to the grid). */
  spanShare: number;
  /** Observed min and max on the evaluation data. */
  observed: Range;
}

/** Integer codes of two executions compared element by element (in LSB, relative to each zero point). */
export interface DiffStats {
  mismatchRate: number;
  maxLsb: number;
  /** Signed difference (a - b) in LSB, clamped to +-8 at the ends. */
  lsbHistogram: { lsb: number[]; counts: number[] };
  /**
   * Root cause per mismatching element, where it can be determined: 'accumulator-overflow',
   * 'requantization' (float multiply vs fixed point), 'rounding-mode' (half-even vs
   * half-away-from-zero), 'u8s8-saturation', 'zero-point', 'float-accumulation', 'saturation',
   * 'approximation' (integer nonlinearity), 'unexplained'.
   */
  causes: { cause: string; count: number }[];
}

/** The bit-level comparison of simulation, the integer-only reference and onnxruntime's kernels. */
export interface IntegerDiff {
  referenceVsOrt: DiffStats;
  simulatedVsOrt: DiffStats;
  simulatedVsReference: DiffStats;
  /** Mismatch rate vs onnxruntime if the simulation rounded half-even (ONNX), half away from zero, or stochastically. */
  roundingModes: { halfEven: number; halfAwayFromZero: number; stochastic: number };
  /**
   * The reference requantizes acc x M0 x 2^-n with ONE rounding (TFLite single-rounding mode,
   * CMSIS-NN); gemmlowp's classic path rounds twice (high multiply, then shift). `otherVsOrt` is
   * the share of codes where the variant not used differs from onnxruntime.
   */
  requantization: { reference: 'single-rounding' | 'double-rounding'; otherVsOrt: number };
  /** x86 without VNNI: u8 x s8 pair sums that would saturate int16, and output codes that would change. */
  u8s8: { applicable: boolean; saturatedPairs: number; changedOutputs: number; elements: number };
  accumulatorOverflows: number;
  elements: number;
  /** Samples compared (the first ones of the data). */
  samples: number;
  /**
   * Share of those samples' output rows compared, in a stratified random sample: below 1 when one
   * sample of this layer is over its part of the reference's budget. Absent in reports written
   * before it was per layer: integerDiffShare then.
   */
  share?: number;
}

export interface LayerErrors {
  simulated: ErrorMetrics;
  integer: ErrorMetrics;
}

export interface LayerReport {
  node: string;
  op: string;
  /** Tensor whose error is measured (the node's output). */
  output: string;
  inputs: string[];
  /** Accumulated error: whole model quantized, float vs simulated (fake-quant) execution. */
  simulated: ErrorMetrics;
  /** Accumulated error: whole model quantized, float vs onnxruntime's integer kernels. */
  integer: ErrorMetrics;
  /** Only this layer quantized, its inputs taken from the float model. */
  isolated: LayerErrors;
  /** Integer codes where the simulated and integer executions disagree (share of elements). */
  simVsIntMismatch: number;
  /** Max difference between simulated and integer codes, in LSB. */
  simVsIntMaxLsb: number;
  /**
   * Distribution of the integer execution's error (integer - float) at this layer's output, in
   * units of the output scale (LSB), rounded and clamped to +-16: counts[i] is for lsb[i].
   */
  errorHistogram: { lsb: number[]; counts: number[] };
  /** Simulated vs integer-only reference vs onnxruntime, in integer codes (Conv/Gemm/MatMul layers; null otherwise). */
  integerDiff: IntegerDiff | null;
  /** The fused kernel onnxruntime ran for this node in the analysis's integer session, or null (stayed float). */
  integerKernel: string | null;
  /**
   * The kernel onnxruntime CPU runs for this node in the file `quantize` writes (the configured
   * grid, no analysis taps), or null: it stays float between DequantizeLinear and QuantizeLinear.
   */
  deployedKernel: string | null;
  sensitivity: {
    /**
     * Model output when ONLY this layer is quantized, on `onlyThis.samples` samples: at most
     * `sensitivityInfo.samples`, fewer for a layer that settled after the pilot (its reason says so).
     */
    onlyThis: ModelOutputMetrics;
    /**
     * The primary metric when ONLY this layer is quantized: its loss with interval (null for SQNR)
     * and the primary output's mean per-sample SQNR with interval (absent in older reports).
     */
    onlyThisPrimary?: { loss: Interval | null; sqnrDb: Interval } | null;
    /** Model output when every layer BUT this one is quantized; null unless asked for. */
    allButThis: ModelOutputMetrics | null;
    /**
     * Set when the layer stopped after the pilot: its per-sample output SQNR minus that of the
     * most damaging layer (`leader`) on the same samples, a paired 95% interval lying above 3 dB (an
     * estimate of +Infinity: it reproduced every pilot sample exactly).
     */
    aboveLeader?: { leader: string; diffDb: Interval };
    /** Rank by onlyThis output SQNR, 1 = most damaging. */
    rank: number;
  } | null;
}

export interface ModelOutputMetrics {
  top1: number | null;
  agreement: number;
  outputSqnrDb: number;
  /** 95% Wilson intervals of top1 and agreement, and the samples behind them (absent in older reports). */
  top1Interval?: Interval | null;
  agreementInterval?: Interval;
  samples?: number;
}

export interface AccuracyReport {
  float: { top1: number | null; agreement: 1; top1Interval?: Interval | null };
  simulated: ModelOutputMetrics;
  integer: ModelOutputMetrics;
  /** Labelled top-1 drop float -> integer in points (percent), or null without labels. */
  dropPoints: number | null;
  /** The drop's 95% interval (paired: Newcombe method 10) and the exact McNemar p-value; null without labels. */
  dropInterval?: Interval | null;
  mcnemarP?: number | null;
}

/** The machine the integer kernels ran on, and the CPU the user targets (u8s8 saturation depends on it). */
export interface Platform {
  arch: string;
  cpu: string;
  /** This CPU has AVX-512 VNNI or AVX-VNNI: u8 x s8 pairs never saturate in int16 here. */
  vnni: boolean;
  /** The deployment CPU the diagnosis reasons about: 'this' (the machine above), 'vnni' or 'no-vnni'. */
  target: 'this' | 'vnni' | 'no-vnni';
}

/** Why a culprit layer hurts, from documented rules (docs/diagnosis.md). */
export type CauseCode =
  | 'over-clipping'
  | 'outlier-range'
  | 'too-few-bits'
  | 'per-tensor-weights'
  | 'wasted-sign'
  | 'integer-divergence'
  | 'u8s8-saturation'
  | 'inherited'
  /** The layer does damage by itself but no documented rule explains why. */
  | 'unexplained';

export interface Cause {
  cause: CauseCode;
  /** One sentence with the numbers, e.g. "the entropy threshold 0.514 clips 26.7% of values (range -7.55..5.81)". */
  summary: string;
  /** The numbers the rule used, by name. */
  evidence: Record<string, number | string | boolean>;
}

export interface Culprit extends Cause {
  node: string;
  op: string;
  /** The tensor the cause is about (an activation or the layer's weight). */
  tensor: string;
  rank: number;
  /** The damage the layer does BY ITSELF: isolated SQNR and, when measured, only-this loss on the primary metric. */
  damage: { isolatedSqnrDb: number; onlyThisSqnrDb: number | null; onlyThisLoss: Interval | null };
  /** Weaker causes that also fire for this layer. */
  otherCauses: Cause[];
}

export interface FixChange {
  kind: 'calibration' | 'range' | 'activation-bits' | 'weight-bits' | 'per-channel' | 'float';
  node?: string;
  tensor?: string;
  value: string | number | boolean;
}

export interface Fix {
  description: string;
  changes: FixChange[];
  /** The full configuration with the fix applied: what "Apply" analyzes and `quantize` writes. */
  config: QuantConfig;
  /**
   * Measured, not predicted: the primary metric with the fix, integer execution. `drop` is the loss
   * (for SQNR-judged models: the mean per-sample SQNR in dB), `interval` its 95% interval.
   */
  measured: {
    drop: number;
    interval: Interval | null;
    floatLayers: number;
    metric: string;
    samples: number;
    verdict: string;
    /** budgetVerdict's kind: within-noise, within-budget, over-budget, cannot-tell. */
    verdictKind?: string;
    /** Layers whose quantization the fix changes (calibration, bits, granularity or float). */
    layersTouched?: number;
    /** Paired against the unfixed configuration on the same samples: how much loss the fix wins back (positive = better). */
    gain?: Interval | null;
  };
}

export interface Diagnosis {
  /** The loss float -> integer on the primary metric, its interval and what it means against the budget. */
  drop: { value: number; interval: Interval | null; unit: string; metric: string; verdict: string };
  budget: number;
  /** Layers that do damage themselves, most damaging first. */
  culprits: Culprit[];
  /** Layers with a large accumulated error but little of their own: they inherit it from upstream. */
  victims: { node: string; accumulatedSqnrDb: number; isolatedSqnrDb: number; from: string | null; cause?: Cause }[];
  /** The smallest measured change that meets the budget, or null (see `notes`). */
  fix: Fix | null;
  /** Every candidate measured, best first. */
  candidates: Fix[];
  /** Every layer by the damage it does itself (1 = most): what badges and ranks show. */
  ranking?: { node: string; rank: number; tier: number; culprit: boolean }[];
  notes: string[];
}

export interface Warning {
  code: string;
  message: string;
  tensor?: string;
  node?: string;
}

/** How a model file is quantized: not at all, QDQ, QOperator, or both. */
export type ModelQuantizationKind = 'float' | 'qdq' | 'qoperator' | 'mixed';

/**
 * What QuantLens found in the model file and what it compared it against. For a model that was
 * already quantized, every activation's `chosen` grid and every weight's codes are the model's own
 * (read from the file, nothing recalibrated), and the float reference is its float twin or the
 * user's float model.
 */
export interface ModelQuantization {
  kind: ModelQuantizationKind;
  /** Quantized operators in the file, counted (e.g. "QuantizeLinear": 12, "com.microsoft.QLinearConv": 5). */
  ops: Record<string, number>;
  /**
   * The float reference: 'self' (a float model), 'twin' (the file with its weights dequantized,
   * Q/DQ removed and integer operators turned back into float ones) or 'user' (--float).
   */
  reference: 'self' | 'twin' | 'user';
  /** The float model given with --float. */
  floatModel?: string;
  /** What the reference is and is not, in words. */
  notes: string[];
  /** --float: the deployed model's quantized tensors and layers not found in the float model, by name. */
  unmatched?: { tensors: string[]; layers: string[]; weights: string[] };
  /** Activation tensors and layers the deployed grids cover. */
  grids?: { activations: number; weights: number };
}

/**
 * One model input as the analysis fed it: `sample` (one row of the data per sample; shape without
 * the sample axis), `constant` (the same `value` in every run; its full shape), `state` (carried
 * from output `from` of the previous sample, zeros before the first; shape of one sample's state,
 * stacked along `batchAxis` in a batch).
 */
export interface InputFeedReport {
  name: string;
  shape: number[];
  kind?: 'sample' | 'constant' | 'state';
  /** constant: its values (at most the first 64). */
  value?: number[];
  /** state: the model output that carries it. */
  from?: string;
  batchAxis?: number | null;
  /** option: --input/--state/--input-shape or quantlens.json; data: the data file holds it; inferred: from shapes and names. */
  decidedBy?: 'data' | 'option' | 'inferred';
}

export interface Report {
  schemaVersion: number;
  tool: { name: 'quantlens'; version: string; onnxruntime: string };
  createdAt: string;
  model: { path: string; sha256: string; opset: number; producer: string; nodes: number; quantization?: ModelQuantization };
  data: {
    source: string;
    synthetic: boolean;
    labels: boolean;
    /** Every model input and how it was fed (older reports: sample inputs only, name and shape). */
    inputs: InputFeedReport[];
    /** Present when some input is a state: where every pass takes the state fed to each sample. */
    states?: 'float-model';
  };
  samples: number;
  config: QuantConfig;
  tensors: TensorReport[];
  layers: LayerReport[];
  accuracy: AccuracyReport;
  /** Every model output compared float vs integer (SQNR, cosine, max error; top-k and KL for class scores). */
  outputs?: OutputSummary[];
  /** The metric this run is judged by (labelled top-1, agreement, output SQNR or the user's metric). */
  primaryMetric?: PrimaryMetric | null;
  /** Culprits, causes and a measured fix; null when not computed. */
  diagnosis?: Diagnosis | null;
  platform?: Platform;
  /** Kernels onnxruntime actually ran in the integer session (from its optimized graph). */
  integerKernels: Record<string, number>;
  /** Kernels onnxruntime CPU runs for the file `quantize` writes (from its optimized graph). */
  deployedKernels: Record<string, number>;
  /** How the integer session encoded activations (see integerEncoding in engine/analysis/kernels.ts). */
  integerEncoding: string;
  /**
   * Samples the bit-exact integer reference saw on every layer it runs on (it is exact int32 work
   * in JS: bounded). Cheaper layers get more of its budget, up to detailSamples: each layer's
   * integerDiff.samples is its own count.
   */
  integerDiffSamples: number;
  /**
   * Share of the output rows (Conv: positions, Gemm/MatMul: rows) of those samples the reference
   * compared on the layer it saw least of, in a stratified random sample: 1 unless a single sample
   * exceeds its budget (a 512x512 model). Each layer's integerDiff.share and .elements say what was
   * compared there.
   */
  integerDiffShare?: number;
  /**
   * Samples behind the code-level detail (layers' simVsIntMismatch, simVsIntMaxLsb, errorHistogram):
   * the first ones, as many as a budget of compared elements allows. Error sums cover all samples.
   */
  detailSamples?: number;
  /**
   * Samples behind every layer's isolated error (`isolated`: only that layer quantized, fed the
   * float model's inputs): the first ones, as many as the detail covers but at least 16 (all when
   * there are fewer). The accumulated errors and the model outputs cover all samples. Absent in
   * reports from before isolated errors were sampled (they covered all).
   */
  isolatedSamples?: number;
  /** How sensitivity was measured: samples used and why that many. */
  sensitivityInfo: { samples: number; method: string; reason: string } | null;
  warnings: Warning[];
  timings: Record<string, number>;
}

// ------------------------------------------------------------------------------------ compare

/** One quantized version's side of a layer in a comparison. */
export interface CompareSide {
  /** The deployed grid of the layer's output, and of its quantized activation inputs (null: float). */
  output: { tensor: string; scale: number; zeroPoint: number; clipRate: number; unusedShare: number | null } | null;
  inputs: { tensor: string; scale: number; zeroPoint: number; clipRate: number }[];
  /** Scale(s) of the weight (one per channel when per channel), or null when it is not quantized. */
  weightScale: number | number[] | null;
  /** Errors against the shared float reference (integer execution). */
  isolatedSqnrDb: number;
  accumulatedSqnrDb: number;
  /** Model output SQNR with only this layer quantized, when sensitivity ran. */
  onlyThisSqnrDb: number | null;
  /** The samples that figure rests on (sensitivity sizes it per layer: 8 for a layer its pilot cleared, all for the contenders). */
  onlyThisSamples?: number | null;
}

export interface CompareLayer {
  node: string;
  op: string;
  /** Null when the layer is not quantized in that version. */
  a: CompareSide | null;
  b: CompareSide | null;
  /** Weight codes that differ between the versions, and how many there are (null: not comparable). */
  weightCodes: { differ: number; total: number } | null;
  /**
   * |isolated relative error power of A - of B|, where relative error power = 10^(-SQNR/10) (the
   * error's power over the signal's): the ranking key, how differently the two versions damage
   * this layer by itself.
   */
  isolatedErrorDiff: number;
  /** Difference (A - B) of the only-this-layer output SQNR, when sensitivity ran for both. */
  onlyThisDiffDb: number | null;
  /** 1 = the layer that differs most. */
  rank: number;
}

export interface CompareReport {
  schemaVersion: number;
  kind: 'compare';
  a: { path: string; sha256: string; quantization: ModelQuantization | null; accuracy: AccuracyReport };
  b: { path: string; sha256: string; quantization: ModelQuantization | null; accuracy: AccuracyReport };
  /** The float reference both are measured against: the twin of A, or the user's float model. */
  reference: { kind: 'twin-of-a' | 'user'; path: string };
  data: { source: string; synthetic: boolean; labels: boolean };
  samples: number;
  /** Ranked, the layer that differs most first. */
  layers: CompareLayer[];
  mostDifferent: string | null;
  notes: string[];
}

// ------------------------------------------------------------------------------------ sweeps

export interface SweepEntry {
  /** Index in `configs`. */
  id: number;
  /** Short human label, e.g. "W8/ch A8 sym percentile 99.99". */
  label: string;
  config: QuantConfig;
  /** Whole-model metrics of the fake-quant and the integer execution. */
  accuracy: { float: number | null; simulated: ModelOutputMetrics; integer: ModelOutputMetrics };
  /**
   * Integer-execution loss on the primary metric: points for top-1 and agreement, the user metric's
   * unit, or MINUS the mean output SQNR in dB for SQNR-judged models (lower is better for every kind).
   */
  drop: number;
  dropBasis: 'top1' | 'agreement' | 'user' | 'sqnr';
  /** The primary metric's loss interval (null for SQNR) and value interval (absent in older sweeps). */
  loss?: Interval | null;
  value?: Interval;
  agreement: number;
  outputSqnrDb: number;
  /** Size of the written QDQ model in bytes. */
  sizeBytes: number;
  /** Not dominated by another configuration on (drop, sizeBytes). */
  pareto: boolean;
  /** Pareto-front configurations (ids) this one cannot be told apart from on these samples (paired, 95%). */
  withinNoiseOf?: number[];
  evalMs: number;
  /** Set when this configuration could not run (e.g. a scheme the runtime rejects). */
  error?: string;
}

export interface SweepReport {
  schemaVersion: number;
  kind: 'sweep';
  model: { path: string; sha256: string };
  data: { source: string; synthetic: boolean; labels: boolean };
  samples: number;
  floatTop1: number | null;
  configs: SweepEntry[];
  /** prepareMs: the float calibration pass, done once; then per-configuration times. */
  timings: { prepareMs: number; firstConfigMs: number; meanExtraConfigMs: number };
}

// ------------------------------------------------------------------------- mixed precision

export interface MixedPrecisionStep {
  /** Layers kept in float at this step (cumulative). */
  kept: string[];
  /** The primary metric's loss at this step (for SQNR-judged models: MINUS the mean output SQNR in dB, so lower is better for every kind). */
  drop: number;
  agreement: number;
  outputSqnrDb: number;
  /** Every change of the plan at this step: calibration, bits, granularity, float (absent in older results). */
  changes?: FixChange[];
  /** The interval of `drop`. */
  interval?: Interval | null;
  /** budgetVerdict's sentence for this step. */
  verdict?: string;
}

export interface MixedPrecisionResult {
  schemaVersion: number;
  kind: 'mixed-precision';
  model: { path: string; sha256: string };
  config: QuantConfig;
  /** The budget in the primary loss's unit (for SQNR-judged models: minus the SQNR floor in dB, matching `drop`). */
  maxDrop: number;
  /** The primary metric's kind (older results: 'top1' or 'agreement'). */
  dropBasis: 'top1' | 'agreement' | 'user' | 'sqnr';
  /** The curve: the plan after each step, starting with nothing changed. */
  steps: MixedPrecisionStep[];
  /** Final exclusion list (empty when plain quantization already met the budget). */
  exclude: string[];
  /** The final plan meets the budget (certified by its interval, or on the estimate when the samples cannot certify any result). */
  met: boolean;
  /** Per-layer damage when quantized alone (the order the search visits layers). */
  ranking: { node: string; drop: number; outputSqnrDb: number }[];
  /** The primary metric's description, and where the budget came from. */
  metric?: string;
  budgetWhy?: string;
  /** The final plan is within budget with 95% confidence (not only on the estimate). */
  certified?: boolean;
  /** The final plan: its changes, full configuration and measured verdict. */
  fix?: Fix | null;
  notes?: string[];
  /** Written files (the QDQ model, quantlens.json), when asked to write. */
  written?: { model?: string; settings?: string };
}

// ------------------------------------------------------------------------------------ gate

/** `quantlens gate`: one configuration judged on the primary metric, with its interval, against a budget. */
export interface GateResult {
  schemaVersion: number;
  kind: 'gate';
  model: { path: string; sha256: string };
  config: QuantConfig;
  samples: number;
  /** In the primary loss's unit; for SQNR-judged models the floor in dB. */
  budget: number;
  budgetWhy: string;
  /** A budget option given for the other kind of metric (--max-drop on an SQNR-judged model), and why it was ignored. */
  budgetIgnored?: string;
  /** The gated file was already quantized (its own grids, judged as deployed): its kind. */
  deployed?: 'qdq' | 'qoperator' | 'mixed';
  primaryMetric: PrimaryMetric;
  outputs: OutputSummary[];
  /** within-noise / within-budget pass; over-budget fails; cannot-tell fails unless allowUncertain. */
  verdict: { kind: 'within-noise' | 'within-budget' | 'over-budget' | 'cannot-tell'; text: string; samplesNeeded: number | null };
  allowUncertain: boolean;
}
