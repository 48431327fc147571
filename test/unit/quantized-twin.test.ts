/**
 * Float twins of quantized operators against onnxruntime's own integer kernels: each tiny model
 * takes inputs that lie exactly on their grid (so input quantization is exact), runs quantized in
 * onnxruntime, and its twin runs in float; the two must agree to the output grid's rounding (half
 * a step, one step where the kernel's fixed-point requantization rounds the other way). Weights
 * dequantized by the twin are checked against (code - zero point) x scale computed here.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, describe, it } from 'node:test';
import { InputError } from '../../engine/errors';
import { loadModel } from '../../engine/onnx/model';
import { deployedModel } from '../../engine/quantized/deployed';
import { makeNode as mk } from '../../engine/onnx/graph';
import { readFloatTensor } from '../../engine/onnx/tensor';
import type { buildTwin } from '../../engine/quantized/twin';
import { detectQuantization } from '../../engine/quantized/detect';
import { type Grid, gridInits, maxAbsDiff, onGrid, quantizedModel, runBoth } from '../helpers/quantizedModels';
import { DT, makeTensor, rng, tempDir, writeModel } from '../helpers/tinyModels';
import { SATURATING_INT8 } from '../helpers/cpu';

const r = rng(7);
const X: Grid = { scale: 0.05, zp: 10, type: DT.UINT8 };
const Y: Grid = { scale: 0.1, zp: 128, type: DT.UINT8 };
/** Half an output step, with room for the float32 rounding of the kernel's requantization multiplier. */
const HALF_STEP = Y.scale * 0.5 * 1.001;
const int8 = (n: number, lo = -100, hi = 100) => Int32Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));

/** x (float, on X's grid) -> QuantizeLinear -> `op` -> DequantizeLinear(Y) -> y */
function wrap(
  op: ReturnType<typeof mk>,
  inits: ReturnType<typeof makeTensor>[],
  xDims: number[],
  yDims: number[],
  extra: { nodes?: ReturnType<typeof mk>[]; inputs?: [string, number[]][] } = {},
) {
  return quantizedModel({
    nodes: [
      mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q_x'),
      ...(extra.nodes ?? []),
      op,
      mk('DequantizeLinear', ['yq', 'y_s', 'y_zp'], ['y'], 'dq_y'),
    ],
    inputs: [['x', xDims], ...(extra.inputs ?? [])],
    outputs: [['y', yDims]],
    initializers: [...gridInits('x', X), ...gridInits('y', Y), ...inits],
  });
}

const opsOf = (t: ReturnType<typeof buildTwin>) => t.model.graph!.node.map((n) => n.opType);
const init = (t: ReturnType<typeof buildTwin>, name: string) => readFloatTensor(t.model.graph!.initializer.find((i) => i.name === name)!, '').data;

