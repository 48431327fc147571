/**
 * Lifting tensors out of If / Loop bodies, checked on real onnxruntime sessions against hand
 * computations and against onnxruntime's own outputs of the unchanged model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { liftTensors } from '../../engine/onnx/lift';
import { cloneModel, encodeModel } from '../../engine/onnx/model';
import { normalizeScopes } from '../../engine/onnx/scopes';
import { typedValueInfo } from '../../engine/onnx/slice';
import { DT, bodyGraph, buildModel, controlNode, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';

const run = async (model: Parameters<typeof encodeModel>[0], feeds: Record<string, ort.Tensor>) => {
  const s = await ort.InferenceSession.create(encodeModel(model));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
};
const f32 = (t: ort.Tensor) => Array.from(t.data as Float32Array);

/** If(c): then = Relu(Conv(x, [2,-1])), else = Sigmoid(Conv(x, [3,0.5])). */
function ifModel() {
  const thenG = bodyGraph('then', {
    nodes: [makeNode('Conv', ['x', 'w1'], ['t_conv'], 'Conv_t'), makeNode('Relu', ['t_conv'], ['t_out'], 'Relu_t')],
    inputs: [],
    outputs: [typedValueInfo('t_out', DT.FLOAT)],
    initializers: [makeTensor('w1', DT.FLOAT, [2, 1, 1, 1], [2, -1])],
  });
  const elseG = bodyGraph('else', {
    nodes: [makeNode('Conv', ['x', 'w2'], ['e_conv'], 'Conv_e'), makeNode('Sigmoid', ['e_conv'], ['e_out'], 'Sigmoid_e')],
    inputs: [],
    outputs: [typedValueInfo('e_out', DT.FLOAT)],
  });
  return buildModel({
    nodes: [controlNode('If', ['c'], ['y'], 'If_0', { then_branch: thenG, else_branch: elseG })],
    inputs: [valueInfo('x', ['N', 1, 2, 2]), valueInfo('c', [], DT.BOOL)],
    outputs: [valueInfo('y', ['N', 2, 2, 2])],
    // the else branch reads its weight from the enclosing scope
    initializers: [makeTensor('w2', DT.FLOAT, [2, 1, 1, 1], [3, 0.5])],
  });
}

const X = [1, -2, 3, 4];
const xT = () => new ort.Tensor('float32', Float32Array.from(X), [1, 1, 2, 2]);
const cond = (c: boolean) => new ort.Tensor('bool', [c], []);

test('If: each branch Conv lifted; the branch that ran gives its values, the other an empty tensor', async () => {
  const m = ifModel();
  const { lifted, refused } = liftTensors(m, ['t_conv', 'e_conv', 't_out']);
  assert.equal(refused.size, 0);
  const lt = lifted.get('t_conv')!;
  assert.equal(lt.conditional, true);
  assert.equal(lt.stackedAxes, 0);
  for (const c of [true, false]) {
    const r = await run(m, { x: xT(), c: cond(c) });
    const tc = r[lifted.get('t_conv')!.output];
    const ec = r[lifted.get('e_conv')!.output];
    const to = r[lifted.get('t_out')!.output];
    // by hand: a 1x1 Conv scales each channel by its weight
    const expThen = [...X.map((v) => 2 * v), ...X.map((v) => -v)];
    const expElse = [...X.map((v) => 3 * v), ...X.map((v) => 0.5 * v)];
    if (c) {
      assert.deepEqual(tc.dims, [1, 2, 2, 2]);
      assert.deepEqual(f32(tc), expThen);
      assert.equal(ec.type, 'float32');
      assert.deepEqual(ec.dims, [0]);
      // t_out is also the branch's own output (lifted through an Identity): equal to y
      assert.deepEqual(f32(to), f32(r.y));
      assert.deepEqual(
        f32(r.y),
        expThen.map((v) => Math.max(0, v)),
      );
    } else {
      assert.deepEqual(tc.dims, [0]);
      assert.deepEqual(to.dims, [0]);
      assert.deepEqual(f32(ec), expElse);
    }
  }
});

test('If: the lifted model computes the same main outputs as the original (onnxruntime)', async () => {
  const orig = ifModel();
  const m = cloneModel(orig);
  liftTensors(m, ['t_conv', 'e_conv']);
  for (const c of [true, false]) {
    const a = await run(orig, { x: xT(), c: cond(c) });
    const b = await run(m, { x: xT(), c: cond(c) });
    assert.deepEqual(f32(b.y), f32(a.y));
  }
});

