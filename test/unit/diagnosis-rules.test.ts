/**
 * Each cause rule of the diagnosis (docs/diagnosis.md) on hand-built report fragments: it fires at
 * its documented threshold and not just below it, and its evidence carries the numbers computed
 * here from the fragment's values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CauseCode, IntegerDiff } from '../../protocol/report';
import { FactIndex, type DiagnosisFacts } from '../../engine/diagnosis/facts';
import { THRESHOLDS, findCauses, type Finding } from '../../engine/diagnosis/rules';
import { u8s8Hazard } from '../../engine/analysis/platform';
import { resolveConfig } from '../../engine/quantize/presets';
import { activation, facts, layer, linspace, weight } from '../helpers/reportFragments';

function causes(f: DiagnosisFacts, node: string, hazard = false): Finding[] {
  const idx = new FactIndex(f);
  return findCauses({ layer: idx.layers.get(node)!, idx, u8s8Hazard: hazard });
}
const codes = (f: DiagnosisFacts, node: string, hazard = false): CauseCode[] => causes(f, node, hazard).map((c) => c.cause);
const finding = (f: DiagnosisFacts, node: string, code: CauseCode, hazard = false) => causes(f, node, hazard).find((c) => c.cause === code);

/** One layer reading `in` and writing `out`. */
function oneLayer(tensors: ReturnType<typeof activation>[], extra: Parameters<typeof facts>[0] extends infer P ? Partial<P> : never = {}) {
  return facts({ layers: [layer('L', { inputs: ['in'], output: 'out', iso: 10 })], tensors, ...extra });
}

function diff(
  elements: number,
  causes: { cause: string; count: number }[],
  u8s8 = { applicable: false, saturatedPairs: 0, changedOutputs: 0, elements },
): IntegerDiff {
  const stats = { mismatchRate: causes.reduce((a, c) => a + c.count, 0) / elements, maxLsb: 1, lsbHistogram: { lsb: [], counts: [] }, causes };
  return {
    referenceVsOrt: stats,
    simulatedVsOrt: stats,
    simulatedVsReference: stats,
    roundingModes: { halfEven: 0, halfAwayFromZero: 0, stochastic: 0 },
    requantization: { reference: 'single-rounding', otherVsOrt: 0 },
    u8s8,
    accumulatorOverflows: 0,
    elements,
    samples: 1,
  };
}

describe('over-clipping', () => {
  // 99,900 values evenly over [-1, 1] and k outliers at 3: a grid of +-1 clips exactly k of them.
  const values = (k: number) => [...linspace(-1, 1, 100_000 - k), ...new Array(k).fill(3)];
  const clipped = (k: number, mse = { lo: -3, hi: 3 }) =>
    oneLayer([
      activation('in', { values: linspace(-1, 1, 1000), grid: { lo: -1, hi: 1 }, thresholds: { mse: { lo: -1, hi: 1 } } }),
      activation('out', { values: values(k), grid: { lo: -1, hi: 1 }, thresholds: { mse } }),
    ]);

  it('fires at a clip rate of 0.1% when clipping dominates and the MSE range makes far less error', () => {
    const f = finding(clipped(100), 'L', 'over-clipping')!;
    assert.ok(f, 'fires');
    assert.equal(f.tensor, 'out');
    assert.equal(f.evidence.clipRate, 0.001);
    assert.equal(f.evidence.threshold, 1);
    assert.equal(f.evidence.observedMax, 3);
    // clipping: 100 values 2 beyond the edge (bin centres within 1/128 of 3) = about 400; rounding:
    // 99,900 x (2/254)^2/12 = 0.52; the +-3 grid: rounding 99,900 x (6/254)^2/12 = 4.6, no clipping.
    assert.ok((f.evidence.clipShare as number) > 0.99, `clip share ${f.evidence.clipShare}`);
    const excess = f.evidence.excessOverMse as number;
    assert.ok(excess > 80 && excess < 90, `excess ${excess} (about 400.5 / 4.65)`);
    assert.ok(codes(clipped(100), 'L').indexOf('over-clipping') === 0, 'the first cause');
  });

  it('names the MSE range as the grid the symmetric scheme would make of it, as it was measured', () => {
    // an MSE threshold pair [0.5, 3] on a symmetric grid spans [-3, 3]
    const f = finding(clipped(100, { lo: 0.5, hi: 3 }), 'L', 'over-clipping')!;
    assert.match(f.summary, /the error the MSE range \[-3\.00, 3\.00\] would make/);
  });

  it('does not fire just under 0.1%, nor when the MSE range is the chosen one', () => {
    assert.ok(!codes(clipped(99), 'L').includes('over-clipping'));
    assert.ok(!codes(clipped(100, { lo: -1, hi: 1 }), 'L').includes('over-clipping'));
  });

  it('does not fire when rounding, not clipping, makes most of the error', () => {
    // 5% of values only a hair beyond the edge: many clipped, little clipping error
    const v = [...linspace(-1, 1, 95_000), ...new Array(5000).fill(1.0001)];
    const f = oneLayer([activation('in', { values: v, grid: { lo: -1, hi: 1 }, clipRate: 0.05, thresholds: { mse: { lo: -1.0001, hi: 1.0001 } } })]);
    assert.ok(!codes(f, 'L').includes('over-clipping'));
  });
});

