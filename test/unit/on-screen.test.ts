import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MixedPrecisionResult, Report, SweepReport } from '../../protocol/report';
import { resolveConfig } from '../../engine/quantize/presets';
import { configFromSettings, describeConfig, SessionState, settingsFromConfig, withTensorRange } from '../../extension/onScreen';

const entropy = resolveConfig('tensorrt', { calibration: 'entropy' });
const mse4 = resolveConfig('tensorrt', { calibration: 'mse', weights: { bits: 4 } });
const report = { model: { path: '/w/model.onnx' }, config: entropy } as unknown as Report;
const sweep = {
  model: { path: '/w/model.onnx' },
  configs: [
    { id: 0, label: 'W8/ch A8 sym entropy', config: entropy },
    { id: 1, label: 'W4/ch A8 sym mse', config: mse4 },
    { id: 2, label: 'broken', config: entropy, error: 'rejected' },
  ],
} as unknown as SweepReport;

describe('one state: what actions act on', () => {
  it('the report on screen, then the sweep entry the user picked, per model', () => {
    const s = new SessionState();
    assert.equal(s.onScreenFor('/w/model.onnx'), undefined, 'nothing on screen: the settings decide');
    s.setReport(report, 20);
    assert.deepEqual(s.onScreenFor('/w/model.onnx')?.config, entropy);
    assert.equal(s.onScreenFor('/w/other.onnx'), undefined, 'another model is not on screen');
    s.setSweep(sweep);
    assert.deepEqual(s.onScreenFor('/w/model.onnx')?.config, entropy, 'a sweep alone picks nothing');
    const picked = s.pickSweepEntry(1)!;
    assert.deepEqual(picked.config, mse4);
    assert.match(picked.origin, /sweep #2 \(W4\/ch A8 sym mse\)/);
    assert.deepEqual(s.onScreenFor('/w/model.onnx')?.config, mse4, 'commands now act on the picked entry');
    assert.equal(s.pickSweepEntry(2), undefined, 'a failed entry cannot be picked');
    assert.deepEqual(s.resolve({ kind: 'sweep', id: 1 })?.config, mse4);
    assert.deepEqual(s.resolve({ kind: 'report' })?.config, entropy, 'the report button still means the report');
    // A new report (e.g. the picked entry analyzed) is what is on screen again.
    s.setReport({ ...report, config: mse4 } as Report, 20);
    assert.deepEqual(s.onScreenFor('/w/model.onnx')?.config, mse4);
  });

  it('exports every view of the session', () => {
    const s = new SessionState();
    s.setReport(report, 25);
    s.setSweep(sweep);
    s.mixed = { kind: 'mixed-precision', model: { path: '/w/model.onnx' } } as unknown as MixedPrecisionResult;
    const e = s.export();
    assert.equal(e.kind, 'quantlens-session');
    assert.equal(e.sqnrWarningDb, 25);
    assert.ok(e.report && e.sweep && e.mixedPrecision);
    assert.deepEqual(
      s.views().map((v) => v.type),
      ['sweep', 'mixedPrecision', 'report'],
    );
  });
});

describe('configurations', () => {
  it("a what-if range replaces the tensor's previous override and keeps its bits", () => {
    const base = {
      ...entropy,
      tensorOverrides: [
        { tensor: 'a', calibration: 'percentile' as const, bits: 16 as const },
        { tensor: 'b', calibration: 'mse' as const },
      ],
    };
    const c = withTensorRange(base, 'a', { lo: -2, hi: 2 });
    assert.deepEqual(c.tensorOverrides, [
      { tensor: 'b', calibration: 'mse' },
      { tensor: 'a', range: { lo: -2, hi: 2 }, bits: 16 },
    ]);
    assert.deepEqual(base.tensorOverrides[0], { tensor: 'a', calibration: 'percentile', bits: 16 }, 'the input is not changed');
    assert.deepEqual(withTensorRange(entropy, 'x', { lo: 0, hi: 1 }).tensorOverrides, [{ tensor: 'x', range: { lo: 0, hi: 1 } }]);
  });

  it('quantlens.json written from a configuration reads back as the same configuration, for every preset', () => {
    for (const preset of ['tensorrt', 'ort-cpu', 'qnn', 'power-of-two'] as const) {
      const c = {
        ...resolveConfig(preset, { calibration: 'percentile', percentile: 99.9, exclude: ['/fc/Gemm'], weights: { bits: 4, perChannel: false } }),
        tensorOverrides: [{ tensor: '/conv1/Conv_output_0', range: { lo: -1, hi: 1 } }],
        layerOverrides: [{ node: '/conv2/Conv', activationBits: 16 as const }],
      };
      const back = configFromSettings(JSON.parse(JSON.stringify(settingsFromConfig(c))));
      assert.deepEqual(back, c, preset);
    }
  });

  it('names a configuration in one line', () => {
    assert.equal(describeConfig(entropy), 'tensorrt W8/ch A8 sym entropy');
    assert.equal(
      describeConfig({ ...withTensorRange(entropy, 'x', { lo: 0, hi: 1 }), exclude: ['a', 'b'] }),
      'tensorrt W8/ch A8 sym entropy + 1 override, 2 layers in float',
    );
  });
});
