/**
 * Integer-only executor, I-BERT op families (engine/integerOnly/ops: softmax, gelu, layerNorm):
 * each run through the executor and compared with onnxruntime's float op on the same dequantized
 * input. The bounds are the kernels' own approximation errors (the paper's polynomials:
 * i-exp ~1e-3 on probabilities, the erf polynomial 1.8e-2 absolute), not the code's output.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeNode, makeTensor, DT, rng, valueInfo } from '../helpers/tinyModels';
import { I8, codesOf, floatRun, grid, integerRun, maxAbsDiff, model, onGrid, real, tensor, uniform } from '../helpers/integerOnly';

const r = rng(99);

describe('softmax: Softmax -> i-Softmax', () => {
  const gx = grid(-8, 8, I8);

  it('last axis (opset 13): 16-bit probabilities within 2e-3 of onnxruntime, rows summing to 1; the error is reported', async () => {
    const m = model({ nodes: [makeNode('Softmax', ['x'], ['y'], 'sm', { axis: -1 })], inputs: [valueInfo('x', ['N', 3, 10])], outputs: ['y'] });
    const x = uniform(r, 60, -8, 8);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 10]) }, { free: { x: gx } });
    const y = codesOf(run.out.get('y'));
    const g = run.program.gridOf('y')!;
    assert.deepEqual(g, { scale: 2 ** -16, zeroPoint: 0, qmin: 0, qmax: 65535 });
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 3, 10]) })).y.data as Float32Array;
    const err = maxAbsDiff(real(y, g), ref);
    assert.ok(err < 2e-3, `max error ${err}`);
    for (let row = 0; row < 6; row++) {
      const s = real(y, g)
        .subarray(row * 10, row * 10 + 10)
        .reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - 1) < 1e-2, `row ${row} sums to ${s}`);
    }
    const k = run.stats.kernelAcc!.get('sm')!;
    assert.equal(k.count, 60);
    assert.ok(Math.abs(k.result().maxAbs - err) < 1e-6, 'the reported kernel error is the error against the float op');
  });

  it('opset 11 axis 1 (softmax over the flattened trailing axes) and opset 13 axis 1 (a middle axis)', async () => {
    for (const opset of [11, 13]) {
      const m = model({ nodes: [makeNode('Softmax', ['x'], ['y'], 'sm', { axis: 1 })], inputs: [valueInfo('x', ['N', 3, 4])], outputs: ['y'], opset });
      const x = uniform(r, 24, -8, 8);
      const run = await integerRun(m, { x: tensor(x, [2, 3, 4]) }, { free: { x: gx } });
      const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 3, 4]) })).y.data as Float32Array;
      assert.deepEqual(run.out.get('y')!.dims, [2, 3, 4]);
      assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), run.program.gridOf('y')!), ref) < 2e-3, `opset ${opset}`);
    }
  });

  it('a planned int8 output grid gets one rescale from the 16-bit probabilities', async () => {
    const gy = grid(0, 1, I8);
    const m = model({ nodes: [makeNode('Softmax', ['x'], ['y'], 'sm')], inputs: [valueInfo('x', ['N', 8])], outputs: ['y'] });
    const x = uniform(r, 16, -8, 8);
    const run = await integerRun(m, { x: tensor(x, [2, 8]) }, { planned: { x: gx, y: gy } });
    assert.deepEqual(run.program.gridOf('y'), gy);
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 8]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref) <= gy.scale / 2 + 2e-3);
  });
});

describe('gelu: the Erf GELU pattern -> i-GELU', () => {
  const gx = grid(-4, 4, I8);
  const consts = [
    makeTensor('sqrt2', DT.FLOAT, [], [Math.SQRT2]),
    makeTensor('isqrt2', DT.FLOAT, [], [Math.SQRT1_2]),
    makeTensor('one', DT.FLOAT, [], [1]),
    makeTensor('half', DT.FLOAT, [], [0.5]),
  ];

  it('x / sqrt2 -> Erf -> + 1 -> * x -> * 0.5: five nodes taken over, within the erf polynomial error (1.8e-2 |x|/2 + half a step) of onnxruntime', async () => {
    const m = model({
      nodes: [
        makeNode('Div', ['x', 'sqrt2'], ['d'], 'div'),
        makeNode('Erf', ['d'], ['e'], 'erf'),
        makeNode('Add', ['e', 'one'], ['a'], 'add'),
        makeNode('Mul', ['x', 'a'], ['p'], 'mul'),
        makeNode('Mul', ['p', 'half'], ['y'], 'half'),
      ],
      inputs: [valueInfo('x', ['N', 64])],
      outputs: ['y'],
      initializers: consts,
    });
    const x = uniform(r, 128, -4, 4);
    const run = await integerRun(m, { x: tensor(x, [2, 64]) }, { free: { x: gx } });
    assert.deepEqual(run.program.ops, { Div: 1, Erf: 1, Add: 1, Mul: 2 });
    assert.deepEqual(run.program.kernels, [{ node: 'erf', kernel: 'i-GELU' }]);
    const g = run.program.gridOf('y')!;
    const xr = onGrid(x, gx).real;
    const ref = (await floatRun(m, { x: tensor(xr, [2, 64]) })).y.data as Float32Array;
    const y = real(codesOf(run.out.get('y')), g);
    for (let i = 0; i < y.length; i++)
      assert.ok(Math.abs(y[i] - ref[i]) <= 0.0182 * Math.max(1, Math.abs(xr[i]) / 2) + g.scale, `x=${xr[i]}: ${y[i]} vs ${ref[i]}`);
  });

  it('the x * 1/sqrt2 start and the * 0.5 -> * x tail order are matched too; forcing Erf to float breaks the pattern', async () => {
    const nodes = [
      makeNode('Mul', ['isqrt2', 'x'], ['d'], 'mul0'),
      makeNode('Erf', ['d'], ['e'], 'erf'),
      makeNode('Add', ['one', 'e'], ['a'], 'add'),
      makeNode('Mul', ['a', 'half'], ['p'], 'mulh'),
      makeNode('Mul', ['p', 'x'], ['y'], 'mulx'),
    ];
    const m = model({ nodes, inputs: [valueInfo('x', ['N', 16])], outputs: ['y'], initializers: consts });
    const x = uniform(r, 16, -4, 4);
    const run = await integerRun(m, { x: tensor(x, [1, 16]) }, { free: { x: gx } });
    assert.deepEqual(run.program.kernels, [{ node: 'erf', kernel: 'i-GELU' }]);
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [1, 16]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), run.program.gridOf('y')!), ref) < 0.0182 * 2 + 1e-3);

    const grids = { x: gx, e: grid(-1, 1, I8), a: grid(0, 2), p: grid(0, 1), y: grid(-1, 4) };
    const forced = await integerRun(m, { x: tensor(x, [1, 16]) }, { free: grids, forceFloat: ['erf'] });
    assert.deepEqual(forced.program.kernels, []);
    assert.deepEqual(forced.program.floatOps, [{ node: 'erf', op: 'Erf', reason: 'run in float by request' }]);
  });
});

describe('layerNorm: LayerNormalization -> i-LayerNorm', () => {
  it('opset 17, last axis: within 1e-3 of onnxruntime on the kernel grid, and half a step + 1e-3 on a planned int8 grid', async () => {
    const gx = grid(-3, 5);
    const gamma = uniform(r, 16, 0.5, 1.5),
      beta = uniform(r, 16, -0.5, 0.5);
    const m = model({
      nodes: [makeNode('LayerNormalization', ['x', 'g', 'b'], ['y'], 'ln', { axis: -1, epsilon: { float: 1e-5 } })],
      inputs: [valueInfo('x', ['N', 4, 16])],
      outputs: ['y'],
      initializers: [makeTensor('g', DT.FLOAT, [16], gamma), makeTensor('b', DT.FLOAT, [16], beta)],
      opset: 17,
    });
    const x = uniform(r, 128, -3, 5);
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 4, 16]) })).y.data as Float32Array;
    const run = await integerRun(m, { x: tensor(x, [2, 4, 16]) }, { free: { x: gx } });
    assert.equal(run.program.gridOf('y')!.zeroPoint, 0);
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), run.program.gridOf('y')!), ref) < 1e-3);
    assert.deepEqual(run.program.kernels, [{ node: 'ln', kernel: 'i-LayerNorm' }]);
    const gy = grid(-3, 3, I8);
    const planned = await integerRun(m, { x: tensor(x, [2, 4, 16]) }, { planned: { x: gx, y: gy } });
    assert.deepEqual(planned.program.gridOf('y'), gy);
    assert.ok(maxAbsDiff(real(codesOf(planned.out.get('y')), gy), ref) <= gy.scale / 2 + 1e-3);
  });
});
