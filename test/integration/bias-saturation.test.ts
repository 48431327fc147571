/**
 * An int32 bias that does not fit at the scale the integer kernel adds it at (S_in x S_w): with
 * 16-bit activations and 16-bit weights that scale is near 1e-10, and a bias of 1e3 is 1e13 steps.
 * The written file holds it clamped; the report and `quantize` must say so, layer by layer, with the
 * count of values that do not fit (checked here against the bias and the scales directly).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, describe, it } from 'node:test';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { biasSaturationWarnings } from '../../engine/analysis/clipWarnings';
import { resolveConfig } from '../../engine/quantize/presets';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { writeNpy } from '../helpers/npyFiles';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const r = rng(11);
const X = Float32Array.from({ length: 64 * 8 }, () => randn(r));
const W = Float32Array.from({ length: 4 * 8 }, () => randn(r) * 0.3);
// two bias values far beyond any 16 x 16-bit bias scale, two small ones
const B = Float32Array.from([1000, -0.1, 0.2, -2000]);
const model = writeModel(
  dir,
  'gemm.onnx',
  buildModel({
    nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['y'], 'fc', { transB: 1 })],
    inputs: [valueInfo('x', ['N', 8])],
    outputs: [valueInfo('y', ['N', 4])],
    initializers: [makeTensor('w', DT.FLOAT, [4, 8], W), makeTensor('b', DT.FLOAT, [4], B)],
  }),
);
const data = writeNpy(dir, 'x.npy', X, [64, 8]);

describe('an int32 bias that does not fit is called out', () => {
  it('16-bit activations and weights: the values beyond int32 at S_in x S_w, counted per layer', async () => {
    const p = await prepareAnalysis(model, { dataPath: data });
    const q = await quantizeWith(p, resolveConfig('ort-cpu', { weights: { bits: 16 }, activations: { bits: 16 } }));
    const built = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
    const wq = built.weights.find((w) => w.layer === 'fc')!;
    // the independent count: |b / (S_in S_w)| beyond the int32 range, channel by channel
    const sIn = Math.fround(q.actParams.get('x')!.scale);
    const beyond = Array.from(B).filter(
      (b, i) => Math.abs(b / Math.fround(sIn * Math.fround(wq.params[wq.params.length > 1 ? i : 0].scale))) > 2 ** 31 - 1,
    ).length;
    assert.equal(beyond, 2);
    const w = biasSaturationWarnings(built.weights);
    assert.equal(w.length, 1);
    assert.equal(w[0].node, 'fc');
    assert.match(w[0].message, /^fc: 2 of 4 bias values do not fit int32 at the bias scale S_in x S_w = [\d.]+e-\d+ and are written clamped/);
    const report = await evaluate(p, q, { sensitivity: false });
    assert.ok(report.warnings.some((x) => x.code === 'bias-saturation' && x.node === 'fc'));
  });

  it('8-bit grids leave the bias room: no warning', async () => {
    const p = await prepareAnalysis(model, { dataPath: data });
    const q = await quantizeWith(p, resolveConfig('ort-cpu', {}));
    const built = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
    assert.deepEqual(biasSaturationWarnings(built.weights), []);
  });
});
