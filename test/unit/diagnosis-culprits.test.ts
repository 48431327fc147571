/**
 * Culprits, victims and the "no significant drop" rule on hand-built report fragments; fix
 * candidates and how they change a configuration.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Interval, PrimaryMetric } from '../../protocol/metrics';
import type { LayerReport } from '../../protocol/report';
import { applyChanges, changeFootprint, describeChanges, mergeChanges, optionsFor } from '../../engine/diagnosis/candidates';
import { culpritReason, rankByOwnDamage } from '../../engine/diagnosis/culprits';
import { diagnoseFacts } from '../../engine/diagnosis/diagnose';
import { resolveConfig } from '../../engine/quantize/presets';
import { activation, facts, layer, linspace } from '../helpers/reportFragments';

const iv = (estimate: number, low: number, high: number): Interval => ({ estimate, low, high, level: 0.95, method: 'test' });
const only = (loss: Interval, outputSqnrDb: number): LayerReport['sensitivity'] => ({
  onlyThis: { top1: null, agreement: 1, outputSqnrDb },
  onlyThisPrimary: { loss, sqnrDb: iv(outputSqnrDb, outputSqnrDb - 1, outputSqnrDb + 1) },
  allButThis: null,
  rank: 0,
});
const top1 = (loss: Interval): PrimaryMetric => ({
  kind: 'top1',
  output: 'logits',
  description: "top-1 accuracy on output 'logits'",
  value: iv(0.3, 0.25, 0.35),
  floatValue: 0.98,
  loss,
  lossUnit: 'points',
  lossSd: 40,
  n: 300,
  rationale: 'test',
  warnings: [],
});

/** The demo's shape: c1 -> c2 -> c3 -> fc, the first two over-clipped, the last two clean. */
function demoLike(drop: Interval) {
  const over = (name: string) => activation(name, { values: linspace(-7, 7, 10_000), grid: { lo: -0.5, hi: 0.5 }, thresholds: { mse: { lo: -6, hi: 6 } } });
  return facts({
    layers: [
      layer('c1', { inputs: ['x'], output: 't1', acc: 2.4, iso: 2.4, sensitivity: only(iv(64, 57.5, 69.9), 0.2) }),
      layer('c2', { inputs: ['t1'], output: 't2', acc: 3.7, iso: 3.7, sensitivity: only(iv(65, 58.4, 70.7), 0.0) }),
      layer('c3', { inputs: ['t2'], output: 't3', acc: 0.7, iso: 31.2, sensitivity: only(iv(0, -1.6, 1.6), 35) }),
      layer('fc', { inputs: ['t3'], output: 'logits', op: 'Gemm', acc: -0.5, iso: 40.8, sensitivity: only(iv(0, -1.6, 1.6), 40) }),
    ],
    tensors: [over('t1'), over('t2')],
    links: {
      c1: { upstream: [], opsBefore: [] },
      c2: { upstream: ['c1'], opsBefore: [] },
      c3: { upstream: ['c2'], opsBefore: [] },
      fc: { upstream: ['c3'], opsBefore: [] },
    },
    modelSqnrDb: -0.5,
    primaryMetric: top1(drop),
  });
}

