/**
 * Candidate fixes for one layer, as changes to the configuration (the per-layer plan the quantize
 * stage applies: tensorOverrides, layerOverrides, exclude), each with a cost so the search prefers
 * the smallest change: a calibration method or per-channel weights keep every value in int8
 * (cost 1); wider weights (2) and wider activations (3, they widen the neighbours' grids too) cost
 * memory and speed, 16 bits more than 8 (+0.5: when both meet the goal, 8 is the smaller change,
 * whichever measured a little better); keeping the layer in float (4) is the last resort. Nothing here is measured:
 * search.ts measures every candidate before proposing it. Pure.
 */
import type { CalibrationMethod, CauseCode, FixChange, QuantConfig, Range } from '../../protocol/report';
import { CALIBRATION_METHODS } from '../../protocol/report';

export const CHANGE_COST: Record<FixChange['kind'], number> = {
  calibration: 1,
  range: 1,
  'per-channel': 1,
  'weight-bits': 2,
  'activation-bits': 3,
  float: 4,
};

/** A calibration method "differs meaningfully" when a range bound moves by at least this share of the current span. */
export const METHOD_DIFFERS = 0.1;
/** Two methods whose ranges agree within this share of the span on every tensor are one candidate. */
const METHODS_SAME = 0.02;

export interface FixOption {
  node: string;
  cost: number;
  changes: FixChange[];
}

export interface LayerPlanFacts {
  node: string;
  /** Activation tensors whose calibration may change: every method's range, and the method used now. */
  tensors: { name: string; method: CalibrationMethod; thresholds: Partial<Record<CalibrationMethod, Range>> }[];
  hasWeight: boolean;
  weights: { bits: number; perChannel: boolean };
  /** Bits of the layer's activation grid now. */
  activationBits: number;
  /**
   * The causes found for the layer (diagnosis): only the remedies they call for, then float.
   * Undefined (mixed precision): every remedy.
   */
  causes?: readonly CauseCode[];
}

function relMove(a: Range, b: Range): number {
  const span = Math.max(a.hi - a.lo, 1e-30);
  return Math.max(Math.abs(a.lo - b.lo), Math.abs(a.hi - b.hi)) / span;
}

/** One option per calibration method whose ranges differ meaningfully from the current ones (near-identical methods merged). */
function calibrationOptions(f: LayerPlanFacts): FixOption[] {
  const out: { option: FixOption; ranges: Map<string, Range> }[] = [];
  for (const m of CALIBRATION_METHODS) {
    const ranges = new Map<string, Range>();
    for (const t of f.tensors) {
      const now = t.thresholds[t.method];
      const alt = t.thresholds[m];
      if (m !== t.method && now && alt && relMove(now, alt) >= METHOD_DIFFERS) ranges.set(t.name, alt);
    }
    if (!ranges.size) continue;
    const same = out.some(
      (o) => o.ranges.size === ranges.size && [...ranges].every(([k, r]) => o.ranges.has(k) && relMove(o.ranges.get(k)!, r) < METHODS_SAME),
    );
    if (same) continue;
    out.push({
      ranges,
      option: {
        node: f.node,
        cost: CHANGE_COST.calibration,
        changes: [...ranges.keys()].map((tensor) => ({ kind: 'calibration', node: f.node, tensor, value: m })),
      },
    });
  }
  return out.map((o) => o.option);
}

/** Extra cost of a 16-bit grid over an 8-bit one (twice the memory, off the int8 kernels). */
export const SIXTEEN_BITS_COST = 0.5;

const one = (node: string, kind: FixChange['kind'], value: FixChange['value']): FixOption => ({
  node,
  cost: CHANGE_COST[kind] + (value === 16 && (kind === 'weight-bits' || kind === 'activation-bits') ? SIXTEEN_BITS_COST : 0),
  changes: [{ kind, node, value }],
});

/** The options for one layer, cheapest first. */
export function optionsFor(f: LayerPlanFacts): FixOption[] {
  const all = f.causes === undefined;
  const has = (...c: CauseCode[]) => all || c.some((x) => f.causes!.includes(x));
  const out: FixOption[] = [];
  if (has('over-clipping', 'outlier-range', 'wasted-sign')) out.push(...calibrationOptions(f));
  if (f.hasWeight && !f.weights.perChannel && has('per-tensor-weights', 'unexplained')) out.push(one(f.node, 'per-channel', true));
  // too-few-bits widens the grid it is about: weights, activations, or both when both are narrow
  const lowW = f.weights.bits <= 4;
  const lowA = f.activationBits > 0 && f.activationBits <= 4;
  if (f.hasWeight && (has('per-tensor-weights', 'integer-divergence', 'u8s8-saturation', 'unexplained') || (lowW && has('too-few-bits')))) {
    if (f.weights.bits < 8) out.push(one(f.node, 'weight-bits', 8));
    if (f.weights.bits < 16) out.push(one(f.node, 'weight-bits', 16));
  }
  if (
    f.activationBits > 0 &&
    (has('over-clipping', 'outlier-range', 'integer-divergence', 'u8s8-saturation', 'unexplained') || (lowA && has('too-few-bits')))
  ) {
    if (f.activationBits < 8) out.push(one(f.node, 'activation-bits', 8));
    if (f.activationBits < 16) out.push(one(f.node, 'activation-bits', 16));
  }
  out.push(one(f.node, 'float', true));
  return out.sort((a, b) => a.cost - b.cost);
}

