/**
 * Configuration sweeps: a grid over bits, calibration method, granularity, symmetry and preset,
 * each configuration re-quantized from the SAME float statistics (the calibration pass runs once)
 * and re-evaluated on the model outputs, simulated and integer. Results carry model size and the
 * Pareto front of accuracy drop vs size.
 */
import type { QuantConfig, SweepEntry, SweepReport } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { encodeModel } from '../onnx/model';
import { configLabel, markPareto } from '../quantize/grid';
import { buildQdqModel } from '../quantize/qdqRewrite';
import { type Prepared, type Progress, quantizeWith } from './analyze';
import { checkCancel } from './cancel';
import { FloatReference, dropPoints } from './outputs';

export async function runSweep(
  p: Prepared,
  configs: QuantConfig[],
  opts: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {},
): Promise<SweepReport> {
  const ref = await FloatReference.create(p);
  const floatTop1 = await ref.floatTop1();
  const entries: SweepEntry[] = [];
  try {
    for (const [id, config] of configs.entries()) {
      checkCancel(opts.signal);
      const t0 = performance.now();
      const label = configLabel(config);
      try {
        const q = await quantizeWith(p, config);
        const { model } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, config, false);
        const simulated = await ref.measure(model, 'simulated', opts.signal);
        const integer = await ref.measure(model, 'integer', opts.signal);
        entries.push({
          id, label, config, accuracy: { float: floatTop1, simulated, integer },
          drop: dropPoints(floatTop1, integer), dropBasis: floatTop1 !== null ? 'top1' : 'agreement',
          agreement: integer.agreement, outputSqnrDb: integer.outputSqnrDb, sizeBytes: encodeModel(model).length,
          pareto: false, evalMs: performance.now() - t0,
        });
      } catch (e) {
        if ((e as Error).name === 'CancelledError') throw e;
        const nan = { top1: null, agreement: 0, outputSqnrDb: -Infinity };
        entries.push({
          id, label, config, accuracy: { float: floatTop1, simulated: nan, integer: nan }, drop: Infinity, dropBasis: floatTop1 !== null ? 'top1' : 'agreement',
          agreement: 0, outputSqnrDb: -Infinity, sizeBytes: 0, pareto: false, evalMs: performance.now() - t0, error: (e as Error).message.split('\n')[0],
        });
      }
      opts.onProgress?.({ stage: 'sweep', done: id + 1, total: configs.length, message: label });
    }
  } finally {
    await ref.release();
  }
  markPareto(entries);
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
