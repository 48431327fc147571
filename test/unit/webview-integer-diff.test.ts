import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DiffStats, IntegerDiff, LayerReport } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import {
  causeInfo,
  causesInUse,
  COMPARISONS,
  diffSeverity,
  formatRate,
  hazardText,
  integerDiffOf,
  integerHazard,
  LSB_BINS,
  lsbBinLabel,
  lsbCounts,
  mismatchCount,
  roundingOptions,
  sortedCauses,
} from '../../webview/integerDiff';
import { columnFor, COLUMNS, sortRows } from '../../webview/layerColumns';
import { indexReport, normalizeReport } from '../../webview/reportData';

const stats = (over: Partial<DiffStats> = {}): DiffStats => ({
  mismatchRate: 0,
  maxLsb: 0,
  lsbHistogram: { lsb: [0], counts: [100] },
  causes: [],
  ...over,
});

function diff(over: Partial<IntegerDiff> = {}): IntegerDiff {
  return {
    referenceVsOrt: stats(),
    simulatedVsOrt: stats(),
    simulatedVsReference: stats(),
    roundingModes: { halfEven: 0.01, halfAwayFromZero: 0.002, stochastic: 0.2 },
    requantization: { reference: 'single-rounding', otherVsOrt: 0.003 },
    u8s8: { applicable: true, saturatedPairs: 0, changedOutputs: 0, elements: 100 },
    samples: 1,
    accumulatorOverflows: 0,
    elements: 100,
    ...over,
  };
}

const metrics = { sqnrDb: 30, cosine: 0.99, mse: 0.01, maxAbs: 0.1 };

/** A layer as the JSON has it; `integerDiff: 'absent'` leaves the field out (a report from before it existed). */
function rawLayer(node: string, integerDiff: IntegerDiff | null | 'absent'): Record<string, unknown> {
  const layer: Record<string, unknown> = {
    node,
    op: 'Conv',
    output: `${node}_out`,
    inputs: [],
    simulated: metrics,
    integer: metrics,
    isolated: { simulated: metrics, integer: metrics },
    simVsIntMismatch: 0,
    simVsIntMaxLsb: 0,
    errorHistogram: { lsb: [0], counts: [1] },
    integerKernel: 'QLinearConv',
    sensitivity: null,
  };
  if (integerDiff !== 'absent') layer.integerDiff = integerDiff;
  return layer;
}

const KNOWN_CAUSES = [
  'accumulator-overflow',
  'requantization',
  'rounding-mode',
  'u8s8-saturation',
  'zero-point',
  'float-accumulation',
  'saturation',
  'approximation',
  'unexplained',
];

