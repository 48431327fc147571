/**
 * Integer-only execution of the quantized demo CNN (examples/mnist-cnn): Conv (incl. depthwise),
 * Gemm, Relu, the residual Add, GlobalAveragePool and Flatten on integer codes, compared with the
 * simulated (QDQ in onnxruntime) accuracy of the SAME prepared/quantized configuration.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { runIntegerCnn } from '../../engine/integer/cnnGraph';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { resolveConfig } from '../../engine/quantize/presets';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'examples/mnist-cnn/model.onnx');
const DATA = path.join(ROOT, 'examples/mnist-cnn/data');

test('integer-only CNN execution matches the simulated top-1 on the demo', { timeout: 300_000 }, async () => {
  const prepared = await prepareAnalysis(MODEL, { dataPath: DATA });
  assert.equal(prepared.data.samples, 300);
  assert.ok(prepared.data.labels, 'the demo data is labelled');
  const config = resolveConfig('ort-cpu', { calibration: 'percentile', placement: 'extended' });
  const q = await quantizeWith(prepared, config);
  const report = await evaluate(prepared, q, { sensitivity: false });
  const simTop1 = report.accuracy.simulated.top1;
  assert.ok(typeof simTop1 === 'number');

  const { weights } = buildQdqModel(q.prepared, prepared.loaded.dir, q.plan, q.actParams, config, false);
  const r = await runIntegerCnn(prepared, q, { weights });
  console.log(`integer-only top-1 ${r.top1}  simulated top-1 ${simTop1}  float top-1 ${r.floatTop1}  agreement with float ${r.agreement}`);
  console.log(`floatOps ${JSON.stringify(r.floatOps)}  ops ${JSON.stringify(r.ops)}  overflow ${r.overflowCount}  saturated ${r.saturationCount}`);

  assert.ok(r.top1 !== null);
  assert.ok(Math.abs(r.top1! - simTop1!) <= 0.01, `integer ${r.top1} vs simulated ${simTop1}`);
  // BatchNormalization runs as an integer per-channel affine: nothing runs in float.
  assert.deepEqual(r.floatOps, []);
  for (const op of ['Conv', 'Gemm', 'Relu', 'Add', 'GlobalAveragePool', 'Flatten', 'BatchNormalization']) {
    assert.ok((r.ops[op] ?? 0) > 0, `${op} executed in integers`);
  }
  assert.equal(r.overflowCount, 0);
  assert.ok(r.agreement > 0.9);

  // The float-BN ablation lists exactly the two unfoldable BatchNormalization nodes.
  const f = await runIntegerCnn(prepared, q, { weights, floatBatchNorm: true });
  console.log(`float-BN ablation: top-1 ${f.top1}  floatOps ${JSON.stringify(f.floatOps)}`);
  assert.deepEqual(f.floatOps.map((o) => o.node).sort(), ['/bn_head/BatchNormalization', '/bn_res/BatchNormalization']);
  assert.ok(f.floatOps.every((o) => o.op === 'BatchNormalization' && o.reason.length > 0));
  assert.equal(f.ops.BatchNormalization ?? 0, 0);
  assert.ok(Math.abs(f.top1! - simTop1!) <= 0.01, `float-BN ${f.top1} vs simulated ${simTop1}`);
});
