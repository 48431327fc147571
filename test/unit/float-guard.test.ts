/**
 * A Conv/Gemm kept in float between quantized neighbours stays float in onnxruntime: without the
 * guard, onnxruntime 1.20+ quantizes its weights itself (per tensor) and fuses it into an integer
 * kernel, and below opset 11 the Round it inserts makes the model fail to load.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { cloneModel, encodeModel, loadModel } from '../../engine/onnx/model';
import { deployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed } from '../../engine/quantized/deployed';
import { guardFloatLayers } from '../../engine/quantize/floatGuard';
import type { NodeProto, TensorProto } from 'onnx-buf';
import { DT, bodyGraph, buildModel, controlNode, makeNode, makeTensor, randn, rng, tempDir, valueInfo } from '../helpers/tinyModels';

const dir = tempDir('quantlens-guard-');
after(() => process.env.KEEP || fs.rmSync(dir, { recursive: true, force: true }));

const r = rng(5);
const C = 4;
const K = 6;
const W = Float32Array.from({ length: K * C * 9 }, () => randn(r) * 0.3);
const B = Float32Array.from({ length: K }, () => randn(r) * 0.1);
const X = Float32Array.from({ length: 2 * C * 8 * 8 }, () => randn(r));
const S_IN = 4 / 127;
const S_OUT = 8 / 127;

/** x -> Q -> DQ -> Conv(float weight, float bias) -> Q -> DQ -> y: a float layer between quantized neighbours. */
function sandwich(opset: number) {
  const scalar = (name: string, v: number) => makeTensor(name, DT.FLOAT, [], [v]);
  // uint8 activations, which onnxruntime's x86 kernels fuse most widely
  const zero = (name: string) => makeTensor(name, DT.UINT8, [], [128]);
  return buildModel({
    opset,
    nodes: [
      makeNode('QuantizeLinear', ['x', 's_in', 'z_in'], ['xq'], 'q_in'),
      makeNode('DequantizeLinear', ['xq', 's_in', 'z_in'], ['xd'], 'dq_in'),
      makeNode('Conv', ['xd', 'w', 'b'], ['c'], 'conv', { pads: [1, 1, 1, 1] }),
      makeNode('QuantizeLinear', ['c', 's_out', 'z_out'], ['rq'], 'q_out'),
      makeNode('DequantizeLinear', ['rq', 's_out', 'z_out'], ['y'], 'dq_out'),
    ],
    inputs: [valueInfo('x', ['N', C, 8, 8])],
    outputs: [valueInfo('y', ['N', K, 8, 8])],
    initializers: [
      makeTensor('w', DT.FLOAT, [K, C, 3, 3], W),
      makeTensor('b', DT.FLOAT, [K], B),
      scalar('s_in', S_IN),
      zero('z_in'),
      scalar('s_out', S_OUT),
      zero('z_out'),
    ],
  });
}

/** The optimized graph onnxruntime runs with its default options, as a user's session would. */
async function optimizedOps(file: string): Promise<string[]> {
  const out = `${file}.opt.onnx`;
  const s = await ort.InferenceSession.create(file, { optimizedModelFilePath: out, logSeverityLevel: 3 });
  await s.release();
  return loadModel(out).proto.graph!.node.map((n) => n.opType);
}

async function run(file: string, extra?: Record<string, string>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3, ...(extra ? { extra: { session: extra } } : {}) });
  const res = await s.run({ x: new ort.Tensor('float32', X, [2, C, 8, 8]) });
  await s.release();
  return res.y.data as Float32Array;
}

function write(name: string, model: ReturnType<typeof sandwich>): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, encodeModel(model));
  return file;
}

