/**
 * Why a layer hurts: documented rules (docs/diagnosis.md), each a function of the report's numbers
 * for that layer, firing at stated thresholds and returning the numbers it used. A layer gets every
 * rule that fires, strongest first in the order of RULES (most specific and most damaging first).
 */
import type { Cause, CauseCode, LayerReport, TensorReport } from '../../protocol/report';
import { weightScheme } from '../quantize/qdqRewrite';
import type { FactIndex } from './facts';
import { errorEnergy, excessOverMse, gridBits, gridFor, stepOf } from './grid';

/** Every threshold a rule uses (docs/diagnosis.md says why each has its value). */
export const THRESHOLDS = {
  /** over-clipping: at least this share of the tensor's values saturate... */
  clipRate: 0.001,
  /** ...clipping makes at least this share of its estimated quantization error... */
  clipShare: 0.5,
  /** ...and the grid makes at least this many times the error the MSE method's range would. */
  excessError: 2,
  /** outlier-range: the grid spans at least this many times the configured percentile's |x|. */
  outlierRatio: 4,
  /** too-few-bits: a grid of this many bits or fewer. */
  lowBits: 4,
  /** per-tensor-weights: the largest channel's |w| max is at least this many times the median channel's. */
  channelSpread: 8,
  /** wasted-sign: at least this share of the grid's codes lie below an observed minimum of 0. */
  unusedShare: 0.25,
  /** integer-divergence: the layer alone on integer kernels is this many dB worse than simulated... */
  divergenceDb: 1,
  /** ...or this share of its codes differ from the integer reference for reasons other than rounding. */
  beyondRounding: 0.001,
  /** u8s8-saturation: this share of the layer's output codes change when u8 x s8 pairs saturate int16. */
  u8s8Changed: 0.001,
  /** inherited: this share of codes differ between simulation and integer kernels at the layer's output. */
  inheritedMismatch: 0.01,
} as const;

/** A cause about one tensor of the layer. */
export interface Finding extends Cause {
  tensor: string;
}

export interface RuleContext {
  layer: LayerReport;
  idx: FactIndex;
  /** u8 x s8 pairs can saturate int16 on the target CPU (platform.ts u8s8Hazard). */
  u8s8Hazard: boolean;
}

type Rule = (ctx: RuleContext) => Finding | null;

const pct = (x: number) => `${(x * 100).toFixed(x < 0.001 ? 3 : 1)}%`;
const num = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3));
const rangeText = (lo: number, hi: number) => `[${num(lo)}, ${num(hi)}]`;
const amaxOf = (r: { lo: number; hi: number }) => Math.max(Math.abs(r.lo), Math.abs(r.hi));
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** The tensor among `ts` with the largest `score` for which `fires` holds. */
function strongest<T>(ts: T[], fires: (t: T) => boolean, score: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const t of ts) if (fires(t) && (best === undefined || score(t) > score(best))) best = t;
  return best;
}

const energyOf = (t: TensorReport) => errorEnergy(t.histogram, t.chosen!.range, stepOf(t));
const excessText = (t: TensorReport) => {
  const x = excessOverMse(t);
  if (Number.isNaN(x)) return 'no MSE range to compare with';
  // The MSE range as a grid of this tensor's scheme (a symmetric one spans +-max|bound|), as the comparison measured it.
  const g = gridFor(t, t.thresholds.mse!).range;
  return `${Number.isFinite(x) ? `${x.toFixed(x < 10 ? 1 : 0)}x` : 'far more than'} the error the MSE range ${rangeText(g.lo, g.hi)} would make`;
};

/** over-clipping's test on one tensor: values saturate, clipping dominates its error, and a wider (MSE) range would make far less. */
export function overClipped(t: TensorReport): boolean {
  return !!t.chosen && t.clipRate >= THRESHOLDS.clipRate && energyOf(t).clipShare >= THRESHOLDS.clipShare && !(excessOverMse(t) < THRESHOLDS.excessError);
}

/** outlier-range's measure on one tensor: grid |x| max over the configured percentile's (0 when unknown). */
function outlierRatio(t: TensorReport): number {
  const q = t.thresholds.percentile;
  const a = q ? amaxOf(q) : 0;
  return t.chosen && a > 0 ? amaxOf(t.chosen.range) / a : 0;
}

/**
 * outlier-range's test on one tensor: rounding dominates its error and the grid spans far past the
 * configured percentile. (No comparison with the MSE range: when clipping the outliers would cost
 * more than it saves, the remedy is more bits, not another threshold; both are measured.)
 */
