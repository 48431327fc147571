/**
 * The gate's three outcomes (pass, fail, cannot tell) and their exit codes, from verdicts computed
 * by the statistics on hand-made tables; budgets and SQNR floors for every kind of primary metric.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Interval, PrimaryMetric } from '../../protocol/metrics';
import type { GateResult } from '../../protocol/report';
import { gateOutcome } from '../../engine/analysis/gate';
import { pairedAccuracyFromTable } from '../../engine/analysis/statistics';
import { budgetFor, defaultBudget, floorVerdict, primaryVerdict } from '../../engine/analysis/verdict';
import { resolveConfig } from '../../engine/quantize/presets';
import type { Measurement } from '../../engine/analysis/paired';
import { meetsEstimate } from '../../engine/diagnosis/search';

const iv = (estimate: number, low: number, high: number): Interval => ({ estimate, low, high, level: 0.95, method: 'test' });

/** A top-1 primary metric from a paired table (both right, float only, quantized only, neither). */
function top1(
  both: number,
  floatOnly: number,
  quantOnly: number,
  neither: number,
): { pm: PrimaryMetric; table: { both: number; referenceOnly: number; candidateOnly: number; neither: number } } {
  const table = { both, referenceOnly: floatOnly, candidateOnly: quantOnly, neither };
  const pa = pairedAccuracyFromTable(table);
  return {
    table,
    pm: {
      kind: 'top1',
      output: 'y',
      description: "top-1 accuracy on output 'y'",
      value: pa.candidate,
      floatValue: pa.reference.estimate,
      loss: pa.dropPoints,
      lossUnit: 'points',
      lossSd: pa.sdPoints,
      n: pa.n,
      rationale: '',
      warnings: [],
    },
  };
}

function gate(pm: PrimaryMetric, budget: number, table: Parameters<typeof primaryVerdict>[2], allowUncertain = false): GateResult {
  return {
    schemaVersion: 2,
    kind: 'gate',
    model: { path: 'm.onnx', sha256: '0' },
    config: resolveConfig('tensorrt'),
    samples: pm.n,
    budget,
    budgetWhy: '',
    primaryMetric: pm,
    outputs: [],
    verdict: primaryVerdict(pm, budget, table),
    allowUncertain,
  };
}

describe('gate outcomes', () => {
  it('fails (exit 1, stderr) when the whole interval is over budget', () => {
    // 206 of 300 samples lost: the demo with entropy calibration
    const { pm, table } = top1(89, 206, 0, 5);
    const o = gateOutcome(gate(pm, 1, table));
    assert.equal(o.exitCode, 1);
    assert.equal(o.stream, 'stderr');
    assert.match(o.line, /^quantlens gate: FAIL: .* over budget: drop 68\.67 points/);
    // an option that does not apply to the metric is named in the line, never dropped silently
    const ignored = gateOutcome({ ...gate(pm, 1, table), budgetIgnored: '--min-sqnr does not apply: ...' });
    assert.match(ignored.line, /^quantlens gate: FAIL: .* samples \(--min-sqnr does not apply: \.\.\.\): over budget/);
    // an already-quantized file: no calibration method of its own, and no fix to ask analyze for
    const deployed = gateOutcome({ ...gate(pm, 1, table), deployed: 'qdq' });
    assert.match(
      deployed.line,
      /^quantlens gate: FAIL: the QDQ file's own grids on top-1 accuracy .*; run quantlens analyze on it for the layers that lose the most, and on its float model for a measured fix$/,
    );
    assert.doesNotMatch(deployed.line, /entropy|minmax/);
  });

  it('passes (exit 0, stdout) when the whole interval is within the budget', () => {
    // 3000 samples, 3 lost and 1 won: drop 0.07 points, interval well under 1
    const { pm, table } = top1(2900, 3, 1, 96);
    assert.ok(pm.loss!.high < 1);
    const o = gateOutcome(gate(pm, 1, table));
    assert.deepEqual([o.exitCode, o.stream], [0, 'stdout']);
    assert.match(o.line, /^quantlens gate: PASS: /);
  });

  it('cannot tell: exit 1 with the samples needed, unless uncertainty is allowed', () => {
    // 300 samples, none changed: 0 points, but the interval -1.38..1.38 straddles a 1-point budget
    const { pm, table } = top1(295, 0, 0, 5);
    assert.ok(pm.loss!.low < -1.3 && pm.loss!.high > 1.3);
    const r = gate(pm, 1, table);
    assert.equal(r.verdict.kind, 'cannot-tell');
    const o = gateOutcome(r);
    assert.deepEqual([o.exitCode, o.stream], [1, 'stderr']);
    assert.match(o.line, new RegExp(`^quantlens gate: cannot tell: 300 samples are too few, about ${r.verdict.samplesNeeded} would decide; `));
    assert.ok(r.verdict.samplesNeeded! > 300);
    assert.equal(o.line.split('\n').length, 1);
    const allowed = gateOutcome(gate(pm, 1, table, true));
    assert.deepEqual([allowed.exitCode, allowed.stream], [0, 'stdout']);
    assert.match(allowed.line, /PASS \(uncertain, allowed\): cannot tell/);
  });
});

