import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump } from 'npyjs';
import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
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
  console.log('prepared');
  const q = await quantizeWith(p, { ...resolveConfig('ort-cpu'), layerOverrides: [{ node: 'mm1', activationBits: process.argv[2] === '8' ? 8 : 4 }] });
  console.log('quantized');
  const rep = await evaluate(p, q, { diagnose: process.argv[5] === 'nodiag' ? undefined : { minSqnrDb: 30 }, sensitivity: process.argv[3] !== 'nosens', integerDiff: process.argv[4] !== 'nodiff', onProgress: (x) => console.log(x.stage, x.done) });
  console.log(rep.primaryMetric!.value, rep.diagnosis?.culprits.map((c) => c.node + ' ' + c.cause), rep.diagnosis?.fix?.description);
})();
