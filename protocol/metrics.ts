/**
 * Statistics and output metrics as the report carries them: every accuracy figure with its
 * interval, per-output comparisons for any model, and the metric a run is judged by. Declared here
 * once; the engine computes them (engine/analysis/statistics.ts, outputMetrics.ts, primaryMetric.ts,
 * userMetric.ts), the webview shows them.
 */

/** A point estimate with a two-sided confidence interval (plain JSON). */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** How the interval was computed, e.g. "wilson", "newcombe-10", "bca-bootstrap 2000 seed 1". */
  method: string;
}

/** Mean of a per-sample series with its interval. */
export interface MeanSummary extends Interval {
  /** Finite values used. */
  n: number;
  /** Sample standard deviation of the values (n - 1 denominator); 0 for n < 2. */
  sd: number;
  /** Values left out because they were NaN or infinite (their cause must be reported). */
  nonFinite: number;
}

/** Outcomes of two classifiers on the same samples: counts of the four right/wrong combinations. */
export interface PairedTable {
  both: number;
  /** b: the reference is right, the candidate wrong. */
  referenceOnly: number;
  /** c: the candidate is right, the reference wrong. */
  candidateOnly: number;
  neither: number;
}

/** Accuracy of a reference and a candidate classifier on the same samples, and the drop between them. */
export interface PairedAccuracy {
  n: number;
  table: PairedTable;
  /** Reference (float) accuracy, fraction, Wilson interval. */
  reference: Interval;
  /** Candidate (quantized) accuracy, fraction, Wilson interval. */
  candidate: Interval;
  /** 100 x (reference - candidate) in points, Newcombe method 10 interval. */
  dropPoints: Interval;
  /** Exact McNemar p-value: how surprising these discordant pairs are if both were equally accurate. */
  mcnemarP: number;
  /** Standard deviation of the per-sample difference (1, 0 or -1) x 100: plans sample sizes. */
  sdPoints: number;
}

export interface ClassifierSummary {
  classes: number;
  /** Score rows per sample: 1 for [N, C]; more for [N, ..., C] with classAxis "last". */
  rowsPerSample: number;
  scores: 'logits' | 'probabilities';
  /** Why this output was treated as a classifier. */
  rule: string;
  /** Fraction of samples (or of rows, averaged per sample) whose quantized top-1 equals float's. */
  top1Agreement: Interval;
  /** Fraction whose float top-1 class is among the quantized top k (only when classes > k). */
  topK: { k: number; agreement: Interval } | null;
  /** KL(softmax(float) || softmax(quantized)) in nats, mean over samples (rows averaged per sample). */
  klNats: MeanSummary;
  /** Rows whose float scores hold a NaN: no float prediction, left out of agreement. */
  invalidFloatRows: number;
  /** Float and quantized top-1 against the labels (one row per sample and labels in range only). */
  labelled: PairedAccuracy | null;
}

export interface OutputSummary {
  name: string;
  samples: number;
  /** Shape of one sample's output (batch axis removed) as first seen. */
  sampleShape: number[];
  /** Element pairs compared (both finite). */
  elements: number;
  /** 20 log10(||float|| / ||float - quantized||) over all samples; -Infinity if quantized is non-finite where float is not. */
  sqnrDb: number;
  cosine: number;
  maxAbsError: number;
  mse: number;
  /** Mean over samples of each sample's SQNR in dB (capped at SQNR_CAP_DB), with its interval. */
  perSampleSqnrDb: MeanSummary;
  /** Samples whose quantized output equals float exactly. */
  exactSamples: number;
  /** Element counts: float NaN/Inf (not comparable), quantized NaN/Inf where float is finite, identical infinities. */
  nonFinite: { float: number; quantized: number; matched: number };
  classifier: ClassifierSummary | null;
  /** One line each, for the report and the terminal. */
  warnings: string[];
}

export type PrimaryKind = 'user' | 'top1' | 'agreement' | 'sqnr';

export interface PrimaryMetric {
  kind: PrimaryKind;
  /** Output the metric is read from; null for the user metric (it sees every output). */
  output: string | null;
  /** Human name, e.g. "top-1 accuracy on output 'logits'". */
  description: string;
  /** The quantized model's value: a fraction for top1/agreement, dB for sqnr, the metric's unit for user. */
  value: Interval;
  /** The float model's own value on the same samples (top-1 accuracy, agreement 1, the user metric's float score); null for sqnr. */
  floatValue?: number | null;
  /** Float -> quantized loss, higher is worse, with its interval; null for sqnr. */
  loss: Interval | null;
  /** Unit of the loss: "points" or "metric units". */
  lossUnit: string;
  /** Per-sample standard deviation of the loss (for budgetVerdict's sample-size estimate), if known. */
  lossSd: number | null;
  /** Samples behind the numbers. */
  n: number;
  /** Why this metric was chosen, one sentence. */
  rationale: string;
  warnings: string[];
}

export interface UserMetricSummary {
  name: string;
  file: string;
  higherIsBetter: boolean;
  /** Mean score of the quantized model. */
  quantized: MeanSummary;
  /** Mean score of the float model (its outputs scored against themselves and the label). */
  float: MeanSummary;
  /** How much worse the quantized model scores, per sample, paired: float - quantized when higher is better, else quantized - float. */
  loss: MeanSummary;
}
