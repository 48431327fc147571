import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../engine/errors';
import { ModelOutputComparison, OutputComparison, SQNR_CAP_DB, type TensorData } from '../../engine/analysis/outputMetrics';
import { choosePrimaryMetric } from '../../engine/analysis/primaryMetric';
import { meanInterval, pairedMeanDifference, wilsonInterval } from '../../engine/analysis/statistics';

const t = (data: number[], dims: number[]): TensorData => ({ data: Float32Array.from(data), dims });
const close = (a: number, b: number, tol: number, what = ''): void => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

describe('error metrics per output and per sample', () => {
  // two samples of shape [2, 2] (not a classifier: two axes of size 2)
  const float = t([1, 2, 2, 0, 3, 0, 4, 0], [2, 2, 2]);
  const quant = t([1, 2, 1, 0, 3, 0, 4, 0], [2, 2, 2]);

  it('SQNR, cosine and max error by hand; per-sample SQNR kept per sample', () => {
    const c = new OutputComparison('y');
    c.add(float, quant, 2);
    const s = c.summary();
    // ||x||^2 = 9 + 25 = 34, ||x - y||^2 = 1; <x, y> = 1 + 4 + 2 + 9 + 16 = 32; ||y||^2 = 31
    close(s.sqnrDb, 10 * Math.log10(34), 1e-12);
    close(s.cosine, 32 / Math.sqrt(34 * 31), 1e-12);
    assert.equal(s.maxAbsError, 1);
    close(s.mse, 1 / 8, 1e-15);
    assert.equal(s.classifier, null);
    // sample 0: 10 log10(9 / 1); sample 1 is exact: capped
    const per = c.perSample().sqnrDb;
    close(per[0], 10 * Math.log10(9), 1e-12);
    assert.equal(per[1], SQNR_CAP_DB);
    assert.equal(s.exactSamples, 1);
    close(s.perSampleSqnrDb.estimate, (10 * Math.log10(9) + SQNR_CAP_DB) / 2, 1e-12);
    assert.deepEqual(s.sampleShape, [2, 2]);
  });

  it('streaming: two batches give the same summary as one', () => {
    const one = new OutputComparison('y');
    one.add(float, quant, 2);
    const two = new OutputComparison('y');
    two.add(t([1, 2, 2, 0], [1, 2, 2]), t([1, 2, 1, 0], [1, 2, 2]), 1);
    two.add(t([3, 0, 4, 0], [1, 2, 2]), t([3, 0, 4, 0], [1, 2, 2]), 1);
    assert.deepEqual(two.summary(), one.summary());
  });

  it('a quantized NaN is counted and makes the output and the sample unbounded, never a good number', () => {
    const c = new OutputComparison('y');
    c.add(float, t([1, 2, 2, 0, 3, 0, NaN, 0], [2, 2, 2]), 2);
    const s = c.summary();
    assert.equal(s.sqnrDb, -Infinity);
    assert.ok(Number.isNaN(s.cosine));
    assert.equal(s.maxAbsError, Infinity);
    assert.deepEqual(s.nonFinite, { float: 0, quantized: 1, matched: 0 });
    assert.equal(c.perSample().sqnrDb[1], -Infinity);
    // the broken sample is left out of the per-sample mean and counted
    assert.equal(s.perSampleSqnrDb.n, 1);
    assert.equal(s.perSampleSqnrDb.nonFinite, 1);
    assert.ok(s.warnings.some((w) => /1 quantized value\(s\) are NaN or infinite where float is finite/.test(w)));
  });

  it('identical infinities match; a float NaN cannot be compared and is counted apart', () => {
    const c = new OutputComparison('y');
    c.add(t([-Infinity, 2, 2, 0, NaN, 0, 4, 0], [2, 2, 2]), t([-Infinity, 2, 1, 0, 3, 0, 4, 0], [2, 2, 2]), 2);
    const s = c.summary();
    assert.deepEqual(s.nonFinite, { float: 1, quantized: 0, matched: 1 });
    // sample 0 compares 2, 2, 0 against 2, 1, 0: 10 log10(8 / 1); sample 1 has no reference
    const per = c.perSample().sqnrDb;
    close(per[0], 10 * Math.log10(8), 1e-12);
    assert.ok(Number.isNaN(per[1]));
    close(s.sqnrDb, 10 * Math.log10(8 + 16), 1e-12);
  });

  it('max error takes errors of either sign; the SQNR of all outputs pools their sums', () => {
    const m = new ModelOutputComparison(['a', 'b'], { classAxis: 'none' });
    // a: errors -0.5 and +2 (x - y); b: errors 0 and -3
    m.add({ a: t([1, 4], [1, 1, 2]), b: t([3, 3], [1, 1, 2]) }, { a: t([1.5, 2], [1, 1, 2]), b: t([3, 6], [1, 1, 2]) }, 1);
    const [a, b] = m.summaries();
    assert.equal(a.maxAbsError, 2);
    assert.equal(b.maxAbsError, 3);
    // pooled: ||x||^2 = 1 + 16 + 9 + 9 = 35, ||x - y||^2 = 0.25 + 4 + 0 + 9 = 13.25 (not a mean of per-output dB)
    close(m.overallSqnrDb(), 10 * Math.log10(35 / 13.25), 1e-12);
    close(a.sqnrDb, 10 * Math.log10(17 / 4.25), 1e-12);
    // one non-finite quantized value in either output: no finite number for the whole
    m.add({ a: t([1, 4], [1, 1, 2]), b: t([3, 3], [1, 1, 2]) }, { a: t([1, 4], [1, 1, 2]), b: t([Infinity, 3], [1, 1, 2]) }, 1);
    assert.equal(m.overallSqnrDb(), -Infinity);
  });

  it('int64 outputs compare as numbers', () => {
    const c = new OutputComparison('ids', { classAxis: 'none' });
    c.add({ data: BigInt64Array.from([3n, 4n]), dims: [1, 2] }, { data: BigInt64Array.from([3n, 5n]), dims: [1, 2] }, 1);
    close(c.summary().sqnrDb, 10 * Math.log10(25), 1e-12);
  });

  it('refuses outputs it cannot split per sample, and shape changes, with one line', () => {
    const c = new OutputComparison('boxes');
    assert.throws(
      () => c.add(t([1, 2, 3], [3]), t([1, 2, 3], [3]), 2),
      (e: Error) => e instanceof InputError && /output boxes has shape \[3\]: its first axis is not the batch of 2 samples/.test(e.message),
    );
    assert.throws(
      () => c.add(t([1, 2], [1, 2]), t([1, 2, 3], [1, 3]), 1),
      (e: Error) => e instanceof InputError && /quantized model gives shape \[1, 3\], the float model \[1, 2\]/.test(e.message),
    );
  });
});

