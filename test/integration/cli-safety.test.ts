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
import { writeNpy } from '../helpers/npyFiles';
import { baseModels } from '../fuzz/fixtures';
import { validNpz } from '../fuzz/gen/common';
import { qdqTiny } from '../fuzz/gen/deployed';
import { DT, buildModel, makeNode, makeTensor, rng, valueInfo, writeModel } from '../helpers/tinyModels';

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
    ])
      refused(run(...args), /over the input/);
    assert.deepEqual({ model: sha(model), data: sha(data) }, before);
  });

  it('nor any other file a command reads: --float, --calibration-table, --metric, --fix', () => {
    // stand-ins: each file is refused as an output before it is read
    const other = path.join(dir, 'other-input.json');
    fs.writeFileSync(other, '{}');
    const kept = sha(other);
    for (const args of [
      ['analyze', model, '--data', data, '--float', other, '--report', other, '--force'],
      ['gate', model, '--data', data, '--float', other, '--report', other, '--force'],
      ['analyze', model, '--data', data, '--calibration-table', other, '--report', other, '--force'],
      ['analyze', model, '--data', data, '--metric', other, '--report', other, '--force'],
      ['quantize', model, '--data', data, '--fix', other, '--out', other, '--force'],
      ['compare', model, model, '--data', data, '--float', other, '--report', other, '--force'],
    ])
      refused(run(...args), /over the input/);
    assert.equal(sha(other), kept);
  });

  it("nor the model's quantlens.json, two outputs on one path, or a path that leads into the data folder", () => {
    const settings = path.join(dir, 'quantlens.json');
    fs.writeFileSync(settings, '{"calibration": "percentile"}\n');
    refused(run('analyze', model, '--data', data, '--report', settings, '--force'), /over the input .*quantlens\.json/);
    assert.equal(fs.readFileSync(settings, 'utf8'), '{"calibration": "percentile"}\n');
    fs.rmSync(settings);
    // a key this version does not know (a typo) is said, not silently ignored
    fs.writeFileSync(settings, '{"calibraton": "percentile"}\n');
    const typo = run('analyze', model, '--data', data, '--samples', '8', '--no-sensitivity', '--quiet');
    fs.rmSync(settings);
    assert.equal(typo.status, 0, typo.stderr);
    assert.match(typo.stdout, /warning: .*quantlens\.json: "calibraton" is not a key QuantLens knows \(a typo\?\); ignored/);
    // not there yet: a report written there would be read back as the model's settings
    refused(run('analyze', model, '--data', data, '--report', settings), /over the input .*quantlens\.json/);
    refused(run('compare', model, model, '--data', data, '--report', '-'), /--report -: name a file/);
    assert.ok(!fs.existsSync(settings) && !fs.existsSync(path.join(dir, '-')));
    const same = path.join(dir, 'same.out');
    refused(
      run('quantize', model, '--data', data, '--out', same, '--write-calibration-table', same, '--force'),
      /--out and --write-calibration-table name the same file .*same\.out/,
    );
    refused(run('analyze', model, '--data', data, '--report', same, '--write-calibration-table', `${dir}/./same.out`), /name the same file/);
    assert.ok(!fs.existsSync(same));
    const folder = path.join(dir, 'samples');
    fs.mkdirSync(folder);
    writeNpy(folder, 'input', new Float32Array(4 * 28 * 28), [4, 1, 28, 28]);
    fs.symlinkSync(folder, path.join(dir, 'link'));
    refused(run('analyze', model, '--data', folder, '--report', path.join(dir, 'link', 'r.json')), /inside the input folder .*samples/);
    assert.deepEqual(fs.readdirSync(folder), ['input.npy']);
  });

  it('quantize --fix refuses configuration flags it would ignore, and a plan that did not meet its budget', () => {
    const fix = path.join(dir, 'fix.json');
    const config = { preset: 'tensorrt', calibration: 'percentile' };
    fs.writeFileSync(fix, JSON.stringify({ kind: 'mixed-precision', model: { sha256: sha(model) }, met: false, fix: { config } }));
    const out = path.join(dir, 'fixed.onnx');
    refused(
      run('quantize', model, '--data', data, '--fix', fix, '--weight-bits', '4', '--calibration', 'minmax', '--out', out),
      /--fix applies the configuration its fix was measured with; --calibration, --weight-bits would not apply/,
    );
    refused(run('quantize', model, '--data', data, '--fix', fix, '--no-fold-bn', '--out', out), /; --no-fold-bn would not apply/);
    refused(run('quantize', model, '--data', data, '--fix', fix, '--out', out), /fix\.json: its plan did not meet the budget \(met: false\)/);
    assert.ok(!fs.existsSync(out));
  });

  it('mixed-precision --write-config: a quantlens.json that cannot be written is refused before the search', () => {
    const folder = path.join(dir, 'wc');
    fs.mkdirSync(path.join(folder, 'quantlens.json'), { recursive: true }); // a folder where the file would go
    fs.copyFileSync(model, path.join(folder, 'm.onnx'));
    // with a progress line for every step, one line on stderr means no sample was calibrated
    const r = spawnSync(process.execPath, [cli, 'mixed-precision', path.join(folder, 'm.onnx'), '--data', data, '--max-drop', '1', '--write-config'], {
      encoding: 'utf8',
      cwd: dir,
      env: { ...process.env, QUANTLENS_PROGRESS_EVERY: '0' },
    });
    refused(r, /cannot write settings file .*quantlens\.json \(--write-config\): it is a folder/);
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
    refused(run('analyze', model, '--data', data, '--report', '-'), /--report -: name a file/);
    assert.ok(!fs.existsSync(path.join(dir, '-')));
  });
});

