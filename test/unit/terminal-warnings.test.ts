import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { formatSummary, warningLines } from '../../engine/report/summary';
import type { Report } from '../../protocol/report';

const w = (code: string, k: number) => ({ code, message: `${code} #${k}` });
const many = (code: string, n: number) => Array.from({ length: n }, (_, k) => w(code, k));

describe('terminal warnings: the important kinds first, each kind in a few lines', () => {
  it('22 "not fused" warnings no longer hide 4 heavy-clipping ones; every warning is shown or counted', () => {
    const warnings: Report['warnings'] = [...many('not-fused-in-written-file', 22), ...many('heavy-clipping', 4), w('synthetic-data', 0)];
    const lines = warningLines(warnings);
    assert.deepEqual(lines, [
      '',
      'warning: synthetic-data #0',
      'warning: heavy-clipping #0',
      'warning: heavy-clipping #1',
      'warning: heavy-clipping #2',
      'warning: heavy-clipping #3',
      'warning: not-fused-in-written-file #0',
      'warning: not-fused-in-written-file #1',
      "  ... and 20 more 'not-fused-in-written-file' warnings like these",
    ]);
  });

  it('past the line budget, the kinds left are counted in one line', () => {
    const warnings = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].flatMap((c) => many(c, 3));
    const lines = warningLines(warnings);
    const counted = lines.filter((l) => l.startsWith('warning: ')).length;
    const more = lines.map((l) => /and (\d+) more '/.exec(l)).reduce((a, m) => a + (m ? Number(m[1]) : 0), 0);
    const rest = Number(/^\.\.\. and (\d+) more warnings in the report$/.exec(lines[lines.length - 1])![1]);
    assert.equal(counted + more + rest, warnings.length);
    assert.ok(lines.length <= 15, `${lines.length} lines`);
    assert.deepEqual(warningLines([]), []);
  });
});

describe('terminal tables: the worst rows first, and what is left out counted', () => {
  const revive = (_k: string, v: unknown) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v);
  const base: Report = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/reports/transformer-tensorrt-percentile.json'), 'utf8'), revive);
  const stats = (rate: number) => ({ mismatchRate: rate, mismatches: 0, maxLsb: 0, lsbHistogram: { lsb: [], counts: [] }, causes: [] });
  // The reference agrees with onnxruntime on every layer; the simulation differs on four late ones.
  const simRate = (k: number) => (k >= 14 ? (k - 13) / 100 : 0);
  // the fixture holds the figures only; the frame a report also carries is filled in here
  const report: Report = {
    ...base,
    model: { path: 'tiny-transformer.onnx', sha256: '', opset: 17, producer: 'test', nodes: 0 },
    data: { source: 'data', synthetic: false, labels: true, inputs: [] },
    warnings: [],
    integerKernels: {},
    deployedKernels: {},
    integerEncoding: '',
    layers: base.layers.map((l, k) => ({
      ...l,
      op: 'MatMul',
      integerDiff: {
        referenceVsOrt: stats(0),
        simulatedVsOrt: stats(simRate(k)),
        samples: 18,
        elements: k === 0 ? 0 : 100,
        u8s8: { applicable: false, saturatedPairs: 0, changedOutputs: 0, elements: 0 },
      } as unknown as NonNullable<Report['layers'][number]['integerDiff']>,
    })),
  };
  const lines = formatSummary(report).split('\n');

  it('integer codes: ranked by the largest share that differs in either comparison, with the samples behind them', () => {
    const head = lines.findIndex((l) => l.startsWith('integer codes:'));
    assert.match(lines[head], new RegExp(`on the first 18 of ${base.samples} samples:$`));
    const rows = lines.slice(head + 2, head + 6).map((l) => l.trim().split(/\s+/)[0]);
    assert.deepEqual(
      rows,
      [17, 16, 15, 14].map((k) => base.layers[k].node),
    );
    assert.equal(lines[head + 10], `  ... and ${base.layers.length - 1 - 8} more layers (all of them in the report: --report)`);
  });

  it('a layer the reference compared no element of is not shown as 0%', () => {
    const head = lines.findIndex((l) => l.startsWith('integer codes:'));
    assert.ok(!lines.slice(head).some((l) => l.trim().startsWith(`${base.layers[0].node} `)), 'layer 0 compared nothing');
  });

  it('the layer table counts the layers it leaves out', () => {
    const more = lines.filter((l) => /^ {2}\.\.\. and \d+ more layers/.test(l));
    assert.equal(more.length, 2);
    assert.equal(more[0], `  ... and ${base.layers.length - 8} more layers (all of them in the report: --report)`);
  });
});
