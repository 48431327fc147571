/**
 * The diagnosis on the bundled demo (examples/mnist-cnn, 300 labelled samples, tensorrt preset):
 * with entropy calibration (a 68.67-point drop) the culprit, its cause and numbers, the victims and
 * a verified fix, checked against onnxruntime itself; with percentile (no drop) no culprit.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseNpy } from 'npyjs';
import * as ort from 'onnxruntime-node';
import type { Report } from '../../protocol/report';
import { type Prepared, evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { OutputMeasurer } from '../../engine/analysis/measure';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { untypedValueInfo } from '../../engine/onnx/graph';
import { cloneModel, encodeModel } from '../../engine/onnx/model';
import { resolveConfig } from '../../engine/quantize/presets';
import { formatSummary } from '../../engine/report/summary';
import { tempDir } from '../helpers/tinyModels';
import { SATURATING_INT8 } from '../helpers/cpu';

const root = path.resolve(__dirname, '../..');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');
const tmp = tempDir();
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const npy = (f: string) => {
  const b = fs.readFileSync(f);
  return parseNpy(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
};
const input = npy(path.join(data, 'input.npy'));
const labels = npy(path.join(data, 'labels.npy')).data as unknown as BigInt64Array;

/** onnxruntime's own run of a model file or bytes (default options): the named outputs. */
async function ortRun(m: string | Uint8Array, names: string[]): Promise<Record<string, Float32Array>> {
  const s = typeof m === 'string' ? await ort.InferenceSession.create(m) : await ort.InferenceSession.create(m);
  const out = await s.run({ input: new ort.Tensor('float32', input.data as Float32Array, input.shape) }, names);
  await s.release();
  return Object.fromEntries(names.map((n) => [n, out[n].data as Float32Array]));
}

function top1(logits: Float32Array): number {
  let hits = 0;
  for (let r = 0; r < labels.length; r++) {
    let arg = 0;
    for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + arg]) arg = c;
    if (BigInt(arg) === labels[r]) hits++;
  }
  return hits / labels.length;
}

