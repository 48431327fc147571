/**
 * onnxruntime 1.30 corrupts its heap running com.microsoft 4-bit QuantizeLinear on activations
 * (the process aborts: "corrupted double-linked list", SIGSEGV), so createSession refuses graphs
 * that quantize a computed tensor to 4 bits, with one line; 4-bit weights (constant inputs) and
 * 8-bit activations run, and give onnxruntime's fake-quant values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { InputError } from '../../engine/errors';
import { createSession, runSession } from '../../engine/runtime/session';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';

const ms = 'com.microsoft';

/** x -> Q -> DQ (= a) -> Relu -> Q -> DQ (= y), one scale 0.5, zero point 0 of `zeroPointType`. */
function qdqRelu(zeroPointType: DT) {
  const m = buildModel({
    nodes: [
      makeNode('QuantizeLinear', ['x', 's', 'z'], ['xq'], 'q0', {}, ms),
      makeNode('DequantizeLinear', ['xq', 's', 'z'], ['a'], 'dq0', {}, ms),
      makeNode('Relu', ['a'], ['r'], 'relu'),
      makeNode('QuantizeLinear', ['r', 's', 'z'], ['rq'], 'q1', {}, ms),
      makeNode('DequantizeLinear', ['rq', 's', 'z'], ['y'], 'dq1', {}, ms),
    ],
    inputs: [valueInfo('x', [1, 4])],
    outputs: [valueInfo('y', [1, 4]), valueInfo('a', [1, 4])],
    initializers: [makeTensor('s', DT.FLOAT, [], [0.5]), makeTensor('z', zeroPointType, [], [0])],
  });
  m.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: ms, version: 1n }));
  return m;
}

describe('4-bit QuantizeLinear and onnxruntime', () => {
  it('4-bit activations are refused with one line naming the model and node, before onnxruntime sees them', async () => {
    await assert.rejects(createSession(qdqRelu(DT.INT4), 'simulated', { label: 'quantized model of m.onnx' }), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /^quantized model of m\.onnx: 4-bit activations \(QuantizeLinear q0\) cannot be run: onnxruntime \S+'s 4-bit QuantizeLinear/);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  it('the same graph in int8 runs: round(x / 0.5) * 0.5 clamped to int8, then Relu', async () => {
    const s = await createSession(qdqRelu(DT.INT8), 'simulated', { label: 'm.onnx' });
    const out = await runSession(s, { x: new ort.Tensor('float32', Float32Array.from([-1, 0.2, 1.3, 100]), [1, 4]) }, 'm.onnx');
    assert.deepEqual(Array.from(out.a.data as Float32Array), [-1, 0, 1.5, 63.5]);
    assert.deepEqual(Array.from(out.y.data as Float32Array), [0, 0, 1.5, 63.5]);
    await s.release();
  });

  it('4-bit weights (a constant dequantized) run: codes -8..7 times the scale', async () => {
    const m = buildModel({
      nodes: [makeNode('DequantizeLinear', ['wq', 's', 'z'], ['w'], 'dq', {}, ms), makeNode('Add', ['x', 'w'], ['y'], 'add')],
      inputs: [valueInfo('x', [4])],
      outputs: [valueInfo('y', [4])],
      initializers: [makeTensor('wq', DT.INT4, [4], [-8, -1, 0, 7]), makeTensor('s', DT.FLOAT, [], [0.5]), makeTensor('z', DT.INT4, [], [0])],
    });
    m.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: ms, version: 1n }));
    const s = await createSession(m, 'float', { label: 'w4.onnx' });
    const out = await runSession(s, { x: new ort.Tensor('float32', new Float32Array(4), [4]) }, 'w4.onnx');
    assert.deepEqual(Array.from(out.y.data as Float32Array), [-4, -0.5, 0, 3.5]);
    await s.release();
  });
});