describe('webview integer diff', () => {
  it('reads a missing integerDiff (older reports) like null', () => {
    assert.equal(integerDiffOf(rawLayer('a', 'absent') as unknown as LayerReport), null);
    assert.equal(integerDiffOf(rawLayer('a', null) as unknown as LayerReport), null);
    assert.ok(integerDiffOf(rawLayer('a', diff()) as unknown as LayerReport));
  });

  it('explains every documented cause in one plain line', () => {
    for (const cause of KNOWN_CAUSES) {
      const info = causeInfo(cause);
      assert.ok(info.label.length > 0 && !info.label.includes('-'), cause);
      assert.ok(info.explanation.length > 20 && !info.explanation.includes('\n'), cause);
      if (cause !== 'unexplained') assert.notEqual(info.kind, 'unknown', cause);
    }
    assert.match(causeInfo('requantization').explanation, /float32 scale.*fixed-point multiplier.*single rounding.*ties/);
    assert.match(causeInfo('u8s8-saturation').explanation, /int16.*without VNNI/);
    assert.equal(causeInfo('accumulator-overflow').kind, 'hazard');
    assert.equal(causeInfo('rounding-mode').kind, 'arithmetic');
  });

  it('reads unknown causes sensibly and does not trip over Object.prototype names', () => {
    assert.equal(causeInfo('new-kernel-quirk').label, 'new kernel quirk');
    assert.equal(causeInfo('new-kernel-quirk').kind, 'unknown');
    assert.equal(causeInfo('toString').label, 'toString');
    assert.equal(causeInfo('unexplained').kind, 'unknown');
  });

  it('orders causes by count and lists each once for the glossary', () => {
    const s = stats({
      causes: [
        { cause: 'zero-point', count: 2 },
        { cause: 'requantization', count: 9 },
        { cause: 'saturation', count: 0 },
        { cause: 'approximation', count: 2 },
      ],
    });
    assert.deepEqual(
      sortedCauses(s).map((c) => c.cause),
      ['requantization', 'approximation', 'zero-point'],
    );
    const d = diff({
      simulatedVsOrt: stats({ causes: [{ cause: 'rounding-mode', count: 3 }] }),
      referenceVsOrt: stats({
        causes: [
          { cause: 'requantization', count: 5 },
          { cause: 'rounding-mode', count: 1 },
        ],
      }),
      simulatedVsReference: stats({ causes: [{ cause: 'float-accumulation', count: 1 }] }),
    });
    assert.deepEqual(causesInUse(d), ['rounding-mode', 'requantization', 'float-accumulation']);
    assert.deepEqual(
      COMPARISONS.map((c) => c.key),
      ['simulatedVsOrt', 'referenceVsOrt', 'simulatedVsReference'],
    );
  });

  it('grades a comparison: identical, off by one, or worse', () => {
    assert.equal(diffSeverity(stats()), 'good');
    assert.equal(diffSeverity(stats({ mismatchRate: 0.01, maxLsb: 1, causes: [{ cause: 'rounding-mode', count: 1 }] })), 'warn');
    assert.equal(diffSeverity(stats({ mismatchRate: 0.01, maxLsb: 3 })), 'bad');
    assert.equal(diffSeverity(stats({ mismatchRate: 0.01, maxLsb: 1, causes: [{ cause: 'u8s8-saturation', count: 1 }] })), 'bad');
  });

  it('bins LSB differences on -8..8, folding the tails and filling in the exact bin when absent', () => {
    assert.equal(LSB_BINS.length, 17);
    assert.deepEqual([lsbBinLabel(-8), lsbBinLabel(-1), lsbBinLabel(0), lsbBinLabel(2), lsbBinLabel(8)], ['≤−8', '−1', 'exact', '+2', '≥8']);
    const withZero = lsbCounts(stats({ lsbHistogram: { lsb: [-12, -8, -1, 0, 1, 9], counts: [1, 2, 3, 90, 3, 1] } }), 100);
    assert.equal(withZero[0], 3);
    assert.equal(withZero[7], 3);
    assert.equal(withZero[8], 90);
    assert.equal(withZero[16], 1);
    assert.equal(
      withZero.reduce((a, b) => a + b, 0),
      100,
    );
    // Only mismatches recorded: the rest of the elements are exact.
    const noZero = lsbCounts(stats({ lsbHistogram: { lsb: [-1, 1], counts: [4, 6] } }), 1000);
    assert.equal(noZero[8], 990);
    // A recorded 0 bin is taken as is, even when it is 0.
    assert.equal(lsbCounts(stats({ lsbHistogram: { lsb: [0, 1], counts: [0, 5] } }), 5)[8], 0);
    assert.equal(mismatchCount(stats({ mismatchRate: 0.0125 }), 1000), 13);
  });

  it('formats mismatch rates with about three significant digits', () => {
    assert.equal(formatRate(0), '0%');
    assert.equal(formatRate(0.24), '24%');
    assert.equal(formatRate(0.0033), '0.33%');
    assert.equal(formatRate(12 / 3_763_200), '0.000319%');
    assert.equal(formatRate(0.123456), '12.3%');
    assert.equal(formatRate(1), '100%');
    assert.equal(formatRate(0.99999), '>99.9%');
    assert.equal(formatRate(undefined), 'n/a');
  });

  it('marks the rounding mode(s) closest to onnxruntime', () => {
    assert.deepEqual(
      roundingOptions(diff()).map((o) => [o.key, o.best]),
      [
        ['halfEven', false],
        ['halfAwayFromZero', true],
        ['stochastic', false],
      ],
    );
    const tied = roundingOptions(diff({ roundingModes: { halfEven: 0.001, halfAwayFromZero: 0.001, stochastic: 0.2 } }));
    assert.deepEqual(
      tied.filter((o) => o.best).map((o) => o.key),
      ['halfEven', 'halfAwayFromZero'],
    );
  });

  it('flags layers whose integer execution overflows or changes under x86 u8s8', () => {
    const layer = (d: IntegerDiff | null) => rawLayer('a', d) as unknown as LayerReport;
    assert.equal(integerHazard(layer(null), true), null);
    assert.equal(integerHazard(layer(diff({ u8s8: { applicable: true, saturatedPairs: 40, changedOutputs: 0, elements: 100 } })), true), null);
    // Not applicable: whatever the counts say, x86 u8s8 does not run this layer.
    assert.equal(integerHazard(layer(diff({ u8s8: { applicable: false, saturatedPairs: 4, changedOutputs: 3, elements: 100 } })), true), null);
    const changing = layer(diff({ u8s8: { applicable: true, saturatedPairs: 4, changedOutputs: 3, elements: 100 } }));
    const u8s8 = integerHazard(changing, true);
    assert.deepEqual(u8s8, { accumulatorOverflows: 0, u8s8ChangedOutputs: 3 });
    assert.match(hazardText(u8s8!), /^3 output codes would change on x86 without VNNI/);
    // A target CPU with VNNI cannot saturate: the same layer carries no u8s8 flag there.
    assert.equal(integerHazard(changing, false), null);
    const both = integerHazard(layer(diff({ accumulatorOverflows: 1, u8s8: { applicable: true, saturatedPairs: 1, changedOutputs: 1, elements: 100 } })), true);
    assert.equal(hazardText(both!), '1 int32 accumulator overflow; 1 output code would change on x86 without VNNI (u8s8 saturation)');
    // Overflows do not depend on the CPU.
    assert.deepEqual(
      integerHazard(layer(diff({ accumulatorOverflows: 2, u8s8: { applicable: true, saturatedPairs: 1, changedOutputs: 1, elements: 100 } })), false),
      { accumulatorOverflows: 2, u8s8ChangedOutputs: 0 },
    );
  });

  it('adds a Ref≠ORT column beside Sim≠int that sorts missing diffs last both ways', () => {
    const keys = COLUMNS.map((c) => c.key);
    assert.equal(keys.indexOf('refOrt') + 1, keys.indexOf('mismatch'));
    const rate = (r: number) => diff({ referenceVsOrt: stats({ mismatchRate: r, maxLsb: 1 }) });
    const report = normalizeReport({
      schemaVersion: REPORT_SCHEMA_VERSION,
      tensors: [],
      layers: [rawLayer('old', 'absent'), rawLayer('a', rate(0.02)), rawLayer('none', null), rawLayer('b', rate(0)), rawLayer('c', rate(0.5))],
    });
    const rows = indexReport(report).rows;
    const column = columnFor('refOrt')!;
    assert.ok(column.firstDescending);
    assert.equal(column.text(rows[0]), '–');
    assert.equal(column.text(rows[2]), '–');
    // The same formatter as the comparison cards (formatRate), so one rate reads the same in both.
    assert.equal(column.text(rows[1]), '2%');
    assert.deepEqual(
      sortRows(rows, 'refOrt', true).map((r) => r.layer.node),
      ['c', 'a', 'b', 'old', 'none'],
    );
    assert.deepEqual(
      sortRows(rows, 'refOrt', false).map((r) => r.layer.node),
      ['b', 'a', 'c', 'old', 'none'],
    );
  });

  it('keeps cause names as text when reviving the report', () => {
    const d = diff({ referenceVsOrt: stats({ maxLsb: 'Infinity' as unknown as number, causes: [{ cause: 'Infinity', count: 1 }] }) });
    const report = normalizeReport({ schemaVersion: REPORT_SCHEMA_VERSION, tensors: [], layers: [rawLayer('a', d)] });
    const s = report.layers[0].integerDiff!.referenceVsOrt;
    assert.equal(s.maxLsb, Infinity);
    assert.equal(s.causes[0].cause, 'Infinity');
  });
});