export function outlierRanged(t: TensorReport): boolean {
  return !!t.chosen && energyOf(t).clipShare < THRESHOLDS.clipShare && outlierRatio(t) >= THRESHOLDS.outlierRatio;
}

const overClipping: Rule = ({ layer, idx }) => {
  const t = strongest(idx.activations(layer), overClipped, (x) => x.clipRate);
  if (!t) return null;
  const r = t.chosen!.range;
  const e = energyOf(t);
  return {
    cause: 'over-clipping',
    tensor: t.name,
    summary: `the ${t.chosen!.method} range ${rangeText(r.lo, r.hi)} clips ${pct(t.clipRate)} of ${t.name} (observed ${num(t.min)} to ${num(t.max)}); clipping makes ${pct(e.clipShare)} of its quantization error, ${excessText(t)}`,
    evidence: {
      tensor: t.name,
      method: t.chosen!.method,
      clipRate: round4(t.clipRate),
      threshold: amaxOf(r),
      rangeLo: r.lo,
      rangeHi: r.hi,
      observedMin: t.min,
      observedMax: t.max,
      clipShare: round4(e.clipShare),
      excessOverMse: round4(excessOverMse(t)),
    },
  };
};

const tooFewBits: Rule = ({ layer, idx }) => {
  const w = weightScheme(idx.facts.report.config, layer.node);
  const weight = idx.weight(layer);
  const acts = idx.activations(layer).map((t) => ({ name: t.name, kind: 'activation', bits: gridBits(t) }));
  const all = [...acts, ...(weight ? [{ name: weight.name, kind: 'weight', bits: w.bits as number }] : [])];
  const t = strongest(
    all,
    (x) => x.bits > 0 && x.bits <= THRESHOLDS.lowBits,
    (x) => -x.bits,
  );
  if (!t) return null;
  const ideal = 6.02 * t.bits + 1.76;
  return {
    cause: 'too-few-bits',
    tensor: t.name,
    summary: `${t.name} is on a ${t.bits}-bit grid (${2 ** t.bits} levels: at best about ${ideal.toFixed(0)} dB SQNR for a full-scale uniform signal); the layer alone measures ${num(layer.isolated.integer.sqnrDb)} dB`,
    evidence: { tensor: t.name, kind: t.kind, bits: t.bits, idealSqnrDb: round4(ideal), isolatedSqnrDb: layer.isolated.integer.sqnrDb },
  };
};

const outlierRange: Rule = ({ layer, idx }) => {
  const p = idx.facts.report.config.percentile;
  const t = strongest(idx.activations(layer), outlierRanged, outlierRatio);
  if (!t) return null;
  const k = outlierRatio(t);
  const q = amaxOf(t.thresholds.percentile!);
  return {
    cause: 'outlier-range',
    tensor: t.name,
    summary: `the ${t.chosen!.method} range of ${t.name} reaches |x| = ${num(amaxOf(t.chosen!.range))}, ${k.toFixed(1)}x its ${p}th percentile ${num(q)}: the rare largest values set the step and about ${Math.log2(k).toFixed(1)} bits go to them (${excessText(t)})`,
    evidence: {
      tensor: t.name,
      method: t.chosen!.method,
      threshold: amaxOf(t.chosen!.range),
      percentile: p,
      percentileThreshold: q,
      ratio: round4(k),
      bitsSpent: round4(Math.log2(k)),
      excessOverMse: round4(excessOverMse(t)),
    },
  };
};

const perTensorWeights: Rule = ({ layer, idx }) => {
  if (weightScheme(idx.facts.report.config, layer.node).perChannel) return null;
  const ranges = idx.facts.weightChannels?.[layer.node];
  if (!ranges || ranges.length < 2) return null;
  const amax = ranges
    .map(amaxOf)
    .filter((a) => a > 0)
    .sort((a, b) => a - b);
  if (amax.length < 2) return null;
  const median = amax[Math.floor((amax.length - 1) / 2)];
  const spread = amax[amax.length - 1] / median;
  if (spread < THRESHOLDS.channelSpread) return null;
  const tensor = idx.weight(layer)?.name ?? `${layer.node}:weight`;
  return {
    cause: 'per-tensor-weights',
    tensor,
    summary: `one scale for all ${ranges.length} output channels of ${tensor}: the largest channel's |w| max ${num(amax[amax.length - 1])} is ${spread.toFixed(1)}x the median channel's ${num(median)}, so half the channels use at most 1/${spread.toFixed(0)} of the grid (${Math.log2(spread).toFixed(1)} bits lost)`,
    evidence: {
      tensor,
      channels: ranges.length,
      maxChannelAmax: amax[amax.length - 1],
      medianChannelAmax: median,
      spread: round4(spread),
      bitsLost: round4(Math.log2(spread)),
    },
  };
};

