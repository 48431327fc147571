/**
 * Sweeps, mixed precision and the CI gate on the demo CNN, checked against onnxruntime running
 * the written models itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { formatSweep } from '../../engine/report/planSummary';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseNpy } from 'npyjs';
import * as ort from 'onnxruntime-node';
import type { SweepReport } from '../../protocol/report';
import { type Prepared, prepareAnalysis } from '../../engine/analysis/analyze';
import { mixedPrecision, writeMixedPrecision } from '../../engine/analysis/mixedPrecision';
import { settingsFromConfig, updateModelSettings } from '../../engine/io/modelSettings';
import { runSweep } from '../../engine/analysis/sweep';
import { DEFAULT_AXES, gridConfigs, parseAxes } from '../../engine/quantize/grid';
import { resolveConfig } from '../../engine/quantize/presets';
import { tempDir } from '../helpers/tinyModels';
import { SATURATING_INT8 } from '../helpers/cpu';

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

  it('the terminal summary writes the float top-1 as a percentage, like every other accuracy', () => {
    const head = formatSweep(report).split('\n')[0];
    assert.ok(report.floatTop1! > 0.5);
    assert.ok(head.includes(`(float top-1 ${(100 * report.floatTop1!).toFixed(2)}%)`), head);
  });

  it("a classifier's entries carry top-1 agreement with its interval, shown in the table", () => {
    const lines = formatSweep(report).split('\n');
    for (const e of report.configs) {
      const i = e.accuracy.integer.agreementInterval!;
      assert.ok(i.low <= e.agreement && e.agreement <= i.high, e.label);
      assert.ok(lines.find((l) => l.startsWith(`  ${String(e.id + 1).padStart(3)}  `))!.includes(`${(e.agreement * 100).toFixed(2)}%`));
    }
  });

  it('marks exactly the configurations no other beats on both drop and size', () => {
    for (const e of report.configs) {
      const dominated = report.configs.some((o) => o.drop <= e.drop && o.sizeBytes <= e.sizeBytes && (o.drop < e.drop || o.sizeBytes < e.sizeBytes));
      assert.equal(e.pareto, !dominated, e.label);
    }
    assert.ok(report.configs.some((e) => e.pareto));
  });

  it('4-bit weights make smaller models than 8-bit, and both are smaller than float', () => {
    const size = (bits: number, perChannel: boolean) =>
      report.configs.find((e) => e.config.weights.bits === bits && e.config.weights.perChannel === perChannel)!.sizeBytes;
    const floatSize = fs.statSync(path.join(root, 'examples/mnist-cnn/model.onnx')).size;
    assert.ok(size(4, true) < size(8, true) && size(8, true) < floatSize, `${size(4, true)} < ${size(8, true)} < ${floatSize}`);
  });

  it('drop is the float top-1 minus the integer top-1, in points, with its interval', () => {
    for (const e of report.configs) {
      assert.ok(Math.abs(e.drop - (report.floatTop1! - e.accuracy.integer.top1!) * 100) < 1e-9);
      assert.equal(e.dropBasis, 'top1');
      assert.ok(e.loss!.low <= e.drop && e.drop <= e.loss!.high, `${e.label}: ${e.drop} in ${JSON.stringify(e.loss)}`);
    }
  });

  it('marks the front points each configuration cannot be told apart from', () => {
    const byId = new Map(report.configs.map((e) => [e.id, e]));
    for (const e of report.configs) {
      for (const id of e.withinNoiseOf!) {
        const f = byId.get(id)!;
        assert.ok(f.pareto && f !== e);
        // symmetric: the paired comparison does not depend on the order
        if (e.pareto) assert.ok(f.withinNoiseOf!.includes(e.id), `${e.label} ~ ${f.label} but not back`);
      }
      // a 60-point drop is never noise next to a front point that loses nothing
      if (e.drop > 20) assert.ok(!e.withinNoiseOf!.some((id) => byId.get(id)!.drop < 5), e.label);
    }
    // two front points with the same drop and identical per-sample outcomes are within noise of each other
    const front = report.configs.filter((e) => e.pareto);
    for (const a of front)
      for (const b of front)
        if (a !== b && a.drop === b.drop && a.accuracy.integer.agreement === 1 && b.accuracy.integer.agreement === 1)
          assert.ok(a.withinNoiseOf!.includes(b.id));
  });

  it('parses axis specs and rejects bad ones', () => {
    const axes = parseAxes('wbits=8,4;calibration=minmax,percentile:99.9;symmetric=true,false');
    assert.equal(gridConfigs(resolveConfig('ort-cpu'), axes).length, 8);
    assert.throws(() => parseAxes('wbits=7'), /4, 8 or 16/);
    assert.throws(() => parseAxes('colour=red'), /unknown axis/);
    // an axis twice would keep only one list (one configuration instead of two); "maybe" is not false
    assert.throws(() => parseAxes('abits=8;abits=4'), /axis "abits" is given twice; list all its values once, e\.g\. abits=8,4/);
    assert.throws(() => parseAxes('symmetric=maybe'), /symmetric is true or false, got "maybe"/);
    assert.throws(() => parseAxes('wbits=8=4'), /more than one "="/);
  });
});

describe('automatic mixed precision', () => {
  let p: Prepared;
  let files: { model: string; data: string };
  before(async () => {
    files = demoCopy();
    p = await prepareAnalysis(files.model, { dataPath: files.data });
  });

  it('brings a config over budget within it with calibration alone, and the written QDQ model reproduces the drop in onnxruntime', {
    skip: SATURATING_INT8,
  }, async () => {
    const config = resolveConfig('tensorrt', { calibration: 'entropy' });
    const budget = 1.0;
    const r = await mixedPrecision(p, config, { maxDrop: budget });
    assert.ok(r.steps[0].drop > budget, `plain int8 drop ${r.steps[0].drop} should exceed the budget for this test to mean anything`);
    assert.ok(r.met, `not met: ${JSON.stringify(r.steps.map((s) => s.drop))}`);
    assert.equal(r.certified, false, '300 samples cannot certify a drop within 1 point');
    assert.deepEqual(r.exclude, [], 'no layer stays float: recalibrating the over-clipped tensors is enough');
    assert.ok(r.fix!.changes.length > 0 && r.fix!.changes.every((c) => c.kind === 'calibration'), r.fix!.description);
    assert.deepEqual(r.steps[0].changes, []);
    const last = r.steps[r.steps.length - 1];
    assert.ok(last.drop <= budget && last.interval!.low < last.drop && last.interval!.high > last.drop);
    const out = path.join(path.dirname(files.model), 'model.mixed.onnx');
    await writeMixedPrecision(p, r, { path: out, role: 'model' });
    // --write-config writes the plan's whole configuration: the demo's quantlens.json says
    // "calibration": "percentile", and the plan was measured on entropy with overrides
    const settingsFile = updateModelSettings(files.model, settingsFromConfig(r.fix!.config));
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    assert.deepEqual(settings.tensorOverrides, r.fix!.config.tensorOverrides);
    assert.equal(settings.calibration, 'entropy', 'no key of the earlier configuration contradicts the plan');
    assert.equal(settings.preset, 'tensorrt');
    assert.equal(settings.dataPath, 'data', 'keys that are not configuration are kept');
    const floatTop1 = await ortTop1(files.model, files.data);
    const quantTop1 = await ortTop1(out, files.data);
    // measured on the integer kernels of the equivalent uint8 grid; the int8 file may differ by one sample
    assert.ok(Math.abs((floatTop1 - quantTop1) * 100 - last.drop) <= 100 / 300 + 1e-9, `onnxruntime: ${floatTop1} -> ${quantTop1}; reported drop ${last.drop}`);
  });

  it('never changes a layer to win back a difference within noise', { skip: SATURATING_INT8 }, async () => {
    // minmax: 1.33 points, interval -0.29..3.43 straddling 1 point; every change wins back a sample or two at most
    const r = await mixedPrecision(p, resolveConfig('tensorrt', { calibration: 'minmax' }), { maxDrop: 1 });
    assert.match(r.steps[0].verdict!, /^cannot tell/);
    assert.equal(r.steps.length, 1, JSON.stringify(r.steps.map((s) => s.changes)));
    assert.equal(r.met, false);
    assert.deepEqual(r.exclude, []);
    assert.ok(r.notes!.some((n) => /within noise, not taken/.test(n)));
  });
});

describe('quantlens gate', () => {
  const cli = path.join(root, 'bin/quantlens.js');
  const { model, data } = demoCopy();
  const gate = (...args: string[]) => spawnSync(process.execPath, [cli, 'gate', model, '--data', data, ...args], { encoding: 'utf8' });
  it('fails over budget: exit 1, one line', { skip: SATURATING_INT8 }, () => {
    const fail = gate('--calibration', 'entropy', '--max-drop', '1');
    assert.equal(fail.status, 1, fail.stderr);
    assert.equal(fail.stderr.trim().split('\n').length, 1);
    assert.match(
      fail.stderr,
      /^quantlens gate: FAIL: .* over budget: drop 68\.67 points \(95% interval \d+\.\d\d to \d+\.\d\d points\) is above the budget of 1\.00 points/,
    );
    // the demo's quantlens.json says percentile: the one line ends by saying the run did not follow it
    assert.match(fail.stderr, /\[note: .*quantlens\.json sets calibration "percentile" \(this run: "entropy"\); the CLI runs its flags\]\n$/);
    assert.doesNotMatch(gate('--calibration', 'percentile', '--max-drop', '2').stdout, /\[note:/);
  });
  it('cannot tell on 300 samples: exit 1 with the samples needed, exit 0 with --allow-uncertain', { skip: SATURATING_INT8 }, () => {
    const unsure = gate('--calibration', 'percentile', '--max-drop', '1');
    assert.equal(unsure.status, 1, unsure.stderr);
    assert.equal(unsure.stderr.trim().split('\n').length, 1);
    assert.match(
      unsure.stderr,
      /^quantlens gate: cannot tell: 300 samples are too few, about \d+ would decide; .*drop 0\.00 points, 95% interval -1\.38 to 1\.38, budget 1\.00/,
    );
    const allowed = gate('--calibration', 'percentile', '--max-drop', '1', '--allow-uncertain');
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stdout, /PASS \(uncertain, allowed\)/);
  });
  it('passes within budget with confidence: exit 0', { skip: SATURATING_INT8 }, () => {
    const pass = gate('--calibration', 'percentile', '--max-drop', '2');
    assert.equal(pass.status, 0, pass.stderr);
    assert.match(pass.stdout, /^quantlens gate: PASS: .*within noise: drop 0\.00 points/);
  });
});