describe('outlier-range', () => {
  // the bulk in [-1, 1]; a few values reach 4 and set the grid
  const v = [...linspace(-1, 1, 10_000), 4, -4];
  const make = (amax: number) =>
    oneLayer([
      activation('in', { values: v, grid: { lo: -amax, hi: amax }, method: 'minmax', thresholds: { percentile: { lo: -1, hi: 1 }, mse: { lo: -4, hi: 4 } } }),
    ]);
  it(`fires when the grid spans ${THRESHOLDS.outlierRatio}x the percentile's |x|`, () => {
    const f = finding(make(4), 'L', 'outlier-range')!;
    assert.ok(f);
    assert.equal(f.evidence.ratio, 4);
    assert.equal(f.evidence.bitsSpent, 2);
    assert.equal(f.evidence.percentileThreshold, 1);
  });
  it('does not fire at 3.9x', () => assert.ok(!codes(make(3.9), 'L').includes('outlier-range')));
});

describe('too-few-bits', () => {
  const make = (levels: number) => oneLayer([activation('in', { values: linspace(-1, 1, 100), grid: { lo: -1, hi: 1, levels } })]);
  it('fires on a 4-bit activation grid (14 steps: 15 levels) and names its ideal SQNR', () => {
    const f = finding(make(14), 'L', 'too-few-bits')!;
    assert.equal(f.evidence.bits, 4);
    assert.equal(f.evidence.idealSqnrDb, 6.02 * 4 + 1.76);
  });
  it('does not fire on 8 bits (254 steps), and fires on 4-bit weights from the configuration', () => {
    assert.ok(!codes(make(254), 'L').includes('too-few-bits'));
    const cfg = resolveConfig('tensorrt', { weights: { bits: 4 } });
    const f = facts({
      layers: [layer('L', { inputs: ['in'], output: 'out' })],
      tensors: [activation('in', { values: linspace(-1, 1, 100), grid: { lo: -1, hi: 1 } }), weight('L')],
      config: cfg,
    });
    assert.equal(finding(f, 'L', 'too-few-bits')!.tensor, 'L:w');
  });
});

