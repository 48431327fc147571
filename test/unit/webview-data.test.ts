import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MixedPrecisionResult, Report, SweepEntry, TensorReport } from '../../protocol/report';
import { agreementText, budgetText, dropPhrase, dropText, stepFigureText, sweepColumns } from '../../webview/viewData';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { dropSeverity, formatDb, formatPercent, formatScalarOrChannels } from '../../webview/format';
import { sortRows } from '../../webview/layerColumns';
import { flagRows, indexReport, normalizeReport } from '../../webview/reportData';

const metrics = (sqnrDb: number | string) => ({ sqnrDb, cosine: 0.9, mse: 0.1, maxAbs: 1 });

function layer(node: string, sqnr: number | string, rank: number | null, clip = 0): { layer: unknown; tensor: unknown } {
  const output = `${node}_out`;
  return {
    layer: {
      node,
      op: 'Conv',
      output,
      inputs: ['x'],
      simulated: metrics(sqnr),
      integer: metrics(sqnr),
      isolated: { simulated: metrics(sqnr), integer: metrics(sqnr) },
      simVsIntMismatch: 0,
      simVsIntMaxLsb: 0,
      errorHistogram: { lsb: [0], counts: [1] },
      integerKernel: 'QLinearConv',
      sensitivity:
        rank === null
          ? null
          : { onlyThis: { top1: null, agreement: 1, outputSqnrDb: 'Infinity' }, allButThis: { top1: null, agreement: 1, outputSqnrDb: 30 }, rank },
    },
    tensor: {
      name: output,
      kind: 'activation',
      min: 0,
      max: 1,
      count: 1,
      degenerate: null,
      nanCount: 0,
      infCount: 0,
      histogram: { edges: [0, 1], counts: [1] },
      thresholds: {},
      chosen: null,
      clipRate: clip,
      klCurve: [
        { threshold: 0.5, value: 'Infinity' },
        { threshold: 1, value: 0.2 },
      ],
    },
  };
}

function rawReport(): Record<string, unknown> {
  const parts = [layer('a', 12, 2, 0.02), layer('b', 'Infinity', 3), layer('c', 3, 1, 0.5), layer('Infinity', 25, null)];
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tensors: [
      ...parts.map((p) => p.tensor),
      {
        name: 'a:w',
        kind: 'weight',
        min: -1,
        max: 1,
        count: 4,
        degenerate: null,
        nanCount: 0,
        infCount: 0,
        histogram: { edges: [], counts: [] },
        thresholds: {},
        chosen: null,
        clipRate: 0,
      },
    ],
    layers: parts.map((p) => p.layer),
    warnings: [{ code: 'x', message: 'Infinity' }],
    samples: 10,
    data: { labels: false },
    accuracy: {
      float: { top1: null, agreement: 1 },
      simulated: { top1: null, agreement: 1, outputSqnrDb: 40 },
      integer: { top1: null, agreement: 1, outputSqnrDb: 40 },
      dropPoints: null,
    },
  };
}

describe('webview report data', () => {
  it('turns "Infinity" strings back into numbers but leaves names alone', () => {
    const r = normalizeReport(rawReport()) as Report;
    assert.equal(r.layers[1].integer.sqnrDb, Infinity);
    assert.equal(r.layers[0].sensitivity!.onlyThis.outputSqnrDb, Infinity);
    assert.equal(r.tensors[0].klCurve![0].value, Infinity);
    assert.equal(r.layers[3].node, 'Infinity');
    assert.equal(r.warnings[0].message, 'Infinity');
  });

  it('refuses unknown schema versions', () => {
    assert.throws(() => normalizeReport({ ...rawReport(), schemaVersion: 99 }), /schema version 99/);
    assert.equal(normalizeReport({ ...rawReport(), schemaVersion: 2 }).schemaVersion, 2, 'version 2 only added fields');
  });

  it('links layers to their output tensor and their NODE:INITIALIZER weights', () => {
    const index = indexReport(normalizeReport(rawReport()));
    const a = index.byNode.get('a')!;
    assert.equal((a.output as TensorReport).name, 'a_out');
    assert.deepEqual(
      a.weights.map((w) => w.name),
      ['a:w'],
    );
    assert.equal(index.byNode.get('b')!.weights.length, 0);
  });

  it('flags layers whose OWN (isolated) SQNR is below the threshold', () => {
    const report = normalizeReport(rawReport());
    const index = indexReport(report);
    const flags = flagRows(report, index.rows, 20);
    assert.deepEqual([...flags.belowThreshold].sort(), ['a', 'c']);
  });

  it('sorts with missing values last in both directions and graph order on ties', () => {
    const rows = indexReport(normalizeReport(rawReport())).rows;
    const names = (key: Parameters<typeof sortRows>[1], desc: boolean) => sortRows(rows, key, desc).map((r) => r.layer.node);
    assert.deepEqual(names('sqnrInt', false), ['c', 'a', 'Infinity', 'b']);
    assert.deepEqual(names('isolated', false), ['c', 'a', 'Infinity', 'b']);
    assert.deepEqual(names('sqnrInt', true), ['b', 'Infinity', 'a', 'c']);
    assert.deepEqual(names('rank', false), ['c', 'a', 'b', 'Infinity']);
    assert.deepEqual(names('rank', true), ['b', 'a', 'c', 'Infinity']);
    assert.deepEqual(names('clip', true), ['c', 'a', 'b', 'Infinity']);
    assert.deepEqual(names('op', false), ['a', 'b', 'c', 'Infinity']);
  });
});

