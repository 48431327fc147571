/**
 * Quick picks for a sweep: which axes to vary, then which values of each.
 */
import * as vscode from 'vscode';
import type { CalibrationMethod, PresetName } from '../protocol/report';
import type { SweepAxes } from '../engine/quantize/grid';

type Item<T> = vscode.QuickPickItem & { value: T };

async function pickMany<T>(title: string, items: Item<T>[]): Promise<T[] | undefined> {
  const picked = await vscode.window.showQuickPick(items, { title, canPickMany: true, ignoreFocusOut: true });
  if (!picked || picked.length === 0) return undefined;
  return picked.map((p) => p.value);
}

const bits = (defaults: number[]): Item<4 | 8 | 16>[] => ([16, 8, 4] as const).map((b) => ({ label: `${b}-bit`, value: b, picked: defaults.includes(b) }));

export async function pickSweepAxes(): Promise<SweepAxes | undefined> {
  const axisItems: Item<keyof SweepAxes>[] = [
    { label: 'Calibration method', description: 'minmax, ema, percentile (99.9 / 99.99 / 99.999), entropy, mse', value: 'calibration', picked: true },
    { label: 'Weight bits', description: '16 / 8 / 4', value: 'weightBits', picked: true },
    { label: 'Granularity', description: 'per-channel / per-tensor weights', value: 'granularity', picked: true },
    { label: 'Activation bits', description: '16 / 8', value: 'activationBits' },
    { label: 'Symmetry', description: 'symmetric / asymmetric activations', value: 'symmetric' },
    { label: 'Preset', description: 'tensorrt / ort-cpu / qnn / power-of-two', value: 'preset' },
  ];
  const axes = await pickMany('QuantLens sweep: axes to vary', axisItems);
  if (!axes) return undefined;
  const out: SweepAxes = {};
  for (const axis of axes) {
    switch (axis) {
      case 'calibration': {
        const methods: Item<{ method: CalibrationMethod; percentile?: number }>[] = [
          { label: 'minmax', value: { method: 'minmax' }, picked: true },
          { label: 'ema', value: { method: 'ema' }, picked: true },
          { label: 'percentile 99.9', value: { method: 'percentile', percentile: 99.9 }, picked: true },
          { label: 'percentile 99.99', value: { method: 'percentile', percentile: 99.99 }, picked: true },
          { label: 'percentile 99.999', value: { method: 'percentile', percentile: 99.999 } },
          { label: 'entropy (TensorRT KL)', value: { method: 'entropy' }, picked: true },
          { label: 'mse', value: { method: 'mse' }, picked: true },
        ];
        const v = await pickMany('Calibration methods', methods);
        if (!v) return undefined;
        out.calibration = v;
        break;
      }
      case 'weightBits': {
        const v = await pickMany('Weight bits', bits([8, 4]));
        if (!v) return undefined;
        out.weightBits = v;
        break;
      }
      case 'activationBits': {
        const v = await pickMany(
          'Activation bits',
          bits([8, 16]).filter((i) => i.value !== 4),
        );
        if (!v) return undefined;
        out.activationBits = v;
        break;
      }
      case 'granularity': {
        const v = await pickMany<'per-channel' | 'per-tensor'>('Weight granularity', [
          { label: 'per-channel', value: 'per-channel', picked: true },
          { label: 'per-tensor', value: 'per-tensor', picked: true },
        ]);
        if (!v) return undefined;
        out.granularity = v;
        break;
      }
      case 'symmetric': {
        const v = await pickMany('Activation symmetry', [
          { label: 'symmetric', value: true, picked: true },
          { label: 'asymmetric', value: false, picked: true },
        ]);
        if (!v) return undefined;
        out.symmetric = v;
        break;
      }
      case 'preset': {
        const presets: PresetName[] = ['tensorrt', 'ort-cpu', 'qnn', 'power-of-two'];
        const v = await pickMany(
          'Backend presets',
          presets.map((p) => ({ label: p, value: p, picked: true })),
        );
        if (!v) return undefined;
        out.preset = v;
        break;
      }
    }
  }
  return out;
}
