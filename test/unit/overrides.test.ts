/**
 * Per-tensor and per-layer overrides (the per-layer plan behind diagnosis fixes, calibration tables
 * and what-if thresholds), checked on a two-MatMul graph against values computed here from the data.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { dump } from 'npyjs';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { GraphIndex } from '../../engine/onnx/graph';
import { resolveConfig } from '../../engine/quantize/presets';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const r = rng(5);
const K = 16,
  S = 96;
const W1 = Float32Array.from({ length: K * K }, () => randn(r) * 0.3);
const W2 = Float32Array.from({ length: K * 4 }, () => randn(r) * 0.3);
const X = Float32Array.from({ length: S * K }, () => randn(r) * (1 + 3 * r()));
const modelPath = writeModel(
  dir,
  'mm2.onnx',
  buildModel({
    nodes: [makeNode('MatMul', ['x', 'w1'], ['h'], 'mm1'), makeNode('MatMul', ['h', 'w2'], ['y'], 'mm2')],
    inputs: [valueInfo('x', ['N', K])],
    outputs: [valueInfo('y', ['N', 4])],
    initializers: [makeTensor('w1', DT.FLOAT, [K, K], W1), makeTensor('w2', DT.FLOAT, [K, 4], W2)],
  }),
);
const dataDir = path.join(dir, 'data');
fs.mkdirSync(dataDir);
fs.writeFileSync(path.join(dataDir, 'x.npy'), Buffer.from(dump(X, [S, K])));

const scaleOf = (model: ReturnType<typeof buildQdqModel>['model'], tensor: string) => {
  const g = model.graph!;
  const q = g.node.find((n) => n.opType === 'QuantizeLinear' && n.input[0] === tensor)!;
  const idx = new GraphIndex(g);
  const s = idx.initializers.get(q.input[1])!;
  const z = idx.initializers.get(q.input[2])!;
  return { scale: new Float32Array(s.rawData.buffer.slice(s.rawData.byteOffset, s.rawData.byteOffset + 4))[0] ?? s.floatData[0], zeroType: z.dataType };
};

describe('configuration overrides', () => {
  it("a tensor range override sets that tensor's grid exactly; a calibration override uses that method", async () => {
    const p = await prepareAnalysis(modelPath, { dataPath: dataDir });
    const base = resolveConfig('tensorrt', { calibration: 'entropy' });
    const q = await quantizeWith(p, {
      ...base,
      tensorOverrides: [
        { tensor: 'x', range: { lo: -2, hi: 2 } },
        { tensor: 'h', calibration: 'minmax' },
      ],
    });
    const m = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false).model;
    // TensorRT scheme: symmetric narrow int8, scale = amax / 127
    assert.equal(scaleOf(m, 'x').scale, Math.fround(2 / 127));
    let hmax = 0;
    for (let s = 0; s < S; s++)
      for (let j = 0; j < K; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += X[s * K + k] * W1[k * K + j];
        hmax = Math.max(hmax, Math.abs(acc));
      }
    assert.ok(Math.abs(scaleOf(m, 'h').scale - hmax / 127) <= 1e-6 * hmax, `h scale ${scaleOf(m, 'h').scale} vs minmax ${hmax / 127}`);
  });

  it('a 16-bit layer gets int16 grids for its activations and weights, and a far smaller isolated error', async () => {
    const p = await prepareAnalysis(modelPath, { dataPath: dataDir });
    const base = resolveConfig('tensorrt', { calibration: 'minmax' });
    const plain = await evaluate(p, await quantizeWith(p, base), { sensitivity: false, integerDiff: false });
    const config = { ...base, layerOverrides: [{ node: 'mm1', activationBits: 16 as const, weightBits: 16 as const, perChannel: false }] };
    const q = await quantizeWith(p, config);
    const m = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false).model;
    assert.equal(scaleOf(m, 'x').zeroType, DT.INT16);
    assert.equal(scaleOf(m, 'h').zeroType, DT.INT16);
    const w1 = m.graph!.initializer.find((t) => t.name.startsWith('mm1_w1') && t.name.endsWith('_quantized'))!;
    assert.equal(w1.dataType, DT.INT16);
    assert.equal(m.graph!.initializer.find((t) => t.name.startsWith('mm1_w1') && t.name.endsWith('_scale'))!.dims.length, 0, 'per tensor');
    const wide = await evaluate(p, q, { sensitivity: false, integerDiff: false });
    const iso = (rep: typeof plain, node: string) => rep.layers.find((l) => l.node === node)!.isolated.simulated.sqnrDb;
    // 8 more bits on every operand: about 48 dB less quantization noise; ask for 30.
    assert.ok(iso(wide, 'mm1') > iso(plain, 'mm1') + 30, `16-bit ${iso(wide, 'mm1')} dB vs 8-bit ${iso(plain, 'mm1')} dB`);
    assert.ok(Math.abs(iso(wide, 'mm2') - iso(plain, 'mm2')) < 3, 'mm2 keeps 8-bit weights (its input h is 16-bit now)');
  });
});