describe('webview formatting', () => {
  it('shows infinite SQNR as ∞ and one decimal otherwise', () => {
    assert.equal(formatDb(Infinity), '∞');
    assert.equal(formatDb(12.345), '12.3');
    assert.equal(formatDb(null), '–');
  });

  it('keeps tiny shares visible and says n/a for null', () => {
    assert.equal(formatPercent(0.267062), '26.71%');
    assert.equal(formatPercent(0.0000023), '<0.01%');
    assert.equal(formatPercent(0), '0.00%');
    assert.equal(formatPercent(null), 'n/a');
  });

  it('grades the accuracy drop: under 1 point good, under 3 warning, else bad', () => {
    assert.deepEqual([0, 0.99, 1, 2.99, 3, 68.67, -0.5].map(dropSeverity), ['good', 'good', 'warn', 'warn', 'bad', 'bad', 'good']);
  });

  it('summarises per-channel scales', () => {
    assert.equal(formatScalarOrChannels(0.5), '0.5');
    assert.equal(formatScalarOrChannels([0, 0, 0]), '0 (all 3 channels)');
    assert.equal(formatScalarOrChannels([0.01, 0.02]), '0.01 … 0.02 (2 channels)');
  });
});

describe('sweep entries of a model judged by output SQNR', () => {
  const interval = (estimate: number, low: number, high: number) => ({ estimate, low, high, level: 0.95, method: 'student-t' });
  const entry = {
    id: 0,
    label: 'A8',
    drop: -41.25,
    dropBasis: 'sqnr',
    loss: null,
    value: interval(41.25, 40.99, 41.5),
    agreement: 0.3545,
    accuracy: { float: null, simulated: { top1: null, agreement: 0.35, outputSqnrDb: 41 }, integer: { top1: null, agreement: 0.3545, outputSqnrDb: 41.3 } },
  } as unknown as SweepEntry;
  it('show the SQNR with its own interval, never minus it, and no agreement', () => {
    assert.equal(dropText(entry), '41.25 [40.99, 41.50]');
    assert.equal(dropPhrase(entry), 'SQNR 41.25 [40.99, 41.50] dB');
    assert.equal(agreementText(entry), 'n/a');
    const drop = sweepColumns('sqnr').find((c) => c.key === 'drop')!;
    assert.equal(drop.label, 'SQNR dB [95%]');
    const withClasses = {
      ...entry,
      dropBasis: 'top1',
      drop: 1.5,
      loss: interval(1.5, 0.2, 2.9),
      accuracy: { ...entry.accuracy, integer: { ...entry.accuracy.integer, agreementInterval: interval(0.3545, 0.3, 0.4) } },
    } as unknown as SweepEntry;
    assert.equal(dropPhrase(withClasses), 'drop 1.50 [0.20, 2.90] top-1 points');
    assert.equal(agreementText(withClasses), formatPercent(0.3545));
    // a sweep saved before entries carried the interval: judged by top-1, so a classifier
    const older = { ...withClasses, accuracy: entry.accuracy } as unknown as SweepEntry;
    assert.equal(agreementText(older), formatPercent(0.3545));
  });
});

describe('mixed precision held to an SQNR floor', () => {
  const interval = (estimate: number, low: number, high: number) => ({ estimate, low, high, level: 0.95, method: 'student-t' });
  const r = { dropBasis: 'sqnr', maxDrop: -30, steps: [{ drop: -35, interval: interval(35, 34.1, 35.9) }] } as unknown as MixedPrecisionResult;
  it('shows the SQNR and the floor, never minus them', () => {
    assert.equal(stepFigureText(r, r.steps[0]), '35.00 [34.10, 35.90] dB');
    assert.equal(budgetText(r), 'SQNR ≥ 30.00 dB');
    const loss = { dropBasis: 'top1', maxDrop: 1, steps: [{ drop: 0.5, interval: interval(0.5, -1.6, 2.83) }] } as unknown as MixedPrecisionResult;
    assert.equal(stepFigureText(loss, loss.steps[0]), '0.50 [-1.60, 2.83] points');
    assert.equal(budgetText(loss), '≤ 1.00 point');
  });
});
