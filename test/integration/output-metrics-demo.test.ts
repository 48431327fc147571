/**
 * The output metrics on real onnxruntime sessions (the demo CNN, float vs integer kernels): the
 * streaming per-output comparison must agree with the pipeline's own whole-model comparison
 * (engine/analysis/measure.ts: Top1Counter, ErrorAccumulator), and the verdicts must say what 300
 * samples can and cannot decide.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type * as ort from 'onnxruntime-node';
import { type Prepared, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { OutputMeasurer } from '../../engine/analysis/measure';
import { ModelOutputComparison, type OutputSummary } from '../../engine/analysis/outputMetrics';
import { choosePrimaryMetric } from '../../engine/analysis/primaryMetric';
import { pairedDropAt } from '../../engine/analysis/statistics';
import { budgetVerdict } from '../../engine/analysis/verdict';
import { batchRanges } from '../../engine/data/dataset';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { resolveConfig } from '../../engine/quantize/presets';
import { createSession, feedsFor } from '../../engine/runtime/session';
import { SATURATING_INT8 } from '../helpers/cpu';

const root = path.resolve(__dirname, '../..');

describe('output metrics on the demo CNN, float vs integer kernels', () => {
  let p: Prepared;
  let floatSession: ort.InferenceSession;
  let reference: OutputMeasurer;

  before(async () => {
    p = await prepareAnalysis(path.join(root, 'examples/mnist-cnn/model.onnx'), { dataPath: path.join(root, 'examples/mnist-cnn/data') });
    floatSession = await createSession(p.float, 'float');
    reference = await OutputMeasurer.create(p);
  });
  after(async () => {
    await floatSession.release();
    await reference.release();
  });

  for (const calibration of ['minmax', 'entropy'] as const) {
    it(`${calibration}: the same top-1, agreement and SQNR as the pipeline, now with intervals`, async () => {
      const config = resolveConfig('tensorrt', { calibration });
      const q = await quantizeWith(p, config);
      const { model } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, config, false);
      const integer = await createSession(model, 'integer');
      const cmp = new ModelOutputComparison(p.outputs);
      try {
        for (const [start, count] of batchRanges(p.data.samples, p.batchSize)) {
          const feeds = await feedsFor(p.data, start, count);
          const f = await floatSession.run(feeds);
          const r = await integer.run(feeds);
          cmp.add(f as never, r as never, count, p.data.labels!.subarray(start, start + count));
        }
        const measured = await reference.measureModel(integer, 'integer');
        const pipeline = measured.metrics;
        const floatTop1 = measured.primary.floatValue;
        const [out]: OutputSummary[] = cmp.summaries();
        const labelled = out.classifier!.labelled!;
        assert.equal(labelled.n, 300);
        assert.equal(labelled.candidate.estimate, pipeline.top1);
        assert.equal(labelled.reference.estimate, floatTop1);
        assert.equal(out.classifier!.top1Agreement.estimate, pipeline.agreement);
        assert.ok(Math.abs(out.sqnrDb - pipeline.outputSqnrDb) < 1e-9, `${out.sqnrDb} vs ${pipeline.outputSqnrDb}`);
        assert.deepEqual(out.nonFinite, { float: 0, quantized: 0, matched: 0 });

        const primary = choosePrimaryMetric(cmp.summaries());
        assert.equal(primary.kind, 'top1');
        const v = budgetVerdict({ loss: primary.loss!, budget: 1, n: primary.n, projection: { intervalAt: pairedDropAt(labelled.table) } });
        if (calibration === 'entropy') {
          // entropy over-clips this model's ReLU activations: a drop of tens of points is decided
          assert.ok(primary.loss!.low > 10);
          assert.equal(v.kind, 'over-budget');
          assert.ok(labelled.mcnemarP < 1e-10);
        } else if (!SATURATING_INT8) {
          // a handful of changed samples out of 300: the interval straddles a 1-point budget
          // (where the int8 kernels are exact; test/helpers/cpu.ts)
          assert.ok(labelled.table.referenceOnly + labelled.table.candidateOnly <= 10);
          assert.equal(v.kind, 'cannot-tell');
          assert.ok(v.samplesNeeded! > 300);
        }
      } finally {
        await integer.release();
      }
    });
  }
});
