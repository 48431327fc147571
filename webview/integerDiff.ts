// What the "Simulated vs integer" view shows: the three code-level comparisons of a layer
// (simulation, QuantLens's integer-only reference, onnxruntime's kernels), their root causes in
// plain language, and the hazards worth flagging in the layer table. No DOM here so unit tests can
// import it.
import type { DiffStats, IntegerDiff, LayerReport } from '../protocol/report';

/** Reports written before integerDiff existed lack the field: undefined reads like null. */
export function integerDiffOf(layer: LayerReport): IntegerDiff | null {
  return layer.integerDiff ?? null;
}

export type ComparisonKey = 'simulatedVsOrt' | 'referenceVsOrt' | 'simulatedVsReference';

export interface Comparison {
  key: ComparisonKey;
  /** Card title and chart legend. */
  title: string;
  /** The subtraction the LSB histogram counts (a − b). */
  short: string;
  /** One line on what is compared. */
  description: string;
}

/** Card and chart order: what users see first is what they run (simulation vs onnxruntime). */
export const COMPARISONS: readonly Comparison[] = [
  {
    key: 'simulatedVsOrt',
    title: 'Simulated vs onnxruntime',
    short: 'simulated − onnxruntime',
    description: 'The fake-quant simulation against the integer kernels onnxruntime ran.',
  },
  {
    key: 'referenceVsOrt',
    title: 'Integer reference vs onnxruntime',
    short: 'reference − onnxruntime',
    description: 'QuantLens’s integer-only reference (exact int32 sums, fixed-point requantization) against onnxruntime.',
  },
  {
    key: 'simulatedVsReference',
    title: 'Simulated vs integer reference',
    short: 'simulated − reference',
    description: 'The simulation against the integer-only reference: what float arithmetic alone changes.',
  },
];

export type CauseKind = 'hazard' | 'arithmetic' | 'unknown';

export interface CauseInfo {
  label: string;
  /** One line, plain language: why two executions disagree for this reason. */
  explanation: string;
  /** hazard: values clipped or wrapped (can be many LSB off); arithmetic: a different but legitimate rounding. */
  kind: CauseKind;
}

const CAUSES: Record<string, CauseInfo> = {
  'accumulator-overflow': {
    label: 'accumulator overflow',
    explanation: 'The int32 sum of products left the int32 range and wrapped around: the code can be off by far more than 1 LSB.',
    kind: 'hazard',
  },
  requantization: {
    label: 'requantization',
    explanation:
      'onnxruntime multiplies the int32 accumulator by a float32 scale; the reference uses a fixed-point multiplier M0·2^-n (TFLite single rounding): they round differently on ties and at float32 precision limits.',
    kind: 'arithmetic',
  },
  'rounding-mode': {
    label: 'rounding mode',
    explanation: 'One side rounds halves to even (the ONNX rule), the other away from zero: values exactly halfway between two codes land one code apart.',
    kind: 'arithmetic',
  },
  'u8s8-saturation': {
    label: 'u8s8 saturation',
    explanation: 'u8 × s8 pairs summed in int16 saturate on x86 CPUs without VNNI (onnxruntime’s u8s8 kernels); the exact sum does not.',
    kind: 'hazard',
  },
  'zero-point': {
    label: 'zero point',
    explanation: 'The zero point is applied at a different step (e.g. folded into the bias), so values near a rounding boundary fall on different sides.',
    kind: 'arithmetic',
  },
  'float-accumulation': {
    label: 'float accumulation',
    explanation: 'The simulation sums products in float32, which rounds away low bits that the exact int32 sum keeps.',
    kind: 'arithmetic',
  },
  saturation: {
    label: 'saturation',
    explanation: 'The result fell outside the code range and one side clamped it to the end of the grid at a different step than the other.',
    kind: 'hazard',
  },
  approximation: {
    label: 'approximation',
    explanation: 'An integer approximation of a nonlinearity (lookup table or polynomial) stands in for the exact float function.',
    kind: 'arithmetic',
  },
  unexplained: {
    label: 'unexplained',
    explanation: 'None of the known causes accounts for the difference: worth a closer look (or a bug report).',
    kind: 'unknown',
  },
};

/** Label, explanation and kind of a root cause; names added to the engine later still read sensibly. */
export function causeInfo(cause: string): CauseInfo {
  return Object.hasOwn(CAUSES, cause)
    ? CAUSES[cause]
    : { label: cause.replace(/[-_]+/g, ' '), explanation: 'A cause this view does not know yet: see the analysis documentation.', kind: 'unknown' };
}

/** Causes with a count, largest first (ties by name), so the chips read in order of weight. */
export function sortedCauses(stats: DiffStats): { cause: string; count: number }[] {
  return stats.causes.filter((c) => c.count > 0).sort((a, b) => b.count - a.count || (a.cause < b.cause ? -1 : a.cause > b.cause ? 1 : 0));
}

/** Every cause named by any of the three comparisons, in first-seen order of the cards: the glossary. */
export function causesInUse(diff: IntegerDiff): string[] {
  const seen: string[] = [];
  for (const c of COMPARISONS) {
    for (const { cause } of sortedCauses(diff[c.key])) if (!seen.includes(cause)) seen.push(cause);
  }
  return seen;
}

