/**
 * Hand-built report fragments for the diagnosis's unit tests: tensors with a histogram of known
 * values and a chosen grid, layers with the errors a test names. Every number the diagnosis reads
 * is set here or computed here from the values, never taken from the code under test.
 */
import type { CalibrationMethod, ErrorMetrics, LayerReport, QuantConfig, Range, TensorReport } from '../../protocol/report';
import type { DiagnosisFacts, LayerLinks } from '../../engine/diagnosis/facts';
import { resolveConfig } from '../../engine/quantize/presets';

/** 256 equal bins over [min, max] of the values, as the report's display histogram. */
export function histogramOf(values: ArrayLike<number>, bins = 256): { edges: number[]; counts: number[] } {
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < values.length; i++) (lo = Math.min(lo, values[i])), (hi = Math.max(hi, values[i]));
  const w = (hi - lo) / bins || 1;
  const counts = new Array(bins).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i] - lo) / w))]++;
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * w), counts };
}

/** `n` evenly spaced values over [lo, hi]. */
export function linspace(lo: number, hi: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

export interface TensorSpec {
  values: number[];
  /** The chosen grid: its range and number of steps (254 for narrow int8). */
  grid: Range & { levels?: number };
  method?: CalibrationMethod;
  thresholds?: TensorReport['thresholds'];
  clipRate?: number;
}

/** An activation tensor: min/max and histogram from the values; clip rate as given or counted beyond half a step. */
export function activation(name: string, s: TensorSpec): TensorReport {
  const levels = s.grid.levels ?? 254;
  const step = (s.grid.hi - s.grid.lo) / levels;
  let min = Infinity,
    max = -Infinity,
    clipped = 0;
  for (const v of s.values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    if (v < s.grid.lo - step / 2 || v > s.grid.hi + step / 2) clipped++;
  }
  return {
    name,
    kind: 'activation',
    min,
    max,
    count: s.values.length,
    degenerate: null,
    nanCount: 0,
    infCount: 0,
    histogram: histogramOf(s.values),
    thresholds: s.thresholds ?? {},
    chosen: { method: s.method ?? 'entropy', range: { lo: s.grid.lo, hi: s.grid.hi }, scale: step, zeroPoint: 0 },
    clipRate: s.clipRate ?? clipped / s.values.length,
  };
}

/** A weight tensor report named "node:tensor" as the report names them. */
export function weight(node: string, tensor = 'w'): TensorReport {
  return {
    name: `${node}:${tensor}`,
    kind: 'weight',
    min: -1,
    max: 1,
    count: 16,
    degenerate: null,
    nanCount: 0,
    infCount: 0,
    histogram: { edges: [-1, 1], counts: [16] },
    thresholds: { minmax: { lo: -1, hi: 1 } },
    chosen: { method: 'minmax', range: { lo: -1, hi: 1 }, scale: 1 / 127, zeroPoint: 0 },
    clipRate: 0,
  };
}

const err = (sqnrDb: number): ErrorMetrics => ({ sqnrDb, cosine: 1, mse: 0, maxAbs: 0 });

export interface LayerSpec {
  inputs?: string[];
  output?: string;
  op?: string;
  /** Accumulated SQNR (simulated = integer unless `accInt` differs). */
  acc?: number;
  accInt?: number;
  iso?: number;
  isoInt?: number;
  mismatch?: number;
  integerDiff?: LayerReport['integerDiff'];
  sensitivity?: LayerReport['sensitivity'];
}

export function layer(node: string, s: LayerSpec = {}): LayerReport {
  const acc = s.acc ?? 40;
  const iso = s.iso ?? 40;
  return {
    node,
    op: s.op ?? 'Conv',
    output: s.output ?? `${node}_out`,
    inputs: s.inputs ?? [`${node}_in`],
    simulated: err(acc),
    integer: err(s.accInt ?? acc),
    isolated: { simulated: err(iso), integer: err(s.isoInt ?? iso) },
    simVsIntMismatch: s.mismatch ?? 0,
    simVsIntMaxLsb: 0,
    errorHistogram: { lsb: [], counts: [] },
    integerDiff: s.integerDiff ?? null,
    integerKernel: 'QLinearConv',
    deployedKernel: 'QLinearConv',
    sensitivity: s.sensitivity ?? null,
  };
}

export function facts(parts: {
  layers: LayerReport[];
  tensors?: TensorReport[];
  config?: QuantConfig;
  links?: Record<string, LayerLinks>;
  integerKernels?: Record<string, number>;
  weightChannels?: Record<string, Range[]>;
  modelSqnrDb?: number;
  primaryMetric?: DiagnosisFacts['report']['primaryMetric'];
}): DiagnosisFacts {
  const integer = { top1: null, agreement: 1, outputSqnrDb: parts.modelSqnrDb ?? 30 };
  return {
    report: {
      layers: parts.layers,
      tensors: parts.tensors ?? [],
      config: parts.config ?? resolveConfig('tensorrt'),
      accuracy: { float: { top1: null, agreement: 1 }, simulated: integer, integer, dropPoints: null },
      integerKernels: parts.integerKernels ?? {},
      primaryMetric: parts.primaryMetric,
    },
    links: parts.links ?? {},
    weightChannels: parts.weightChannels,
  };
}
