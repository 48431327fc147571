/**
 * Sweeps, mixed precision and the CI gate on the demo CNN, checked against onnxruntime running
 * the written models itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseNpy } from 'npyjs';
import * as ort from 'onnxruntime-node';
import type { SweepReport } from '../../protocol/report';
import { type Prepared, prepareAnalysis } from '../../engine/analysis/analyze';
import { mixedPrecision, writeMixedPrecision } from '../../engine/analysis/mixedPrecision';
import { updateModelSettings } from '../../engine/io/modelSettings';
import { runSweep } from '../../engine/analysis/sweep';
import { DEFAULT_AXES, gridConfigs, parseAxes } from '../../engine/quantize/grid';
import { resolveConfig } from '../../engine/quantize/presets';
import { tempDir } from '../helpers/tinyModels';

const root = path.resolve(__dirname, '../..');
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the demo in a temp folder: mixed precision writes quantlens.json beside the model. */
function demoCopy(): { model: string; data: string } {
  const dir = path.join(tmp, `demo-${Math.random().toString(36).slice(2)}`);
  fs.cpSync(path.join(root, 'examples/mnist-cnn'), dir, { recursive: true });
  return { model: path.join(dir, 'model.onnx'), data: path.join(dir, 'data') };
}

async function ortTop1(modelFile: string, data: string): Promise<number> {
  const npy = (f: string) => {
    // Small files come from Buffer's shared pool: take exactly the file's bytes.
    const b = fs.readFileSync(f);
    return parseNpy(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  };
  const x = npy(path.join(data, 'input.npy'));
  const labels = npy(path.join(data, 'labels.npy')).data as unknown as BigInt64Array;
  const s = await ort.InferenceSession.create(modelFile); // default options: fused integer kernels
  const out = (await s.run({ input: new ort.Tensor('float32', x.data as Float32Array, x.shape) })).logits;
  const d = out.data as Float32Array;
  let hits = 0;
  for (let r = 0; r < x.shape[0]; r++) {
    let arg = 0;
    for (let c = 1; c < 10; c++) if (d[r * 10 + c] > d[r * 10 + arg]) arg = c;
    if (BigInt(arg) === labels[r]) hits++;
  }
  return hits / x.shape[0];
}

describe('sweep over the default 24-configuration grid', () => {
  let report: SweepReport;
  before(async () => {
    const { model, data } = demoCopy();
    const p = await prepareAnalysis(model, { dataPath: data });
    report = await runSweep(p, gridConfigs(resolveConfig('tensorrt'), DEFAULT_AXES));
  });

  it('evaluates all 24 configurations', () => {
    assert.equal(report.configs.length, 24);
    for (const e of report.configs) assert.equal(e.error, undefined, `${e.label}: ${e.error}`);
    assert.equal(new Set(report.configs.map((e) => e.label)).size, 24);
  });

  it('marks exactly the configurations no other beats on both drop and size', () => {
    for (const e of report.configs) {
      const dominated = report.configs.some((o) => o.drop <= e.drop && o.sizeBytes <= e.sizeBytes && (o.drop < e.drop || o.sizeBytes < e.sizeBytes));
      assert.equal(e.pareto, !dominated, e.label);
    }
    assert.ok(report.configs.some((e) => e.pareto));
  });

  it('4-bit weights make smaller models than 8-bit, and both are smaller than float', () => {
    const size = (bits: number, perChannel: boolean) => report.configs.find((e) => e.config.weights.bits === bits && e.config.weights.perChannel === perChannel)!.sizeBytes;
    const floatSize = fs.statSync(path.join(root, 'examples/mnist-cnn/model.onnx')).size;
    assert.ok(size(4, true) < size(8, true) && size(8, true) < floatSize, `${size(4, true)} < ${size(8, true)} < ${floatSize}`);
  });

  it('drop is the float top-1 minus the integer top-1, in points', () => {
    for (const e of report.configs) {
      assert.ok(Math.abs(e.drop - (report.floatTop1! - e.accuracy.integer.top1!) * 100) < 1e-9);
    }
  });

  it('parses axis specs and rejects bad ones', () => {
    const axes = parseAxes('wbits=8,4;calibration=minmax,percentile:99.9;symmetric=true,false');
    assert.equal(gridConfigs(resolveConfig('ort-cpu'), axes).length, 8);
    assert.throws(() => parseAxes('wbits=7'), /4, 8 or 16/);
    assert.throws(() => parseAxes('colour=red'), /unknown axis/);
  });
});

describe('automatic mixed precision', () => {
  let p: Prepared;
  let files: { model: string; data: string };
  before(async () => {
    files = demoCopy();
    p = await prepareAnalysis(files.model, { dataPath: files.data });
  });

  it('brings a config over budget within it, and the written QDQ model reproduces the accuracy in onnxruntime', async () => {
    const config = resolveConfig('tensorrt', { calibration: 'entropy' });
    const budget = 1.0;
    const r = await mixedPrecision(p, config, { maxDrop: budget });
    assert.ok(r.steps[0].drop > budget, `plain int8 drop ${r.steps[0].drop} should exceed the budget for this test to mean anything`);
    assert.ok(r.met, `not met: ${JSON.stringify(r.steps.map((s) => s.drop))}`);
    assert.ok(r.exclude.length > 0 && r.exclude.length < r.ranking.length, 'a strict subset of layers stays float');
    assert.equal(r.steps.length, r.exclude.length + 1, 'one step per layer added, from zero');
    const out = path.join(path.dirname(files.model), 'model.mixed.onnx');
    await writeMixedPrecision(p, r, { path: out, role: "model" });
    const settingsFile = updateModelSettings(files.model, { exclude: r.exclude });
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    assert.deepEqual(settings.exclude, r.exclude);
    assert.equal(settings.dataPath, 'data', 'other keys of quantlens.json are kept');
    const floatTop1 = await ortTop1(files.model, files.data);
    const quantTop1 = await ortTop1(out, files.data);
    const last = r.steps[r.steps.length - 1];
    assert.ok(Math.abs((floatTop1 - quantTop1) * 100 - last.drop) < 1e-9, `onnxruntime: ${floatTop1} -> ${quantTop1}; reported drop ${last.drop}`);
  });
});

describe('quantlens gate', () => {
  const cli = path.join(root, 'bin/quantlens.js');
  it('exits 1 with a one-line reason over budget, 0 within it', () => {
    const { model, data } = demoCopy();
    const fail = spawnSync(process.execPath, [cli, 'gate', model, '--data', data, '--calibration', 'entropy', '--max-drop', '1'], { encoding: 'utf8' });
    assert.equal(fail.status, 1, fail.stderr);
    assert.equal(fail.stderr.trim().split('\n').length, 1);
    assert.match(fail.stderr, /FAIL: .* drops top-1 by \d+\.\d\d points, over the budget of 1; worst layers: /);
    const pass = spawnSync(process.execPath, [cli, 'gate', model, '--data', data, '--calibration', 'percentile', '--max-drop', '1'], { encoding: 'utf8' });
    assert.equal(pass.status, 0, pass.stderr);
    assert.match(pass.stdout, /PASS/);
  });
});
