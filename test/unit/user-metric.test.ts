import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { InputError } from '../../engine/errors';
import type { TensorData } from '../../engine/analysis/outputMetrics';
import { pairedMeanDifference } from '../../engine/analysis/statistics';
import { UserMetricSeries, loadUserMetric, sliceSample } from '../../engine/analysis/userMetric';

const examples = path.resolve(__dirname, '../../examples/metrics');
const t = (data: number[], dims: number[]): TensorData & { dims: number[] } => ({ data: Float32Array.from(data), dims });
const close = (a: number, b: number, tol: number): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-metric-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeMetric(file: string, source: string): string {
  const p = path.join(tmp, file);
  fs.writeFileSync(p, source);
  return p;
}

const inputError = (re: RegExp) => (e: Error) => {
  assert.ok(e instanceof InputError, `not an InputError: ${e}`);
  assert.ok(!e.message.includes('\n'), 'one line');
  assert.match(e.message, re);
  return true;
};

describe('the example IoU metric (examples/metrics/iou.mjs)', () => {
  // one sample, two 2x3 maps; threshold 0.5
  //   map 0 float  .9 .8 .1 / .6 .2 .7 -> on at 0 1 3 5
  //   map 0 quant  .9 .4 .1 / .6 .6 .7 -> on at 0 3 4 5   : intersection 3, union 5 -> 0.6
  //   map 1 float  all .1               -> empty
  //   map 1 quant  .1 .1 .9 .1 .1 .1    -> on at 2          : intersection 0, union 1 -> 0
  const float = t([0.9, 0.8, 0.1, 0.6, 0.2, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], [1, 2, 2, 3]);
  const quant = t([0.9, 0.4, 0.1, 0.6, 0.6, 0.7, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1], [1, 2, 2, 3]);

  it('loads with its name and direction, and scores a sample by hand', async () => {
    const m = await loadUserMetric(path.join(examples, 'iou.mjs'));
    assert.equal(m.name, 'mean IoU of thresholded maps');
    assert.equal(m.higherIsBetter, true);
    close(await m.score({ mask: float }, { mask: quant }, null, 0), (0.6 + 0) / 2, 1e-12);
    // float against itself: every map agrees (the empty one counts as 1)
    assert.equal(await m.score({ mask: float }, { mask: float }, null, 0), 1);
  });

  it('a series over a batch: per-sample scores, float baseline, and the paired loss', async () => {
    const m = await loadUserMetric(path.join(examples, 'iou.mjs'));
    const series = new UserMetricSeries(m);
    // batch of two samples; sample 1 is quantized exactly
    const fb = t([...(float.data as Float32Array), ...(float.data as Float32Array)], [2, 2, 2, 3]);
    const qb = t([...(quant.data as Float32Array), ...(float.data as Float32Array)], [2, 2, 2, 3]);
    await series.addBatch({ mask: fb }, { mask: qb }, 2, null, 10);
    const v = series.values();
    assert.deepEqual([...v.float], [1, 1]);
    close(v.quantized[0], 0.3, 1e-12);
    assert.equal(v.quantized[1], 1);
    const s = series.summary();
    close(s.loss.estimate, (0.7 + 0) / 2, 1e-12);
    assert.deepEqual(s.loss, pairedMeanDifference(v.float, v.quantized));
  });
});

describe('the example CER metric (examples/metrics/cer.mjs)', () => {
  // 6 steps x 4 classes (0 = blank); one-hot rows by best class
  const steps = (best: number[]) =>
    t(
      best.flatMap((b) => [0, 1, 2, 3].map((c) => (c === b ? 1 : 0))),
      [1, best.length, 4],
    );

  it('greedy CTC decoding and edit distance by hand', async () => {
    const m = await loadUserMetric(path.join(examples, 'cer.mjs'));
    assert.equal(m.higherIsBetter, false);
    // float 1 1 0 2 3 3 -> "1 2 3" (repeats merged); quantized 1 0 1 2 0 0 -> "1 1 2" (a blank
    // separates the two 1s): two edits (insert a 1, delete the 3) over 3 characters
    const ref = steps([1, 1, 0, 2, 3, 3]);
    const cand = steps([1, 0, 1, 2, 0, 0]);
    close(await m.score({ y: ref }, { y: cand }, null, 0), 2 / 3, 1e-12);
    // quantized "1 2 2" (blank between the 2s keeps both): one substitution of 3 -> 2
    close(await m.score({ y: ref }, { y: steps([1, 2, 0, 2, 0, 0]) }, null, 0), 1 / 3, 1e-12);
    assert.equal(await m.score({ y: ref }, { y: ref }, null, 0), 0);
  });

  it('lower is better: the loss is quantized - float', async () => {
    const m = await loadUserMetric(path.join(examples, 'cer.mjs'));
    const series = new UserMetricSeries(m);
    const ref = steps([1, 1, 0, 2, 3, 3]);
    await series.addBatch({ y: ref }, { y: steps([1, 2, 0, 2, 0, 0]) }, 1, null, 0);
    close(series.summary().loss.estimate, 1 / 3, 1e-12);
  });
});

