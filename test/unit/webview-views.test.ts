import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Report, SweepEntry } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { normalizeMixedPrecision, normalizeSweep } from '../../webview/reportData';
import {
  configLabel,
  DEFAULT_SWEEP_SORT,
  formatMs,
  isSweepSortKey,
  paretoFront,
  sensitivityData,
  sortSweep,
  sweepBasis,
  sweepColumns,
  symlog,
  wantsLogDrop,
} from '../../webview/viewData';

const config = {
  preset: 'tensorrt',
  calibration: 'percentile',
  percentile: 99.99,
  weights: { bits: 4, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false, perChannel: true },
  activations: { bits: 8, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false },
  placement: 'compute',
  exclude: [],
  foldBatchNorm: true,
};

function entry(id: number, drop: number | string, sizeBytes: number, pareto: boolean, error?: string): Record<string, unknown> {
  const m = { top1: 0.9, agreement: 0.95, outputSqnrDb: 'Infinity' };
  return {
    id,
    label: id === 3 ? 'Infinity' : `cfg ${id}`,
    config,
    accuracy: { float: 0.98, simulated: m, integer: m },
    drop,
    dropBasis: 'top1',
    agreement: 0.95,
    outputSqnrDb: error ? '-Infinity' : 20 - id,
    sizeBytes,
    pareto,
    evalMs: 10,
    ...(error ? { error } : {}),
  };
}

function rawSweep(): Record<string, unknown> {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'sweep',
    model: { path: '/m.onnx', sha256: 'x' },
    data: { source: 'd', synthetic: false, labels: true },
    samples: 10,
    floatTop1: 0.98,
    configs: [
      entry(0, 0.5, 400, false),
      entry(1, 2, 200, true),
      entry(2, 'Infinity', 100, false, 'runtime rejected it'),
      entry(3, 0.5, 300, true),
      entry(4, 10, 100, true),
    ],
    timings: { prepareMs: 900, firstConfigMs: 400, meanExtraConfigMs: 150 },
  };
}

const sweepEntries = () => normalizeSweep(rawSweep()).configs;

describe('webview sweep data', () => {
  it('revives infinite drops and SQNRs but keeps labels and errors as text', () => {
    const s = normalizeSweep(rawSweep());
    assert.equal(s.configs[2].drop, Infinity);
    assert.equal(s.configs[2].outputSqnrDb, -Infinity);
    assert.equal(s.configs[0].accuracy.integer.outputSqnrDb, Infinity);
    assert.equal(s.configs[3].label, 'Infinity');
    assert.equal(s.configs[2].error, 'runtime rejected it');
  });

  it('refuses other kinds and schema versions', () => {
    assert.throws(() => normalizeSweep({ ...rawSweep(), schemaVersion: 99 }), /schema version 99/);
    assert.throws(() => normalizeSweep({ ...rawSweep(), kind: 'mixed-precision' }), /no configurations/);
  });

  it('orders the Pareto front as a staircase and leaves failed entries out', () => {
    assert.deepEqual(
      paretoFront(sweepEntries()).map((e) => e.id),
      [4, 1, 3],
    );
  });

  it('sorts failed entries last in both directions', () => {
    const entries = sweepEntries();
    const columns = sweepColumns(sweepBasis(normalizeSweep(rawSweep())));
    const ids = (key: Parameters<typeof sortSweep>[2], desc: boolean) => sortSweep(entries, columns, key, desc).map((e: SweepEntry) => e.id);
    // Ties on drop fall back to size, smaller first in both directions: 3 (300 B) before 0 (400 B).
    assert.deepEqual(ids('drop', false), [3, 0, 1, 4, 2]);
    assert.deepEqual(ids('drop', true), [4, 1, 3, 0, 2]);
    assert.deepEqual(ids('sqnr', true), [0, 1, 3, 4, 2]);
    assert.deepEqual(ids('pareto', true).slice(0, 3), [4, 1, 3]);
    assert.deepEqual(ids('error', true)[0], 2);
    assert.equal(DEFAULT_SWEEP_SORT.key, 'drop');
    assert.ok(isSweepSortKey('size'));
    assert.ok(!isSweepSortKey('sqnrInt'));
  });

  it('shows the drop basis and failed cells', () => {
    const columns = sweepColumns('agreement');
    const drop = columns.find((c) => c.key === 'drop')!;
    assert.match(drop.label, /agreement/);
    const failed = sweepEntries()[2];
    assert.equal(drop.text(failed), '–');
    assert.equal(columns.find((c) => c.key === 'size')!.text(sweepEntries()[0]), '0.4');
  });

  it('picks a log drop axis only when the drops span more than a decade past 10 points', () => {
    assert.ok(wantsLogDrop([0, 0.3, 1.7, 15, 76]));
    assert.ok(!wantsLogDrop([0, 0.3, 1.7, 2]));
    assert.ok(!wantsLogDrop([12, 15, 30]));
    assert.ok(!wantsLogDrop([Infinity, 50]));
    assert.equal(symlog(0), 0);
    assert.equal(symlog(9), 1);
    assert.equal(symlog(-9), -1);
  });

  it('labels configurations like the engine and formats timings', () => {
    assert.equal(configLabel(config as never), 'tensorrt W4/ch A8 sym percentile 99.99');
    assert.equal(formatMs(937), '937 ms');
    assert.equal(formatMs(5437), '5.44 s');
  });
});

