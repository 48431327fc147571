/**
 * Already-quantized versions of the demo analyzed AS DEPLOYED: QuantLens's own QDQ files
 * (writeQuantizedModel) and the QOperator file onnxruntime's optimizer makes of one. The numbers
 * are checked against the files themselves (their scales, zero points and codes, read here with
 * onnx helpers) and against onnxruntime running the files directly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseNpy } from 'npyjs';
import * as ort from 'onnxruntime-node';
import type { CompareReport, Report } from '../../protocol/report';
import { type Prepared, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import type { Quantized } from '../../engine/analysis/types';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { GraphIndex, type GraphProto } from '../../engine/onnx/graph';
import { type ModelProto, loadModel } from '../../engine/onnx/model';
import { readTensor } from '../../engine/onnx/tensor';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { resolveConfig } from '../../engine/quantize/presets';
import { type DeployedModel, analyzeDeployed, deployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed } from '../../engine/quantized/deployed';
import { makeNode } from '../../engine/onnx/graph';
import { gridInits, quantizedModel } from '../helpers/quantizedModels';
import { DT, buildModel, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';
import { SATURATING_INT8 } from '../helpers/cpu';

const root = path.resolve(__dirname, '../..');
const original = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');
const cli = path.join(root, 'bin/quantlens.js');
const tmp = tempDir('quantlens-deployed-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const npy = (f: string) => {
  const b = fs.readFileSync(f);
  return parseNpy(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
};

/** onnxruntime's own top-1 of a model file on the 300 demo samples. */
async function ortTop1(file: string): Promise<number> {
  const x = npy(path.join(data, 'input.npy'));
  const labels = npy(path.join(data, 'labels.npy')).data as unknown as BigInt64Array;
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 4 });
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
  await s.release();
  const logits = out[s.outputNames[0]];
  const cols = logits.dims[1];
  const d = logits.data as Float32Array;
  let hits = 0;
  for (let r = 0; r < x.shape[0]; r++) {
    let arg = 0;
    for (let c = 1; c < cols; c++) if (d[r * cols + c] > d[r * cols + arg]) arg = c;
    if (BigInt(arg) === labels[r]) hits++;
  }
  return hits / x.shape[0];
}

/** What a QDQ file holds for each Conv/Gemm: its output grid and its weight and bias codes and scales. */
function fileLayers(g: GraphProto) {
  const idx = new GraphIndex(g);
  const value = (name: string) => Array.from(readTensor(idx.initializers.get(name)!, '').data as ArrayLike<number>, Number);
  const behindDq = (t: string) => {
    const dq = idx.producer.get(t)!;
    assert.equal(dq.opType, 'DequantizeLinear');
    return { codes: value(dq.input[0]), scale: value(dq.input[1]) };
  };
  return g.node
    .filter((n) => n.opType === 'Conv' || n.opType === 'Gemm')
    .map((n) => {
      const q = idx.consumers.get(n.output[0])!.find((c) => c.opType === 'QuantizeLinear')!;
      return { node: n.name, scale: value(q.input[1])[0], zeroPoint: value(q.input[2])[0], weight: behindDq(n.input[1]), bias: behindDq(n.input[2]) };
    });
}

/** The weight and bias codes and scales a rebuilt QDQ model holds for a node. */
function rebuiltCodes(model: ModelProto, node: string) {
  const idx = new GraphIndex(model.graph!);
  const n = model.graph!.node.find((x) => x.name === node)!;
  const value = (name: string) => Array.from(readTensor(idx.initializers.get(name)!, '').data as ArrayLike<number>, Number);
  const behindDq = (t: string) => {
    const dq = idx.producer.get(t)!;
    return { codes: value(dq.input[0]), scale: value(dq.input[1]) };
  };
  return { weight: behindDq(n.input[1]), bias: behindDq(n.input[2]) };
}

const outputGrid = (r: Report, node: string) => {
  const l = r.layers.find((x) => x.node === node)!;
  const t = r.tensors.find((x) => x.kind === 'activation' && x.name === l.output)!;
  return { scale: t.chosen!.scale as number, zeroPoint: t.chosen!.zeroPoint as number };
};

