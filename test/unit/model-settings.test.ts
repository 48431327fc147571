import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '../../engine/errors';
import { readModelSettings, replacedSettings, settingsFromConfig, settingsProblem, unappliedSettings, unknownSettings } from '../../engine/io/modelSettings';
import { resolveConfig } from '../../engine/quantize/presets';

const modelPath = '/w/demo/model.onnx';

describe('quantlens.json keys a CLI run does not follow', () => {
  it('names each key that differs from the run, with both values; matching keys and the data folder resolved beside the model are silent', () => {
    const run = { config: resolveConfig('tensorrt', { calibration: 'entropy' }), dataPath: '/w/demo/data', modelPath };
    assert.deepEqual(unappliedSettings({ calibration: 'percentile', dataPath: 'data', preset: 'tensorrt' }, run), [
      'calibration "percentile" (this run: "entropy")',
    ]);
    assert.deepEqual(unappliedSettings({ dataPath: 'other' }, run), ['dataPath "other" (this run: "/w/demo/data")']);
    assert.deepEqual(unappliedSettings({ dataPath: 'data' }, { ...run, dataPath: undefined }), ['dataPath "data" (this run: no data)']);
    assert.deepEqual(unappliedSettings({ exclude: ['/b', '/a'] }, { ...run, config: { ...run.config, exclude: ['/a', '/b'] } }), []);
    assert.deepEqual(unappliedSettings({ exclude: ['/a'] }, run), ['exclude ["/a"] (this run: [])']);
    assert.deepEqual(unappliedSettings({ symmetric: null, inputs: { sr: { value: 16000 } } }, run), [], 'inputs are applied; null means the preset default');
    assert.equal(path.resolve(path.dirname(modelPath), 'data'), '/w/demo/data');
  });

  it('the settings a configuration writes are followed by a run of that configuration', () => {
    const config = resolveConfig('ort-cpu', { calibration: 'mse', weights: { bits: 4 }, exclude: ['/x'] });
    assert.deepEqual(unappliedSettings(settingsFromConfig(config), { config, modelPath }), []);
  });
});

describe('a quantlens.json value that cannot mean anything is refused in one line', () => {
  it('names the key, what it must hold and what it holds', () => {
    assert.equal(settingsProblem({ exclude: 'notalist' }), '"exclude" must be a list of node names (strings), not "notalist"');
    assert.match(settingsProblem({ calibration: 'bogus' })!, /^"calibration" must be one of minmax, ema, percentile, entropy, mse, not "bogus"$/);
    assert.match(settingsProblem({ preset: 'evil' })!, /^"preset" must be one of tensorrt, /);
    assert.equal(settingsProblem({ weightBits: 7 }), '"weightBits" must be 4, 8 or 16, not 7');
    assert.equal(settingsProblem({ percentile: 0 }), '"percentile" must be a number in (0, 100], not 0');
    assert.equal(settingsProblem({ samples: 2.5 }), '"samples" must be a positive integer, not 2.5');
    assert.equal(settingsProblem({ inputs: [] }), '"inputs" must be an object keyed by input name, not []');
  });

  it('every setting a configuration writes, and keys of a newer version, pass', () => {
    const config = resolveConfig('tensorrt', { calibration: 'percentile', exclude: ['/x'] });
    assert.equal(settingsProblem({ ...settingsFromConfig(config), dataPath: 'data', samples: 64, symmetric: null, futureKey: 3 }), null);
  });

  it('readModelSettings refuses the file with its path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-settings-'));
    try {
      fs.writeFileSync(path.join(dir, 'quantlens.json'), '{"exclude": "notalist"}');
      assert.throws(
        () => readModelSettings(path.join(dir, 'model.onnx')),
        (e: Error) =>
          e instanceof InputError && e.message === `${path.join(dir, 'quantlens.json')}: "exclude" must be a list of node names (strings), not "notalist"`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('--write-config says which keys it replaced', () => {
  it('only keys the file held with another value', () => {
    const after = settingsFromConfig(resolveConfig('tensorrt', { calibration: 'entropy' }));
    assert.deepEqual(replacedSettings({ calibration: 'percentile', dataPath: 'data', preset: 'tensorrt' }, after), ['calibration "percentile" -> "entropy"']);
    assert.deepEqual(replacedSettings({}, after), []);
  });
});

describe('quantlens.json keys this version does not know', () => {
  it('are named (a typo is not silently ignored); every key a configuration writes, and targetCpu, are known', () => {
    assert.deepEqual(unknownSettings({ calibraton: 'percentile', dataPath: 'data' } as never), ['calibraton']);
    const config = resolveConfig('tensorrt', { calibration: 'percentile', exclude: ['/x'] });
    assert.deepEqual(unknownSettings({ ...settingsFromConfig(config), dataPath: 'd', samples: 8, sqnrWarningDb: 20, targetCpu: 'vnni', inputs: {} }), []);
    assert.equal(settingsProblem({ targetCpu: 'bogus' }), '"targetCpu" must be "this", "vnni" or "no-vnni", not "bogus"');
  });
});
