import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Diagnosis, Interval, LayerReport, MixedPrecisionResult, Report, SweepEntry } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { formatRate, formatWithInterval } from '../../protocol/format';
import { u8s8Hazard } from '../../protocol/platform';
import { changeText, culpritBadges, damageRanking, evidenceItems, firstLayerToShow, fixView, headlineDrop, victimsByNode } from '../../webview/diagnosisData';
import { flagRows, indexReport, normalizeReport, sessionOf } from '../../webview/reportData';
import { dropText, planSteps, stepDropInterval } from '../../webview/viewData';

const err = (sqnrDb: number) => ({ sqnrDb, cosine: 0.9, mse: 0.1, maxAbs: 1 });
const iv = (estimate: number, low: number, high: number, method = 'newcombe-10'): Interval => ({ estimate, low, high, level: 0.95, method });

/**
 * The demo's shape with entropy calibration: the early layers do the damage themselves (low
 * isolated SQNR, large only-this loss); /fc/Gemm has the LOWEST accumulated SQNR of all but its own
 * error is tiny and quantizing it alone loses nothing: a victim.
 */
function layer(node: string, accumulated: number, isolated: number, onlyThisTop1: number | null, onlyThisAgreement = onlyThisTop1 ?? 1): LayerReport {
  return {
    node,
    op: node.includes('Gemm') ? 'Gemm' : 'Conv',
    output: `${node}_out`,
    inputs: ['x'],
    simulated: err(accumulated),
    integer: err(accumulated),
    isolated: { simulated: err(isolated), integer: err(isolated) },
    simVsIntMismatch: 0,
    simVsIntMaxLsb: 0,
    errorHistogram: { lsb: [0], counts: [1] },
    integerDiff: null,
    integerKernel: 'QLinearConv',
    deployedKernel: null,
    sensitivity: onlyThisTop1 === null ? null : { onlyThis: { top1: onlyThisTop1, agreement: onlyThisAgreement, outputSqnrDb: 1 }, allButThis: null, rank: 1 },
  };
}

function report(drop: Interval | null, layers = demoLayers()): Report {
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    model: { path: '/m.onnx' },
    samples: 300,
    data: { labels: true },
    config: { calibration: 'entropy' },
    tensors: [],
    layers,
    sensitivityInfo: { samples: 237, method: 'downstream', reason: '' },
    accuracy: {
      float: { top1: 0.9833, agreement: 1 },
      simulated: { top1: 0.2967, agreement: 0.3, outputSqnrDb: -0.5 },
      integer: { top1: 0.2967, agreement: 0.3, outputSqnrDb: -0.5, samples: 300 },
      dropPoints: drop ? Number(drop.estimate.toFixed(2)) : null,
      dropInterval: drop,
    },
    primaryMetric: null,
    diagnosis: null,
    platform: { arch: 'x64', cpu: 'test', vnni: true, target: 'this' },
    warnings: [],
  } as unknown as Report;
}

function demoLayers(): LayerReport[] {
  return [
    // top-1 and agreement with only this layer quantized, on the 237 sensitivity samples (demo values).
    layer('/conv1/Conv', 2.4, 2.4, 0.3418, 0.346),
    layer('/conv2/Conv', 3.7, 3.7, 0.3333, 0.3376),
    layer('/pw/Conv', 3.4, 4.9, 0.5274, 0.5401),
    layer('/conv3/Conv', 0.7, 31.2, 0.9831, 1),
    layer('/fc/Gemm', -0.5, 40.8, 0.9831, 1),
  ];
}