describe('QOperator twins agree with onnxruntime within the output grid', () => {
  it('QLinearConv (ONNX) with per-channel int8 weights and an int32 bias', async () => {
    const ws = [0.01, 0.02, 0.015];
    const w = int8(3 * 2 * 9, -30, 30);
    const b = Int32Array.from([1000, -2000, 500]);
    const model = wrap(
      mk('QLinearConv', ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp', 'y_s', 'y_zp', 'b'], ['yq'], 'conv', { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
      [makeTensor('w', DT.INT8, [3, 2, 3, 3], w), ...gridInits('w', { scale: ws, zp: [0, 0, 0], type: DT.INT8 }), makeTensor('b', DT.INT32, [3], b)],
      [1, 2, 5, 5],
      [1, 3, 5, 5],
    );
    const x = onGrid(50, X, r, 0, 120);
    const { quantized, twin, t } = await runBoth(model, { x: { data: x, dims: [1, 2, 5, 5] } });
    assert.deepEqual(opsOf(t), ['Conv']);
    assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP, `max diff ${maxAbsDiff(quantized, twin, Y)}`);
    const conv = t.model.graph!.node[0];
    const wf = init(t, conv.input[1]);
    for (let i = 0; i < w.length; i++) assert.equal(wf[i], Math.fround(w[i] * Math.fround(ws[Math.floor(i / 18)])));
    const bf = init(t, conv.input[2]);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(bf[c] - b[c] * 0.05 * ws[c]) < 1e-6);
    // The twin keeps the file's grids: the input's and the output's, exactly.
    assert.equal(t.grids.get('x')!.scale, Math.fround(0.05));
    assert.equal(t.grids.get(conv.output[0])!.zeroPoint, 128);
    assert.deepEqual([...t.constants.get(conv.input[1])!.codes], [...w]);
  });

  it('com.microsoft QLinearConv in channels-last layout gets transposes around an NCHW Conv', async () => {
    const w = int8(4 * 2 * 9, -30, 30);
    const model = wrap(
      mk(
        'QLinearConv',
        ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp', 'y_s', 'y_zp'],
        ['yq'],
        'conv_token_3',
        { pads: [1, 1, 1, 1], kernel_shape: [3, 3], channels_last: 1 },
        'com.microsoft',
      ),
      [makeTensor('w', DT.INT8, [4, 2, 3, 3], w), ...gridInits('w', { scale: 0.02, zp: 0, type: DT.INT8 })],
      [1, 5, 5, 2],
      [1, 5, 5, 4],
    );
    const x = onGrid(50, X, r, 0, 120);
    const { quantized, twin, t } = await runBoth(model, { x: { data: x, dims: [1, 5, 5, 2] } });
    assert.deepEqual(opsOf(t), ['Transpose', 'Conv', 'Transpose']);
    assert.equal(t.model.graph!.node[1].name, 'conv', "onnxruntime's _token_ suffix is dropped from the name");
    assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP, `max diff ${maxAbsDiff(quantized, twin, Y)}`);
  });

  it('QLinearMatMul with a constant int8 right-hand side', async () => {
    const w = int8(6 * 3);
    const model = wrap(
      mk('QLinearMatMul', ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp', 'y_s', 'y_zp'], ['yq'], 'mm'),
      [makeTensor('w', DT.INT8, [6, 3], w), ...gridInits('w', { scale: 0.01, zp: 0, type: DT.INT8 })],
      [4, 6],
      [4, 3],
    );
    const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(24, X, r), dims: [4, 6] } });
    assert.deepEqual(opsOf(t), ['MatMul']);
    assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP, `max diff ${maxAbsDiff(quantized, twin, Y)}`);
  });

  it('QGemm with transB, per-channel weights, alpha 0.5 and an int32 bias at alpha x a_scale x b_scale', async () => {
    const ws = [0.01, 0.03, 0.02];
    const w = int8(3 * 6, -30, 30);
    const model = wrap(
      mk('QGemm', ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp', 'c', 'y_s', 'y_zp'], ['yq'], 'gemm', { transB: 1, alpha: { float: 0.5 } }, 'com.microsoft'),
      [makeTensor('w', DT.INT8, [3, 6], w), ...gridInits('w', { scale: ws, zp: [0, 0, 0], type: DT.INT8 }), makeTensor('c', DT.INT32, [3], [4000, -3000, 100])],
      [4, 6],
      [4, 3],
    );
    const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(24, X, r), dims: [4, 6] } });
    assert.deepEqual(opsOf(t), ['Gemm']);
    assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP, `max diff ${maxAbsDiff(quantized, twin, Y)}`);
  });

  it('QGemm without an output scale computes a float output', { skip: SATURATING_INT8 }, async () => {
    const w = int8(3 * 6);
    const model = quantizedModel({
      nodes: [
        mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q'),
        mk('QGemm', ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp'], ['y'], 'gemm', { transB: 1 }, 'com.microsoft'),
      ],
      inputs: [['x', [4, 6]]],
      outputs: [['y', [4, 3]]],
      initializers: [...gridInits('x', X), makeTensor('w', DT.INT8, [3, 6], w), ...gridInits('w', { scale: 0.01, zp: 0, type: DT.INT8 })],
    });
    const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(24, X, r), dims: [4, 6] } });
    assert.deepEqual(opsOf(t), ['Gemm']);
    assert.ok(maxAbsDiff(quantized, twin) < 1e-5, 'exact up to float summation');
    assert.equal(t.grids.has('y'), false, 'a float output has no grid');
  });

  it('QLinearAdd of two activations on different grids, and QLinearMul by a constant', async () => {
    const X2: Grid = { scale: 0.03, zp: 100, type: DT.UINT8 };
    const model = wrap(
      mk('QLinearAdd', ['xq', 'x_s', 'x_zp', 'x2q', 'x2_s', 'x2_zp', 'y_s', 'y_zp'], ['yq'], 'add', {}, 'com.microsoft'),
      gridInits('x2', X2),
      [2, 8],
      [2, 8],
      { nodes: [mk('QuantizeLinear', ['x2', 'x2_s', 'x2_zp'], ['x2q'], 'q2')], inputs: [['x2', [2, 8]]] },
    );
    const add = await runBoth(model, { x: { data: onGrid(16, X, r), dims: [2, 8] }, x2: { data: onGrid(16, X2, r), dims: [2, 8] } });
    assert.deepEqual(opsOf(add.t), ['Add']);
    assert.ok(maxAbsDiff(add.quantized, add.twin, Y) <= HALF_STEP);
    const mul = await runBoth(
      wrap(
        mk('QLinearMul', ['xq', 'x_s', 'x_zp', 'k', 'k_s', 'k_zp', 'y_s', 'y_zp'], ['yq'], 'mul', {}, 'com.microsoft'),
        [makeTensor('k', DT.UINT8, [1], [200]), ...gridInits('k', { scale: 0.01, zp: 0, type: DT.UINT8 })],
        [2, 8],
        [2, 8],
      ),
      { x: { data: onGrid(16, X, r, 0, 120), dims: [2, 8] } },
    );
    assert.deepEqual(opsOf(mul.t), ['Mul']);
    assert.ok(Math.abs(init(mul.t, mul.t.model.graph!.node[0].input[1])[0] - 2) < 1e-6, 'the constant is (200 - 0) x 0.01');
    assert.ok(maxAbsDiff(mul.quantized, mul.twin, Y) <= HALF_STEP);
  });

  for (const [op, float, attrs, dims, outDims] of [
    ['QLinearSigmoid', 'Sigmoid', {}, [2, 8], [2, 8]],
    ['QLinearLeakyRelu', 'LeakyRelu', { alpha: { float: 0.1 } }, [2, 8], [2, 8]],
    ['QLinearSoftmax', 'Softmax', { axis: -1, opset: 13 }, [2, 8], [2, 8]],
    ['QLinearGlobalAveragePool', 'GlobalAveragePool', { channels_last: 0 }, [1, 3, 4, 4], [1, 3, 1, 1]],
    ['QLinearAveragePool', 'AveragePool', { kernel_shape: [2, 2], strides: [2, 2] }, [1, 3, 4, 4], [1, 3, 2, 2]],
  ] as const) {
    it(`${op} -> ${float}`, async () => {
      const outGrid = op === 'QLinearSigmoid' || op === 'QLinearSoftmax' ? { scale: 1 / 256, zp: 0, type: DT.UINT8 } : Y;
      const model = quantizedModel({
        nodes: [
          mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q'),
          mk(op, ['xq', 'x_s', 'x_zp', 'y_s', 'y_zp'], ['yq'], 'n', attrs as Record<string, never>, 'com.microsoft'),
          mk('DequantizeLinear', ['yq', 'y_s', 'y_zp'], ['y'], 'dq'),
        ],
        inputs: [['x', [...dims]]],
        outputs: [['y', [...outDims]]],
        initializers: [...gridInits('x', X), ...gridInits('y', outGrid)],
      });
      const n = (dims as readonly number[]).reduce((a, b) => a * b, 1);
      const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(n, X, r), dims: [...dims] } });
      assert.deepEqual(opsOf(t), [float]);
      assert.ok(maxAbsDiff(quantized, twin, Y) <= outGrid.scale + 1e-6, `${op}: max diff ${maxAbsDiff(quantized, twin, Y)} vs one step ${outGrid.scale}`);
    });
  }

  it('QLinearConcat of two grids', async () => {
    const X2: Grid = { scale: 0.03, zp: 100, type: DT.UINT8 };
    const model = wrap(
      mk('QLinearConcat', ['y_s', 'y_zp', 'xq', 'x_s', 'x_zp', 'x2q', 'x2_s', 'x2_zp'], ['yq'], 'cat', { axis: 1 }, 'com.microsoft'),
      gridInits('x2', X2),
      [2, 4],
      [2, 8],
      { nodes: [mk('QuantizeLinear', ['x2', 'x2_s', 'x2_zp'], ['x2q'], 'q2')], inputs: [['x2', [2, 4]]] },
    );
    const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(8, X, r), dims: [2, 4] }, x2: { data: onGrid(8, X2, r), dims: [2, 4] } });
    assert.deepEqual(opsOf(t), ['Concat']);
    assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP);
  });
});