test('nested If: a Conv two levels deep comes out through both If nodes', async () => {
  const inner = controlNode('If', ['c2'], ['i_y'], 'If_inner', {
    then_branch: bodyGraph('it', { nodes: [makeNode('Conv', ['x', 'w1'], ['deep'], 'Conv_deep')], inputs: [], outputs: [typedValueInfo('deep', DT.FLOAT)] }),
    else_branch: bodyGraph('ie', { nodes: [makeNode('Identity', ['x2'], ['i_e'], 'Id_e')], inputs: [], outputs: [typedValueInfo('i_e', DT.FLOAT)] }),
  });
  const outerThen = bodyGraph('ot', { nodes: [inner], inputs: [], outputs: [typedValueInfo('i_y', DT.FLOAT)] });
  const outerElse = bodyGraph('oe', { nodes: [makeNode('Identity', ['x2'], ['o_e'], 'Id_oe')], inputs: [], outputs: [typedValueInfo('o_e', DT.FLOAT)] });
  const m = buildModel({
    nodes: [
      makeNode('Concat', ['x', 'x'], ['x2'], 'cat', { axis: 1 }),
      controlNode('If', ['c1'], ['y'], 'If_outer', { then_branch: outerThen, else_branch: outerElse }),
    ],
    inputs: [valueInfo('x', [1, 1, 2, 2]), valueInfo('c1', [], DT.BOOL), valueInfo('c2', [], DT.BOOL)],
    outputs: [valueInfo('y', [1, 2, 2, 2])],
    initializers: [makeTensor('w1', DT.FLOAT, [2, 1, 1, 1], [2, -1])],
  });
  const { lifted } = liftTensors(m, ['deep']);
  const out = lifted.get('deep')!.output;
  const both = await run(m, { x: xT(), c1: cond(true), c2: cond(true) });
  assert.deepEqual(f32(both[out]), [...X.map((v) => 2 * v), ...X.map((v) => -v)]);
  assert.deepEqual(f32(both[out]), f32(both.y));
  for (const [c1, c2] of [
    [true, false],
    [false, true],
    [false, false],
  ]) {
    const r = await run(m, { x: xT(), c1: cond(c1), c2: cond(c2) });
    assert.deepEqual(r[out].dims, [0], `c1=${c1} c2=${c2}`);
  }
});

/** Loop M times: y = v * 2 (weight from the enclosing scope), v' = y + 1. */
function loopModel() {
  const body = bodyGraph('body', {
    nodes: [
      makeNode('Mul', ['v', 'two'], ['y'], 'Mul_b'),
      makeNode('Add', ['y', 'one'], ['v_next'], 'Add_b'),
      makeNode('Identity', ['cond_in'], ['cond_out'], 'Id_cond'),
    ],
    inputs: [valueInfo('iter', [], DT.INT64), valueInfo('cond_in', [], DT.BOOL), valueInfo('v', [2])],
    outputs: [valueInfo('cond_out', [], DT.BOOL), valueInfo('v_next', [2])],
    initializers: [makeTensor('one', DT.FLOAT, [], [1])],
  });
  return buildModel({
    nodes: [controlNode('Loop', ['M', '', 'x'], ['v_final'], 'Loop_0', { body })],
    inputs: [valueInfo('M', [], DT.INT64), valueInfo('x', [2])],
    outputs: [valueInfo('v_final', [2])],
    initializers: [makeTensor('two', DT.FLOAT, [], [2])],
  });
}

test('Loop: a body tensor comes out as a scan output, every iteration stacked on a new axis', async () => {
  const m = loopModel();
  const { lifted, refused } = liftTensors(m, ['y', 'v']);
  assert.equal(refused.size, 0);
  assert.equal(lifted.get('y')!.stackedAxes, 1);
  assert.equal(lifted.get('y')!.conditional, false);
  const x = [1, -3];
  const r = await run(m, { M: new ort.Tensor('int64', BigInt64Array.from([3n]), []), x: new ort.Tensor('float32', Float32Array.from(x), [2]) });
  // by hand: v0 = x; y1 = 2x, v1 = 2x+1; y2 = 4x+2, v2 = 4x+3; y3 = 8x+6, v3 = 8x+7
  const y = r[lifted.get('y')!.output];
  assert.deepEqual(y.dims, [3, 2]);
  assert.deepEqual(f32(y), [...x.map((v) => 2 * v), ...x.map((v) => 4 * v + 2), ...x.map((v) => 8 * v + 6)]);
  // a body INPUT (the carried value at the start of each iteration) goes through an Identity
  assert.deepEqual(f32(r[lifted.get('v')!.output]), [...x, ...x.map((v) => 2 * v + 1), ...x.map((v) => 4 * v + 3)]);
  assert.deepEqual(
    f32(r.v_final),
    x.map((v) => 8 * v + 7),
  );
});

