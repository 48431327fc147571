import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { settingsFromConfig, unappliedSettings } from '../../engine/io/modelSettings';
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