describe('the metric contract', () => {
  it('slices one sample per call, batch axis kept as 1, as a copy', () => {
    const batch = { y: t([1, 2, 3, 4, 5, 6], [3, 2]) };
    const s = sliceSample(batch, 1, 3);
    assert.deepEqual(s.y.dims, [1, 2]);
    assert.deepEqual([...(s.y.data as Float32Array)], [3, 4]);
    (s.y.data as Float32Array)[0] = 99;
    assert.equal((batch.y.data as Float32Array)[2], 3);
    // batch of one without a batch axis: passed whole
    assert.deepEqual(sliceSample({ boxes: t([1, 2, 3], [3]) }, 0, 1).boxes.dims, [3]);
    assert.throws(
      () => sliceSample({ boxes: t([1, 2, 3], [3]) }, 0, 2),
      inputError(/output boxes has shape \[3\]: its first axis is not the batch of 2 samples/),
    );
  });

  it('named export `metric`, async functions, the label and the sample index reach the function', async () => {
    const p = writeMetric('named.mjs', 'export async function metric(f, q, label, info) { return label * 10 + info.sample + q.y.data[0]; }');
    const m = await loadUserMetric(p);
    assert.equal(m.name, 'named.mjs');
    assert.equal(await m.score({ y: t([0], [1, 1]) }, { y: t([0.5], [1, 1]) }, 3, 7), 37.5);
  });

  it('an edited metric file is reloaded', async () => {
    const p = writeMetric('edit.mjs', 'export default () => 1;');
    assert.equal(await (await loadUserMetric(p)).score({}, {}, null, 0), 1);
    fs.writeFileSync(p, 'export default () => 2;');
    fs.utimesSync(p, new Date(), new Date(Date.now() + 5000));
    assert.equal(await (await loadUserMetric(p)).score({}, {}, null, 0), 2);
  });

  it('refuses bad modules with one line naming the file', async () => {
    await assert.rejects(loadUserMetric(path.join(tmp, 'missing.mjs')), inputError(/^metric .*missing\.mjs does not exist$/));
    await assert.rejects(loadUserMetric(tmp), inputError(/is a folder, not a regular file/));
    const noFn = writeMetric('nofn.mjs', 'export const x = 1;');
    await assert.rejects(loadUserMetric(noFn), inputError(new RegExp(`^metric ${noFn} exports no function`)));
    const syntax = writeMetric('syntax.mjs', 'export default function (f, q { return 1; }');
    await assert.rejects(loadUserMetric(syntax), inputError(new RegExp(`^metric ${syntax} could not be loaded: `)));
    const dir = writeMetric('dir.mjs', 'export default () => 1; export const higherIsBetter = "no";');
    await assert.rejects(loadUserMetric(dir), inputError(/higherIsBetter must be true or false, got a string/));
  });

  it('exceptions and non-numbers from the function name the file and the sample', async () => {
    const throws = await loadUserMetric(writeMetric('throws.mjs', 'export default () => { throw new Error("boom\\nsecond line"); };'));
    await assert.rejects(throws.score({}, {}, null, 12), inputError(/^metric .*throws\.mjs failed on sample 12: boom$/));
    const nan = await loadUserMetric(writeMetric('nan.mjs', 'export default (f, q) => q.y.data[0];'));
    await assert.rejects(
      nan.score({}, { y: t([NaN], [1, 1]) }, null, 4),
      inputError(/returned NaN for sample 4; it must return a finite number \(the outputs it was given hold NaN or infinite values\)$/),
    );
    const str = await loadUserMetric(writeMetric('str.mjs', 'export default () => "0.5";'));
    await assert.rejects(str.score({}, {}, null, 0), inputError(/returned a string for sample 0/));
  });
});

describe('docs/metric.md', () => {
  it('shows the example metric exactly as shipped', () => {
    const doc = fs.readFileSync(path.resolve(__dirname, '../../docs/metric.md'), 'utf8');
    const block = /```js\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block && block.includes('export default function meanIoU'));
    assert.ok(fs.readFileSync(path.join(examples, 'iou.mjs'), 'utf8').includes(block), 'the documented code is a verbatim part of examples/metrics/iou.mjs');
  });
});
