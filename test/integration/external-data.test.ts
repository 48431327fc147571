/**
 * Models whose weights live in external data files: the demo CNN rewritten with its initializers
 * in `weights.bin` (and in `sub/weights.bin`) must analyze to exactly the numbers of the inline
 * model, and locations that leave the model's folder (../, absolute, symlinks) or byte ranges
 * that do not fit are refused with one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, GraphProtoSchema, StringStringEntryProtoSchema, type ModelProto } from 'onnx-buf';
import { evaluate, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { InputError } from '../../engine/errors';
import { decodeModel, encodeModel, loadModel } from '../../engine/onnx/model';
import { resolveConfig } from '../../engine/quantize/presets';
import { createSession } from '../../engine/runtime/session';
import type { Report } from '../../protocol/report';
import { DT, buildModel, makeNode, makeTensor, tempDir, valueInfo } from '../helpers/tinyModels';

const root = path.resolve(__dirname, '../..');
const DEMO = path.join(root, 'examples/mnist-cnn/model.onnx');
const DATA = path.join(root, 'examples/mnist-cnn/data');
const tmp = tempDir('quantlens-external-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const entry = (key: string, value: string) => create(StringStringEntryProtoSchema, { key, value });

/** Padding between tensors: 0xFF bytes are NaN as float32, so reading one byte too many shows. */
const PAD = 13;

/**
 * Write the demo model into `folder` with every initializer moved to `weightsRel` (relative to the
 * folder), separated by NaN padding. Returns the model path and each tensor's [offset, length].
 */
function externalTwin(folder: string, weightsRel: string): { model: string; spans: Map<string, [number, number]> } {
  fs.mkdirSync(path.join(folder, path.dirname(weightsRel)), { recursive: true });
  const m = decodeModel(fs.readFileSync(DEMO), DEMO).proto;
  const chunks: Uint8Array[] = [new Uint8Array(PAD).fill(0xff)];
  let offset = PAD;
  const spans = new Map<string, [number, number]>();
  for (const t of m.graph!.initializer) {
    const len = t.rawData.length;
    assert.ok(len > 0, `${t.name}: the demo keeps raw_data`);
    chunks.push(new Uint8Array(t.rawData), new Uint8Array(PAD).fill(0xff));
    spans.set(t.name, [offset, len]);
    t.externalData = [entry('location', weightsRel), entry('offset', String(offset)), entry('length', String(len))];
    t.dataLocation = 1; // EXTERNAL
    t.rawData = new Uint8Array(0);
    offset += len + PAD;
  }
  fs.writeFileSync(path.join(folder, weightsRel), Buffer.concat(chunks));
  const model = path.join(folder, 'model.onnx');
  fs.writeFileSync(model, encodeModel(m));
  return { model, spans };
}

/** Rewrite one external entry of the model file in place (a test's own temp copy). */
function editExternal(model: string, edit: (m: ModelProto) => void): void {
  const m = decodeModel(fs.readFileSync(model), model).proto;
  edit(m);
  fs.writeFileSync(model, encodeModel(m));
}

async function analyze(model: string): Promise<Report> {
  const p = await prepareAnalysis(model, { dataPath: DATA, samples: 32 });
  const q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'percentile' }));
  return evaluate(p, q, { sensitivity: false });
}

