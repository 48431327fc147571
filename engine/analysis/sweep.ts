/**
 * Configuration sweeps: a grid over bits, calibration method, granularity, symmetry and preset,
 * each configuration re-quantized from the SAME float statistics (the calibration pass runs once)
 * and re-evaluated on the model outputs, simulated and integer (measure.ts: every output, the
 * primary metric with its interval). Results carry model size and the Pareto front of loss vs
 * size, each configuration marked with the front's points it cannot be told apart from (paired
 * comparison on the same samples).
 */
import type { QuantConfig, SweepEntry, SweepReport } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { encodeModel } from '../onnx/model';
import { configLabel, markPareto } from '../quantize/grid';
import { buildQdqModel } from '../quantize/qdqRewrite';
import { type Prepared, type Progress, quantizeWith } from './analyze';
import { checkCancel } from './cancel';
import { type Measurement, OutputMeasurer, compareMeasurements, lossValue, withinNoise } from './measure';
import type { UserMetric } from './userMetric';

export async function runSweep(
  p: Prepared,
  configs: QuantConfig[],
  opts: { onProgress?: (p: Progress) => void; signal?: AbortSignal; metric?: UserMetric } = {},
): Promise<SweepReport> {
  const ref = await OutputMeasurer.create(p, { metric: opts.metric, signal: opts.signal });
  const entries: SweepEntry[] = [];
  const measured = new Map<number, Measurement>();
  let floatTop1: number | null = null;
  try {
    for (const [id, config] of configs.entries()) {
      checkCancel(opts.signal);
      const t0 = performance.now();
      const label = configLabel(config);
      try {
        const q = await quantizeWith(p, config);
        const { model } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, config, false);
        const simulated = (await ref.measureModel(model, 'simulated')).metrics;
        const m = await ref.measureConfig(config, q);
        measured.set(id, m);
        const pm = m.primary;
        if (pm.kind === 'top1') floatTop1 = pm.floatValue ?? null;
        entries.push({
          id,
          label,
          config,
          accuracy: { float: floatTop1, simulated, integer: m.metrics },
          drop: lossValue(m),
          dropBasis: pm.kind,
          loss: pm.loss,
          value: pm.value,
          agreement: m.metrics.agreement,
          outputSqnrDb: m.metrics.outputSqnrDb,
          sizeBytes: encodeModel(model).length,
          pareto: false,
          evalMs: performance.now() - t0,
        });
      } catch (e) {
        if ((e as Error).name === 'CancelledError') throw e;
        const nan = { top1: null, agreement: 0, outputSqnrDb: -Infinity };
        entries.push({
          id,
          label,
          config,
          accuracy: { float: floatTop1, simulated: nan, integer: nan },
          drop: Infinity,
          dropBasis: p.data.labels ? 'top1' : 'agreement',
          agreement: 0,
          outputSqnrDb: -Infinity,
          sizeBytes: 0,
          pareto: false,
          evalMs: performance.now() - t0,
          error: (e as Error).message.split('\n')[0],
        });
      }
      opts.onProgress?.({ stage: 'sweep', done: id + 1, total: configs.length, message: label });
    }
  } finally {
    await ref.release();
  }
  markPareto(entries);
  for (const e of entries) e.accuracy.float = floatTop1;
  const front = entries.filter((e) => e.pareto);
  for (const e of entries) {
    const m = measured.get(e.id);
    if (m) e.withinNoiseOf = front.filter((f) => f !== e && withinNoise(compareMeasurements(m, measured.get(f.id)!))).map((f) => f.id);
  }
  const extra = entries.slice(1).map((e) => e.evalMs);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'sweep',
    model: { path: p.loaded.path, sha256: p.loaded.sha256 },
    data: { source: p.data.source, synthetic: p.data.synthetic, labels: p.data.labels !== null },
    samples: p.data.samples,
    floatTop1,
    configs: entries,
    timings: {
      prepareMs: p.timings.calibrateMs,
      firstConfigMs: entries[0]?.evalMs ?? 0,
      meanExtraConfigMs: extra.length ? extra.reduce((a, b) => a + b, 0) / extra.length : 0,
    },
  };
}
