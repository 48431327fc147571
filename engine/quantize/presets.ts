/**
 * Backend presets: the quantization scheme each deployment target actually executes, after
 * MQBench's survey of hardware backends. Options given explicitly override a preset's fields.
 */
import { InputError } from '../errors';
import type { PresetName, QuantConfig, TensorSchemeConfig } from '../../protocol/report';

const int8Sym: TensorSchemeConfig = { bits: 8, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false };
const uint8Asym: TensorSchemeConfig = { bits: 8, signed: false, symmetric: false, narrowRange: false, powerOfTwo: false };

export interface PresetInfo {
  description: string;
  config: Omit<QuantConfig, 'preset' | 'exclude'>;
}

export const PRESETS: Record<PresetName, PresetInfo> = {
  tensorrt: {
    description:
      'NVIDIA TensorRT (and OpenVINO): int8 symmetric everywhere, scale = amax/127 (narrow range), weights per output channel, activations per tensor, entropy calibration by default; quantizes compute ops and also Add/pooling inputs.',
    config: {
      calibration: 'entropy',
      percentile: 99.99,
      weights: { ...int8Sym, perChannel: true },
      activations: { ...int8Sym },
      placement: 'compute',
      foldBatchNorm: true,
    },
  },
  'ort-cpu': {
    description:
      'onnxruntime CPU (MLAS, QDQ format): uint8 asymmetric activations per tensor, int8 symmetric narrow-range weights per channel ("U8S8"), MinMax calibration by default.',
    config: {
      calibration: 'minmax',
      percentile: 99.999,
      weights: { ...int8Sym, perChannel: true },
      activations: { ...uint8Asym },
      placement: 'extended',
      foldBatchNorm: true,
    },
  },
  qnn: {
    description: 'Qualcomm SNPE/QNN (Hexagon): uint8 asymmetric per tensor for both weights and activations, MinMax calibration by default.',
    config: {
      calibration: 'minmax',
      percentile: 99.99,
      weights: { ...uint8Asym, perChannel: false },
      activations: { ...uint8Asym },
      placement: 'extended',
      foldBatchNorm: true,
    },
  },
  'power-of-two': {
    description:
      'AMD/Xilinx Vitis AI and TVM-style fixed point: int8 symmetric full range per tensor with power-of-two scales (requantization is a bit shift), MinMax calibration by default.',
    config: {
      calibration: 'minmax',
      percentile: 99.99,
      weights: { bits: 8, signed: true, symmetric: true, narrowRange: false, powerOfTwo: true, perChannel: false },
      activations: { bits: 8, signed: true, symmetric: true, narrowRange: false, powerOfTwo: true },
      placement: 'extended',
      foldBatchNorm: true,
    },
  },
};

export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export type ConfigOverrides = Partial<Omit<QuantConfig, 'weights' | 'activations'>> & {
  weights?: Partial<QuantConfig['weights']>;
  activations?: Partial<TensorSchemeConfig>;
};

export function resolveConfig(preset: PresetName, over: ConfigOverrides = {}): QuantConfig {
  const base = PRESETS[preset];
  if (!base) throw new InputError(`unknown preset "${preset}"; known: ${PRESET_NAMES.join(', ')}`);
  const c = structuredClone(base.config);
  return {
    ...c,
    ...stripUndefined(over),
    preset,
    exclude: over.exclude ?? [],
    weights: { ...c.weights, ...stripUndefined(over.weights ?? {}) },
    activations: { ...c.activations, ...stripUndefined(over.activations ?? {}) },
  } as QuantConfig;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
