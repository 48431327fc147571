/**
 * Sweep grids: axes, their parsing from the command line, the cartesian product of
 * configurations, labels and the Pareto front. Pure (no runtime), so the extension host uses it
 * to build the grid from the user's picks.
 */
import type { CalibrationMethod, PresetName, QuantConfig, SweepEntry } from '../../protocol/report';
import { InputError } from '../errors';
import { PRESET_NAMES, resolveConfig } from './presets';

type Bits = 4 | 8 | 16;

export interface SweepAxes {
  preset?: PresetName[];
  weightBits?: Bits[];
  activationBits?: Bits[];
  /** Method, with an optional percentile for `percentile`. */
  calibration?: { method: CalibrationMethod; percentile?: number }[];
  granularity?: ('per-channel' | 'per-tensor')[];
  symmetric?: boolean[];
}

/** Six methods x two weight widths x two granularities: the default 24-configuration grid. */
export const DEFAULT_AXES: SweepAxes = {
  calibration: [
    { method: 'minmax' },
    { method: 'ema' },
    { method: 'percentile', percentile: 99.9 },
    { method: 'percentile', percentile: 99.99 },
    { method: 'entropy' },
    { method: 'mse' },
  ],
  weightBits: [8, 4],
  granularity: ['per-channel', 'per-tensor'],
};

/**
 * Parse `--axes "wbits=8,4;abits=8,16;calibration=minmax,percentile:99.9,entropy;granularity=per-channel,per-tensor;symmetric=true,false;preset=tensorrt,ort-cpu"`.
 */
export function parseAxes(spec: string): SweepAxes {
  const axes: SweepAxes = {};
  const seen = new Set<string>();
  for (const part of spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [key, list, ...rest] = part.split('=').map((s) => s.trim());
    if (rest.length) throw new InputError(`--axes: "${part}" has more than one "="`);
    // A second "abits=..." would silently replace the first: the user meant one list.
    if (seen.has(key)) throw new InputError(`--axes: axis "${key}" is given twice; list all its values once, e.g. ${key}=8,4`);
    seen.add(key);
    const values = (list ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (values.length === 0) throw new InputError(`--axes: "${part}" lists no values`);
    const bits = (v: string): Bits => {
      if (v !== '4' && v !== '8' && v !== '16') throw new InputError(`--axes: ${key} must be 4, 8 or 16, got "${v}"`);
      return Number(v) as Bits;
    };
    switch (key) {
      case 'wbits':
        axes.weightBits = values.map(bits);
        break;
      case 'abits':
        axes.activationBits = values.map(bits);
        break;
      case 'calibration':
        axes.calibration = values.map((v) => {
          const [method, pct] = v.split(':');
          if (!['minmax', 'ema', 'percentile', 'entropy', 'mse'].includes(method)) throw new InputError(`--axes: unknown calibration method "${method}"`);
          const percentile = pct === undefined ? undefined : Number(pct);
          if (percentile !== undefined && !(percentile > 0 && percentile <= 100)) throw new InputError(`--axes: bad percentile "${pct}"`);
          return { method: method as CalibrationMethod, percentile };
        });
        break;
      case 'granularity':
        axes.granularity = values.map((v) => {
          if (v !== 'per-channel' && v !== 'per-tensor') throw new InputError(`--axes: granularity is per-channel or per-tensor, got "${v}"`);
          return v;
        });
        break;
      case 'symmetric':
        axes.symmetric = values.map((v) => {
          if (v !== 'true' && v !== 'false') throw new InputError(`--axes: symmetric is true or false, got "${v}"`);
          return v === 'true';
        });
        break;
      case 'preset':
        axes.preset = values.map((v) => {
          if (!PRESET_NAMES.includes(v as PresetName)) throw new InputError(`--axes: unknown preset "${v}"`);
          return v as PresetName;
        });
        break;
      default:
        throw new InputError(`--axes: unknown axis "${key}" (wbits, abits, calibration, granularity, symmetric, preset)`);
    }
  }
  return axes;
}

/** The cartesian product of the axes, each applied over `base` (the preset axis replaces it). */
export function gridConfigs(base: QuantConfig, axes: SweepAxes): QuantConfig[] {
  let configs: QuantConfig[] = [base];
  const expand = <T>(values: T[] | undefined, apply: (c: QuantConfig, v: T) => QuantConfig) => {
    if (values?.length) configs = configs.flatMap((c) => values.map((v) => apply(c, v)));
  };
  expand(axes.preset, (c, v) => ({ ...resolveConfig(v, { exclude: c.exclude }) }));
  expand(axes.calibration, (c, v) => ({ ...c, calibration: v.method, percentile: v.percentile ?? c.percentile }));
  expand(axes.weightBits, (c, v) => ({ ...c, weights: { ...c.weights, bits: v } }));
  expand(axes.activationBits, (c, v) => ({ ...c, activations: { ...c.activations, bits: v } }));
  expand(axes.granularity, (c, v) => ({ ...c, weights: { ...c.weights, perChannel: v === 'per-channel' } }));
  expand(axes.symmetric, (c, v) => ({ ...c, activations: { ...c.activations, symmetric: v, signed: v } }));
  return configs;
}

export function configLabel(c: QuantConfig): string {
  const m = c.calibration === 'percentile' ? `percentile ${c.percentile}` : c.calibration;
  return `${c.preset} W${c.weights.bits}/${c.weights.perChannel ? 'ch' : 't'} A${c.activations.bits} ${c.activations.symmetric ? 'sym' : 'asym'} ${m}`;
}

/** Mark entries no other entry beats on both drop and size. */
export function markPareto(entries: SweepEntry[]): void {
  const ok = entries.filter((e) => !e.error);
  for (const e of entries) {
    e.pareto = !e.error && !ok.some((o) => o !== e && o.drop <= e.drop && o.sizeBytes <= e.sizeBytes && (o.drop < e.drop || o.sizeBytes < e.sizeBytes));
  }
}