describe('Diagnosis card data', () => {
  it('ranks layers by the damage they do themselves, never by accumulated SQNR', () => {
    const r = report(iv(68.67, 62.96, 73.59));
    const ranked = damageRanking(r);
    // Sensitivity saw 237 of 300 samples, so the loss is agreement with float on those (paired),
    // 100 x (1 - agreement): /conv3 and /fc change no prediction and are not ranked at all (the
    // float top-1 on 300 samples minus their top-1 on 237 would invent a 0.02-point loss).
    assert.deepEqual(
      ranked.map((x) => x.node),
      ['/conv2/Conv', '/conv1/Conv', '/pw/Conv'],
    );
    assert.match(ranked[0].why, /66\.24 points of agreement with float lost \(237 samples\)/);
    assert.equal(
      ranked.every((x) => x.basis === 'only-this'),
      true,
    );
    // /fc/Gemm has the lowest accumulated SQNR (-0.5 dB) but does little itself: no badge.
    const badges = culpritBadges(r);
    assert.ok(!badges.has('/fc/Gemm') && !badges.has('/conv3/Conv'));
    assert.deepEqual([...badges.keys()], ['/conv2/Conv', '/conv1/Conv', '/pw/Conv']);
    assert.equal(firstLayerToShow(r), '/conv2/Conv');
  });

  it('without sensitivity, ranks by isolated SQNR (own error), lowest first', () => {
    const layers = demoLayers().map((l) => ({ ...l, sensitivity: null }));
    const ranked = damageRanking(report(iv(68.67, 62.96, 73.59), layers));
    assert.deepEqual(
      ranked.slice(0, 3).map((x) => x.node),
      ['/conv1/Conv', '/conv2/Conv', '/pw/Conv'],
    );
    assert.equal(ranked[ranked.length - 1].node, '/fc/Gemm');
  });

  it('no badges at all when the drop is not significant (a 0.00-point drop, interval across 0)', () => {
    const r = report(iv(0, -1.2, 1.2));
    assert.equal(headlineDrop(r).significant, false);
    assert.match(headlineDrop(r).verdict, /^No significant drop: the 95% interval \[-1\.20, 1\.20\] includes 0/);
    assert.equal(culpritBadges(r).size, 0);
    const flags = flagRows(r, indexReport(r).rows, 20);
    assert.equal(flags.culprits.size, 0);
  });

  it('the headline takes the primary metric, then the labelled drop, then agreement, each with its interval', () => {
    const labelled = report(iv(68.67, 62.96, 73.59));
    const h1 = headlineDrop(labelled);
    assert.deepEqual([h1.value, h1.interval?.low, h1.significant, h1.unit], [68.67, 62.96, true, 'points']);
    assert.match(h1.verdict, /^A real loss: the 95% interval \[62\.96, 73\.59\] lies above 0\./);

    const withPrimary = {
      ...labelled,
      primaryMetric: { kind: 'user', description: 'IoU on boxes', loss: iv(0.031, 0.012, 0.05, 'bca'), lossUnit: 'metric units', n: 250 },
    } as unknown as Report;
    const h2 = headlineDrop(withPrimary);
    assert.deepEqual([h2.value, h2.unit, h2.metric, h2.samples], [0.031, 'metric units', 'IoU on boxes', 250]);

    // No labels: 100 x (1 - agreement), the agreement interval turned around: [100(1-0.354), 100(1-0.251)].
    const unlabelled = report(null);
    unlabelled.accuracy.integer.agreementInterval = iv(0.3, 0.251, 0.354, 'wilson');
    const h3 = headlineDrop(unlabelled);
    assert.ok(Math.abs(h3.value - 70) < 1e-9);
    assert.ok(Math.abs(h3.interval!.low - 64.6) < 1e-9 && Math.abs(h3.interval!.high - 74.9) < 1e-9);
  });

  it('uses the diagnosis when present: culprits in its order, victims named, the fix with before and after', () => {
    const r = report(iv(68.67, 62.96, 73.59));
    const fixConfig = { ...r.config, tensorOverrides: [{ tensor: '/conv1/Conv_output_0', calibration: 'percentile' }] };
    const diagnosis: Diagnosis = {
      drop: { value: 68.67, interval: iv(68.67, 62.96, 73.59), unit: 'points', metric: 'top-1 accuracy', verdict: 'over budget' },
      budget: 1,
      culprits: [
        {
          node: '/conv1/Conv',
          op: 'Conv',
          tensor: '/conv1/Conv_output_0',
          rank: 1,
          cause: 'over-clipping',
          summary: 'the entropy threshold 0.514 clips 26.7% of values',
          evidence: { clipRate: 0.26706, threshold: 0.51350125, method: 'entropy' },
          damage: { isolatedSqnrDb: 2.4, onlyThisSqnrDb: 0.19, onlyThisLoss: iv(64.2, 58, 70) },
          otherCauses: [],
        },
      ],
      victims: [{ node: '/fc/Gemm', accumulatedSqnrDb: -0.5, isolatedSqnrDb: 40.8, from: '/conv1/Conv' }],
      fix: {
        description: 'percentile calibration for /conv1/Conv_output_0',
        changes: [{ kind: 'calibration', tensor: '/conv1/Conv_output_0', value: 'percentile' }],
        config: fixConfig as never,
        measured: { drop: 0.33, interval: iv(0.33, -0.6, 1.5), floatLayers: 0, metric: 'top-1', samples: 300, verdict: 'within budget' },
      },
      candidates: [],
      notes: [],
    };
    const withD = { ...r, diagnosis } as Report;
    assert.deepEqual(
      damageRanking(withD).map((x) => x.node),
      ['/conv1/Conv'],
    );
    assert.equal(damageRanking(withD)[0].basis, 'diagnosis');
    assert.deepEqual([...victimsByNode(withD).keys()], ['/fc/Gemm']);
    const fv = fixView(withD)!;
    assert.deepEqual([fv.before.value, fv.after.value, fv.meetsBudget], [68.67, 0.33, true]);
    assert.deepEqual(evidenceItems(diagnosis.culprits[0]), ['clip rate 0.2671', 'threshold 0.5135', 'method entropy']);
    assert.equal(changeText(diagnosis.fix!.changes[0]), 'calibration of /conv1/Conv_output_0 → percentile');
    assert.equal(changeText({ kind: 'float', node: '/fc/Gemm', value: true }), '/fc/Gemm kept in float');
    // The victim is tagged, not flagged.
    const flags = flagRows(withD, indexReport(withD).rows, 20);
    assert.ok(flags.victims.has('/fc/Gemm') && !flags.culprits.has('/fc/Gemm'));
  });

  it('survives the JSON round trip: the diagnosis prose stays text', () => {
    const r = report(iv(68.67, 62.96, 73.59));
    const raw = JSON.parse(
      JSON.stringify({
        ...r,
        diagnosis: {
          drop: { value: 1, interval: null, unit: 'points', metric: 'Infinity', verdict: 'Infinity' },
          budget: 1,
          culprits: [],
          victims: [],
          fix: null,
          candidates: [],
          notes: ['Infinity'],
        },
      }),
    );
    const back = normalizeReport(raw);
    assert.equal(back.diagnosis!.drop.verdict, 'Infinity');
    assert.equal(back.diagnosis!.notes[0], 'Infinity');
  });
});