describe('per-tensor-weights', () => {
  const make = (big: number, perChannel = false) =>
    facts({
      layers: [layer('L')],
      tensors: [weight('L')],
      config: resolveConfig('tensorrt', { weights: { perChannel } }),
      weightChannels: {
        L: [
          { lo: -big, hi: big / 2 },
          { lo: -0.1, hi: 0.1 },
          { lo: -0.05, hi: 0.1 },
          { lo: -0.1, hi: 0.02 },
        ],
      },
    });
  it(`fires when the largest channel's |w| max is ${THRESHOLDS.channelSpread}x the median channel's`, () => {
    // channel |w| maxima 0.8, 0.1, 0.1, 0.1: median 0.1, spread 8
    const f = finding(make(0.8), 'L', 'per-tensor-weights')!;
    assert.ok(Math.abs((f.evidence.spread as number) - 8) < 1e-9);
    assert.equal(f.evidence.channels, 4);
    assert.equal(f.evidence.bitsLost, 3);
  });
  it('does not fire at 7.9x, nor with per-channel weights', () => {
    assert.ok(!codes(make(0.79), 'L').includes('per-tensor-weights'));
    assert.ok(!codes(make(0.8, true), 'L').includes('per-tensor-weights'));
  });
});

describe('wasted-sign', () => {
  const relu = linspace(0, 6, 1000);
  const make = (lo: number) => oneLayer([activation('in', { values: relu, grid: { lo, hi: 6 } })]);
  it('fires on a symmetric grid over a non-negative tensor: half the codes unused, one bit', () => {
    const f = finding(make(-6), 'L', 'wasted-sign')!;
    assert.equal(f.evidence.unusedShare, 0.5);
    assert.equal(f.evidence.bitsLost, 1);
  });
  it('fires at 25% unused and not below', () => {
    assert.equal(finding(make(-2), 'L', 'wasted-sign')!.evidence.unusedShare, 0.25);
    assert.ok(!codes(make(-1.9), 'L').includes('wasted-sign'));
    assert.ok(
      !codes(oneLayer([activation('in', { values: linspace(-0.5, 6, 1000), grid: { lo: -6, hi: 6 } })]), 'L').includes('wasted-sign'),
      'not when the tensor goes negative',
    );
  });
});

describe('integer-divergence', () => {
  const make = (isoInt: number, d: IntegerDiff | null = null) => facts({ layers: [layer('L', { iso: 30, isoInt, integerDiff: d })] });
  it(`fires when the integer kernel alone is ${THRESHOLDS.divergenceDb} dB worse than simulated, not at 0.99 dB`, () => {
    assert.equal(finding(make(29), 'L', 'integer-divergence')!.evidence.gapDb, 1);
    assert.ok(!codes(make(29.01), 'L').includes('integer-divergence'));
  });
  it('fires when 0.1% of codes differ from the reference beyond rounding; rounding causes do not count', () => {
    assert.ok(codes(make(30, diff(10_000, [{ cause: 'accumulator-overflow', count: 10 }])), 'L').includes('integer-divergence'));
    assert.ok(!codes(make(30, diff(10_000, [{ cause: 'accumulator-overflow', count: 9 }])), 'L').includes('integer-divergence'));
    assert.ok(
      !codes(
        make(
          30,
          diff(10_000, [
            { cause: 'requantization', count: 500 },
            { cause: 'rounding-mode', count: 500 },
          ]),
        ),
        'L',
      ).includes('integer-divergence'),
    );
  });
  it('says how much the reference checked: no difference on its codes is a statement about those codes only', () => {
    const d = diff(6, []);
    d.samples = 1;
    const quiet = finding(make(20, d), 'L', 'integer-divergence')!.summary;
    assert.match(quiet, /on 6 output codes of 1 sample, differs from onnxruntime only by rounding: those codes do not show the cause/);
    assert.doesNotMatch(quiet, /0\.000%/, 'no rate computed from codes that showed nothing');
    assert.doesNotMatch(quiet, /saturate/, 'u8 x s8 not applicable to this layer');
    const u8s8 = diff(6, [], { applicable: true, saturatedPairs: 0, changedOutputs: 0, elements: 6 });
    const hazard = (target: boolean) => finding(make(20, u8s8), 'L', 'integer-divergence', target)!.summary;
    assert.match(hazard(true), /on the target CPU \(x86 without VNNI\) its u8 x s8 pair sums can saturate on inputs the reference did not check/);
    assert.doesNotMatch(hazard(false), /saturate/, 'a VNNI target cannot saturate pairs');
    const loud = finding(make(30, diff(10_000, [{ cause: 'accumulator-overflow', count: 10 }])), 'L', 'integer-divergence')!.summary;
    assert.match(
      loud,
      /on 10000 output codes of \d+ samples?, 0\.1% of onnxruntime's codes differ from the bit-exact integer reference beyond rounding \(accumulator-overflow 10\)/,
    );
  });
});

