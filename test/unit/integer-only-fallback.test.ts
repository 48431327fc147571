/**
 * The float fallback (engine/integerOnly/floatFallback.ts): a node with no integer lowering runs
 * alone in onnxruntime between a dequantize of its inputs and a quantize of its outputs. The
 * expectation is onnxruntime's own result for the whole model on the same dequantized input,
 * quantized onto the same output grid: the two must agree code for code. Each such node is named
 * in `floatOps` with its reason; raw tensors (bool, int64) pass through untouched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, GraphProtoSchema } from 'onnx-buf';
import { makeNode, makeTensor, DT, rng, valueInfo } from '../helpers/tinyModels';
import { I8, codesOf, floatRun, grid, integerRun, model, onGrid, tensor, uniform } from '../helpers/integerOnly';
import { quantize } from '../../engine/quantize/scheme';
import { compile } from '../../engine/integerOnly';
import { InputError } from '../../engine/errors';

const r = rng(31337);

describe('float fallback', () => {
  it('Tanh forced to float: onnxruntime on the dequantized input, quantized; named with the reason', async () => {
    const gx = grid(-3, 3, I8),
      gy = grid(-1, 1, I8);
    const m = model({ nodes: [makeNode('Tanh', ['x'], ['y'], 'tanh')], inputs: [valueInfo('x', ['N', 20])], outputs: ['y'] });
    const x = uniform(r, 40, -3, 3);
    const run = await integerRun(m, { x: tensor(x, [2, 20]) }, { free: { x: gx, y: gy }, forceFloat: ['Tanh'] });
    assert.deepEqual(run.program.floatOps, [{ node: 'tanh', op: 'Tanh', reason: 'run in float by request' }]);
    assert.deepEqual(run.program.describe(), ['[float] Tanh (float) tanh']);
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 20]) })).y.data as Float32Array;
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      Array.from(ref, (v) => quantize(v, gy)),
    );
  });

  it("LSTM (no integer lowering; batch on axis 1, two outputs): both outputs equal onnxruntime's, quantized", async () => {
    const [S, B, I, H] = [4, 2, 3, 5];
    const gx = grid(-1, 1, I8),
      gyy = grid(-1, 1, I8),
      gyh = grid(-1, 1, I8);
    const m = model({
      nodes: [makeNode('LSTM', ['x', 'W', 'R', 'Bias'], ['Y', 'Y_h'], 'lstm', { hidden_size: H })],
      inputs: [valueInfo('x', [S, B, I])],
      outputs: ['Y', 'Y_h'],
      initializers: [
        makeTensor('W', DT.FLOAT, [1, 4 * H, I], uniform(r, 4 * H * I, -0.5, 0.5)),
        makeTensor('R', DT.FLOAT, [1, 4 * H, H], uniform(r, 4 * H * H, -0.5, 0.5)),
        makeTensor('Bias', DT.FLOAT, [1, 8 * H], uniform(r, 8 * H, -0.1, 0.1)),
      ],
    });
    const x = uniform(r, S * B * I, -1, 1);
    const run = await integerRun(m, { x: tensor(x, [S, B, I]) }, { free: { x: gx, Y: gyy, Y_h: gyh } });
    assert.deepEqual(run.program.floatOps, [{ node: 'lstm', op: 'LSTM', reason: 'no integer lowering for LSTM' }]);
    const ref = await floatRun(m, { x: tensor(onGrid(x, gx).real, [S, B, I]) });
    assert.deepEqual(run.out.get('Y')!.dims, [S, 1, B, H]);
    assert.deepEqual(
      Array.from(codesOf(run.out.get('Y'))),
      Array.from(ref.Y.data as Float32Array, (v) => quantize(v, gyy)),
    );
    assert.deepEqual(
      Array.from(codesOf(run.out.get('Y_h'))),
      Array.from(ref.Y_h.data as Float32Array, (v) => quantize(v, gyh)),
    );
  });

  it('If with branches reading outer-scope tensors (an activation and constants), a bool condition passed through, Not on a raw bool', async () => {
    const branch = (name: string, op: string, k: string) =>
      create(GraphProtoSchema, { name, node: [makeNode(op, ['x', k], ['out'], `${name}_${op}`)], output: [valueInfo('out', ['N', 6])] });
    const ifNode = makeNode('If', ['cond'], ['y'], 'if');
    ifNode.attribute.push(
      create(AttributeProtoSchema, { name: 'then_branch', type: AT.GRAPH, g: branch('then', 'Add', 'c') }),
      create(AttributeProtoSchema, { name: 'else_branch', type: AT.GRAPH, g: branch('else', 'Mul', 'k') }),
    );
    const m = model({
      nodes: [makeNode('Relu', ['x0'], ['x'], 'relu'), ifNode, makeNode('Not', ['cond'], ['ncond'], 'not'), makeNode('Identity', ['cond'], ['cond2'], 'id')],
      inputs: [valueInfo('x0', ['N', 6]), valueInfo('cond', [], DT.BOOL)],
      outputs: ['y', 'ncond', 'cond2'],
      initializers: [makeTensor('c', DT.FLOAT, [6], uniform(r, 6, -1, 1)), makeTensor('k', DT.FLOAT, [], [-1.5])],
    });
    const gx = grid(-2, 2),
      gy = grid(-3, 3, I8);
    const x = uniform(r, 12, -2, 2);
    for (const c of [true, false]) {
      const cond = new ort.Tensor('bool', Uint8Array.of(c ? 1 : 0), []);
      const run = await integerRun(m, { x0: tensor(x, [2, 6]), cond }, { free: { x0: gx, y: gy } });
      assert.deepEqual(
        run.program.floatOps.map((f) => `${f.op} ${f.node}`),
        ['If if', 'Not not'],
      );
      assert.ok(run.program.ctx.isCodes('y'), 'the If output reads an activation through its branches');
      const xr = Float32Array.from(onGrid(x, gx).codes, (q) => Math.max(0, (q - gx.zeroPoint) * gx.scale));
      const ref = await floatRun(m, { x0: tensor(xr, [2, 6]), cond });
      assert.deepEqual(
        Array.from(codesOf(run.out.get('y'))),
        Array.from(ref.y.data as Float32Array, (v) => quantize(v, gy)),
        `cond ${c}`,
      );
      const ncond = run.out.get('ncond')!,
        cond2 = run.out.get('cond2')!;
      assert.ok(ncond.kind === 'raw' && ncond.type === 'bool' && ncond.data[0] === (c ? 0 : 1));
      assert.ok(cond2.kind === 'raw' && cond2.type === 'bool' && cond2.data[0] === (c ? 1 : 0));
    }
  });

  it('a node onnxruntime cannot run alone fails at compile time with one line naming the node', async () => {
    const m = model({ nodes: [makeNode('NoSuchOp', ['x'], ['y'], 'bogus', {}, 'com.example')], inputs: [valueInfo('x', ['N', 2])], outputs: ['y'] });
    const types = new Map<string, ort.Tensor.Type>([
      ['x', 'float32'],
      ['y', 'float32'],
    ]);
    await assert.rejects(
      compile({ model: m, dir: '.', planned: new Map(), free: () => grid(0, 2), weights: [], types }),
      (e: Error) => e instanceof InputError && /NoSuchOp bogus/.test(e.message) && /operator domain com.example/.test(e.message) && !e.message.includes('\n'),
    );
  });
});