describe('integer-arithmetic and block-quantized operators', () => {
  it('DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(x_scale x w_scale) becomes MatMul on the dequantized weight', async () => {
    const w = int8(6 * 3);
    const ws = 0.02;
    const model = quantizedModel({
      nodes: [
        mk('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xzp'], 'dql'),
        mk('MatMulInteger', ['xq', 'w', 'xzp', 'wzp'], ['acc'], 'mmi'),
        mk('Cast', ['acc'], ['accf'], 'cast', { to: DT.FLOAT }),
        mk('Mul', ['xs', 'ws'], ['scale'], 'scale_mul'),
        mk('Mul', ['accf', 'scale'], ['y'], 'rescale'),
      ],
      inputs: [['x', [4, 6]]],
      outputs: [['y', [4, 3]]],
      initializers: [makeTensor('w', DT.INT8, [6, 3], w), makeTensor('wzp', DT.INT8, [], [0]), makeTensor('ws', DT.FLOAT, [], [ws])],
    });
    const x = Float32Array.from({ length: 24 }, () => r() * 4 - 1);
    const { quantized, twin, t } = await runBoth(model, { x: { data: x, dims: [4, 6] } });
    assert.deepEqual(opsOf(t), ['MatMul']);
    assert.equal(t.quantized.get('mmi'), 'MatMulInteger');
    assert.ok(t.dynamicNodes.has('mmi'));
    // onnxruntime quantizes x at run time with scale (max(x, 0) - min(x, 0)) / 255: each product
    // moves by at most half that step times |w|.
    const xs = (Math.max(0, ...x) - Math.min(0, ...x)) / 255;
    for (let n = 0; n < 3; n++) {
      let bound = 0;
      for (let k = 0; k < 6; k++) bound += (xs / 2) * Math.abs(w[k * 3 + n] * ws);
      for (let m = 0; m < 4; m++) assert.ok(Math.abs(quantized[m * 3 + n] - twin[m * 3 + n]) <= bound * 1.001 + 1e-6, `(${m}, ${n})`);
    }
  });

  it('MatMulNBits (4 bits, blocks of 16, packed zero points) becomes MatMul on the dequantized [K, N] weight', async () => {
    const K = 32,
      N = 8,
      block = 16,
      blocks = 2;
    const packed = Int32Array.from({ length: N * blocks * 8 }, () => Math.floor(r() * 256));
    const scales = Float32Array.from({ length: N * blocks }, () => 0.01 + r() * 0.04);
    const zps = Int32Array.from({ length: N }, () => Math.floor(r() * 256));
    const model = quantizedModel({
      nodes: [mk('MatMulNBits', ['a', 'b', 'scales', 'zp'], ['y'], 'mmnb', { K, N, bits: 4, block_size: block }, 'com.microsoft')],
      inputs: [['a', [3, K]]],
      outputs: [['y', [3, N]]],
      initializers: [
        makeTensor('b', DT.UINT8, [N, blocks, 8], packed),
        makeTensor('scales', DT.FLOAT, [N * blocks], scales),
        makeTensor('zp', DT.UINT8, [N], zps),
      ],
    });
    const a = Float32Array.from({ length: 3 * K }, () => r() * 2 - 1);
    const { quantized, twin, t } = await runBoth(model, { a: { data: a, dims: [3, K] } });
    assert.deepEqual(opsOf(t), ['MatMul']);
    assert.ok(t.blockedNodes.has('mmnb'));
    assert.ok(maxAbsDiff(quantized, twin) < 1e-4, `max diff ${maxAbsDiff(quantized, twin)}`);
    // Two weights by hand: W[k=0][n=0] is the low nibble of row 0's first byte, zero point the low
    // nibble of row 0's zero-point byte; W[k=17][n=1] is the high nibble of row 1, block 1, byte 0.
    const wf = init(t, t.model.graph!.node[0].input[1]);
    assert.equal(wf[0 * N + 0], Math.fround(((packed[0] & 15) - (zps[0] & 15)) * scales[0]));
    assert.equal(wf[17 * N + 1], Math.fround(((packed[(1 * blocks + 1) * 8] >> 4) - (zps[1] >> 4)) * scales[1 * blocks + 1]));
  });
});

