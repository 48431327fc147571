/**
 * The QDQ rewrite against onnxruntime on tiny graphs: the simulated model reproduces a fake-quant
 * computed here by hand, the integer session really runs fused integer kernels, the input model
 * is never touched, and odd models (Constant weights, old opsets, BatchNorm) are handled.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { dump } from 'npyjs';
import * as ort from 'onnxruntime-node';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { InputError, loadModel } from '../../engine/onnx/model';
import { resolveConfig } from '../../engine/quantize/presets';
import { dequantize, paramsFor, quantize } from '../../engine/quantize/scheme';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const r = rng(11);
const K = 8;
const N = 5;
const S = 64;
const W = Float32Array.from({ length: K * N }, () => randn(r) * 0.5);
const X = Float32Array.from({ length: S * K }, () => randn(r));

function writeNpy(folder: string, name: string, data: Float32Array | Int32Array | BigInt64Array, shape: number[]) {
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(path.join(folder, `${name}.npy`), Buffer.from(dump(data, shape)));
}

const matmulModel = () =>
  buildModel({
    nodes: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
    inputs: [valueInfo('x', ['N', K])],
    outputs: [valueInfo('y', ['N', N])],
    initializers: [makeTensor('w', DT.FLOAT, [K, N], W)],
  });

describe('QDQ MatMul against a hand-computed fake-quant', () => {
  const modelPath = writeModel(dir, 'matmul.onnx', matmulModel());
  const dataDir = path.join(dir, 'mm-data');
  writeNpy(dataDir, 'x', X, [S, K]);
  const config = resolveConfig('ort-cpu', { calibration: 'minmax' });

  it('simulated output equals dq(q(x)) . dq(q(w)) requantized, and the integer session fuses', async () => {
    const before = createHash('sha256').update(fs.readFileSync(modelPath)).digest('hex');
    const p = await prepareAnalysis(modelPath, { dataPath: dataDir });
    const q = await quantizeWith(p, config);
    const out = path.join(dir, 'matmul.qdq.onnx');
    writeQuantizedModel(p, q, { path: out, role: 'model' });
    assert.equal(createHash('sha256').update(fs.readFileSync(modelPath)).digest('hex'), before, 'input model untouched');
    assert.throws(() => writeQuantizedModel(p, q, { path: modelPath, role: 'model', force: true }), InputError);
    assert.throws(() => writeQuantizedModel(p, q, { path: out, role: 'model' }), /already exists/);

    // Independent expectation: ranges straight from the data, per-column symmetric weights.
    const px = paramsFor(Math.min(...X), Math.max(...X), config.activations);
    const pw = Array.from({ length: N }, (_, c) => {
      let lo = Infinity,
        hi = -Infinity;
      for (let k = 0; k < K; k++) {
        lo = Math.min(lo, W[k * N + c]);
        hi = Math.max(hi, W[k * N + c]);
      }
      return paramsFor(lo, hi, config.weights);
    });
    const yFloat = new Float64Array(S * N);
    const yFake = new Float64Array(S * N);
    for (let s = 0; s < S; s++)
      for (let c = 0; c < N; c++) {
        let acc = 0,
          accQ = 0;
        for (let k = 0; k < K; k++) {
          acc += X[s * K + k] * W[k * N + c];
          accQ += dequantize(quantize(X[s * K + k], px), px) * dequantize(quantize(W[k * N + c], pw[c]), pw[c]);
        }
        yFloat[s * N + c] = acc;
        yFake[s * N + c] = accQ;
      }
    const py = paramsFor(Math.min(...yFloat), Math.max(...yFloat), config.activations);
    const expected = Array.from(yFake, (v) => quantize(v, py));

    const sim = await ort.InferenceSession.create(out, { graphOptimizationLevel: 'disabled' });
    const y = (await sim.run({ x: new ort.Tensor('float32', X, [S, K]) })).y.data as Float32Array;
    let mismatches = 0;
    y.forEach((v, i) => {
      const code = Math.round(v / py.scale) + py.zeroPoint;
      assert.ok(Math.abs(code - expected[i]) <= 1, `element ${i}: ${code} vs ${expected[i]}`);
      if (code !== expected[i]) mismatches++;
    });
    assert.ok(mismatches <= 2, `${mismatches} codes differ by 1 (float32 summation order)`);

    // Integer execution: onnxruntime's optimized graph must contain a fused integer MatMul.
    const optPath = path.join(dir, 'matmul.opt.onnx');
    await ort.InferenceSession.create(out, { graphOptimizationLevel: 'all', optimizedModelFilePath: optPath });
    const ops = loadModel(optPath).proto.graph!.node.map((n) => n.opType);
    assert.ok(
      ops.some((o) => /QLinearMatMul|MatMulInteger/.test(o)),
      `fused ops: ${ops.join(',')}`,
    );
    assert.ok(!ops.includes('MatMul'), 'no float MatMul left');

    const report = await evaluate(p, q, { sensitivity: true });
    const layer = report.layers.find((l) => l.node === 'mm')!;
    assert.match(layer.integerKernel ?? '', /QLinearMatMul|MatMulInteger/);
    // One layer: the isolated error equals the accumulated error.
    assert.ok(Math.abs(layer.isolated.simulated.sqnrDb - layer.simulated.sqnrDb) < 1e-9);
    assert.ok(layer.simulated.sqnrDb > 25 && layer.simulated.sqnrDb < 60, `SQNR ${layer.simulated.sqnrDb}`);
    assert.equal(layer.sensitivity?.rank, 1);
    const xReport = report.tensors.find((t) => t.name === 'x')!;
    assert.equal(xReport.min, Math.min(...X));
    assert.equal(xReport.clipRate, 0, 'minmax never clips the calibration data');
  });
});

describe('models in awkward shapes', () => {
  it('weights held in Constant nodes are quantized like initializers', async () => {
    const m = buildModel({
      nodes: [makeNode('Constant', [], ['w'], 'wconst', { value: makeTensor('w', DT.FLOAT, [K, N], W) }), makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
      inputs: [valueInfo('x', ['N', K])],
      outputs: [valueInfo('y', ['N', N])],
    });
    const file = writeModel(dir, 'const.onnx', m);
    const p = await prepareAnalysis(file, { samples: 8 });
    assert.ok(p.warnings.some((w) => w.code === 'synthetic-data'));
    const report = await evaluate(p, await quantizeWith(p, resolveConfig('ort-cpu')), { sensitivity: false });
    assert.ok(report.tensors.some((t) => t.kind === 'weight' && t.name === 'mm:w'));
  });

  it('an opset-11 model gets com.microsoft Q/DQ (per-channel needs opset 13) and runs', async () => {
    const cw = Float32Array.from({ length: 4 * 2 * 3 * 3 }, () => randn(r));
    const m = buildModel({
      opset: 11,
      nodes: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'conv', { pads: [1, 1, 1, 1] }), makeNode('Relu', ['y'], ['z'], 'relu')],
      inputs: [valueInfo('x', [1, 2, 6, 6])],
      outputs: [valueInfo('z', [1, 4, 6, 6])],
      initializers: [makeTensor('w', DT.FLOAT, [4, 2, 3, 3], cw), makeTensor('b', DT.FLOAT, [4], [0.1, -0.2, 0.3, 0])],
    });
    const file = writeModel(dir, 'opset11.onnx', m);
    const p = await prepareAnalysis(file, { samples: 4 });
    const q = await quantizeWith(p, resolveConfig('tensorrt'));
    const out = path.join(dir, 'opset11.qdq.onnx');
    writeQuantizedModel(p, q, { path: out, role: 'model' });
    const written = loadModel(out).proto;
    assert.ok(written.graph!.node.some((n) => n.opType === 'QuantizeLinear' && n.domain === 'com.microsoft'));
    assert.equal(written.opsetImport.find((o) => o.domain === '')!.version, 11n, 'model opset unchanged');
    const s = await ort.InferenceSession.create(out);
    const res = await s.run({
      x: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 72 }, () => randn(r)),
        [1, 2, 6, 6],
      ),
    });
    assert.equal(res.z.dims.join(','), '1,4,6,6');
  });

  it('BatchNormalization folded into Conv keeps the float function', async () => {
    const cw = Float32Array.from({ length: 3 * 1 * 3 * 3 }, () => randn(r));
    const m = buildModel({
      nodes: [
        makeNode('Conv', ['x', 'w'], ['c'], 'conv'),
        makeNode('BatchNormalization', ['c', 'g', 'be', 'mu', 'var'], ['y'], 'bn', { epsilon: { float: 1e-3 } }),
      ],
      inputs: [valueInfo('x', ['N', 1, 5, 5])],
      outputs: [valueInfo('y', ['N', 3, 3, 3])],
      initializers: [
        makeTensor('w', DT.FLOAT, [3, 1, 3, 3], cw),
        makeTensor('g', DT.FLOAT, [3], [2, 0.5, -1]),
        makeTensor('be', DT.FLOAT, [3], [0.1, 0, -0.3]),
        makeTensor('mu', DT.FLOAT, [3], [0.2, -0.1, 0]),
        makeTensor('var', DT.FLOAT, [3], [4, 0.25, 1]),
      ],
    });
    const file = writeModel(dir, 'bn.onnx', m);
    const p = await prepareAnalysis(file, { samples: 16 });
    const q = await quantizeWith(p, resolveConfig('ort-cpu', { activations: { bits: 16 } }));
    assert.equal(q.folds.length, 1);
    assert.ok(!q.prepared.graph!.node.some((n) => n.opType === 'BatchNormalization'));
    const report = await evaluate(p, q, { sensitivity: false });
    const w = report.tensors.find((t) => t.kind === 'weight')!;
    // Folding scales channel c by g / sqrt(var + eps): the reported ranges show it.
    const f = [2 / Math.sqrt(4.001), 0.5 / Math.sqrt(0.251), -1 / Math.sqrt(1.001)];
    w.channelRangesBeforeFold!.forEach((b, c) => {
      const a = w.channelRanges![c];
      const [lo, hi] = f[c] > 0 ? [b.lo * f[c], b.hi * f[c]] : [b.hi * f[c], b.lo * f[c]];
      assert.ok(Math.abs(a.lo - lo) < 1e-5 && Math.abs(a.hi - hi) < 1e-5, `channel ${c}`);
    });
    // 16-bit activations: the layer output is close to float.
    assert.ok(report.layers[0].simulated.sqnrDb > 40, `SQNR ${report.layers[0].simulated.sqnrDb}`);
  });
});

describe('bad input', () => {
  it('a file that is not ONNX gets an error naming it', () => {
    const bad = path.join(dir, 'corrupt.onnx');
    fs.writeFileSync(bad, 'this is not a model');
    assert.throws(
      () => loadModel(bad),
      (e: Error) => e instanceof InputError && e.message.includes(bad),
    );
  });

  it('external data outside the model folder is refused', () => {
    const t = makeTensor('w', DT.FLOAT, [K, N], []);
    t.rawData = new Uint8Array(0);
    t.dataLocation = 1; // EXTERNAL
    t.externalData = [{ $typeName: 'onnx.StringStringEntryProto', key: 'location', value: '../../etc/passwd' }];
    const m = matmulModel();
    m.graph!.initializer = [t];
    const file = writeModel(dir, 'escape.onnx', m);
    assert.throws(() => loadModel(file), /outside the model's folder/);
  });

  it('data whose shape does not fit names the input and both shapes', async () => {
    const file = writeModel(dir, 'shape.onnx', matmulModel());
    const d = path.join(dir, 'bad-shape');
    writeNpy(d, 'x', new Float32Array(3 * 7), [3, 7]);
    await assert.rejects(prepareAnalysis(file, { dataPath: d }), /input "x".*\[3,7\].*\[N,8\]/);
  });

  it('labels of the wrong length are refused', async () => {
    const file = writeModel(dir, 'labels.onnx', matmulModel());
    const d = path.join(dir, 'bad-labels');
    writeNpy(d, 'x', new Float32Array(4 * K), [4, K]);
    writeNpy(d, 'labels', Int32Array.from([1, 2]), [2]);
    await assert.rejects(prepareAnalysis(file, { dataPath: d }), /labels must be a 1-D array with one integer per sample \(4\)/);
  });
});
