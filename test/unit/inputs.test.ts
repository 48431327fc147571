/**
 * The data description: sample / constant / state inputs, decided from settings, the data and the
 * model's names and shapes; states carried from the float model's own outputs, checked against a
 * recurrence computed here by hand.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { dump } from 'npyjs';
import { prepareAnalysis } from '../../engine/analysis/analyze';
import { batchFirst, describeInputs, stateBatch } from '../../engine/data/inputs';
import { InputError } from '../../engine/errors';
import { feedsFor } from '../../engine/runtime/session';
import { DT, buildModel, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const r = rng(3);
const K = 4,
  S = 10;
const W = Float32Array.from({ length: K * K }, () => randn(r) * 0.5);
const X = Float32Array.from({ length: S * K }, () => randn(r));

/** hn = Tanh(h + unsqueeze(x W, 0)) ([1, N, K]); y = squeeze(hn) * float(sr) / 16000. */
const modelPath = writeModel(
  dir,
  'rnn.onnx',
  buildModel({
    nodes: [
      makeNode('MatMul', ['x', 'W'], ['xw'], 'mm'),
      makeNode('Unsqueeze', ['xw', 'ax0'], ['xw3'], 'unsq'),
      makeNode('Add', ['h', 'xw3'], ['pre'], 'add'),
      makeNode('Tanh', ['pre'], ['hn'], 'tanh'),
      makeNode('Squeeze', ['hn', 'ax0'], ['hs'], 'sq'),
      makeNode('Cast', ['sr'], ['srf'], 'cast', { to: DT.FLOAT }),
      makeNode('Div', ['srf', 'ref'], ['gain'], 'div'),
      makeNode('Mul', ['hs', 'gain'], ['y'], 'mul'),
    ],
    inputs: [valueInfo('x', ['N', K]), valueInfo('h', [1, 'N', K]), valueInfo('sr', [], DT.INT64)],
    outputs: [valueInfo('y', ['N', K]), valueInfo('hn', [1, 'N', K])],
    initializers: [makeTensor('W', DT.FLOAT, [K, K], W), makeTensor('ax0', DT.INT64, [1], [0]), makeTensor('ref', DT.FLOAT, [], [16000])],
  }),
);
const data = path.join(dir, 'data');
fs.mkdirSync(data);
fs.writeFileSync(path.join(data, 'x.npy'), Buffer.from(dump(X, [S, K])));

/** The recurrence by hand: h_0 = 0, h_{k+1} = tanh(h_k + x_k W). Returns h_k for every k. */
function handStates(): Float32Array[] {
  const out: Float32Array[] = [];
  let h = new Float32Array(K);
  for (let k = 0; k < S; k++) {
    out.push(h);
    const next = new Float32Array(K);
    for (let j = 0; j < K; j++) {
      let acc = 0;
      for (let i = 0; i < K; i++) acc += X[k * K + i] * W[i * K + j];
      next[j] = Math.tanh(h[j] + acc);
    }
    h = next;
  }
  return out;
}