describe('float guard', () => {
  it('without it onnxruntime fuses the float Conv into an integer kernel (the premise)', async () => {
    const ops = await optimizedOps(write('bare13.onnx', sandwich(13)));
    assert.ok(ops.includes('QLinearConv'), ops.join(','));
  });

  it('without it a model below opset 11 does not load (onnxruntime inserts Round)', async () => {
    await assert.rejects(ort.InferenceSession.create(write('bare10.onnx', sandwich(10)), { logSeverityLevel: 3 }), /Round/);
  });

  for (const opset of [10, 13]) {
    it(`keeps the Conv in float at opset ${opset}: no integer kernel, and the fake-quant result exactly`, async () => {
      const model = cloneModel(sandwich(opset));
      assert.deepEqual(guardFloatLayers(model), ['conv']);
      const file = write(`guarded${opset}.onnx`, model);
      const ops = await optimizedOps(file);
      assert.ok(!ops.some((o) => /^QLinear|^QGemm/.test(o)), ops.join(','));
      // With QDQ fusion on (a user's defaults) and off (fake quantization), the same codes: the
      // Conv ran in float both times; only float rounding between Conv kernels can move a code.
      const fused = await run(file);
      const fake = await run(file, { disable_quant_qdq: '1' });
      let moved = 0;
      for (let i = 0; i < fused.length; i++) {
        const d = Math.abs(fused[i] - fake[i]) / S_OUT;
        assert.ok(d < 1 + 1e-6, `element ${i} differs by ${d} steps`);
        if (d > 0.5) moved++;
      }
      assert.ok(moved <= fused.length * 0.01, `${moved} codes moved`);
    });
  }

  // onnxruntime moves a DequantizeLinear across data-movement ops, turns MatMul + bias Add into a
  // Gemm and inlines an If on a constant condition: the float layer then reads it directly.
  const G = Float32Array.from({ length: K * C * 64 }, () => randn(r) * 0.1);
  const scalarT = (name: string, v: number) => makeTensor(name, DT.FLOAT, [], [v]);
  const zeroT = (name: string) => makeTensor(name, DT.UINT8, [], [128]);
  const grids = () => [scalarT('s_in', S_IN), zeroT('z_in'), scalarT('s_out', S_OUT), zeroT('z_out')];
  const wrapped = (opset: number, middle: NodeProto[], layer: NodeProto, inits: TensorProto[], outDims: (number | string)[]) =>
    buildModel({
      opset,
      nodes: [
        makeNode('QuantizeLinear', ['x', 's_in', 'z_in'], ['xq'], 'q_in'),
        makeNode('DequantizeLinear', ['xq', 's_in', 'z_in'], ['xd'], 'dq_in'),
        ...middle,
        layer,
        makeNode('QuantizeLinear', ['c', 's_out', 'z_out'], ['cq'], 'q_out'),
        makeNode('DequantizeLinear', ['cq', 's_out', 'z_out'], ['y'], 'dq_out'),
      ],
      inputs: [valueInfo('x', ['N', C, 8, 8])],
      outputs: [valueInfo('y', outDims)],
      initializers: [...grids(), ...inits],
    });
  const conv = (input: string) => makeNode('Conv', [input, 'w', 'b'], ['c'], 'layer', { pads: [1, 1, 1, 1] });
  const convInits = () => [makeTensor('w', DT.FLOAT, [K, C, 3, 3], W), makeTensor('b', DT.FLOAT, [K], B)];
  const cases: [string, number, () => ReturnType<typeof buildModel>][] = [
    [
      'DQ -> MaxPool -> Conv',
      13,
      () => wrapped(13, [makeNode('MaxPool', ['xd'], ['m'], 'pool', { kernel_shape: [2, 2], strides: [2, 2] })], conv('m'), convInits(), ['N', K, 4, 4]),
    ],
    [
      'DQ -> Transpose -> Conv',
      10,
      () => wrapped(10, [makeNode('Transpose', ['xd'], ['t'], 'tr', { perm: [0, 1, 3, 2] })], conv('t'), convInits(), ['N', K, 8, 8]),
    ],
    [
      'DQ -> Reshape -> Gemm',
      10,
      () =>
        wrapped(
          10,
          [makeNode('Reshape', ['xd', 'shape'], ['f'], 'flat')],
          makeNode('Gemm', ['f', 'w', 'b'], ['c'], 'layer', { transB: 1 }),
          [
            makeTensor('shape', DT.INT64, [2], BigInt64Array.from([-1n, BigInt(C * 64)])),
            makeTensor('w', DT.FLOAT, [K, C * 64], G),
            makeTensor('b', DT.FLOAT, [K], B),
          ],
          ['N', K],
        ),
    ],
    [
      'DQ -> Reshape -> MatMul + Add (a Gemm to onnxruntime)',
      13,
      () => {
        const m = wrapped(
          13,
          [makeNode('Reshape', ['xd', 'shape'], ['f'], 'flat'), makeNode('MatMul', ['f', 'w'], ['mm'], 'layer')],
          makeNode('Add', ['mm', 'b'], ['c'], 'bias'),
          [
            makeTensor('shape', DT.INT64, [2], BigInt64Array.from([-1n, BigInt(C * 64)])),
            makeTensor('w', DT.FLOAT, [C * 64, K], G),
            makeTensor('b', DT.FLOAT, [K], B),
          ],
          ['N', K],
        );
        return m;
      },
    ],
    [
      'a MatMul of two dequantized tensors (MatMulIntegerToFloat)',
      13,
      () =>
        wrapped(
          13,
          [makeNode('Transpose', ['xd'], ['xt'], 'tr', { perm: [0, 1, 3, 2] })],
          makeNode('MatMul', ['xd', 'xt'], ['c'], 'layer'),
          [],
          ['N', C, 8, 8],
        ),
    ],
    [
      'an If branch reading the enclosing DQ, inlined on a constant condition',
      10,
      () => {
        const branch = (name: string) =>
          bodyGraph(name, {
            nodes: [
              makeNode('Conv', ['xd', 'w', 'b'], [`c_${name}`], `layer_${name}`, { pads: [1, 1, 1, 1] }),
              makeNode('QuantizeLinear', [`c_${name}`, 's_out', 'z_out'], [`q_${name}`], `q_${name}`),
              makeNode('DequantizeLinear', [`q_${name}`, 's_out', 'z_out'], [`o_${name}`], `dq_${name}`),
            ],
            inputs: [],
            outputs: [valueInfo(`o_${name}`, ['N', K, 8, 8])],
          });
        return buildModel({
          opset: 10,
          nodes: [
            makeNode('QuantizeLinear', ['x', 's_in', 'z_in'], ['xq'], 'q_in'),
            makeNode('DequantizeLinear', ['xq', 's_in', 'z_in'], ['xd'], 'dq_in'),
            makeNode('Greater', ['ca', 'cb'], ['cond'], 'gt'),
            controlNode('If', ['cond'], ['y'], 'if', { then_branch: branch('t'), else_branch: branch('e') }),
          ],
          inputs: [valueInfo('x', ['N', C, 8, 8])],
          outputs: [valueInfo('y', ['N', K, 8, 8])],
          initializers: [...grids(), ...convInits(), makeTensor('ca', DT.FLOAT, [], [1]), makeTensor('cb', DT.FLOAT, [], [0])],
        });
      },
    ],
  ];
  for (const [what, opset, build] of cases) {
    it(`${what} (opset ${opset}): onnxruntime quantizes it unguarded, and runs it in float guarded`, async () => {
      const bare = write(`bare-${what.replace(/\W+/g, '_')}.onnx`, build());
      const before = await optimizedOps(bare).catch((e: Error) => e.message);
      assert.ok(typeof before === 'string' ? /Round/.test(before) : before.some((o) => /^QLinear|^QGemm/.test(o)), `premise: ${before}`);
      const model = cloneModel(build());
      assert.ok(guardFloatLayers(model).length > 0);
      const ops = await optimizedOps(write(`guarded-${what.replace(/\W+/g, '_')}.onnx`, model));
      assert.ok(!ops.some((o) => /^QLinear|^QGemm/.test(o)), ops.join(','));
    });
  }

  it('leaves quantized layers, float layers not reading a DequantizeLinear, and unguarded nodes alone', () => {
    const quantizedWeight = cloneModel(sandwich(13));
    const g = quantizedWeight.graph!;
    g.initializer.push(makeTensor('wq', DT.INT8, [K, C, 3, 3], new Int8Array(W.length)), makeTensor('s_w', DT.FLOAT, [], [0.01]));
    g.node.unshift(makeNode('DequantizeLinear', ['wq', 's_w'], ['wd'], 'dq_w'));
    g.node.find((n) => n.name === 'conv')!.input[1] = 'wd';
    assert.deepEqual(guardFloatLayers(quantizedWeight), []);

    const floatInput = cloneModel(sandwich(13));
    floatInput.graph!.node.find((n) => n.name === 'conv')!.input[0] = 'x';
    assert.deepEqual(guardFloatLayers(floatInput), []);

    const unguarded = cloneModel(sandwich(13));
    assert.deepEqual(
      guardFloatLayers(unguarded, (n) => n !== 'conv'),
      [],
    );
    assert.equal(unguarded.graph!.node.length, 5);
  });
});

describe('an already-quantized file is analyzed as onnxruntime runs it', () => {
  it("its own float Conv between DQ and Q is not guarded: the report shows onnxruntime's integer kernel", async () => {
    const file = write('deployed13.onnx', sandwich(13));
    const d = deployedModel(loadModel(file))!;
    const p = await prepareDeployed(d, { samples: 4 });
    const q = await quantizeDeployed(p, d);
    assert.ok(q.plan.unguarded?.has('conv'));
    const report = await evaluateDeployed(p, d, q, { sensitivity: false, integerDiff: false });
    const conv = report.layers.find((l) => l.node === 'conv');
    assert.equal(conv?.deployedKernel, 'QLinearConv');
  });
});