/** One formatter for rates everywhere (table, cards, tooltips, hovers): protocol/format.ts. */
export { formatRate } from '../protocol/format';

/** Codes that differ, from the rate and the element count (the rate is what the engine stores). */
export function mismatchCount(stats: DiffStats, elements: number): number {
  return Math.round(stats.mismatchRate * elements);
}

export type DiffSeverity = 'good' | 'warn' | 'bad';

/**
 * identical: good; off by at most one code (rounding ties): warn; further off, or a clip/overflow
 * cause: bad, because those are not rounding noise.
 */
export function diffSeverity(stats: DiffStats): DiffSeverity {
  if (stats.mismatchRate <= 0 && stats.maxLsb <= 0) return 'good';
  const hazard = stats.causes.some((c) => c.count > 0 && causeInfo(c.cause).kind === 'hazard');
  if (hazard || stats.maxLsb > 1) return 'bad';
  return 'warn';
}

/** The chart's x axis: −8..8 LSB, the ends being "8 or more". */
export const LSB_RANGE = 8;
export const LSB_BINS: readonly number[] = Array.from({ length: 2 * LSB_RANGE + 1 }, (_, i) => i - LSB_RANGE);

export function lsbBinLabel(lsb: number): string {
  if (lsb === 0) return 'exact';
  if (lsb >= LSB_RANGE) return `≥${LSB_RANGE}`;
  if (lsb <= -LSB_RANGE) return `≤−${LSB_RANGE}`;
  return lsb < 0 ? `−${-lsb}` : `+${lsb}`;
}

/**
 * Counts on LSB_BINS. Values past ±8 are folded into the end bins; when the histogram has no 0 bin
 * (only mismatches recorded), the exact matches are the elements left over.
 */
export function lsbCounts(stats: DiffStats, elements: number): number[] {
  const out = LSB_BINS.map(() => 0);
  const { lsb, counts } = stats.lsbHistogram;
  let hasZero = false;
  let nonZero = 0;
  for (let i = 0; i < lsb.length && i < counts.length; i++) {
    const v = Math.round(lsb[i]);
    const c = counts[i];
    if (!Number.isFinite(v) || !(c > 0)) {
      if (v === 0) hasZero = true;
      continue;
    }
    const clamped = Math.max(-LSB_RANGE, Math.min(LSB_RANGE, v));
    out[clamped + LSB_RANGE] += c;
    if (v === 0) hasZero = true;
    else nonZero += c;
  }
  if (!hasZero && elements > 0) out[LSB_RANGE] = Math.max(0, elements - nonZero);
  return out;
}

export interface RoundingOption {
  key: keyof IntegerDiff['roundingModes'];
  label: string;
  rate: number;
  /** Lowest mismatch of the three (several when tied). */
  best: boolean;
}

export function roundingOptions(diff: IntegerDiff): RoundingOption[] {
  const r = diff.roundingModes;
  const options: Omit<RoundingOption, 'best'>[] = [
    { key: 'halfEven', label: 'half-to-even', rate: r.halfEven },
    { key: 'halfAwayFromZero', label: 'half away from zero', rate: r.halfAwayFromZero },
    { key: 'stochastic', label: 'stochastically', rate: r.stochastic },
  ];
  const finite = options.map((o) => o.rate).filter((v) => Number.isFinite(v));
  const min = finite.length ? Math.min(...finite) : NaN;
  return options.map((o) => ({ ...o, best: Number.isFinite(o.rate) && o.rate === min }));
}

/** Layer-table marker: integer execution can go wrong beyond rounding here. */
export interface IntegerHazard {
  accumulatorOverflows: number;
  u8s8ChangedOutputs: number;
}

/**
 * `u8s8Possible`: the target CPU can saturate u8 x s8 pair sums (u8s8Hazard of the report's
 * platform). On a CPU with VNNI the emulated changes cannot happen, so they flag nothing.
 */
export function integerHazard(layer: LayerReport, u8s8Possible: boolean): IntegerHazard | null {
  const d = integerDiffOf(layer);
  if (!d) return null;
  const u8s8ChangedOutputs = u8s8Possible && d.u8s8.applicable ? d.u8s8.changedOutputs : 0;
  if (d.accumulatorOverflows > 0 || u8s8ChangedOutputs > 0) return { accumulatorOverflows: d.accumulatorOverflows, u8s8ChangedOutputs };
  return null;
}

/** One line for the marker's tooltip and accessible name. */
export function hazardText(hz: IntegerHazard): string {
  const parts: string[] = [];
  if (hz.accumulatorOverflows > 0) parts.push(`${plural(hz.accumulatorOverflows, 'int32 accumulator overflow')}`);
  if (hz.u8s8ChangedOutputs > 0) parts.push(`${plural(hz.u8s8ChangedOutputs, 'output code')} would change on x86 without VNNI (u8s8 saturation)`);
  return parts.join('; ');
}

function plural(n: number, noun: string): string {
  return `${Math.round(n).toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}