describe('one value per figure, with its interval', () => {
  it('writes an estimate with its interval in the same units and decimals', () => {
    assert.equal(formatWithInterval(68.6667, iv(68.6667, 62.9596, 73.5915)), '68.67 [62.96, 73.59]');
    assert.equal(formatWithInterval(0.2967, iv(0.2967, 0.2478, 0.3507, 'wilson'), 100, 1), '29.7 [24.8, 35.1]');
    assert.equal(formatWithInterval(1.5, null), '1.50');
    assert.equal(formatWithInterval(-0.001, iv(-0.001, -0.004, 0.002)), '0.00 [0.00, 0.00]');
  });

  it('the sim-vs-int rate reads the same in the table, the detail and the hover (one formatter)', () => {
    assert.equal(formatRate(0.388), '38.8%');
    assert.equal(formatRate(0.0000023916), '0.000239%');
  });
});

describe('u8s8 saturation depends on the target CPU', () => {
  it('only x86 without VNNI (this machine or named) can saturate', () => {
    const p = (arch: string, vnni: boolean, target: 'this' | 'vnni' | 'no-vnni') => ({ arch, cpu: 'c', vnni, target });
    assert.equal(u8s8Hazard(p('x64', true, 'this')), false);
    assert.equal(u8s8Hazard(p('x64', false, 'this')), true);
    assert.equal(u8s8Hazard(p('arm64', false, 'this')), false);
    assert.equal(u8s8Hazard(p('x64', true, 'no-vnni')), true);
    assert.equal(u8s8Hazard(p('x64', false, 'vnni')), false);
    assert.equal(u8s8Hazard(undefined), true);
  });

  it('flagRows passes the platform decision to the table', () => {
    const r = report(iv(68.67, 62.96, 73.59));
    assert.equal(flagRows(r, indexReport(r).rows, 20).u8s8Possible, false);
    const noVnni = { ...r, platform: { ...r.platform!, target: 'no-vnni' as const } };
    assert.equal(flagRows(noVnni, indexReport(noVnni).rows, 20).u8s8Possible, true);
  });
});