describe('input kinds', () => {
  it('infers h as a state carried from hn; sr needs a value and the error names the flag', async () => {
    await assert.rejects(
      prepareAnalysis(modelPath, { dataPath: data }),
      (e: Error) =>
        e instanceof InputError && /input "sr" \(INT64 \[\]\) is a constant the data does not hold: give its value with --input sr=VALUE/.test(e.message),
    );
    const p = await prepareAnalysis(modelPath, { dataPath: data, inputs: { sr: { value: 8000 } } });
    assert.deepEqual(p.data.description, [
      { name: 'x', kind: 'sample', shape: [K], decidedBy: 'data' },
      { name: 'h', kind: 'state', shape: [1, 1, K], from: 'hn', batchAxis: 1, decidedBy: 'inferred' },
      { name: 'sr', kind: 'constant', shape: [], value: [8000], decidedBy: 'option' },
    ]);
    // every sample is fed the float model's state after the previous sample
    const want = handStates();
    for (const [start, count] of [
      [0, S],
      [3, 4],
    ]) {
      const f = await feedsFor(p.data, start, count);
      assert.deepEqual(f.h.dims, [1, count, K]);
      assert.deepEqual(f.sr.dims, []);
      assert.equal((f.sr.data as BigInt64Array)[0], 8000n);
      const hd = f.h.data as Float32Array;
      for (let k = 0; k < count; k++) for (let j = 0; j < K; j++) assert.ok(Math.abs(hd[k * K + j] - want[start + k][j]) < 1e-5, `h[${start + k}][${j}]`);
    }
  });

  it('takes a constant from a 0-d array in the data, and settings from quantlens.json (flags win)', async () => {
    const d2 = path.join(dir, 'data2');
    fs.mkdirSync(d2);
    fs.copyFileSync(path.join(data, 'x.npy'), path.join(d2, 'x.npy'));
    fs.writeFileSync(path.join(d2, 'sr.npy'), Buffer.from(dump(BigInt64Array.from([16000n]), [])));
    const p = await prepareAnalysis(modelPath, { dataPath: d2 });
    assert.deepEqual(
      p.data.description!.find((i) => i.name === 'sr'),
      { name: 'sr', kind: 'constant', shape: [], value: [16000], decidedBy: 'data' },
    );
    const sub = path.join(dir, 'withsettings');
    fs.mkdirSync(sub);
    fs.copyFileSync(modelPath, path.join(sub, 'rnn.onnx'));
    fs.writeFileSync(path.join(sub, 'quantlens.json'), JSON.stringify({ inputs: { sr: { kind: 'constant', value: 4000 }, h: { kind: 'state', from: 'hn' } } }));
    const q = await prepareAnalysis(path.join(sub, 'rnn.onnx'), { dataPath: data });
    assert.deepEqual(q.data.description!.find((i) => i.name === 'sr')!.value, [4000]);
    assert.equal(q.data.description!.find((i) => i.name === 'h')!.decidedBy, 'option');
    const q2 = await prepareAnalysis(path.join(sub, 'rnn.onnx'), { dataPath: data, inputs: { sr: { value: 22050 } } });
    assert.deepEqual(q2.data.description!.find((i) => i.name === 'sr')!.value, [22050]);
    fs.writeFileSync(path.join(sub, 'quantlens.json'), JSON.stringify({ inputs: { sr: { kind: 'scalar' } } }));
    await assert.rejects(
      prepareAnalysis(path.join(sub, 'rnn.onnx'), { dataPath: data }),
      /quantlens\.json: inputs\.sr: kind must be sample, constant or state/,
    );
  });

  it('refuses what it cannot feed, naming the input', () => {
    const inputs = [
      { name: 'x', dataType: DT.FLOAT, dims: ['N', K] },
      { name: 'h', dataType: DT.FLOAT, dims: [1, 'N', 'T'] },
    ];
    const outs = [{ name: 'hn', dims: [] }];
    assert.throws(
      () => describeInputs('m.onnx', inputs, outs, { h: { kind: 'state', from: 'nope' } }, null),
      /state input "h" needs the model output that carries it, and the model has no output "nope": --state h=OUTPUT \(outputs: hn\)/,
    );
    assert.throws(
      () => describeInputs('m.onnx', inputs, outs, {}, null),
      /state input "h" \[1,N,T\] has 2 dynamic dims: give its shape with --input-shape h=1xNxN/,
    );
    assert.throws(() => describeInputs('m.onnx', inputs, outs, { y: { value: 1 } }, null), /m\.onnx has no input "y"/);
    assert.throws(() => describeInputs('m.onnx', [inputs[0]], [], { x: { kind: 'constant', value: [1, 2, 3, 4] } }, null), /no input is fed from the data/);
  });

  it('stacks per-sample states along the batch axis and moves it back to the front, by hand', () => {
    // per-sample state [2, 1, 3]: sample k holds values 100k + (0..5)
    const s = {
      name: 's',
      dataType: DT.FLOAT,
      from: 'sn',
      dims: [2, 1, 3],
      batchAxis: 1,
      values: Float32Array.from({ length: 4 * 6 }, (_, i) => 100 * Math.floor(i / 6) + (i % 6)),
    };
    const b = stateBatch(s, 1, 2);
    assert.deepEqual(b.dims, [2, 2, 3]);
    assert.deepEqual(Array.from(b.data), [100, 101, 102, 200, 201, 202, 103, 104, 105, 203, 204, 205]);
    const f = batchFirst(b.data, b.dims, 1);
    assert.deepEqual(f.dims, [2, 2, 3]);
    assert.deepEqual(Array.from(f.data), [100, 101, 102, 103, 104, 105, 200, 201, 202, 203, 204, 205]);
  });

  it('more samples asked for than the data holds: all are used, and a warning says so', async () => {
    const p = await prepareAnalysis(modelPath, { dataPath: data, samples: 25, inputs: { sr: { value: 16000 }, h: { kind: 'state', from: 'hn' } } });
    assert.equal(p.data.samples, S);
    const w = p.warnings.filter((x) => x.code === 'samples-capped');
    assert.deepEqual(
      w.map((x) => x.message),
      [`--samples 25: the data holds ${S} samples; every one of them is used`],
    );
    const exact = await prepareAnalysis(modelPath, { dataPath: data, samples: S, inputs: { sr: { value: 16000 }, h: { kind: 'state', from: 'hn' } } });
    assert.equal(exact.warnings.filter((x) => x.code === 'samples-capped').length, 0);
  });

  it('synthetic data takes the dims the user sets', async () => {
    const p = await prepareAnalysis(modelPath, { samples: 3, inputs: { sr: { value: 16000 }, x: { shape: [1, K] } } });
    assert.equal(p.data.synthetic, true);
    assert.deepEqual(p.data.inputs[0].shape, [K]);
  });
});