describe('QDQ models', () => {
  const W = int8(3 * 2 * 9, -30, 30);
  /** x -> Q/DQ -> Conv(DQ int8 weight) -> Q(out grid) -> DQ -> y, in `domain`. */
  const qdqConv = (out: Grid, domain = '') =>
    quantizedModel({
      nodes: [
        mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'x_QuantizeLinear', {}, domain),
        mk('DequantizeLinear', ['xq', 'x_s', 'x_zp'], ['xd'], 'x_DequantizeLinear', {}, domain),
        mk('DequantizeLinear', ['w', 'w_s', 'w_zp'], ['wd'], 'w_DequantizeLinear', {}, domain),
        mk('Conv', ['xd', 'wd'], ['c'], 'conv', { pads: [1, 1, 1, 1] }),
        mk('QuantizeLinear', ['c', 'y_s', 'y_zp'], ['cq'], 'c_QuantizeLinear', {}, domain),
        mk('DequantizeLinear', ['cq', 'y_s', 'y_zp'], ['y'], 'c_DequantizeLinear', {}, domain),
      ],
      inputs: [['x', [1, 2, 5, 5]]],
      outputs: [['y', [1, 3, 5, 5]]],
      initializers: [
        ...gridInits('x', X),
        ...gridInits('y', out),
        makeTensor('w', DT.INT8, [3, 2, 3, 3], W),
        ...gridInits('w', { scale: 0.02, zp: 0, type: DT.INT8 }),
      ],
    });

  it('Q/DQ removed, the weight dequantized, the graph output keeps its name (ONNX and com.microsoft domains)', async () => {
    for (const domain of ['', 'com.microsoft']) {
      const model = qdqConv(Y, domain);
      assert.equal(detectQuantization(model.graph!).kind, 'qdq');
      const { quantized, twin, t } = await runBoth(model, { x: { data: onGrid(50, X, r, 0, 120), dims: [1, 2, 5, 5] } });
      assert.deepEqual(opsOf(t), ['Conv']);
      assert.equal(t.model.graph!.node[0].output[0], 'y');
      assert.ok(t.grids.has('x') && t.grids.has('y'));
      assert.ok(maxAbsDiff(quantized, twin, Y) <= HALF_STEP, `${domain || 'onnx'}: ${maxAbsDiff(quantized, twin, Y)}`);
    }
  });

  it('a grid starting at 0 right after a Conv is a folded Relu: the twin makes it explicit', async () => {
    const relu: Grid = { scale: 0.05, zp: 0, type: DT.UINT8 };
    const { quantized, twin, t } = await runBoth(qdqConv(relu), { x: { data: onGrid(50, X, r, 0, 120), dims: [1, 2, 5, 5] } });
    assert.deepEqual(opsOf(t), ['Conv', 'Relu']);
    assert.ok(
      quantized.some((v) => v === 0),
      'the deployed model clamps negatives to 0',
    );
    assert.ok(maxAbsDiff(quantized, twin, relu) <= relu.scale * 0.5 * 1.001);
    assert.equal(t.layerOutput.get('conv'), 'y', "the Conv's deployed output grid is on the Relu's output");
  });
});