describe('culprits and victims', () => {
  /** Each layer's tier, in rank order. */
  const tiers = (layers: LayerReport[]) => rankByOwnDamage(layers, -0.5).map((x) => [x.layer.node, x.tier]);
  /** Sensitivity stopped `node` after its pilot, its SQNR 3.5-6.5 dB above `leader`'s on the same samples. */
  const pairedAbove = (layers: LayerReport[], node: string, leader: string) => {
    const l = layers.find((x) => x.node === node)!;
    l.sensitivity = { ...l.sensitivity!, aboveLeader: { leader, diffDb: iv(5, 3.5, 6.5) } };
  };

  it('ranks by own damage: overlapping only-this intervals form a tier ordered by isolated SQNR', () => {
    // c2 has the larger only-this loss, but its interval overlaps c1's: c1's isolated 2.4 dB comes first
    assert.deepEqual(tiers(demoLike(iv(68.7, 63, 73.6)).report.layers), [
      ['c1', 1],
      ['c2', 1],
      ['c3', 2],
      ['fc', 2],
    ]);
  });

  it("states a layer's share of the output noise, and a multiple when alone it makes more than all layers together", () => {
    const reason = (onlyDb: number, modelDb: number) => {
      const l = layer('L', { iso: 20 });
      l.sensitivity = only(iv(1, 0.5, 1.5), onlyDb);
      l.sensitivity!.onlyThisPrimary!.loss = null;
      return culpritReason(rankByOwnDamage([l], modelDb)[0]);
    };
    // 10^((20 - 23) / 10) = 0.501: half the noise of the whole model
    assert.equal(reason(23, 20), "alone it makes 50% of the model's output noise");
    // PP-OCRv4's detector: the model at 2.15 dB, one layer alone at -10.25 dB: 10^(12.4 / 10) = 17.4x
    assert.equal(reason(-10.25, 2.15), 'alone it makes 17x the output noise of the whole quantized model');
  });

  it('a layer the samples order below the tier leader (paired, sensitivity stopped it) leaves its tier, on an SQNR-judged model', () => {
    const f = demoLike(iv(68.7, 63, 73.6));
    // judged by SQNR: no loss, the key is the negated only-this SQNR (c2 0.0 dB, c1 0.2 dB)
    for (const l of f.report.layers) l.sensitivity = { ...l.sensitivity!, onlyThisPrimary: { ...l.sensitivity!.onlyThisPrimary!, loss: null } };
    // c1's interval overlaps c2's, but on the same samples its output SQNR was above c2's
    pairedAbove(f.report.layers, 'c1', 'c2');
    assert.deepEqual(tiers(f.report.layers), [
      ['c2', 1],
      ['c1', 2],
      ['c3', 3],
      ['fc', 4],
    ]);
    // ordered below another layer than the tier's leader: no effect
    pairedAbove(f.report.layers, 'c1', 'c3');
    assert.deepEqual(tiers(f.report.layers), [
      ['c1', 1],
      ['c2', 1],
      ['c3', 2],
      ['fc', 3],
    ]);
    // judged by a loss (top-1): the paired SQNR says nothing about its order, the tiers stand
    const g = demoLike(iv(68.7, 63, 73.6));
    pairedAbove(g.report.layers, 'c1', 'c2');
    assert.deepEqual(tiers(g.report.layers), [
      ['c1', 1],
      ['c2', 1],
      ['c3', 2],
      ['fc', 2],
    ]);
  });

  it('names the over-clipping culprits and the victims downstream, never the layer with the worst accumulated error', () => {
    const d = diagnoseFacts(demoLike(iv(68.7, 63, 73.6)), { budget: 1, u8s8Hazard: false }).diagnosis;
    assert.deepEqual(
      d.culprits.map((c) => [c.node, c.cause, c.rank]),
      [
        ['c1', 'over-clipping', 1],
        ['c2', 'over-clipping', 2],
      ],
    );
    assert.equal(d.culprits[0].tensor, 't1');
    assert.deepEqual(d.culprits[0].damage.onlyThisLoss, iv(64, 57.5, 69.9));
    assert.deepEqual(
      d.victims.map((v) => [v.node, v.from]),
      [
        ['fc', 'c1'],
        ['c3', 'c1'],
      ],
    );
    assert.deepEqual(
      d.ranking!.map((x) => [x.node, x.culprit]),
      [
        ['c1', true],
        ['c2', true],
        ['c3', false],
        ['fc', false],
      ],
    );
    assert.match(d.drop.verdict, /^over budget/);
  });

  it('no culprit and no victim when the drop interval contains 0, or lies within the budget', () => {
    for (const drop of [iv(1.33, -0.29, 3.43), iv(0.5, 0.1, 0.9)]) {
      const d = diagnoseFacts(demoLike(drop), { budget: 1, u8s8Hazard: false });
      assert.equal(d.significant, false);
      assert.deepEqual(d.diagnosis.culprits, []);
      assert.deepEqual(d.diagnosis.victims, []);
      assert.match(d.diagnosis.notes[0], /^no significant drop/);
      assert.ok(d.diagnosis.ranking!.every((x) => !x.culprit));
    }
    // the same drop is significant against a smaller budget when its interval excludes 0
    assert.equal(diagnoseFacts(demoLike(iv(0.5, 0.1, 0.9)), { budget: 0.2, u8s8Hazard: false }).significant, true);
  });
});