describe('budgets and floors', () => {
  const sqnr: PrimaryMetric = {
    kind: 'sqnr',
    output: 'map',
    description: "per-sample SQNR of output 'map'",
    value: iv(25, 24, 26),
    floatValue: null,
    loss: null,
    lossUnit: 'dB',
    lossSd: null,
    n: 40,
    rationale: '',
    warnings: [],
  };
  it('an SQNR-judged model is held to a floor: above, below, straddling', () => {
    assert.equal(floorVerdict(iv(25, 24, 26), 20, 40).kind, 'within-budget');
    assert.equal(floorVerdict(iv(25, 24, 26), 30, 40).kind, 'over-budget');
    const v = floorVerdict(iv(25, 24, 26), 25.5, 40);
    assert.equal(v.kind, 'cannot-tell');
    // half-width 1 dB at 40 samples, 0.5 dB from the floor: (1/0.5)^2 x 40 = 160 samples
    assert.equal(v.samplesNeeded, 160);
    assert.equal(primaryVerdict(sqnr, 20).kind, 'within-budget');
  });
  it('a figure equal to the budget meets it, though binary floating point computes it a hair over', () => {
    // 193 of 200 right in float, 192 quantized: 193/200 - 192/200 = 0.0050000000000000044
    assert.ok(193 / 200 - 192 / 200 > 0.005);
    const t = top1(192, 1, 0, 7);
    assert.equal(t.pm.loss!.estimate, 0.5, 'the drop is computed from the counts');
    assert.ok(meetsEstimate({ primary: t.pm } as Measurement, { kind: 'cannot-tell', text: '', samplesNeeded: null }, 0.5));
    assert.ok(!meetsEstimate({ primary: t.pm } as Measurement, { kind: 'cannot-tell', text: '', samplesNeeded: null }, 0.49));
    // an interval whose upper end is the budget up to rounding is within it; a real excess is not
    assert.equal(primaryVerdict({ ...t.pm, loss: iv(0.2, -0.1, 0.1 + 0.2 + 0.2) }, 0.5).kind, 'within-noise');
    assert.equal(primaryVerdict({ ...t.pm, loss: iv(0.2, -0.1, 0.5001) }, 0.5).kind, 'cannot-tell');
    assert.ok(0.7 - 0.4 < 0.3);
    assert.equal(floorVerdict(iv(25, 0.7 - 0.4, 26), 0.3, 40).kind, 'within-budget');
  });

  it('default budgets: 1 point for top-1, 30 dB for SQNR, 1% of the float score for a user metric', () => {
    assert.equal(defaultBudget(top1(295, 0, 0, 5).pm).budget, 1);
    assert.equal(defaultBudget(sqnr).budget, 30);
    const user: PrimaryMetric = { ...sqnr, kind: 'user', value: iv(0.8, 0.7, 0.9), floatValue: 0.95, loss: iv(0.15, 0.1, 0.2), lossUnit: 'metric units' };
    assert.ok(Math.abs(defaultBudget(user).budget - 0.0095) < 1e-12);
    assert.equal(budgetFor(user, { maxDrop: 0.05 }).budget, 0.05);
    assert.equal(budgetFor(sqnr, { maxDrop: 0.05, minSqnrDb: 12 }).budget, 12, 'a floor for SQNR, not the loss budget');
    // the option for the other kind of metric is said to be ignored, with the one that applies
    const onSqnr = budgetFor(sqnr, { maxDrop: 1 });
    assert.equal(onSqnr.budget, 30);
    assert.match(onSqnr.why, /^the default SQNR floor: 30 dB \(--max-drop does not apply: the model is judged by .*; set a floor with --min-sqnr\)$/);
    const onTop1 = budgetFor(top1(295, 0, 0, 5).pm, { minSqnrDb: 20 });
    assert.equal(onTop1.budget, 1);
    assert.match(onTop1.why, /\(--min-sqnr does not apply: .*; set the budget with --max-drop\)$/);
    assert.equal(budgetFor(sqnr, {}).why, 'the default SQNR floor: 30 dB');
  });
});