test('an If inside a Loop body is refused with the reason; unknown tensors are named', () => {
  const branch = (n: string) =>
    bodyGraph(n, { nodes: [makeNode('Neg', ['v'], [`${n}_o`], `Neg_${n}`)], inputs: [], outputs: [typedValueInfo(`${n}_o`, DT.FLOAT)] });
  const body = bodyGraph('body', {
    nodes: [
      controlNode('If', ['cond_in'], ['w'], 'If_in', { then_branch: branch('a'), else_branch: branch('b') }),
      makeNode('Identity', ['cond_in'], ['cond_out'], 'Id'),
    ],
    inputs: [valueInfo('iter', [], DT.INT64), valueInfo('cond_in', [], DT.BOOL), valueInfo('v', [2])],
    outputs: [valueInfo('cond_out', [], DT.BOOL), valueInfo('w', [2])],
  });
  const m = buildModel({
    nodes: [controlNode('Loop', ['M', '', 'x'], ['z'], 'Loop_0', { body })],
    inputs: [valueInfo('M', [], DT.INT64), valueInfo('x', [2])],
    outputs: [valueInfo('z', [2])],
  });
  const { lifted, refused } = liftTensors(m, ['a_o', 'w', 'nope']);
  assert.match(refused.get('a_o')!, /within the body of Loop Loop_0/);
  assert.match(refused.get('nope')!, /not defined/);
  assert.equal(lifted.get('w')!.stackedAxes, 1);
});

test('normalizeScopes: qualified body node names, a value name reused by sibling branches made unique, same outputs in onnxruntime', async () => {
  const branch = (n: string, w: number) =>
    bodyGraph(n, {
      nodes: [
        makeNode('Constant', [], ['k'], '', { value: makeTensor('kv', DT.FLOAT, [], [w]) }),
        makeNode('Mul', ['x', 'k'], ['same'], 'mul'),
        makeNode('Neg', ['same'], [`${n}_o`], 'neg'),
      ],
      inputs: [],
      outputs: [typedValueInfo(`${n}_o`, DT.FLOAT)],
    });
  const m = buildModel({
    nodes: [controlNode('If', ['c'], ['y'], '', { then_branch: branch('a', 2), else_branch: branch('b', 3) })],
    inputs: [valueInfo('x', [2]), valueInfo('c', [], DT.BOOL)],
    outputs: [valueInfo('y', [2])],
  });
  const orig = cloneModel(m);
  const names = normalizeScopes(m);
  const [thenG, elseG] = m.graph!.node[0].attribute.map((a) => a.g!);
  assert.equal(m.graph!.node[0].name, 'If_0');
  assert.deepEqual(
    thenG.node.map((n) => n.name),
    ['If_0/then_branch/mul', 'If_0/then_branch/neg'],
  );
  assert.deepEqual(
    elseG.node.map((n) => n.name),
    ['If_0/else_branch/mul', 'If_0/else_branch/neg'],
  );
  assert.equal(names.get('If_0/else_branch/mul'), 'mul');
  // the Constants became body initializers; the else branch's 'same' (and 'k') got fresh names, its reads follow
  assert.deepEqual(
    thenG.initializer.map((t) => t.name),
    ['k'],
  );
  assert.notEqual(elseG.node[0].output[0], 'same');
  assert.equal(elseG.node[1].input[0], elseG.node[0].output[0]);
  assert.equal(elseG.node[0].input[1], elseG.initializer[0].name);
  for (const c of [true, false]) {
    const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, -2]), [2]), c: cond(c) };
    assert.deepEqual(f32((await run(m, feeds)).y), f32((await run(orig, feeds)).y));
    assert.deepEqual(f32((await run(m, feeds)).y), c ? [-2, 4] : [-3, 6]);
  }
});
