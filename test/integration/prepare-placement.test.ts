/**
 * Preparing with the first configuration's placement (PrepareOptions.placement): an 'extended'
 * configuration's activations are calibrated in the first float pass, so quantizeWith has nothing
 * left to calibrate, and the grids it computes are those of the two-pass route (prepare for
 * compute ops, then a second pass inside quantizeWith), up to float noise. On the bundled demo, whose Add and
 * GlobalAveragePool are quantized only by the extended placement.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { planQuantization } from '../../engine/quantize/plan';
import { resolveConfig } from '../../engine/quantize/presets';

const root = path.resolve(__dirname, '../..');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');

describe('prepare with the placement of the first configuration', () => {
  it('calibrates the extended activations in the first pass, with the same grids as two passes', async () => {
    const config = resolveConfig('ort-cpu', { calibration: 'percentile' });
    assert.equal(config.placement, 'extended');
    const twoPass = await prepareAnalysis(model, { dataPath: data });
    const onePass = await prepareAnalysis(model, { dataPath: data, placement: 'extended' });
    const g = twoPass.float.graph!;
    // What the two-pass route leaves to quantizeWith: the demo's Add and GlobalAveragePool outputs.
    const extra = planQuantization(g, 'extended', []).activations.filter((t) => !twoPass.stats.has(t));
    assert.ok(extra.length >= 2, extra.join(','));
    for (const t of extra) assert.ok(onePass.stats.has(t), `${t} not calibrated in the first pass`);
    assert.deepEqual([...onePass.stats.keys()].filter((t) => !twoPass.stats.has(t)).sort(), [...extra].sort());
    const a = await quantizeWith(twoPass, config);
    const b = await quantizeWith(onePass, config);
    assert.ok(a.actParams.size > 0);
    assert.deepEqual([...b.actParams.keys()].sort(), [...a.actParams.keys()].sort());
    // Equal up to float noise: a float pass that exposes other tensors lets onnxruntime fuse other
    // nodes, which round differently in the last bits.
    for (const [t, pa] of a.actParams) {
      const pb = b.actParams.get(t)!;
      assert.deepEqual([pb.zeroPoint, pb.qmin, pb.qmax], [pa.zeroPoint, pa.qmin, pa.qmax], t);
      assert.ok(Math.abs(pb.scale - pa.scale) <= 1e-6 * pa.scale, `${t}: ${pb.scale} vs ${pa.scale}`);
    }
    await twoPass.data.close();
    await onePass.data.close();
  });
});