describe('diagnosis of the demo CNN (tensorrt preset)', () => {
  let p: Prepared;
  let entropy: Report;
  let percentile: Report;
  before(async () => {
    p = await prepareAnalysis(model, { dataPath: data });
    // The integer reference is not needed by the diagnosis of this model: skipped to keep the test fast.
    const opts = { integerDiff: false, diagnose: {} };
    entropy = await evaluate(p, await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' })), opts);
    percentile = await evaluate(p, await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'percentile' })), opts);
  });

  it('entropy: the drop is significant, with its interval', () => {
    const d = entropy.diagnosis!;
    assert.ok(d.drop.interval!.low > 60, `drop ${JSON.stringify(d.drop)}`);
    assert.equal(d.drop.value, entropy.primaryMetric!.loss!.estimate);
    assert.match(d.drop.verdict, /^over budget/);
    assert.equal(d.budget, 1);
  });

  it('culprit #1 is /conv1/Conv, over-clipping, with the clip rate and range onnxruntime shows', async () => {
    const c = entropy.diagnosis!.culprits[0];
    assert.equal(c.node, '/conv1/Conv');
    assert.equal(c.rank, 1);
    assert.equal(c.cause, 'over-clipping');
    assert.equal(c.tensor, '/conv1/Conv_output_0');
    // The float model's own conv1 output, from onnxruntime: its range, and the share of values
    // beyond the chosen grid by more than half a step.
    const exposed = cloneModel(p.float);
    exposed.graph!.output.push(untypedValueInfo('/conv1/Conv_output_0'));
    const x = (await ortRun(encodeModel(exposed), ['/conv1/Conv_output_0']))['/conv1/Conv_output_0'];
    let min = Infinity,
      max = -Infinity;
    for (const v of x) (min = Math.min(min, v)), (max = Math.max(max, v));
    const t = entropy.tensors.find((tt) => tt.name === c.tensor)!;
    const half = (t.chosen!.scale as number) / 2;
    let clipped = 0;
    for (const v of x) if (v > t.chosen!.range.hi + half || v < t.chosen!.range.lo - half) clipped++;
    const e = c.evidence;
    assert.ok(Math.abs((e.clipRate as number) - clipped / x.length) < 1e-4, `clip rate ${e.clipRate} vs ${clipped / x.length}`);
    assert.ok(Math.abs((e.clipRate as number) - 0.267) < 0.005, 'about 26.7%');
    assert.ok(Math.abs((e.threshold as number) - 0.514) < 0.01, `threshold ${e.threshold}`);
    assert.ok(
      Math.abs((e.observedMin as number) - min) < 1e-5 && Math.abs((e.observedMax as number) - max) < 1e-5,
      `observed ${e.observedMin}..${e.observedMax} vs ${min}..${max}`,
    );
    assert.ok((e.threshold as number) < max / 10, 'the threshold is a small fraction of the observed range');
    assert.ok(c.damage.onlyThisLoss!.low > 0, 'alone it costs a significant loss');
    assert.ok(c.damage.isolatedSqnrDb < 5);
  });

  it('/fc/Gemm (isolated 40 dB, worst accumulated) is a victim, not a culprit', { skip: SATURATING_INT8 }, () => {
    const d = entropy.diagnosis!;
    const fc = d.victims.find((v) => v.node === '/fc/Gemm');
    assert.ok(fc, JSON.stringify(d.victims));
    assert.ok(fc.isolatedSqnrDb > 35 && fc.accumulatedSqnrDb < 5);
    assert.ok(d.culprits.every((c) => c.node !== '/fc/Gemm'));
    const worstAccumulated = [...entropy.layers].sort((a, b) => a.integer.sqnrDb - b.integer.sqnrDb)[0].node;
    assert.equal(worstAccumulated, '/fc/Gemm', 'the layer accumulated SQNR would have blamed');
  });

  it('the verified fix keeps every layer int8 and brings the drop within 1 point; the written file reproduces it in onnxruntime', {
    skip: SATURATING_INT8,
  }, async () => {
    const fix = entropy.diagnosis!.fix!;
    assert.ok(fix, entropy.diagnosis!.notes.join('\n'));
    assert.deepEqual(fix.config.exclude, []);
    assert.ok(
      fix.changes.every((ch) => ch.kind === 'calibration'),
      fix.description,
    );
    assert.ok(
      fix.changes.some((ch) => ch.tensor === '/conv1/Conv_output_0'),
      "conv1's own output is recalibrated",
    );
    assert.equal(fix.measured.floatLayers, 0);
    assert.ok(fix.measured.drop <= 1, `measured drop ${fix.measured.drop}`);
    assert.ok(fix.measured.interval!.low < fix.measured.drop && fix.measured.interval!.high > fix.measured.drop);
    assert.ok(fix.measured.gain!.low > 50, 'the points won back are certain');
    // quantize with the fix's configuration, then run the file in onnxruntime with default options
    const out = path.join(tmp, 'fixed.onnx');
    writeQuantizedModel(p, await quantizeWith(p, fix.config), { path: out, role: 'model' });
    const floatTop1 = top1((await ortRun(model, ['logits'])).logits);
    const fixedTop1 = top1((await ortRun(out, ['logits'])).logits);
    const drop = (floatTop1 - fixedTop1) * 100;
    // measured on the integer kernels of the equivalent uint8 grid; the int8 file may differ by one sample
    assert.ok(Math.abs(drop - fix.measured.drop) <= 100 / 300 + 1e-9, `onnxruntime drop ${drop} vs measured ${fix.measured.drop}`);
  });

  it('the measurement behind fixes agrees with the analysis: same drop for the unfixed configuration', async () => {
    const m = await OutputMeasurer.create(p);
    try {
      const base = await m.measureConfig(entropy.config);
      assert.equal(base.primary.loss!.estimate, entropy.primaryMetric!.loss!.estimate);
      assert.equal(base.primary.kind, 'top1');
    } finally {
      await m.release();
    }
  });

  it('percentile (no drop): no culprit, no victim, no fix; the summary says so first', { skip: SATURATING_INT8 }, () => {
    const d = percentile.diagnosis!;
    assert.ok(d.drop.interval!.low <= 0 && d.drop.interval!.high >= 0);
    assert.deepEqual(d.culprits, []);
    assert.deepEqual(d.victims, []);
    assert.equal(d.fix, null);
    assert.match(d.notes[0], /^no significant drop/);
    const text = formatSummary(percentile);
    assert.ok(text.indexOf('DIAGNOSIS') < text.indexOf('top-1   agreement'), 'the diagnosis comes first');
    assert.doesNotMatch(text, /culprit/);
  });

  it('the entropy summary prints the diagnosis first: drop with interval, culprit with cause, fix before and after', { skip: SATURATING_INT8 }, () => {
    const text = formatSummary(entropy);
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('DIAGNOSIS'));
    assert.ok(at > 0 && at < lines.findIndex((l) => l.includes('top-1   agreement')));
    assert.match(text, /drop 68\.67 points \(95% interval \d+\.\d\d to \d+\.\d\d\)/);
    assert.match(text, /#1 \/conv1\/Conv \(Conv\) {2}over-clipping/);
    assert.match(text, /clips 26\.7% of \/conv1\/Conv_output_0/);
    assert.match(text, /before: drop 68\.67 points/);
    assert.match(text, /after: {2}drop \d\.\d\d points \(95% interval/);
  });
});