describe('demo CNN with external data', () => {
  const twins = { beside: '', sub: '' };
  const reports = new Map<string, Report>();

  before(async () => {
    twins.beside = externalTwin(path.join(tmp, 'beside'), 'weights.bin').model;
    twins.sub = externalTwin(path.join(tmp, 'sub'), 'sub/weights.bin').model;
    for (const [k, f] of Object.entries({ inline: DEMO, ...twins })) reports.set(k, await analyze(f));
  });

  it('the twins really keep their weights outside the model file, and onnxruntime reads them alike', async () => {
    const inline = await ort.InferenceSession.create(DEMO);
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => ((i * 37) % 101) / 101),
      [2, 1, 28, 28],
    );
    const want = (await inline.run({ input: x })).logits.data as Float32Array;
    for (const f of Object.values(twins)) {
      assert.ok(fs.statSync(f).size < fs.statSync(DEMO).size / 10, `${f} still holds its weights`);
      // onnxruntime given the PATH resolves the external data itself: the twin is well formed.
      const own = await ort.InferenceSession.create(f);
      assert.deepEqual((await own.run({ input: x })).logits.data, want);
      // QuantLens loads it into memory: a session from bytes (no folder) computes the same.
      const fromBytes = await createSession(loadModel(f).proto, 'float', { label: f });
      assert.deepEqual((await fromBytes.run({ input: x })).logits.data, want);
    }
  });

  it('analyzes to exactly the per-layer numbers and accuracy of the inline model', () => {
    const inline = reports.get('inline')!;
    assert.ok(inline.layers.length >= 5);
    for (const k of ['beside', 'sub']) {
      const r = reports.get(k)!;
      assert.deepEqual(r.layers, inline.layers, k);
      assert.deepEqual(r.tensors, inline.tensors, k);
      assert.deepEqual(r.accuracy, inline.accuracy, k);
      assert.deepEqual(r.integerKernels, inline.integerKernels, k);
    }
  });

  it('no output is ever written over the external data file, --force or not', () => {
    const folder = path.join(tmp, 'keep');
    const { model } = externalTwin(folder, 'weights.bin');
    const weights = path.join(folder, 'weights.bin');
    const kept = fs.readFileSync(weights);
    const cli = path.join(root, 'bin/quantlens.js');
    for (const args of [
      ['quantize', model, '--data', DATA, '--out', weights, '--force'],
      ['analyze', model, '--data', DATA, '--report', weights, '--force'],
      ['mixed-precision', model, '--data', DATA, '--max-drop', '1', '--out', weights, '--force'],
    ]) {
      const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /^quantlens: refusing to write .* over the input .*weights\.bin; choose another path\n$/);
    }
    assert.deepEqual(fs.readFileSync(weights), kept);
  });

  it('the model hash covers the external bytes: a changed weights.bin changes it', () => {
    const folder = path.join(tmp, 'hash');
    const { model, spans } = externalTwin(folder, 'weights.bin');
    const before = loadModel(model).sha256;
    const w = fs.readFileSync(path.join(folder, 'weights.bin'));
    const [off] = spans.get('fc.bias')!;
    w.writeFloatLE(w.readFloatLE(off) + 1, off);
    fs.writeFileSync(path.join(folder, 'weights.bin'), w);
    assert.notEqual(loadModel(model).sha256, before);
  });
});

