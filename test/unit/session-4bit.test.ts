/**
 * onnxruntime 1.30 optimizes away the node producing a graph output between 4-bit com.microsoft
 * Q/DQ pairs (disable_quant_qdq, the simulated mode) and fetching that output kills the process
 * (SIGSEGV). createSession checks the optimized graph of models holding 4-bit tensors and refuses
 * with one line instead; the same graph with int8 runs and gives onnxruntime's fake-quant values.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { InputError } from '../../engine/errors';
import { createSession, runSession } from '../../engine/runtime/session';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';

/** x -> Q -> DQ (= a, a graph output) -> Relu -> Q -> DQ (= y), one scale 0.5, zero point 0. */
function qdqRelu(zeroPointType: DT) {
  const ms = 'com.microsoft';
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

describe('4-bit Q/DQ and onnxruntime\'s optimizer', () => {
  it('a graph output optimized away is refused with one line, not a crash', async () => {
    await assert.rejects(createSession(qdqRelu(DT.INT4), 'simulated', { label: 'quantized model of m.onnx' }), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /^quantized model of m\.onnx: onnxruntime \S+ optimizes away the node that produces a when 4-bit QuantizeLinear\/DequantizeLinear surround it/);
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
});
