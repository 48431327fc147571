/**
 * Integer-only execution of the quantized demo CNN (examples/mnist-cnn): Conv (incl. depthwise),
 * Gemm, Relu, the residual Add, BatchNormalization, GlobalAveragePool and Flatten on integer
 * codes, compared with the simulated (QDQ in onnxruntime) accuracy of the SAME
 * prepared/quantized configuration, for two presets.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { type Prepared, evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { runIntegerOnly } from '../../engine/integerOnly';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { resolveConfig } from '../../engine/quantize/presets';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';

const ROOT = path.resolve(__dirname, '../..');
const MODEL = path.join(ROOT, 'examples/mnist-cnn/model.onnx');
const DATA = path.join(ROOT, 'examples/mnist-cnn/data');

describe('integer-only demo CNN', { timeout: 600_000 }, () => {
  let prepared: Prepared;
  before(async () => {
    prepared = await prepareAnalysis(MODEL, { dataPath: DATA });
    assert.equal(prepared.data.samples, 300);
    assert.ok(prepared.data.labels, 'the demo data is labelled');
  });

  for (const [preset, over] of [
    ['ort-cpu', { calibration: 'percentile', placement: 'extended' }],
    ['tensorrt', { calibration: 'percentile' }],
  ] as const) {
    it(`${preset}: top-1 equals the simulated top-1, nothing in float`, async () => {
      const config = resolveConfig(preset, over);
      const q = await quantizeWith(prepared, config);
      const report = await evaluate(prepared, q, { sensitivity: false, integerDiff: false });
      const simTop1 = report.accuracy.simulated.top1;
      assert.ok(typeof simTop1 === 'number');

      const { weights } = buildQdqModel(q.prepared, prepared.loaded.dir, q.plan, q.actParams, config, false);
      const r = await runIntegerOnly(prepared, q, { weights });
      console.log(
        `${preset}: integer-only top-1 ${r.top1}  simulated ${simTop1}  float ${r.floatTop1}  agreement ${r.agreement}  output SQNR ${r.outputSqnrDb.toFixed(1)} dB`,
      );
      console.log(`  floatOps ${JSON.stringify(r.floatOps)}  ops ${JSON.stringify(r.ops)}  overflow ${r.overflowCount}  saturated ${r.saturationCount}`);

      assert.equal(r.samples, 300);
      assert.equal(r.floatTop1, report.accuracy.float.top1, 'both float runs see the same model and data');
      // Measured: ort-cpu 0.9733 = simulated, tensorrt 0.9833 = simulated.
      assert.ok(Math.abs(r.top1! - simTop1!) <= 0.01 + 1e-9, `integer ${r.top1} vs simulated ${simTop1}`);
      // BatchNormalization (two unfoldable ones) runs as an integer per-channel affine: nothing in float.
      assert.deepEqual(r.floatOps, []);
      for (const op of ['Conv', 'Gemm', 'Relu', 'Add', 'GlobalAveragePool', 'Flatten', 'BatchNormalization']) {
        assert.ok((r.ops[op] ?? 0) > 0, `${op} executed in integers`);
      }
      assert.equal(r.overflowCount, 0);
      assert.ok(r.agreement > 0.9);
      assert.ok(r.steps.every((s) => !s.startsWith('[float]')));
    });
  }

  it('BatchNormalization forced to float: exactly the two unfoldable BN nodes, named, and the same accuracy', async () => {
    const q = await quantizeWith(prepared, resolveConfig('ort-cpu', { calibration: 'percentile', placement: 'extended' }));
    const f = await runIntegerOnly(prepared, q, { forceFloat: ['BatchNormalization'] });
    console.log(`float-BN ablation: top-1 ${f.top1}  floatOps ${JSON.stringify(f.floatOps)}`);
    assert.deepEqual(f.floatOps.map((o) => o.node).sort(), ['/bn_head/BatchNormalization', '/bn_res/BatchNormalization']);
    assert.ok(f.floatOps.every((o) => o.op === 'BatchNormalization' && o.reason.length > 0));
    assert.equal(f.ops.BatchNormalization ?? 0, 0);
    assert.equal(f.steps.filter((s) => s.startsWith('[float] BatchNormalization')).length, 2);
    const report = await evaluate(prepared, q, { sensitivity: false, integerDiff: false });
    assert.ok(Math.abs(f.top1! - report.accuracy.simulated.top1!) <= 0.01 + 1e-9, `float-BN ${f.top1}`);
  });
});

describe('integer-only --report', () => {
  it('a saved result names the model, the data and the configuration it describes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-io-'));
    try {
      const out = path.join(dir, 'io.json');
      const cli = path.join(ROOT, 'bin/quantlens.js');
      const res = spawnSync(
        process.execPath,
        [cli, 'integer-only', MODEL, '--data', DATA, '--samples', '16', '--calibration', 'percentile', '--report', out, '--quiet'],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(res.status, 0, res.stderr);
      const r = JSON.parse(fs.readFileSync(out, 'utf8'));
      assert.equal(r.kind, 'integer-only');
      assert.equal(r.schemaVersion, REPORT_SCHEMA_VERSION);
      assert.equal(r.model.path, MODEL);
      assert.equal(r.model.sha256, createHash('sha256').update(fs.readFileSync(MODEL)).digest('hex'));
      assert.equal(r.data.source, DATA);
      assert.equal(r.config.calibration, 'percentile');
      assert.equal(r.samples, 16);
      // the terminal line and the file carry the same top-1
      assert.ok(res.stdout.includes(`top-1 ${(r.top1 * 100).toFixed(2)}%`), res.stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