describe('classifier outputs', () => {
  // three samples, six classes (so top-5 applies), logits
  const f = [0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 1];
  const q = [0, 1, 2, 3, 5, 4, 5, 4, 3, 2, 1, 0, 1, 0, 0, 0, 0, 0];

  it('agreement, top-5 (argmax tie rule), KL and labelled top-1 by hand', () => {
    const c = new OutputComparison('logits');
    c.add(t(f, [3, 6]), t(q, [3, 6]), 3, Int32Array.from([4, 0, 5]));
    const s = c.summary();
    const k = s.classifier!;
    assert.equal(k.classes, 6);
    assert.equal(k.scores, 'logits');
    // top-1: float 5, 0, 5; quantized 4, 0, 0 -> one of three agrees
    assert.deepEqual(k.top1Agreement, wilsonInterval(1, 3));
    // float top-1 (class 5) in the quantized top 5? sample 0: rank 1 (yes), sample 1: rank 0 (yes),
    // sample 2: class 0 scores higher and classes 1-4 tie with a lower index: rank 5 (no)
    assert.deepEqual(k.topK, { k: 5, agreement: wilsonInterval(2, 3) });
    // KL: quantized is a permutation of float in samples 0 and 2, so both share the softmax
    // denominator and KL = sum p_i (f_i - q_i)
    const z0 = (Math.exp(6) - 1) / (Math.E - 1); // sum of e^0..e^5
    const kl0 = (Math.exp(5) - Math.exp(4)) / z0;
    const kl2 = (Math.E - 1) / (5 + Math.E);
    const per = c.perSample();
    close(per.klNats![0], kl0, 1e-12);
    close(per.klNats![1], 0, 1e-15);
    close(per.klNats![2], kl2, 1e-12);
    close(k.klNats.estimate, (kl0 + kl2) / 3, 1e-12);
    // labels 4, 0, 5: float right on samples 1, 2; quantized right on samples 0, 1
    assert.deepEqual(k.labelled!.table, { both: 1, referenceOnly: 1, candidateOnly: 1, neither: 0 });
    assert.equal(k.labelled!.dropPoints.estimate, 0);
    assert.deepEqual([...per.floatCorrect!], [0, 1, 1]);
    assert.deepEqual([...per.quantizedCorrect!], [1, 1, 0]);
  });

  it('probability outputs are not softmaxed again; zeros are floored, not infinite', () => {
    const c = new OutputComparison('probs');
    c.add(t([0.5, 0.5, 0, 0.2, 0.3, 0.5], [2, 3]), t([1, 0, 0, 0.2, 0.3, 0.5], [2, 3]), 2);
    const k = c.summary().classifier!;
    assert.equal(k.scores, 'probabilities');
    const e = 1e-7;
    const z = 1 + 3 * e;
    const p = [(0.5 + e) / z, (0.5 + e) / z, e / z];
    const qq = [(1 + e) / z, e / z, e / z];
    const kl = p.reduce((s, pi, i) => s + pi * Math.log(pi / qq[i]), 0);
    close(c.perSample().klNats![0], kl, 1e-12);
    close(c.perSample().klNats![1], 0, 1e-15);
    // non-negative rows that do not sum to 1 are logits
    const l = new OutputComparison('scores');
    l.add(t([0.5, 2, 0.1], [1, 3]), t([0.5, 2, 0.1], [1, 3]), 1);
    assert.equal(l.summary().classifier!.scores, 'logits');
  });

  it('a NaN in the quantized row is a wrong prediction and an unbounded KL', () => {
    const c = new OutputComparison('logits');
    c.add(t([1, 2, 3, 3, 2, 1], [2, 3]), t([1, 2, 3, 3, NaN, 1], [2, 3]), 2, Int32Array.from([2, 0]));
    const s = c.summary();
    const k = s.classifier!;
    assert.deepEqual(k.top1Agreement, wilsonInterval(1, 2));
    assert.deepEqual(k.labelled!.table, { both: 1, referenceOnly: 1, candidateOnly: 0, neither: 0 });
    assert.equal(c.perSample().klNats![1], Infinity);
    assert.equal(k.klNats.nonFinite, 1);
    assert.ok(s.warnings.some((w) => /KL is unbounded or undefined on 1 sample/.test(w)));
  });

  it('[N, C, 1, 1] is a classifier; [N, H, W] is not; labels outside the classes give no labelled accuracy', () => {
    const c = new OutputComparison('head');
    c.add(t([0, 1, 1, 0], [2, 2, 1, 1]), t([0, 1, 0, 1], [2, 2, 1, 1]), 2, Int32Array.from([1, 7]));
    const s = c.summary();
    assert.equal(s.classifier!.classes, 2);
    assert.equal(s.classifier!.topK, null);
    assert.equal(s.classifier!.labelled, null);
    assert.ok(s.warnings.some((w) => /1 label\(s\) are not classes 0\.\.1 of this output/.test(w)));
    const map = new OutputComparison('map');
    map.add(t([0, 1, 1, 0], [1, 2, 2]), t([0, 1, 1, 0], [1, 2, 2]), 1);
    assert.equal(map.summary().classifier, null);
  });

  it('classAxis "last": per-token rows, agreement averaged per sample', () => {
    const c = new OutputComparison('tokens', { classAxis: 'last' });
    // one sample, 4 tokens x 2 classes: tokens 0-2 agree, token 3 flips
    c.add(t([1, 0, 0, 1, 1, 0, 0, 1], [1, 4, 2]), t([1, 0, 0, 1, 1, 0, 1, 0], [1, 4, 2]), 1, Int32Array.from([0]));
    c.add(t([1, 0, 1, 0, 1, 0, 1, 0], [1, 4, 2]), t([1, 0, 1, 0, 1, 0, 1, 0], [1, 4, 2]), 1, Int32Array.from([0]));
    const k = c.summary().classifier!;
    assert.equal(k.rowsPerSample, 4);
    assert.deepEqual([...c.perSample().top1Agreement!], [0.75, 1]);
    close(k.top1Agreement.estimate, 0.875, 1e-15);
    assert.equal(k.labelled, null);
  });
});

