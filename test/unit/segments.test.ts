/**
 * segmentModels (engine/analysis/segments.ts): the float graph cut at tap groups. Each segment must
 * read only the data and what earlier segments carried, and the chain, run by onnxruntime, must
 * reproduce the whole model's tensors.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { GraphCuts, segmentModels } from '../../engine/analysis/segments';
import { encodeModel } from '../../engine/onnx/model';
import { DT, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';
import { model } from '../helpers/integerOnly';

// x -> a = Relu(x*w1) -> b = Tanh(a) -> c = Sigmoid(b) -> y = c + a (a skips two nodes)
const graph = () =>
  model({
    nodes: [
      makeNode('Mul', ['x', 'w1'], ['a0'], 'mul'),
      makeNode('Relu', ['a0'], ['a'], 'relu'),
      makeNode('Tanh', ['a'], ['b'], 'tanh'),
      makeNode('Sigmoid', ['b'], ['c'], 'sigmoid'),
      makeNode('Add', ['c', 'a'], ['y'], 'add'),
    ],
    inputs: [valueInfo('x', ['N', 4])],
    outputs: ['y'],
    initializers: [makeTensor('w1', DT.FLOAT, [4], [0.5, -1, 2, 3])],
    opset: 13,
  });
const float = () => DT.FLOAT;

describe('segmentModels', () => {
  it('cuts after each group, carries the skip connection, and ends at the graph outputs', () => {
    const s = segmentModels(new GraphCuts(graph(), float), [['a0', 'a'], ['b'], ['c']])!;
    assert.equal(s.length, 3);
    assert.deepEqual(
      s.map((x) => x.model.graph!.node.map((n) => n.name)),
      [['mul', 'relu'], ['tanh'], ['sigmoid', 'add']],
    );
    assert.deepEqual(
      s.map((x) => x.inputs),
      [['x'], ['a'], ['b', 'a']],
    );
    // `a` is read by the last segment too: carried from the first.
    assert.deepEqual(
      s.map((x) => x.carried),
      [['a'], ['b'], []],
    );
    assert.deepEqual(s[2].model.graph!.output.map((o) => o.name).sort(), ['c', 'y']);
    // each segment keeps only the initializers it reads
    assert.deepEqual(
      s.map((x) => x.model.graph!.initializer.map((t) => t.name)),
      [['w1'], [], []],
    );
  });

  it('refuses what it cannot cut: one group, out-of-order groups, unknown taps or carried types', () => {
    assert.equal(segmentModels(new GraphCuts(graph(), float), [['a', 'b']]), null);
    assert.equal(segmentModels(new GraphCuts(graph(), float), [['b'], ['a']]), null);
    assert.equal(segmentModels(new GraphCuts(graph(), float), [['a'], ['nowhere']]), null);
    assert.equal(segmentModels(new GraphCuts(graph(), () => undefined), [['a'], ['c']]), null);
  });

  it('run in a chain by onnxruntime, the segments give the whole model tensors exactly', async () => {
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 12 }, (_, i) => (i - 5) * 0.7),
      [3, 4],
    );
    const whole = graph();
    whole.graph!.output.push(...['a', 'b', 'c'].map((t) => valueInfo(t, ['N', 4])));
    const ref = await (await ort.InferenceSession.create(encodeModel(whole))).run({ x });
    const known: Record<string, ort.Tensor> = { x };
    for (const seg of segmentModels(new GraphCuts(graph(), float), [['a'], ['b'], ['c']])!) {
      const session = await ort.InferenceSession.create(encodeModel(seg.model));
      const res = await session.run(Object.fromEntries(seg.inputs.map((t) => [t, known[t]])));
      Object.assign(known, res);
      await session.release();
    }
    for (const t of ['a', 'b', 'c', 'y']) assert.deepEqual(Array.from(known[t].data as Float32Array), Array.from(ref[t].data as Float32Array), t);
  });
});