const wastedSign: Rule = ({ layer, idx }) => {
  const unused = (t: TensorReport) => {
    const r = t.chosen!.range;
    return t.min >= 0 && r.lo < 0 && r.hi > r.lo ? -r.lo / (r.hi - r.lo) : 0;
  };
  const t = strongest(idx.activations(layer), (x) => !!x.chosen && x.count > 0 && unused(x) >= THRESHOLDS.unusedShare, unused);
  if (!t) return null;
  const u = unused(t);
  const r = t.chosen!.range;
  return {
    cause: 'wasted-sign',
    tensor: t.name,
    summary: `${t.name} is never negative (min ${num(t.min)}) but its signed grid ${rangeText(r.lo, r.hi)} spends ${pct(u)} of its codes below 0 (${(-Math.log2(1 - u)).toFixed(1)} bit lost)`,
    evidence: { tensor: t.name, observedMin: t.min, rangeLo: r.lo, rangeHi: r.hi, unusedShare: round4(u), bitsLost: round4(-Math.log2(1 - u)) },
  };
};

/** Codes that differ from the integer reference for reasons other than 1-LSB rounding choices. */
function beyondRounding(l: LayerReport): number {
  const d = l.integerDiff?.referenceVsOrt;
  if (!d || !l.integerDiff!.elements) return 0;
  const rounding = new Set(['requantization', 'rounding-mode', 'u8s8-saturation']);
  const n = d.causes.filter((c) => !rounding.has(c.cause)).reduce((a, c) => a + c.count, 0);
  return n / l.integerDiff!.elements;
}

/**
 * What the bit-exact reference found, with how much it checked: it runs on a bounded number of
 * samples (a large layer's may be one), so "no difference" is a statement about those codes only.
 */
function referenceFinding(l: LayerReport, beyond: number, causes: string, u8s8Hazard: boolean): string {
  const d = l.integerDiff!;
  const checked = `${d.elements} output code${d.elements === 1 ? '' : 's'} of ${d.samples} sample${d.samples === 1 ? '' : 's'}`;
  if (beyond > 0) {
    return `on ${checked}, ${pct(beyond)} of onnxruntime's codes differ from the bit-exact integer reference beyond rounding (${causes})`;
  }
  const quiet = `the bit-exact integer reference, on ${checked}, differs from onnxruntime only by rounding: those codes do not show the cause`;
  // The reference checks the codes the integer graph fed the layer; the isolated measurement feeds
  // it the float model's. On a CPU without VNNI, u8 x s8 pair sums saturate on some inputs and not
  // others (PP-OCRv4's detector: a 1x1 Conv exact in the graph on the samples checked, saturated alone on at least 3 of 8).
  return d.u8s8.applicable && u8s8Hazard
    ? `${quiet}; on the target CPU (x86 without VNNI) its u8 x s8 pair sums can saturate on inputs the reference did not check, such as the float inputs of the isolated run`
    : quiet;
}

function ownGapDb(l: LayerReport): number {
  const s = l.isolated.simulated.sqnrDb;
  const i = l.isolated.integer.sqnrDb;
  if (s === i) return 0; // both infinite (exact) included
  return s - i;
}

/** The layer's own integer kernel departs from the simulation (same float inputs, or same integer inputs). */
export function ownDivergence(l: LayerReport): boolean {
  return ownGapDb(l) >= THRESHOLDS.divergenceDb || beyondRounding(l) >= THRESHOLDS.beyondRounding;
}

const integerDivergence: Rule = ({ layer, u8s8Hazard }) => {
  if (!ownDivergence(layer)) return null;
  const gap = ownGapDb(layer);
  const beyond = beyondRounding(layer);
  const ref = layer.integerDiff?.referenceVsOrt;
  const causes = ref?.causes.map((c) => `${c.cause} ${c.count}`).join(', ') || 'none recorded';
  return {
    cause: 'integer-divergence',
    tensor: layer.output,
    summary: `alone on the same float inputs, onnxruntime's integer kernel measures ${num(layer.isolated.integer.sqnrDb)} dB against ${num(layer.isolated.simulated.sqnrDb)} dB simulated (${num(gap)} dB worse)${ref ? `; ${referenceFinding(layer, beyond, causes, u8s8Hazard)}` : ''}`,
    evidence: {
      isolatedSimulatedDb: layer.isolated.simulated.sqnrDb,
      isolatedIntegerDb: layer.isolated.integer.sqnrDb,
      gapDb: round4(gap),
      beyondRoundingShare: beyond,
      referenceVsOrtMismatch: ref?.mismatchRate ?? -1,
      causes,
    },
  };
};

