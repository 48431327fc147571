/**
 * Calibration tables in and out of the pipeline: another tool's thresholds (a TensorRT calibration
 * cache, onnxruntime's calibration.json) applied as per-tensor range overrides, and QuantLens'
 * own thresholds written for TensorRT or onnxruntime to use.
 */
import type { QuantConfig, Range, Warning } from '../../protocol/report';
import { matchTable, readCalibrationTable, writeCalibrationTable } from '../calibration/tables';
import type { OutputTarget } from '../io/files';
import { quantizeWith } from './quantize';
import type { Prepared, Quantized } from './types';

/** The configuration with every tensor the table names pinned to the table's range, and what did not match. */
export async function applyCalibrationTable(p: Prepared, config: QuantConfig, file: string): Promise<{ config: QuantConfig; warnings: Warning[] }> {
  const table = readCalibrationTable(file);
  const q = await quantizeWith(p, config);
  const m = matchTable(table, q.plan.activations);
  const pinned = new Set(m.ranges.keys());
  const config2: QuantConfig = {
    ...config,
    tensorOverrides: [
      ...(config.tensorOverrides ?? []).filter((o) => !pinned.has(o.tensor)),
      ...[...m.ranges].map(([tensor, range]) => ({ ...config.tensorOverrides?.find((o) => o.tensor === tensor), tensor, range })),
    ],
  };
  const warnings: Warning[] = [
    {
      code: 'calibration-table',
      message: `${file} (${table.format}): ${m.ranges.size} of ${q.plan.activations.length} activation ranges taken from the table`,
    },
  ];
  if (m.unmatched.length) {
    warnings.push({
      code: 'calibration-table-unmatched',
      message: `${file}: ${m.unmatched.length} entries name no activation of this model (TensorRT names tensors after its own fusions): ${m.unmatched.slice(0, 8).join(', ')}${m.unmatched.length > 8 ? ', ...' : ''}`,
    });
  }
  if (m.missing.length) {
    warnings.push({
      code: 'calibration-table-missing',
      message: `${file} has no range for ${m.missing.length} activation(s); they keep the ${config.calibration} threshold: ${m.missing.slice(0, 8).join(', ')}${m.missing.length > 8 ? ', ...' : ''}`,
    });
  }
  return { config: config2, warnings };
}

/** Each quantized activation's range as calibrated (before the grid widens it to include zero). */
export function calibratedRanges(q: Quantized): Map<string, Range> {
  const out = new Map<string, Range>();
  const over = new Map((q.config.tensorOverrides ?? []).map((o) => [o.tensor, o]));
  for (const t of q.plan.activations) {
    const o = over.get(t);
    const th = q.thresholds.get(t);
    const r = o?.range ?? th?.thresholds[o?.calibration ?? q.config.calibration];
    if (r) out.set(t, r);
  }
  return out;
}

/** Write the thresholds of `q` as a TensorRT cache or onnxruntime calibration.json (by extension). */
export function exportCalibrationTable(q: Quantized, target: OutputTarget): string {
  const format = /\.json$/i.test(target.path) ? 'ort-json' : 'tensorrt';
  return writeCalibrationTable(target, format, calibratedRanges(q));
}
