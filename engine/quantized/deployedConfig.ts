/**
 * A QuantConfig that describes what a deployed model does: the scheme most of its grids use, its
 * weights' granularity, and every activation's exact range as a tensor override (re-analyzing the
 * twin with this configuration rebuilds the deployed grids up to float rounding). The analysis of
 * the deployed model itself never re-derives anything from it: grids and codes are taken as read.
 */
import type { LayerOverride, PresetName, QuantConfig, TensorOverride, TensorSchemeConfig } from '../../protocol/report';
import type { PlannedLayer } from '../quantize/plan';
import { PRESETS } from '../quantize/presets';
import { gridType } from '../quantize/qdqRewrite';
import { type QuantParams, representableRange } from '../quantize/scheme';

const isPow2 = (s: number) => Number.isInteger(Math.log2(s));

/** The most frequent value of `key` over `items`. */
function mode<T>(items: T[], key: (x: T) => string): string | undefined {
  const counts = new Map<string, number>();
  for (const x of items) counts.set(key(x), (counts.get(key(x)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

function scheme(grids: QuantParams[], fallback: TensorSchemeConfig): TensorSchemeConfig {
  const typeKey = (p: QuantParams) => JSON.stringify(gridType(p));
  const top = mode(grids, typeKey);
  if (!top) return fallback;
  const { bits, signed } = JSON.parse(top) as { bits: 4 | 8 | 16; signed: boolean };
  const same = grids.filter((p) => typeKey(p) === top);
  return {
    bits,
    signed,
    symmetric: signed && same.every((p) => p.zeroPoint === 0),
    narrowRange: false,
    powerOfTwo: same.every((p) => isPow2(p.scale)),
  };
}

export function deployedConfig(activations: Map<string, QuantParams>, layers: readonly PlannedLayer[], foldBatchNorm: boolean): QuantConfig {
  const weights = layers.flatMap((l) => l.roles.flatMap((r, i) => (r.kind === 'weight' && l.fixed?.get(i) ? [{ layer: l, codes: l.fixed.get(i)! }] : [])));
  const act = scheme([...activations.values()], PRESETS.tensorrt.config.activations);
  const w = scheme(
    weights.flatMap((x) => x.codes.params),
    PRESETS.tensorrt.config.weights,
  );
  const perChannel = weights.some((x) => x.codes.params.length > 1);
  const narrow = w.signed && weights.every((x) => x.codes.codes.every((c) => c > x.codes.params[0].qmin));
  const preset: PresetName = act.powerOfTwo && w.powerOfTwo ? 'power-of-two' : act.signed ? 'tensorrt' : !w.signed ? 'qnn' : 'ort-cpu';
  const tensorOverrides: TensorOverride[] = [...activations].map(([tensor, p]) => {
    const bits = gridType(p).bits;
    return { tensor, range: representableRange(p), ...(bits !== act.bits ? { bits } : {}) };
  });
  const layerOverrides: LayerOverride[] = [];
  for (const { layer, codes } of weights) {
    const bits = gridType(codes.params[0]).bits;
    const pc = codes.params.length > 1;
    if (bits !== w.bits || pc !== perChannel)
      layerOverrides.push({ node: layer.node.name, ...(bits !== w.bits ? { weightBits: bits } : {}), ...(pc !== perChannel ? { perChannel: pc } : {}) });
  }
  return {
    preset,
    calibration: 'minmax',
    percentile: PRESETS[preset].config.percentile,
    weights: { ...w, narrowRange: narrow, perChannel },
    activations: act,
    placement: 'extended',
    exclude: [],
    foldBatchNorm,
    tensorOverrides,
    ...(layerOverrides.length ? { layerOverrides } : {}),
  };
}