describe('detection', () => {
  const conv = (name: string, ins: string[], out: string) => mk('Conv', ins, [out], name);
  it('float, qdq, qoperator and mixed', () => {
    const float = quantizedModel({
      nodes: [conv('c', ['x', 'w'], 'y')],
      inputs: [['x', [1, 1, 3, 3]]],
      outputs: [['y', [1, 1, 3, 3]]],
      initializers: [makeTensor('w', DT.FLOAT, [1, 1, 1, 1], [1])],
    });
    assert.equal(detectQuantization(float.graph!).kind, 'float');
    const qop = [
      mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q'),
      mk('QLinearConv', ['xq', 'x_s', 'x_zp', 'w', 'w_s', 'w_zp', 'y_s', 'y_zp'], ['yq'], 'qconv'),
      mk('DequantizeLinear', ['yq', 'y_s', 'y_zp'], ['y'], 'dq'),
    ];
    const inits = [
      ...gridInits('x', X),
      ...gridInits('y', Y),
      makeTensor('w', DT.INT8, [1, 1, 1, 1], [3]),
      ...gridInits('w', { scale: 0.1, zp: 0, type: DT.INT8 }),
    ];
    const qoperator = quantizedModel({ nodes: qop, inputs: [['x', [1, 1, 3, 3]]], outputs: [['y', [1, 1, 3, 3]]], initializers: inits });
    const census = detectQuantization(qoperator.graph!);
    assert.equal(census.kind, 'qoperator');
    assert.deepEqual(census.ops, { QuantizeLinear: 1, QLinearConv: 1, DequantizeLinear: 1 });
    const mixed = quantizedModel({
      nodes: [...qop, mk('DequantizeLinear', ['w', 'w_s', 'w_zp'], ['wd'], 'dqw'), conv('c2', ['y', 'wd'], 'z')],
      inputs: [['x', [1, 1, 3, 3]]],
      outputs: [['z', [1, 1, 3, 3]]],
      initializers: inits,
    });
    assert.equal(detectQuantization(mixed.graph!).kind, 'mixed');
  });
});

