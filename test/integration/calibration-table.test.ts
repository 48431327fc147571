/**
 * Calibration tables through the CLI on the demo: QuantLens' thresholds written as a TensorRT
 * calibration cache and read back reproduce every scale bit for bit; a hand-written cache is applied
 * (its hex scale decoded by hand below) and what it could not match is reported.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { formatSummary } from '../../engine/report/summary';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin/quantlens.js');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-table-'));

function analyze(...extra: string[]) {
  const out = path.join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, [cli, 'analyze', model, '--data', data, '--samples', '64', '--no-sensitivity', '--quiet', '--report', out, ...extra], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

const activationScales = (rep: { tensors: { kind: string; name: string; chosen: { scale: number } }[] }) =>
  new Map(rep.tensors.filter((t) => t.kind === 'activation').map((t) => [t.name, t.chosen.scale]));

describe('calibration tables', () => {
  it('a TensorRT cache written by QuantLens and read back gives the same scales', () => {
    const cache = path.join(dir, 'demo.cache');
    const first = analyze('--calibration', 'percentile', '--write-calibration-table', cache);
    const text = fs.readFileSync(cache, 'utf8');
    assert.match(text.split('\n')[0], /^TRT-\d+-EntropyCalibration2$/);
    // Read back under a DIFFERENT method: every range must come from the cache, not from minmax.
    const second = analyze('--calibration', 'minmax', '--calibration-table', cache);
    const a = activationScales(first),
      b = activationScales(second);
    assert.ok(a.size > 0);
    for (const [name, scale] of a) assert.equal(b.get(name), scale, name);
    assert.ok(second.warnings.some((w: { message: string }) => /(\d+) of \1 activation ranges taken from the table/.test(w.message)));
  });

  it('a hand-written cache is applied and what it cannot match is reported', () => {
    const cache = path.join(dir, 'hand.cache');
    // 0x3c000000 = sign 0, exponent 0x78 = 120 -> 2^(120 - 127) = 2^-7, mantissa 0: scale 0.0078125
    fs.writeFileSync(cache, 'TRT-8601-EntropyCalibration2\r\n/conv1/Conv_output_0: 3c000000\r\nsome_fused_tensor: 3f800000\r\n');
    const rep = analyze('--calibration', 'percentile', '--calibration-table', cache);
    const t = rep.tensors.find((x: { name: string }) => x.name === '/conv1/Conv_output_0');
    assert.equal(t.chosen.scale, 2 ** -7);
    assert.ok(Math.abs(t.chosen.range.hi - 127 * 2 ** -7) < 1e-12, 'amax = 127 x scale');
    const msgs = rep.warnings.map((w: { message: string }) => w.message).join('\n');
    assert.match(msgs, /1 of \d+ activation ranges taken from the table/);
    assert.match(msgs, /1 entries name no activation of this model.*some_fused_tensor/);
    assert.match(msgs, /has no range for \d+ activation\(s\); they keep the percentile threshold/);
    // the summary's configuration line says the table overrides the method
    assert.match(
      formatSummary(rep).split('\n')[2],
      /^config {3}preset=tensorrt calibration=percentile, overridden by a calibration table \(1 of \d+ activation ranges taken from the table\) W8/,
    );
  });

  it('a malformed cache is one line and exit 2', () => {
    const cache = path.join(dir, 'bad.cache');
    fs.writeFileSync(cache, 'TRT-8601-EntropyCalibration2\nconv: zz\n');
    const r = spawnSync(
      process.execPath,
      [cli, 'analyze', model, '--data', data, '--samples', '8', '--no-sensitivity', '--quiet', '--calibration-table', cache],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /bad\.cache.*line 2/);
  });
});
