/**
 * In-graph output comparison (quantize/outputSums.ts): onnxruntime's per-sample sums and argmax
 * rows equal the same quantities computed here in float64 from the values, at every opset the
 * graph is written for (reduction axes as an attribute before opset 18, as an input from 18).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { argmaxRows } from '../../engine/analysis/metrics';
import { encodeModel } from '../../engine/onnx/model';
import { OUTPUT_SUMS, REF_PREFIX, SUMS_PER_OUTPUT, withOutputSums } from '../../engine/quantize/outputSums';
import { DT, buildModel, makeNode, makeTensor, randn, rng, valueInfo } from '../helpers/tinyModels';

const N = 5;
const r = rng(5);
// Two outputs of [N, 3, 7]: y = x * w (rows of 7 scores at 3 positions per sample) and z = Relu(y).
const X = Float32Array.from({ length: N * 3 * 7 }, () => randn(r) * 3);
const W = Float32Array.from({ length: 7 }, () => 0.5 + r());

function model(opset: number) {
  return buildModel({
    opset,
    nodes: [makeNode('Mul', ['x', 'w'], ['y'], 'mul'), makeNode('Relu', ['y'], ['z'], 'relu')],
    inputs: [valueInfo('x', ['N', 3, 7])],
    outputs: [valueInfo('y', ['N', 3, 7]), valueInfo('z', ['N', 3, 7])],
    initializers: [makeTensor('w', DT.FLOAT, [7], W)],
  });
}

describe('in-graph output sums', () => {
  for (const opset of [9, 13, 18]) {
    it(`opset ${opset}: per-sample sum y^2 and sum (x-y)^2 of two outputs, and the argmax rows, equal float64 sums of the values`, async () => {
      const m = withOutputSums(model(opset), ['y', 'z'], { name: 'y', rank: 3 });
      const original = await ort.InferenceSession.create(encodeModel(model(opset)));
      const plain = await original.run({ x: new ort.Tensor('float32', X, [N, 3, 7]) });
      await original.release();
      const session = await ort.InferenceSession.create(encodeModel(m.model));
      try {
        // references: the outputs themselves, perturbed
        const refs = Object.fromEntries(['y', 'z'].map((o) => [o, Float32Array.from(plain[o].data as Float32Array, (v) => v + randn(r) * 0.1)]));
        const res = await session.run(
          {
            x: new ort.Tensor('float32', X, [N, 3, 7]),
            [`${REF_PREFIX}y`]: new ort.Tensor('float32', refs.y, [N, 3, 7]),
            [`${REF_PREFIX}z`]: new ort.Tensor('float32', refs.z, [N, 3, 7]),
          },
          m.fetch,
        );
        const sums = res[OUTPUT_SUMS].data as Float32Array;
        assert.deepEqual(res[OUTPUT_SUMS].dims, [N, 2 * SUMS_PER_OUTPUT]);
        ['y', 'z'].forEach((o, j) => {
          const y = plain[o].data as Float32Array;
          const x = refs[o];
          for (let s = 0; s < N; s++) {
            let y2 = 0;
            let d2 = 0;
            for (let i = s * 21; i < (s + 1) * 21; i++) {
              y2 += y[i] * y[i];
              d2 += (x[i] - y[i]) ** 2;
            }
            const got = [sums[s * 4 + j * 2], sums[s * 4 + j * 2 + 1]];
            assert.ok(Math.abs(got[0] - y2) <= 1e-5 * y2, `${o} sample ${s} sum y^2 ${got[0]} vs ${y2}`);
            assert.ok(Math.abs(got[1] - d2) <= 1e-5 * d2, `${o} sample ${s} sum d^2 ${got[1]} vs ${d2}`);
          }
        });
        assert.deepEqual(Array.from(res[m.argmax!].data as BigInt64Array, Number), Array.from(argmaxRows(plain.y.data as Float32Array, 7)));
      } finally {
        await session.release();
      }
    });
  }
});