describe('the primary metric', () => {
  const run = (labels: Int32Array | null) => {
    const m = new ModelOutputComparison(['boxes', 'logits']);
    m.add(
      { boxes: t([0, 0, 1, 1, 0, 0, 2, 2], [2, 2, 2]), logits: t([2, 1, 0, 1], [2, 2]) },
      { boxes: t([0, 0, 1, 1.1, 0, 0, 2, 2], [2, 2, 2]), logits: t([2, 1, 1, 0], [2, 2]) },
      2,
      labels,
    );
    return m.summaries();
  };

  it('labels and a classifier output: labelled top-1, with the paired drop', () => {
    const p = choosePrimaryMetric(run(Int32Array.from([0, 1])));
    assert.equal(p.kind, 'top1');
    assert.equal(p.output, 'logits');
    // float right on both, quantized on sample 0 only
    assert.equal(p.loss!.estimate, 50);
    assert.equal(p.lossUnit, 'points');
    assert.match(p.rationale, /labels exist and output 'logits' is classifier-like/);
  });

  it('no labels: agreement with float, loss = 100 (1 - agreement) with the Wilson bounds flipped', () => {
    const p = choosePrimaryMetric(run(null));
    assert.equal(p.kind, 'agreement');
    const w = wilsonInterval(1, 2);
    close(p.loss!.estimate, 50, 1e-12);
    close(p.loss!.low, 100 * (1 - w.high), 1e-12);
    close(p.loss!.high, 100 * (1 - w.low), 1e-12);
  });

  it('no classifier: the worst output by per-sample SQNR, without a loss', () => {
    const m = new ModelOutputComparison(['a', 'b'], { classAxis: 'none' });
    m.add({ a: t([1, 2, 3, 4], [1, 4]), b: t([1, 2, 3, 4], [1, 4]) }, { a: t([1, 2, 3, 4.01], [1, 4]), b: t([1, 2, 3, 5], [1, 4]) }, 1);
    const p = choosePrimaryMetric(m.summaries());
    assert.equal(p.kind, 'sqnr');
    assert.equal(p.output, 'b');
    close(p.value.estimate, 10 * Math.log10(30), 1e-12);
    assert.equal(p.loss, null);
  });

  it('an output fed back as recurrent state is not judged while the model has another output', () => {
    // 'state' is far worse than 'answer' (10 log10(30) dB against ~10 log10(30 / 1e-4) dB)
    const m = new ModelOutputComparison(['answer', 'state'], { classAxis: 'none' });
    m.add({ answer: t([1, 2, 3, 4], [1, 4]), state: t([1, 2, 3, 4], [1, 4]) }, { answer: t([1, 2, 3, 4.01], [1, 4]), state: t([1, 2, 3, 5], [1, 4]) }, 1);
    const p = choosePrimaryMetric(m.summaries(), null, new Set(['state']));
    assert.equal(p.output, 'answer');
    close(p.value.estimate, 10 * Math.log10(30 / (Math.fround(4.01) - 4) ** 2), 1e-6); // float32 outputs
    assert.match(p.rationale, /'state' is recurrent state fed back to the model/);
    // without the flag the worst output is the state; a model whose every output is state still gets a verdict
    assert.equal(choosePrimaryMetric(m.summaries()).output, 'state');
    assert.equal(choosePrimaryMetric(m.summaries(), null, new Set(['answer', 'state'])).output, 'state');
  });

  it('a user metric outranks everything, its loss being the paired float - quantized difference', () => {
    const fl = Float64Array.from([1, 1, 0.9, 1]);
    const qu = Float64Array.from([0.8, 1, 0.9, 0.5]);
    const user = {
      name: 'iou',
      file: '/x/iou.mjs',
      higherIsBetter: true,
      float: meanInterval(fl),
      quantized: meanInterval(qu),
      loss: pairedMeanDifference(fl, qu),
    };
    const p = choosePrimaryMetric(run(Int32Array.from([0, 1])), user);
    assert.equal(p.kind, 'user');
    close(p.loss!.estimate, (0.2 + 0 + 0 + 0.5) / 4, 1e-12);
    close(p.value.estimate, 3.2 / 4, 1e-12);
  });
});