const target = (c: FixChange) => (c.kind === 'calibration' || c.kind === 'range' ? `tensor|${c.tensor}` : `${c.kind}|${c.node}`);

/** `next` on top of `prev`: a later change to the same tensor (calibration, range) or the same layer setting replaces the earlier one. */
export function mergeChanges(prev: readonly FixChange[], next: readonly FixChange[]): FixChange[] {
  const replaced = new Set(next.map(target));
  return [...prev.filter((c) => !replaced.has(target(c))), ...next];
}

/** The configuration with `changes` applied on top (later changes to the same tensor or layer win). */
export function applyChanges(config: QuantConfig, changes: readonly FixChange[]): QuantConfig {
  const tensors = new Map((config.tensorOverrides ?? []).map((o) => [o.tensor, { ...o }]));
  const layers = new Map((config.layerOverrides ?? []).map((o) => [o.node, { ...o }]));
  const exclude = new Set(config.exclude);
  const layer = (node: string) => layers.get(node) ?? layers.set(node, { node }).get(node)!;
  for (const c of changes) {
    switch (c.kind) {
      case 'calibration': {
        const o = { ...tensors.get(c.tensor!), tensor: c.tensor!, calibration: c.value as CalibrationMethod };
        delete o.range;
        tensors.set(c.tensor!, o);
        break;
      }
      case 'range': {
        const [lo, hi] = String(c.value).split(',').map(Number);
        tensors.set(c.tensor!, { ...tensors.get(c.tensor!), tensor: c.tensor!, range: { lo, hi } });
        break;
      }
      case 'per-channel':
        layer(c.node!).perChannel = Boolean(c.value);
        break;
      case 'weight-bits':
        layer(c.node!).weightBits = Number(c.value) as 4 | 8 | 16;
        break;
      case 'activation-bits':
        layer(c.node!).activationBits = Number(c.value) as 4 | 8 | 16;
        break;
      case 'float':
        exclude.add(c.node!);
        break;
    }
  }
  const out: QuantConfig = { ...config, exclude: [...exclude] };
  if (tensors.size) out.tensorOverrides = [...tensors.values()];
  if (layers.size) out.layerOverrides = [...layers.values()];
  return out;
}

/** One line per change set, e.g. "percentile calibration for /conv1/Conv_output_0; /fc/Gemm in float". */
export function describeChanges(changes: readonly FixChange[]): string {
  if (!changes.length) return 'no change';
  const byMethod = new Map<string, string[]>();
  const rest: string[] = [];
  for (const c of changes) {
    if (c.kind === 'calibration') byMethod.set(String(c.value), [...(byMethod.get(String(c.value)) ?? []), c.tensor!]);
    else if (c.kind === 'range') rest.push(`range [${c.value}] for ${c.tensor}`);
    else if (c.kind === 'per-channel') rest.push(`per-channel weights for ${c.node}`);
    else if (c.kind === 'weight-bits') rest.push(`${c.value}-bit weights for ${c.node}`);
    else if (c.kind === 'activation-bits') rest.push(`${c.value}-bit activations for ${c.node}`);
    else rest.push(`${c.node} in float`);
  }
  return [...[...byMethod].map(([m, ts]) => `${m} calibration for ${ts.join(', ')}`), ...rest].join('; ');
}

/**
 * Layers a change set touches (the layer changed, or one that reads or writes a tensor whose
 * calibration changes), and how many it keeps in float.
 */
export function changeFootprint(
  changes: readonly FixChange[],
  layers: readonly { node: string; inputs: readonly string[]; output: string }[] = [],
): { layers: number; float: number } {
  const nodes = new Set(changes.filter((c) => c.node && c.kind !== 'calibration' && c.kind !== 'range').map((c) => c.node!));
  const tensors = new Set(changes.filter((c) => c.tensor).map((c) => c.tensor!));
  for (const l of layers) if ([...l.inputs, l.output].some((t) => tensors.has(t))) nodes.add(l.node);
  if (!layers.length) for (const c of changes) if (c.node) nodes.add(c.node);
  return { layers: nodes.size, float: changes.filter((c) => c.kind === 'float').length };
}