describe('webview mixed-precision data', () => {
  it('revives numbers and keeps the kept layers and written paths as text', () => {
    const r = normalizeMixedPrecision({
      schemaVersion: REPORT_SCHEMA_VERSION,
      kind: 'mixed-precision',
      model: { path: '/m.onnx', sha256: 'x' },
      config,
      maxDrop: 1,
      dropBasis: 'top1',
      steps: [
        { kept: [], drop: 'Infinity', agreement: 0, outputSqnrDb: '-Infinity' },
        { kept: ['Infinity'], drop: 0.5, agreement: 1, outputSqnrDb: 30 },
      ],
      exclude: ['Infinity'],
      met: true,
      ranking: [{ node: 'Infinity', drop: 3, outputSqnrDb: 'Infinity' }],
      written: { model: 'Infinity', settings: '/q/quantlens.json' },
    });
    assert.equal(r.steps[0].drop, Infinity);
    assert.equal(r.steps[0].outputSqnrDb, -Infinity);
    assert.deepEqual(r.steps[1].kept, ['Infinity']);
    assert.equal(r.ranking[0].node, 'Infinity');
    assert.equal(r.ranking[0].outputSqnrDb, Infinity);
    assert.equal(r.written?.model, 'Infinity');
  });

  it('refuses a result without steps', () => {
    assert.throws(() => normalizeMixedPrecision({ schemaVersion: REPORT_SCHEMA_VERSION, kind: 'mixed-precision', ranking: [] }), /no steps/);
  });
});

describe('webview sensitivity data', () => {
  const m = (top1: number | null, agreement: number, outputSqnrDb = 10) => ({ top1, agreement, outputSqnrDb });
  function report(labels: boolean, sensitivity: boolean): Report {
    const layer = (node: string, rank: number, only: number, allBut: number) => ({
      node,
      op: 'Conv',
      sensitivity: sensitivity ? { rank, onlyThis: m(only, only + 0.01), allButThis: m(allBut, allBut + 0.01) } : null,
    });
    return {
      data: { labels },
      accuracy: { float: { top1: labels ? 0.9 : null, agreement: 1 }, simulated: m(labels ? 0.5 : null, 0.6), integer: m(0.5, 0.6), dropPoints: null },
      layers: [layer('b', 2, 0.8, 0.6), layer('a', 1, 0.6, 0.55)],
    } as unknown as Report;
  }

  it('ranks by damage on top-1 points with labels and measures recovery from the whole-model drop', () => {
    const d = sensitivityData(report(true, true))!;
    assert.equal(d.basis, 'top1');
    assert.ok(Math.abs(d.fullDrop - 40) < 1e-9);
    assert.deepEqual(
      d.rows.map((r) => r.node),
      ['a', 'b'],
    );
    assert.ok(Math.abs(d.rows[0].damage - 30) < 1e-9);
    // All but "a" quantized: drop 35 of 40, so keeping "a" in float wins back 5 points.
    assert.ok(Math.abs(d.rows[0].recovery! - 5) < 1e-9);
  });

  it('falls back to agreement without labels', () => {
    const d = sensitivityData(report(false, true))!;
    assert.equal(d.basis, 'agreement');
    assert.ok(Math.abs(d.fullDrop - 40) < 1e-9);
    assert.ok(Math.abs(d.rows[0].damage - 39) < 1e-9);
  });

  it('is null when sensitivity was skipped', () => {
    assert.equal(sensitivityData(report(true, false)), null);
  });
});