const u8s8Saturation: Rule = ({ layer, u8s8Hazard }) => {
  const u = layer.integerDiff?.u8s8;
  if (!u8s8Hazard || !u?.applicable || !u.elements) return null;
  const share = u.changedOutputs / u.elements;
  if (share < THRESHOLDS.u8s8Changed) return null;
  return {
    cause: 'u8s8-saturation',
    tensor: layer.output,
    summary: `on the target CPU (x86 without VNNI) u8 x s8 pair sums saturate int16 in ${u.saturatedPairs} pairs and change ${pct(share)} of this layer's output codes`,
    evidence: { saturatedPairs: u.saturatedPairs, changedOutputs: u.changedOutputs, elements: u.elements, changedShare: round4(share) },
  };
};

/** Where a simulated-vs-integer difference seen at `layer` first appears, walking upstream. */
export function divergenceOrigin(idx: FactIndex, layer: LayerReport): LayerReport {
  let origin = layer;
  for (let hops = 0; hops < idx.layers.size; hops++) {
    const up = idx
      .links(origin.node)
      .upstream.map((n) => idx.layers.get(n))
      .filter((l): l is LayerReport => !!l && l.simVsIntMismatch >= THRESHOLDS.inheritedMismatch);
    if (!up.length) break;
    origin = up.reduce((a, b) => (b.simVsIntMismatch > a.simVsIntMismatch ? b : a));
  }
  return origin;
}

const inherited: Rule = ({ layer, idx }) => {
  if (layer.simVsIntMismatch < THRESHOLDS.inheritedMismatch || ownDivergence(layer)) return null;
  const ref = layer.integerDiff?.referenceVsOrt.mismatchRate;
  const origin = divergenceOrigin(idx, layer);
  const kernels = idx.facts.report.integerKernels ?? {};
  const fused = (op: string) => Object.keys(kernels).find((k) => k.replace(/^com\.microsoft\./, '') === `QLinear${op}`);
  const ops = idx.links(origin.node).opsBefore.filter((o) => fused(o.op));
  const here = origin === layer ? "at this layer's input" : `at ${origin.node} (${pct(origin.simVsIntMismatch)} of codes)`;
  const where = ops.length
    ? `it enters ${here}, after ${ops.map((o) => `${o.op} ${o.node}`).join(', ')}, which the integer session runs as ${[...new Set(ops.map((o) => fused(o.op)!.replace(/^com\.microsoft\./, '')))].join(', ')} and the simulation in float`
    : `it builds up from rare 1-LSB differences upstream and first exceeds ${pct(THRESHOLDS.inheritedMismatch)} of codes ${here}`;
  // The layer's own kernel is checked against the integer reference when it was run, else by its isolated run.
  const own =
    ref !== undefined
      ? `its own kernel agrees with the integer reference (${pct(ref)} of codes differ)`
      : `alone on the same float inputs its integer kernel matches the simulation (${num(layer.isolated.integer.sqnrDb)} vs ${num(layer.isolated.simulated.sqnrDb)} dB)`;
  return {
    cause: 'inherited',
    tensor: layer.output,
    summary: `${pct(layer.simVsIntMismatch)} of codes differ between simulation and integer kernels here, but ${own}: ${where}`,
    evidence: {
      mismatch: round4(layer.simVsIntMismatch),
      referenceVsOrtMismatch: ref ?? -1,
      origin: origin.node,
      originMismatch: round4(origin.simVsIntMismatch),
      sourceOps: ops.map((o) => `${o.op} ${o.node}`).join(', '),
    },
  };
};

/** The rules in priority order: the first that fires is the layer's cause. */
export const RULES: readonly { code: CauseCode; rule: Rule }[] = [
  { code: 'over-clipping', rule: overClipping },
  { code: 'too-few-bits', rule: tooFewBits },
  { code: 'outlier-range', rule: outlierRange },
  { code: 'per-tensor-weights', rule: perTensorWeights },
  { code: 'u8s8-saturation', rule: u8s8Saturation },
  { code: 'integer-divergence', rule: integerDivergence },
  { code: 'wasted-sign', rule: wastedSign },
  { code: 'inherited', rule: inherited },
];

/** Every rule that fires for the layer, in priority order. */
export function findCauses(ctx: RuleContext): Finding[] {
  return RULES.map((r) => r.rule(ctx)).filter((f): f is Finding => f !== null);
}