describe('fix candidates', () => {
  const thresholds = {
    entropy: { lo: 0, hi: 0.5 },
    minmax: { lo: 0, hi: 6 },
    ema: { lo: 0, hi: 5.9 },
    percentile: { lo: 0, hi: 5.2 },
    mse: { lo: 0, hi: 5.15 },
  };
  it('one calibration option per method whose range moves by 10% or more, near-identical methods merged, float last', () => {
    const o = optionsFor({
      node: 'c1',
      tensors: [{ name: 't1', method: 'entropy', thresholds }],
      hasWeight: true,
      weights: { bits: 8, perChannel: true },
      activationBits: 8,
      causes: ['over-clipping'],
    });
    const cal = o.filter((x) => x.changes[0].kind === 'calibration').map((x) => x.changes[0].value);
    // minmax and ema agree within 2% of the span (0.1 / 6), as do percentile and mse (0.05 / 5.2)
    assert.deepEqual(cal, ['minmax', 'percentile']);
    assert.deepEqual(
      o.map((x) => x.changes[0].kind),
      ['calibration', 'calibration', 'activation-bits', 'float'],
    );
  });

  it('per-channel weights for per-tensor weights; 8 then 16 bits for the grid that has 4', () => {
    const kinds = (o: ReturnType<typeof optionsFor>) => o.map((x) => `${x.changes[0].kind}:${x.changes[0].value}`);
    const w4 = optionsFor({
      node: 'L',
      tensors: [],
      hasWeight: true,
      weights: { bits: 4, perChannel: false },
      activationBits: 8,
      causes: ['too-few-bits', 'per-tensor-weights'],
    });
    assert.deepEqual(kinds(w4), ['per-channel:true', 'weight-bits:8', 'weight-bits:16', 'float:true']);
    const a4 = optionsFor({ node: 'L', tensors: [], hasWeight: true, weights: { bits: 8, perChannel: true }, activationBits: 4, causes: ['too-few-bits'] });
    assert.deepEqual(kinds(a4), ['activation-bits:8', 'activation-bits:16', 'float:true']);
  });

  it('changes become overrides; a later change to the same tensor replaces the earlier one', () => {
    const base = resolveConfig('tensorrt', { calibration: 'entropy' });
    const a = [{ kind: 'calibration' as const, node: 'c1', tensor: 't1', value: 'minmax' }];
    const b = [
      { kind: 'calibration' as const, node: 'c2', tensor: 't1', value: 'mse' },
      { kind: 'float' as const, node: 'fc', value: true },
      { kind: 'activation-bits' as const, node: 'c2', value: 16 },
    ];
    const merged = mergeChanges(a, b);
    assert.equal(merged.length, 3);
    const c = applyChanges(base, merged);
    assert.deepEqual(c.tensorOverrides, [{ tensor: 't1', calibration: 'mse' }]);
    assert.deepEqual(c.layerOverrides, [{ node: 'c2', activationBits: 16 }]);
    assert.deepEqual(c.exclude, ['fc']);
    assert.equal(base.tensorOverrides, undefined, 'the base configuration is not modified');
    assert.equal(describeChanges(merged), 'mse calibration for t1; fc in float; 16-bit activations for c2');
    // t1 is c1's output and c2's input: both layers are touched, plus fc and c2 by their own changes
    assert.deepEqual(
      changeFootprint(merged, [
        { node: 'c1', inputs: ['x'], output: 't1' },
        { node: 'c2', inputs: ['t1'], output: 't2' },
        { node: 'fc', inputs: ['t2'], output: 'y' },
      ]),
      { layers: 3, float: 1 },
    );
  });
});