describe('malformed quantized models give one-line InputErrors naming the file and the node', () => {
  const dir = tempDir();
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const load = (name: string, model: ReturnType<typeof quantizedModel>) => () => deployedModel(loadModel(writeModel(dir, name, model)));
  const oneLine = (file: string, what: RegExp) => (e: unknown) =>
    e instanceof InputError && !e.message.includes('\n') && e.message.includes(file) && what.test(e.message);

  it('a DequantizeLinear without a scale', () => {
    const model = quantizedModel({
      nodes: [mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q'), mk('DequantizeLinear', ['xq'], ['y'], 'dq_no_scale')],
      inputs: [['x', [2, 2]]],
      outputs: [['y', [2, 2]]],
      initializers: gridInits('x', X),
    });
    assert.throws(load('no-scale.onnx', model), oneLine('no-scale.onnx', /DequantizeLinear dq_no_scale has no input scale/));
  });

  it('a zero point whose type differs from its codes', () => {
    const model = quantizedModel({
      nodes: [mk('DequantizeLinear', ['w', 'w_s', 'w_zp'], ['wd'], 'dq_w'), mk('MatMul', ['x', 'wd'], ['y'], 'mm')],
      inputs: [['x', [2, 2]]],
      outputs: [['y', [2, 2]]],
      initializers: [makeTensor('w', DT.INT8, [2, 2], [1, 2, 3, 4]), ...gridInits('w', { scale: 0.1, zp: 0, type: DT.UINT8 })],
    });
    assert.throws(
      load('zp-type.onnx', model),
      oneLine('zp-type.onnx', /DequantizeLinear dq_w: the weight zero point w_zp is uint8 but the codes it describes are int8/),
    );
  });

  it('a scale that is not a positive number', () => {
    const model = quantizedModel({
      nodes: [mk('QuantizeLinear', ['x', 'x_s', 'x_zp'], ['xq'], 'q_bad'), mk('DequantizeLinear', ['xq', 'x_s', 'x_zp'], ['y'], 'dq')],
      inputs: [['x', [2, 2]]],
      outputs: [['y', [2, 2]]],
      initializers: gridInits('x', { scale: 0, zp: 0, type: DT.UINT8 }),
    });
    assert.throws(load('zero-scale.onnx', model), oneLine('zero-scale.onnx', /QuantizeLinear q_bad .*scale 0 of x_s is not a positive finite number/));
  });
});