describe('the demo quantized by QuantLens, analyzed again as deployed', () => {
  let p: Prepared;
  let floatTop1: number;
  const files = {
    qdq: path.join(tmp, 'ort-cpu.qdq.onnx'),
    qop: path.join(tmp, 'ort-cpu.qoperator.onnx'),
    pct: path.join(tmp, 'trt-percentile.qdq.onnx'),
    ent: path.join(tmp, 'trt-entropy.qdq.onnx'),
  };
  let qdq: { d: DeployedModel; p: Prepared; q: Quantized; report: Report };
  let qop: { d: DeployedModel; p: Prepared; q: Quantized; report: Report };

  const analyze = async (file: string) => {
    const d = deployedModel(loadModel(file))!;
    const dp = await prepareDeployed(d, { dataPath: data });
    const q = await quantizeDeployed(dp, d);
    return { d, p: dp, q, report: await evaluateDeployed(dp, d, q, { sensitivity: false }) };
  };

  before(async () => {
    floatTop1 = await ortTop1(original);
    p = await prepareAnalysis(original, { dataPath: data });
    const write = async (file: string, config: ReturnType<typeof resolveConfig>) =>
      writeQuantizedModel(p, await quantizeWith(p, config), { path: file, role: 'quantized model' });
    await write(files.qdq, resolveConfig('ort-cpu'));
    await write(files.pct, resolveConfig('tensorrt', { calibration: 'percentile' }));
    await write(files.ent, resolveConfig('tensorrt', { calibration: 'entropy' }));
    // onnxruntime's optimizer fuses the QDQ file into QOperator kernels and saves that graph.
    const s = await ort.InferenceSession.create(files.qdq, { graphOptimizationLevel: 'all', optimizedModelFilePath: files.qop, logSeverityLevel: 4 });
    await s.release();
    qdq = await analyze(files.qdq);
    qop = await analyze(files.qop);
  });

  it('the QDQ file is detected as qdq and its twin scores the ORIGINAL float top-1 (onnxruntime on the original file)', () => {
    const z = qdq.report.model.quantization!;
    assert.equal(z.kind, 'qdq');
    assert.equal(z.reference, 'twin');
    assert.match(z.notes[0], /DEQUANTIZED/);
    assert.ok(floatTop1 >= 0.97);
    assert.equal(qdq.report.accuracy.float.top1, floatTop1);
    assert.equal(qdq.report.samples, 300);
    assert.equal(qdq.report.model.path, files.qdq);
  });

  it('every Conv/Gemm of the file is a layer with the scale and zero point the file holds, and an error', () => {
    const layers = fileLayers(qdq.d.loaded.proto.graph!);
    assert.equal(layers.length, 6);
    for (const f of layers) {
      const l = qdq.report.layers.find((x) => x.node === f.node);
      assert.ok(l, `${f.node} is reported`);
      assert.deepEqual(outputGrid(qdq.report, f.node), { scale: f.scale, zeroPoint: f.zeroPoint }, f.node);
      assert.ok(Number.isFinite(l.integer.sqnrDb) && Number.isFinite(l.isolated.integer.sqnrDb), `${f.node}: finite errors`);
      assert.ok(l.integerKernel, `${f.node} ran on an integer kernel`);
    }
    assert.deepEqual(
      qdq.report.warnings.filter((w) => /not a constant/.test(w.message)),
      [],
    );
  });

  it('the re-built QDQ model holds exactly the weight and bias codes (and scales) of the file', () => {
    const rebuilt = buildQdqModel(qdq.q.prepared, qdq.p.loaded.dir, qdq.q.plan, qdq.q.actParams, qdq.q.config, false).model;
    for (const f of fileLayers(qdq.d.loaded.proto.graph!)) {
      const r = rebuiltCodes(rebuilt, f.node);
      assert.deepEqual(r.weight, f.weight, `${f.node} weight`);
      assert.deepEqual(r.bias, f.bias, `${f.node} bias`);
    }
  });

  it('runs the file as deployed: integer top-1 equals onnxruntime running the file itself', async () => {
    assert.equal(qdq.report.accuracy.integer.top1, await ortTop1(files.qdq));
  });

  it('every activation reports how much of its deployed grid the data uses', () => {
    const acts = qdq.report.tensors.filter((t) => t.kind === 'activation');
    assert.ok(acts.length >= 8);
    for (const t of acts) {
      const g = t.grid!;
      assert.equal(g.codes, 256);
      assert.ok(g.usedCodes >= 1 && g.usedCodes <= 256);
      assert.ok(g.spanShare > 0 && g.spanShare <= 1);
      // The recalibration view is there too: every method's range beside the deployed one.
      assert.ok(t.thresholds.entropy && t.thresholds.percentile);
      assert.equal(t.chosen!.deployed, true);
    }
  });

  it("onnxruntime's QOperator file of it: detected as qoperator, the same layers with the same deployed grids and codes", async () => {
    const z = qop.report.model.quantization!;
    assert.equal(z.kind, 'qoperator');
    assert.ok((z.ops['com.microsoft.QLinearConv'] ?? 0) >= 5 && z.ops['com.microsoft.QGemm'] === 1, JSON.stringify(z.ops));
    assert.equal(qop.report.accuracy.float.top1, floatTop1);
    assert.deepEqual(qop.report.layers.map((l) => l.node).sort(), qdq.report.layers.map((l) => l.node).sort());
    for (const l of qdq.report.layers) {
      assert.deepEqual(outputGrid(qop.report, l.node), outputGrid(qdq.report, l.node), l.node);
      const codes = (q: Quantized) => [...q.plan.layers.find((x) => x.node.name === l.node)!.fixed!.values()].map((c) => [...c.codes]);
      if (l.op !== 'Add' && l.op !== 'GlobalAveragePool') assert.deepEqual(codes(qop.q), codes(qdq.q), `${l.node} codes`);
    }
    assert.equal(qop.report.accuracy.integer.top1, await ortTop1(files.qop));
  });

  it('--float: the original float model as reference, every tensor and layer matched by name', async () => {
    const report = await analyzeDeployed(qdq.d, { dataPath: data, floatPath: original, sensitivity: false });
    const z = report.model.quantization!;
    assert.equal(z.reference, 'user');
    assert.deepEqual(z.unmatched, { tensors: [], layers: [], weights: [] });
    assert.equal(report.model.path, files.qdq);
    assert.equal(report.accuracy.float.top1, floatTop1);
    for (const l of qdq.report.layers) assert.deepEqual(outputGrid(report, l.node), outputGrid(qdq.report, l.node), l.node);
  });

  it('compare: percentile vs entropy (tensorrt preset) names /conv1/Conv as the layer that differs most, table and --report', { skip: SATURATING_INT8 }, () => {
    const out = path.join(tmp, 'compare.json');
    const args = [cli, 'compare', files.pct, files.ent, '--data', data, '--no-sensitivity', '--quiet', '--report', out];
    const res = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /differs most: \/conv1\/Conv/);
    const report = JSON.parse(fs.readFileSync(out, 'utf8')) as CompareReport;
    assert.equal(report.mostDifferent, '/conv1/Conv');
    assert.equal(report.layers[0].node, '/conv1/Conv');
    // Same weights (calibration only moves activation grids), very different clipping at conv1's output.
    assert.equal(report.layers[0].weightCodes!.differ, 0);
    assert.ok(report.layers[0].b!.output!.clipRate > 0.1 && report.layers[0].a!.output!.clipRate < 0.01);
    // The report is never replaced without --force.
    const again = spawnSync(process.execPath, args, { encoding: 'utf8' });
    assert.equal(again.status, 2);
    assert.equal(again.stderr.trim().split('\n').length, 1);
  });

  it('compare refuses two quantized files that are not versions of one model (it measured B as the reference)', async () => {
    // another model over the same input: Flatten -> Gemm, its own node names, quantized by QuantLens
    const r = rng(3);
    const other = writeModel(
      tmp,
      'other.onnx',
      buildModel({
        nodes: [makeNode('Flatten', ['input'], ['flat'], 'other/flatten'), makeNode('Gemm', ['flat', 'w', 'b'], ['logits'], 'other/fc', { transB: 1 })],
        inputs: [valueInfo('input', ['N', 1, 28, 28])],
        outputs: [valueInfo('logits', ['N', 10])],
        initializers: [
          makeTensor(
            'w',
            DT.FLOAT,
            [10, 784],
            Float32Array.from({ length: 7840 }, () => randn(r) * 0.05),
          ),
          makeTensor('b', DT.FLOAT, [10], new Float32Array(10)),
        ],
      }),
    );
    const po = await prepareAnalysis(other, { dataPath: data, samples: 16 });
    const otherQdq = path.join(tmp, 'other.qdq.onnx');
    writeQuantizedModel(po, await quantizeWith(po, resolveConfig('tensorrt', { calibration: 'percentile' })), { path: otherQdq, role: 'quantized model' });
    const res = spawnSync(process.execPath, [cli, 'compare', files.pct, otherQdq, '--data', data, '--samples', '16', '--no-sensitivity', '--quiet'], {
      encoding: 'utf8',
    });
    assert.equal(res.status, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.match(
      res.stderr,
      /other\.qdq\.onnx does not match the reference .*: 1 of its 1 quantized layers have no node of that name there \(e\.g\. other\/fc\); both must be versions of one model/,
    );
  });

  it('--diagnose on an already-quantized file says why there is no diagnosis instead of dropping the flag', () => {
    const res = spawnSync(
      process.execPath,
      [cli, 'analyze', files.qdq, '--data', data, '--samples', '16', '--no-sensitivity', '--diagnose', '--json', '--quiet'],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      },
    );
    assert.equal(res.status, 0, res.stderr);
    const r = JSON.parse(res.stdout) as Report;
    assert.equal(r.diagnosis ?? null, null);
    assert.ok(r.warnings.some((w) => w.code === 'no-diagnosis' && /grids are taken as read.*analyzing its float model gives culprits/.test(w.message)));
  });

  it('the CLI: a malformed quantized model and quantizing a quantized model exit 2 with one line', () => {
    const bad = writeModel(
      tmp,
      'no-scale.onnx',
      quantizedModel({
        nodes: [makeNode('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q'), makeNode('DequantizeLinear', ['xq'], ['y'], 'dq')],
        inputs: [['x', [2, 2]]],
        outputs: [['y', [2, 2]]],
        initializers: gridInits('x', { scale: 0.1, zp: 0, type: DT.UINT8 }),
      }),
    );
    for (const args of [
      ['analyze', bad, '--quiet'],
      ['quantize', files.qdq, '--out', path.join(tmp, 'again.onnx'), '--quiet'],
    ]) {
      const res = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      assert.equal(res.status, 2, res.stderr);
      const lines = res.stderr.trim().split('\n');
      assert.equal(lines.length, 1, res.stderr);
      assert.match(lines[0], args[0] === 'analyze' ? /no-scale\.onnx: DequantizeLinear dq has no input scale/ : /is already quantized \(qdq\)/);
    }
  });
});