describe('external data that is refused', () => {
  const refused = (model: string, pattern: RegExp) =>
    assert.throws(
      () => loadModel(model),
      (e: Error) => {
        assert.ok(e instanceof InputError, `${e.name}: ${e.message}`);
        assert.equal(e.message.split('\n').length, 1);
        assert.ok(e.message.includes(model), e.message);
        assert.match(e.message, pattern);
        return true;
      },
    );

  it('a symlinked weights.bin pointing outside the folder', async () => {
    const folder = path.join(tmp, 'symlink-out');
    const { model } = externalTwin(folder, 'weights.bin');
    const outside = path.join(tmp, 'outside.bin');
    fs.renameSync(path.join(folder, 'weights.bin'), outside);
    fs.symlinkSync(outside, path.join(folder, 'weights.bin'));
    refused(model, /initializer \S+ keeps its data at "weights\.bin", which resolves \(through a symlink\) to .*outside\.bin, outside the model's folder/);
    await assert.rejects(prepareAnalysis(model, { dataPath: DATA, samples: 4 }), InputError);
  });

  it('a symlink that stays inside the folder is fine', () => {
    const folder = path.join(tmp, 'symlink-in');
    const { model } = externalTwin(folder, 'weights.bin');
    fs.mkdirSync(path.join(folder, 'store'));
    fs.renameSync(path.join(folder, 'weights.bin'), path.join(folder, 'store', 'real.bin'));
    fs.symlinkSync(path.join('store', 'real.bin'), path.join(folder, 'weights.bin'));
    assert.equal(loadModel(model).proto.graph!.initializer.length, loadModel(DEMO).proto.graph!.initializer.length);
  });

  it('"../w.bin" and absolute locations, even to files that exist', () => {
    const folder = path.join(tmp, 'escape', 'm');
    const { model } = externalTwin(folder, 'weights.bin');
    fs.copyFileSync(path.join(folder, 'weights.bin'), path.join(folder, '..', 'w.bin'));
    editExternal(model, (m) => (m.graph!.initializer[0].externalData[0].value = '../w.bin'));
    refused(model, /initializer conv2\.weight keeps its data at "\.\.\/w\.bin", outside the model's folder; refused/);
    editExternal(model, (m) => (m.graph!.initializer[0].externalData[0].value = path.join(folder, 'weights.bin')));
    refused(model, /initializer conv2\.weight keeps its data at the absolute path/);
    // a trailing separator names a folder: path.resolve would drop it and read the file
    editExternal(model, (m) => (m.graph!.initializer[0].externalData[0].value = 'weights.bin/'));
    refused(model, /initializer conv2\.weight keeps its data at "weights\.bin\/", which ends with a path separator/);
  });

  it('offset or length beyond the file, or a length that does not fit the shape', () => {
    const folder = path.join(tmp, 'range');
    const { model, spans } = externalTwin(folder, 'weights.bin');
    const size = fs.statSync(path.join(folder, 'weights.bin')).size;
    const [, len] = spans.get('fc.bias')!; // 10 floats
    const fc = (m: ModelProto) => m.graph!.initializer.find((t) => t.name === 'fc.bias')!;
    editExternal(model, (m) => (fc(m).externalData[1].value = String(size - len + 4)));
    refused(model, new RegExp(`initializer fc\\.bias reads bytes ${size - len + 4}\\.\\.${size + 4} of .*weights\\.bin, beyond its end \\(${size} bytes\\)`));
    editExternal(model, (m) => {
      fc(m).externalData[1].value = '0';
      fc(m).externalData[2].value = '44';
    });
    refused(model, /initializer fc\.bias declares external data length 44 bytes, but its shape \[10\] of FLOAT \(40 bytes\) needs exactly 40/);
    editExternal(model, (m) => (fc(m).externalData[2].value = '-4'));
    refused(model, /fc\.bias has external_data length "-4", not a non-negative integer/);
  });

  it('a weights file that is a FIFO is refused without being opened (no hang)', () => {
    const folder = path.join(tmp, 'fifo');
    const { model } = externalTwin(folder, 'weights.bin');
    fs.rmSync(path.join(folder, 'weights.bin'));
    const made = spawnSync('mkfifo', [path.join(folder, 'weights.bin')]);
    assert.equal(made.status, 0, 'mkfifo is needed for this test');
    refused(model, /is a FIFO \(named pipe\), not a regular file/);
  });
});

describe('external data inside an If subgraph', () => {
  it('is loaded into memory and the branch computes with it', async () => {
    const folder = path.join(tmp, 'subgraph');
    fs.mkdirSync(folder);
    const k = Float32Array.from([1.5, -2, 0.25]);
    fs.writeFileSync(path.join(folder, 'k.bin'), Buffer.concat([Buffer.from('pad!'), Buffer.from(k.buffer)]));
    const kt = makeTensor('kc', DT.FLOAT, [3], []);
    kt.externalData = [entry('location', 'k.bin'), entry('offset', '4'), entry('length', '12')];
    kt.dataLocation = 1;
    const graph = (name: string, nodes: ReturnType<typeof makeNode>[], out: string) =>
      create(GraphProtoSchema, { name, node: nodes, output: [valueInfo(out, [3])] });
    const thenG = graph('then', [makeNode('Constant', [], ['k'], 'const_k', { value: kt }), makeNode('Add', ['x', 'k'], ['t'], 'add_k')], 't');
    const elseG = graph('else', [makeNode('Identity', ['x'], ['e'], 'id')], 'e');
    const ifNode = makeNode('If', ['c'], ['y'], 'if1');
    ifNode.attribute = [
      create(AttributeProtoSchema, { name: 'then_branch', type: AT.GRAPH, g: thenG }),
      create(AttributeProtoSchema, { name: 'else_branch', type: AT.GRAPH, g: elseG }),
    ];
    const m = buildModel({ nodes: [ifNode], inputs: [valueInfo('x', [3]), valueInfo('c', [], DT.BOOL)], outputs: [valueInfo('y', [3])] });
    const file = path.join(folder, 'if.onnx');
    fs.writeFileSync(file, encodeModel(m));
    const s = await createSession(loadModel(file).proto, 'float', { label: file });
    const x = Float32Array.from([1, 2, 3]);
    const y = (await s.run({ x: new ort.Tensor('float32', x, [3]), c: new ort.Tensor('bool', Uint8Array.from([1]), []) })).y.data;
    assert.deepEqual(Array.from(y as Float32Array), [2.5, 0, 3.25]);
    const outside = path.join(tmp, 'k-outside.bin');
    fs.copyFileSync(path.join(folder, 'k.bin'), outside);
    fs.symlinkSync(outside, path.join(folder, 'k2.bin'));
    editExternal(file, (mm) => (mm.graph!.node[0].attribute[0].g!.node[0].attribute[0].t!.externalData[0].value = 'k2.bin'));
    assert.throws(
      () => loadModel(file),
      /the value of node const_k \(Constant\) in subgraph then_branch of node if1 \(If\) keeps its data at "k2\.bin", which resolves \(through a symlink\) to .*k-outside\.bin, outside/,
    );
  });
});
