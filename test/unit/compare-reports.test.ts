import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Quantized } from '../../engine/analysis/types';
import { compareReports } from '../../engine/quantized/compare';
import { formatCompare } from '../../engine/report/compareSummary';
import type { Report } from '../../protocol/report';

/** A report of one layer whose only-this SQNR was measured on `samples` samples. */
function report(path: string, iso: number, onlyThis: number, samples: number): Report {
  const m = { top1: null, agreement: 1, outputSqnrDb: 30 };
  return {
    model: { path, sha256: path },
    data: { source: 'd', synthetic: false, labels: false },
    samples: 64,
    accuracy: { float: { top1: null, agreement: 1 }, simulated: m, integer: m, dropPoints: null },
    tensors: [],
    layers: [
      {
        node: 'conv',
        op: 'Conv',
        inputs: [],
        output: 'y',
        isolated: { integer: { sqnrDb: iso } },
        integer: { sqnrDb: iso },
        sensitivity: { onlyThis: { ...m, outputSqnrDb: onlyThis, samples }, rank: 1 },
      },
    ],
  } as unknown as Report;
}
const q = { plan: { layers: [] } } as unknown as Quantized;

describe('compare: only-this figures on different samples', () => {
  it('no difference is taken between figures measured on different samples; the table says on how many', () => {
    const c = compareReports(report('a.onnx', 27.9, 27.3, 64), report('b.onnx', 38.4, 84.1, 8), q, q, { kind: 'twin-of-a', path: 'a.onnx' });
    assert.equal(c.layers[0].onlyThisDiffDb, null);
    assert.equal(c.layers[0].a!.onlyThisSamples, 64);
    assert.equal(c.layers[0].b!.onlyThisSamples, 8);
    const text = formatCompare(c);
    assert.match(text, /27\.3 \/ 84\.1@8/);
    assert.match(text, /only-this dB x@N: on the first N of the 64 samples .*; where A and B rest on different samples, compare them with care/);
  });

  it('on the same samples the difference is A minus B', () => {
    const c = compareReports(report('a.onnx', 27.9, 27.3, 64), report('b.onnx', 38.4, 30.3, 64), q, q, { kind: 'twin-of-a', path: 'a.onnx' });
    assert.ok(Math.abs(c.layers[0].onlyThisDiffDb! - -3) < 1e-12);
    assert.doesNotMatch(formatCompare(c), /@64/);
  });

  it('a figure on fewer samples than the comparison says so on both sides, even when the counts agree', () => {
    const c = compareReports(report('a.onnx', 27.9, 27.3, 8), report('b.onnx', 38.4, 30.3, 8), q, q, { kind: 'twin-of-a', path: 'a.onnx' });
    const text = formatCompare(c);
    assert.match(text, /27\.3@8 \/ 30\.3@8/);
    assert.doesNotMatch(text, /compare them with care/);
  });

  it('weights on two grids are said to be so, not shown as "-"', () => {
    const c = compareReports(report('a.onnx', 27.9, 27.3, 64), report('b.onnx', 38.4, 30.3, 64), q, q, { kind: 'twin-of-a', path: 'a.onnx' });
    const side = (scale: number) => ({ ...c.layers[0].a!, weightScale: scale });
    const text = formatCompare({ ...c, layers: [{ ...c.layers[0], a: side(0.01), b: side(0.2), weightCodes: null }] });
    assert.match(text, / other grids /);
    assert.match(text, /"other grids": the two versions quantize that weight on different grids/);
  });
});