describe('standalone export: a session of every view', () => {
  it('reads a session and a bare report (older exports)', () => {
    const s = sessionOf(
      { kind: 'quantlens-session', report: { a: 1 }, sweep: { b: 2 }, mixedPrecision: null, compare: { kind: 'compare' }, sqnrWarningDb: 25 },
      20,
    );
    assert.deepEqual(s, { report: { a: 1 }, sweep: { b: 2 }, mixedPrecision: null, compare: { kind: 'compare' }, sqnrWarningDb: 25 });
    assert.deepEqual(sessionOf({ schemaVersion: 2 }, 20), {
      report: { schemaVersion: 2 },
      sweep: null,
      mixedPrecision: null,
      compare: null,
      sqnrWarningDb: 20,
    });
    assert.deepEqual(sessionOf({ kind: 'compare' }, 20), { report: null, sweep: null, mixedPrecision: null, compare: { kind: 'compare' }, sqnrWarningDb: 20 });
  });
});

describe('sweep and mixed-precision figures with their intervals', () => {
  it("reads the engine's intervals and plan steps, and says nothing it was not given", () => {
    const entry = { id: 0, drop: 1.33, loss: iv(1.33, 0.12, 3.05), accuracy: { integer: {} } } as unknown as SweepEntry;
    assert.equal(dropText(entry), '1.33 [0.12, 3.05]');
    assert.equal(dropText({ ...entry, loss: undefined } as unknown as SweepEntry), '1.33', 'no interval measured: the estimate alone');
    assert.equal(dropText({ ...entry, error: 'rejected' } as unknown as SweepEntry), '–');
    const step = (changes?: unknown[]) => ({ kept: [], drop: 0.33, agreement: 1, outputSqnrDb: 20, interval: iv(0.33, -1.1, 1.94), changes });
    assert.deepEqual(stepDropInterval(step() as never), iv(0.33, -1.1, 1.94));
    const layersOnly = { steps: [step(), step([{ kind: 'float', node: 'a', value: true }])] } as unknown as MixedPrecisionResult;
    const plan = { steps: [step(), step([{ kind: 'calibration', tensor: 't', value: 'mse' }])] } as unknown as MixedPrecisionResult;
    assert.equal(planSteps(layersOnly), false);
    assert.equal(planSteps(plan), true);
  });
});

describe('a model judged by output SQNR against a floor', () => {
  const floorReport = (sqnr: Interval, fixSqnr: number): Report => {
    const r = report(null);
    return {
      ...r,
      primaryMetric: { kind: 'sqnr', loss: null, value: sqnr, n: 40, lossUnit: 'dB' },
      diagnosis: {
        drop: { value: sqnr.estimate, interval: sqnr, unit: 'dB', metric: 'per-sample SQNR (no loss: judged against a floor)', verdict: 'v' },
        budget: 30,
        culprits: [],
        victims: [],
        candidates: [],
        notes: [],
        fix: { description: 'd', changes: [], config: r.config, measured: { drop: fixSqnr, interval: iv(fixSqnr, fixSqnr - 1, fixSqnr + 1), samples: 40 } },
      },
    } as unknown as Report;
  };
  it('a fix above the floor meets it, one below does not (higher is better)', () => {
    assert.equal(fixView(floorReport(iv(25, 24, 26, 'student-t'), 35))!.meetsBudget, true);
    assert.equal(fixView(floorReport(iv(25, 24, 26, 'student-t'), 28))!.meetsBudget, false);
  });
  it('the headline is a floor figure: significant while its interval reaches below the floor', () => {
    const below = headlineDrop(floorReport(iv(25, 24, 26, 'student-t'), 35));
    assert.equal(below.floor, true);
    assert.equal(below.significant, true);
    assert.equal(headlineDrop(floorReport(iv(40, 39, 41, 'student-t'), 35)).significant, false);
  });
});