describe('u8s8-saturation', () => {
  const make = (changed: number) =>
    facts({ layers: [layer('L', { integerDiff: diff(10_000, [], { applicable: true, saturatedPairs: 40, changedOutputs: changed, elements: 10_000 }) })] });
  it('fires only where the target CPU lacks VNNI, from 0.1% of output codes changed', () => {
    assert.equal(finding(make(10), 'L', 'u8s8-saturation', true)!.evidence.changedShare, 0.001);
    assert.ok(!codes(make(9), 'L', true).includes('u8s8-saturation'));
    assert.ok(!codes(make(10), 'L', false).includes('u8s8-saturation'), 'VNNI target: u8 x s8 pairs cannot saturate');
  });
  it('the hazard follows the target: x86 without VNNI, or a named no-VNNI target', () => {
    assert.equal(u8s8Hazard({ arch: 'x64', cpu: 'x', vnni: false, target: 'this' }), true);
    assert.equal(u8s8Hazard({ arch: 'x64', cpu: 'x', vnni: true, target: 'this' }), false);
    assert.equal(u8s8Hazard({ arch: 'arm64', cpu: 'x', vnni: false, target: 'this' }), false);
    assert.equal(u8s8Hazard({ arch: 'x64', cpu: 'x', vnni: true, target: 'no-vnni' }), true);
    assert.equal(u8s8Hazard({ arch: 'x64', cpu: 'x', vnni: false, target: 'vnni' }), false);
  });
});

describe('inherited', () => {
  // A -> Softmax -> B -> C: the codes first differ at B, after the Softmax the integer session fuses
  const make = (cMismatch: number, cIsoInt = 40) =>
    facts({
      layers: [
        layer('A', { mismatch: 0 }),
        layer('B', { mismatch: 0.02, integerDiff: diff(1000, []) }),
        layer('C', { mismatch: cMismatch, isoInt: cIsoInt, integerDiff: diff(1000, []) }),
      ],
      links: {
        A: { upstream: [], opsBefore: [] },
        B: { upstream: ['A'], opsBefore: [{ node: 'sm', op: 'Softmax' }] },
        C: { upstream: ['B'], opsBefore: [] },
      },
      integerKernels: { 'com.microsoft.QLinearSoftmax': 1, QLinearMatMul: 3 },
    });
  it('names the layer where the difference first appears and the fused op before it', () => {
    const f = finding(make(0.39), 'C', 'inherited')!;
    assert.equal(f.evidence.origin, 'B');
    assert.equal(f.evidence.sourceOps, 'Softmax sm');
    assert.match(f.summary, /QLinearSoftmax/);
    assert.equal(finding(make(0.39), 'B', 'inherited')!.evidence.origin, 'B', 'B itself: it enters at its input');
  });
  it(`does not fire under ${THRESHOLDS.inheritedMismatch * 100}% of codes, nor when the layer's own kernel diverges`, () => {
    assert.ok(!codes(make(0.0099), 'C').includes('inherited'));
    const own = codes(make(0.39, 38), 'C');
    assert.ok(own.includes('integer-divergence') && !own.includes('inherited'));
  });
});
