/**
 * A one-sided tensor far from zero: TensorRT's entropy picks a threshold below its smallest value
 * and the written model clips almost every value. The report and `quantize` must say so, with the
 * clipped share the written grid really gives (checked here against the data directly), and name
 * calibrations that keep the values; a range that clips little raises nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { clippingWarnings } from '../../engine/analysis/clipWarnings';
import { resolveConfig } from '../../engine/quantize/presets';
import { representableRange } from '../../engine/quantize/scheme';
import { writeNpy } from '../helpers/npyFiles';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const root = path.resolve(__dirname, '../..');
const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const K = 8;
const S = 64;
const r = rng(5);
// Values in [3.17, 12.05], dense near the low end (like a shifted activation or a logit band).
const X = Float32Array.from({ length: S * K }, () => 3.17 + r() ** 3 * (12.05 - 3.17));
const W = Float32Array.from({ length: K * 4 }, () => randn(r) * 0.5);
const model = writeModel(
  dir,
  'shifted.onnx',
  buildModel({
    nodes: [makeNode('MatMul', ['x', 'w'], ['y'], 'mm')],
    inputs: [valueInfo('x', ['N', K])],
    outputs: [valueInfo('y', ['N', 4])],
    initializers: [makeTensor('w', DT.FLOAT, [K, 4], W)],
  }),
);
const data = writeNpy(dir, 'x.npy', X, [S, K]);

/** Share of the data outside a representable range: the independent expectation. */
function clippedShare(lo: number, hi: number): number {
  let n = 0;
  for (const v of X) if (v < lo || v > hi) n++;
  return n / X.length;
}

describe('heavy clipping is called out', () => {
  it('entropy on a one-sided tensor: the report warns with the clipped share the grid really gives', async () => {
    const p = await prepareAnalysis(model, { dataPath: data });
    const q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' }));
    const params = q.actParams.get('x')!;
    const range = representableRange(params);
    // A value saturates when it lies more than half a step beyond the grid's ends (it rounds to
    // the end code otherwise, like any value inside).
    const [lo, hi] = [range.lo - params.scale / 2, range.hi + params.scale / 2];
    const truth = clippedShare(lo, hi);
    assert.ok(truth > 0.8, `entropy should clip most values here, clipped ${truth}`);
    const w = clippingWarnings(p, q).find((x) => x.tensor === 'x');
    assert.ok(w, 'a heavy-clipping warning for x');
    const said = Number(/clips ([\d.]+)%/.exec(w.message)![1]) / 100;
    // The share is read from the calibration histogram, taking each bin as uniform: it can be off by
    // at most the mass of the bins the grid's ends cut (plus the message's rounding).
    const bin = p.stats.get('x')!.width;
    const cut = X.filter((v) => Math.abs(v - hi) <= bin || Math.abs(v - lo) <= bin).length / X.length;
    assert.ok(Math.abs(said - truth) <= cut + 0.001, `warning says ${said}, the data ${truth} (bins at the ends hold ${cut})`);
    assert.match(w.message, /percentile|minmax|mse/);
    const report = await evaluate(p, q, { sensitivity: false });
    assert.ok(report.warnings.some((x) => x.code === 'heavy-clipping' && x.tensor === 'x'));
  });

  it('percentile clips little: no warning', async () => {
    const p = await prepareAnalysis(model, { dataPath: data });
    const q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'percentile' }));
    const range = representableRange(q.actParams.get('x')!);
    assert.ok(clippedShare(range.lo, range.hi) < 0.01);
    assert.deepEqual(clippingWarnings(p, q), []);
  });

  it("a constant tensor on the grid's end is not clipped (float32 scales put the end code a hair below it)", async () => {
    const ones = writeNpy(dir, 'ones.npy', new Float32Array(S * K).fill(1), [S, K]);
    const p = await prepareAnalysis(model, { dataPath: ones });
    const q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'minmax' }));
    const params = q.actParams.get('x')!;
    // the grid [-1, 1] of symmetric int8: its end code lands within half a step of 1, whichever way
    assert.ok(Math.abs(representableRange(params).hi - 1) < params.scale / 2);
    assert.deepEqual(clippingWarnings(p, q), []);
    const report = await evaluate(p, q, { sensitivity: false });
    assert.equal(report.tensors.find((t) => t.name === 'x')!.clipRate, 0);
  });

  it('quantize writes the model and warns on stderr', () => {
    const out = path.join(dir, 'shifted.int8.onnx');
    const res = spawnSync(
      process.execPath,
      [path.join(root, 'bin/quantlens.js'), 'quantize', model, '--data', data, '--preset', 'tensorrt', '--calibration', 'entropy', '--out', out, '--quiet'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(res.status, 0, res.stderr);
    assert.ok(fs.existsSync(out));
    assert.match(res.stderr, /WARNING: x: the quantized range .* clips ([89]\d|100)\.\d% of its calibration values/);
  });
});
