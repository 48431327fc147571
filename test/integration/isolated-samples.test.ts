/**
 * Isolated errors (each layer alone, fed the float model's tensors) on the first samples only: the
 * comparison models run their isolated layers inside Ifs (engine/quantize/isolatedGate.ts) fed a
 * flag per batch. On the demo, with the same quantized model, an evaluation over all 300 samples
 * that runs the isolated layers on the first 64 must give every layer's isolated errors of an
 * evaluation over those 64 samples alone, and the accumulated errors of all 300.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { resolveConfig } from '../../engine/quantize/presets';

const root = path.resolve(__dirname, '../..');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const dataPath = path.join(root, 'examples/mnist-cnn/data');

describe('isolated errors on the first samples', () => {
  it('equal those of an evaluation on those samples alone; accumulated errors cover all samples', async () => {
    const config = resolveConfig('tensorrt', { calibration: 'percentile' });
    const all = await prepareAnalysis(model, { dataPath, batchSize: 32 });
    const q = await quantizeWith(all, config);
    const sampled = await evaluate(all, q, { sensitivity: false, isolatedSamples: 64 });
    const first = await prepareAnalysis(model, { dataPath, batchSize: 32, samples: 64 });
    const alone = await evaluate(first, q, { sensitivity: false });
    const whole = await evaluate(all, q, { sensitivity: false, isolatedSamples: 300 });

    assert.equal(sampled.samples, 300);
    assert.equal(sampled.isolatedSamples, 64);
    assert.equal(alone.isolatedSamples, 64);
    assert.equal(whole.isolatedSamples, 300);
    let moved = 0;
    for (const [i, l] of sampled.layers.entries()) {
      for (const k of ['simulated', 'integer'] as const) {
        const got = l.isolated[k];
        const want = alone.layers[i].isolated[k];
        // the same sums of the same 64 samples, accumulated batch by batch in the same order
        assert.equal(got.sqnrDb, want.sqnrDb, `${l.node} isolated ${k}`);
        assert.equal(got.mse, want.mse, `${l.node} isolated ${k} MSE`);
        // accumulated: all samples, as without sampling
        assert.equal(l[k].sqnrDb, whole.layers[i][k].sqnrDb, `${l.node} accumulated ${k}`);
        if (whole.layers[i].isolated[k].sqnrDb !== got.sqnrDb) moved++;
      }
    }
    // 64 of 300 samples are not all of them: the isolated figures do move (this test sees the difference)
    assert.ok(moved > 0, 'isolated errors on 64 samples equal those on 300');
  });
});
