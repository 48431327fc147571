/**
 * The CLI never loses a user's file and answers bad input with one line and exit code 2. Runs the
 * built CLI (bin/quantlens.js) as a user would, on a copy of the demo model and data.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin/quantlens.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-cli-'));
const model = path.join(dir, 'm.onnx');
const data = path.join(dir, 'd.npz');
fs.copyFileSync(path.join(root, 'examples/mnist-cnn/model.onnx'), model);
fs.copyFileSync(path.join(root, 'examples/mnist-cnn/calib.npz'), data);

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: dir });

/** Exit 2, exactly one line on stderr that matches `re`, nothing on stdout. */
function refused(r: ReturnType<typeof run>, re: RegExp) {
  assert.equal(r.status, 2, `exit ${r.status}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], /^quantlens: /);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('CLI: outputs never replace inputs or existing files', () => {
  const before = { model: sha(model), data: sha(data) };

  it('every writing option refuses the input model and the data, even with --force', () => {
    for (const args of [
      ['analyze', model, '--data', data, '--report', model],
      ['analyze', model, '--data', data, '--report', data, '--force'],
      ['quantize', model, '--data', data, '--out', data, '--force'],
      ['quantize', model, '--data', data, '--out', model],
      ['sweep', model, '--data', data, '--report', model, '--force'],
      ['gate', model, '--data', data, '--max-drop', '1', '--report', model, '--force'],
      ['mixed-precision', model, '--data', data, '--max-drop', '1', '--out', data, '--force'],
      ['integer-only', model, '--data', data, '--report', model, '--force'],
    ]) refused(run(...args), /over the input/);
    assert.deepEqual({ model: sha(model), data: sha(data) }, before);
  });

  it('an existing report is kept without --force and replaced with it', () => {
    const out = path.join(dir, 'r.json');
    fs.writeFileSync(out, 'precious');
    refused(run('analyze', model, '--data', data, '--report', out, '--samples', '16', '--no-sensitivity'), /r\.json \(--report\) already exists; pass --force/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'precious');
    const ok = run('analyze', model, '--data', data, '--report', out, '--samples', '16', '--no-sensitivity', '--force', '--quiet');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).samples, 16);
  });

  it('bad output paths: a missing folder, a folder, an empty path', () => {
    refused(run('quantize', model, '--data', data, '--out', path.join(dir, 'no/such/x.onnx')), /folder .*no\/such does not exist/);
    refused(run('quantize', model, '--data', data, '--out', dir), /it is a folder/);
    refused(run('quantize', model, '--data', data, '--out', ''), /path \(--out\) is empty/);
  });
});

describe('CLI: option errors are one line and exit 2', () => {
  it('names the option and the problem, without the help text', () => {
    refused(run('analyze', model, '--samples', '0'), /--samples.*must be a positive integer.*see: quantlens analyze --help/);
    refused(run('analyze', model, '--percentile', '101'), /--percentile.*must be in \(0, 100\]/);
    refused(run('analyze', model, '--preset', 'evil'), /--preset.*evil.*tensorrt/);
    refused(run('analyze'), /missing required argument 'model'/);
    refused(run('frobnicate'), /unknown command 'frobnicate'/);
    refused(run('analyze', model, '--per-tensor', '--per-channel', '--data', data), /contradict/);
  });

  it('--help still prints help and exits 0', () => {
    const r = run('analyze', '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--force/);
  });
});
