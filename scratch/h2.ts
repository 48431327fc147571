import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump } from 'npyjs';
import { prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { OutputMeasurer } from '../engine/analysis/measure';
import { resolveConfig } from '../engine/quantize/presets';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../test/helpers/tinyModels';
(async () => {
  const dir = tempDir();
  const r = rng(11);
  const K = 8, H = 32, S = 200;
  const W1 = Float32Array.from({ length: K * H }, () => randn(r) * 0.4);
  const W2 = Float32Array.from({ length: H }, () => randn(r) * 0.3);
  const X = Float32Array.from({ length: S * K }, () => randn(r));
  const model = writeModel(dir, 'head.onnx', buildModel({
    nodes: [makeNode('MatMul', ['x', 'w1'], ['h'], 'mm1'), makeNode('Relu', ['h'], ['a'], 'relu'), makeNode('MatMul', ['a', 'w2'], ['y'], 'mm2')],
    inputs: [valueInfo('x', ['N', K])], outputs: [valueInfo('y', ['N', 1])],
    initializers: [makeTensor('w1', DT.FLOAT, [K, H], W1), makeTensor('w2', DT.FLOAT, [H, 1], W2)],
  }));
  const data = path.join(dir, 'd'); fs.mkdirSync(data); fs.writeFileSync(path.join(data, 'x.npy'), Buffer.from(dump(X, [S, K])));
  const p = await prepareAnalysis(model, { dataPath: data });
  const q = await quantizeWith(p, { ...resolveConfig((process.argv[3] ?? 'ort-cpu') as any), layerOverrides: [{ node: 'mm1', activationBits: Number(process.argv[2]) as 4 }] });
  const m = await OutputMeasurer.create(p);
  console.log('measuring');
  const { buildQdqModel } = await import('../engine/quantize/qdqRewrite');
  for (const taps of [true, false]) for (const mode of ['simulated', 'integer'] as const) { console.log(taps, mode); const { model: mm } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, taps); const b = await m.measureModel(mm, mode); console.log(b.primary.value.estimate); }
  const a = await m.measureConfig(q.config, q);
  console.log(a.primary.value.estimate);
})();