describe('CLI: progress in a log', () => {
  it('without a terminal, plain lines (no control codes) at the interval asked; none with --quiet', () => {
    const env = { ...process.env, QUANTLENS_PROGRESS_EVERY: '0' };
    const args = [cli, 'analyze', model, '--data', data, '--samples', '64', '--no-sensitivity'];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', cwd: dir, env });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('quantlens: '));
    assert.ok(
      lines.some((l) => /^quantlens: calibrate \d+\/64 samples \(\d+ s\)$/.test(l)),
      r.stderr,
    );
    assert.ok(
      lines.some((l) => /^quantlens: evaluate \d+\/64 samples/.test(l)),
      r.stderr,
    );
    assert.doesNotMatch(r.stderr, /\x1b\[/, 'no terminal control codes');
    const quiet = spawnSync(process.execPath, [...args, '--quiet'], { encoding: 'utf8', cwd: dir, env });
    assert.doesNotMatch(quiet.stderr, /^quantlens: /m);
  });
});

describe('CLI: option errors are one line and exit 2', () => {
  it('names the option and the problem, without the help text', () => {
    refused(run('analyze', model, '--samples', '0'), /--samples.*must be a positive integer.*see: quantlens analyze --help/);
    refused(run('analyze', model, '--percentile', '101'), /--percentile.*must be in \(0, 100\]/);
    refused(run('analyze', model, '--preset', 'evil'), /--preset.*evil.*tensorrt/);
    // 4-bit activations cannot run in onnxruntime: refused before any work, by every measuring command
    for (const cmd of ['analyze', 'sweep', 'gate', 'mixed-precision'])
      refused(run(cmd, model, '--act-bits', '4'), /--act-bits.*4-bit activations cannot be measured/);
    // quantize writes them (for runtimes with such kernels) and says onnxruntime aborts on the file
    const q4 = path.join(dir, 'a4.onnx');
    const w = run('quantize', model, '--data', data, '--samples', '16', '--act-bits', '4', '--out', q4, '--quiet');
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stderr, /^WARNING: 4-bit activations \(QuantizeLinear .*\): onnxruntime [\d.]+ aborts on this file/m);
    refused(run('analyze'), /missing required argument 'model'/);
    refused(run('frobnicate'), /unknown command 'frobnicate'/);
    refused(run('analyze', model, '--per-tensor', '--per-channel', '--data', data), /contradict/);
    // Number('') is 0: an empty budget must not become a budget of 0 points
    for (const cmd of ['gate', 'mixed-precision']) refused(run(cmd, model, '--data', data, '--max-drop', ''), /--max-drop.*must be a non-negative number/);
    refused(run('gate', model, '--data', data, '--max-drop', '  '), /--max-drop.*must be a non-negative number/);
    // every layer excluded: nothing is quantized, so every figure would compare float with float
    const all = '/conv1/Conv,/conv2/Conv,/dw/Conv,/pw/Conv,/conv3/Conv,/fc/Gemm';
    for (const cmd of [['analyze'], ['gate', '--max-drop', '1'], ['quantize', '--out', path.join(dir, 'none.onnx')]]) {
      refused(
        run(cmd[0], model, '--data', data, '--samples', '8', '--exclude', all, ...cmd.slice(1)),
        /m\.onnx: this configuration quantizes no layer: every candidate stays float \(\/conv1\/Conv: excluded by configuration/,
      );
    }
    assert.ok(!fs.existsSync(path.join(dir, 'none.onnx')));
    // an exclusion naming no node (a typo) would quietly quantize the layer the user meant to keep
    for (const cmd of [['analyze'], ['quantize', '--out', path.join(dir, 'typo.onnx')]])
      refused(
        run(cmd[0], model, '--data', data, '--samples', '8', '--exclude', '/conv1/Conv,/conv9/Conv', ...cmd.slice(1)),
        /m\.onnx: excluded node "\/conv9\/Conv" is not in the model/,
      );
    assert.ok(!fs.existsSync(path.join(dir, 'typo.onnx')));
  });

  it('--help still prints help and exits 0', () => {
    const r = run('analyze', '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--force/);
  });
});

describe('CLI: output through a pipe', () => {
  it('the --json report arrives whole (hundreds of KiB), not cut at the pipe buffer', () => {
    const r = spawnSync(process.execPath, [cli, 'analyze', model, '--data', data, '--samples', '16', '--no-sensitivity', '--json', '--quiet'], {
      encoding: 'utf8',
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 4 * 65536, `a report larger than several pipe buffers (${r.stdout.length} bytes)`);
    const report = JSON.parse(r.stdout);
    assert.equal(report.samples, 16);
    assert.equal(report.layers.length, 6);
  });
});

describe('CLI: weights of absurd magnitude', () => {
  it('integer-only names the model and the node whose scales no fixed-point multiplier can bridge', () => {
    // BatchNormalization mean 1e38 (finite, only warned about at load): channel 0 becomes -1e38,
    // the Relu's input grid is ~1e38 wide while its output (channel 1 only) is small, so the
    // rescale between them needs a multiplier far beyond 2^30. The float output stays finite.
    const folder = fs.mkdtempSync(path.join(dir, 'huge-'));
    const r = rng(7);
    const m = buildModel({
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], 'conv', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        makeNode('BatchNormalization', ['c', 's', 'beta', 'mean', 'var'], ['n'], 'bn'),
        makeNode('Relu', ['n'], ['a'], 'relu'),
        makeNode('GlobalAveragePool', ['a'], ['p'], 'pool'),
        makeNode('Flatten', ['p'], ['f'], 'flatten'),
        makeNode('Gemm', ['f', 'wf', 'bf'], ['y'], 'fc', { transB: 1 }),
      ],
      inputs: [valueInfo('x', ['N', 1, 4, 4])],
      outputs: [valueInfo('y', ['N', 3])],
      initializers: [
        makeTensor(
          'w',
          DT.FLOAT,
          [2, 1, 3, 3],
          Array.from({ length: 18 }, () => r() - 0.5),
        ),
        makeTensor('b', DT.FLOAT, [2], [0, 0]),
        makeTensor('s', DT.FLOAT, [2], [1, 1]),
        makeTensor('beta', DT.FLOAT, [2], [0, 0]),
        makeTensor('mean', DT.FLOAT, [2], [1e38, 0]),
        makeTensor('var', DT.FLOAT, [2], [1, 1]),
        makeTensor('wf', DT.FLOAT, [3, 2], [1, -1, 0.5, 0.5, -1, 1]),
        makeTensor('bf', DT.FLOAT, [3], [0, 0, 0]),
      ],
    });
    const file = writeModel(folder, 'huge.onnx', m);
    writeNpy(
      path.join(folder, 'data'),
      'x',
      Float32Array.from({ length: 4 * 16 }, () => r()),
      [4, 1, 4, 4],
    );
    refused(run('integer-only', file, '--data', path.join(folder, 'data'), '--quiet'), /huge\.onnx: \S+: scale ratio \S+ cannot be a fixed-point multiplier/);
  });
});

describe('CLI: already-quantized models that no runtime would load', () => {
  it("analyze and compare refuse them with onnxruntime's one-line reason, naming the file", () => {
    const folder = fs.mkdtempSync(path.join(dir, 'qdq-'));
    const tiny = baseModels().tiny;
    const good = writeModel(folder, 'good.onnx', qdqTiny(tiny));
    // conv2 reads its int8 weight codes directly: a Conv of float input and int8 weights is not ONNX
    const bad = qdqTiny(tiny);
    bad.graph!.node = bad.graph!.node.filter((n) => n.name !== 'w2d_dq');
    for (const n of bad.graph!.node) n.input = n.input.map((i) => (i === 'w2d' ? 'w2d_q' : i));
    const badFile = writeModel(folder, 'bad.onnx', bad);
    fs.writeFileSync(path.join(folder, 'd.npz'), validNpz(tiny));
    const d = path.join(folder, 'd.npz');
    const ok = run('analyze', good, '--data', d, '--samples', '2', '--no-sensitivity', '--quiet');
    assert.equal(ok.status, 0, ok.stderr);
    refused(run('analyze', badFile, '--data', d, '--samples', '2', '--quiet'), /bad\.onnx: onnxruntime cannot load it: .*conv2/);
    refused(run('compare', good, badFile, '--data', d, '--samples', '2', '--quiet'), /bad\.onnx: onnxruntime cannot load it/);
  });
});
