/**
 * Integer-only executor, compute op families (engine/integerOnly/ops: gemm, arith, activation,
 * pool, batchNorm, reduce, table). Each op runs alone (or in a two-node graph) through the
 * executor with grids chosen here, and is checked against:
 *   - onnxruntime's float result on the dequantized inputs (and dequantized weights): the
 *     integer result must lie within its output grid's rounding (half a step, plus what the
 *     op's documented intermediate rounding adds);
 *   - for ops whose integer result is defined exactly, a hand computation of the codes written
 *     here from the ONNX definition (naive loops, one rounding half away from zero).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeNode, makeTensor, DT, rng, valueInfo } from '../helpers/tinyModels';
import {
  I8,
  U16,
  codesOf,
  floatRun,
  grid,
  integerRun,
  maxAbsDiff,
  model,
  onGrid,
  planWeights,
  real,
  requant,
  tensor,
  uniform,
  withDequantizedWeights,
} from '../helpers/integerOnly';
import { quantize } from '../../engine/quantize/scheme';

const r = rng(20240611);

describe('gemm: Conv, Gemm, MatMul', () => {
  it('Conv (pads, stride, per-channel int8 weights, int32 bias): codes by hand, and within half a step of onnxruntime', async () => {
    const [N, C, H, W, M, K] = [2, 3, 6, 6, 4, 3];
    const gx = grid(-1, 2),
      gy = grid(-4, 5);
    const m = model({
      nodes: [makeNode('Conv', ['x', 'W', 'B'], ['y'], 'conv', { pads: [1, 1, 1, 1], strides: [2, 2] })],
      inputs: [valueInfo('x', ['N', C, H, W])],
      outputs: ['y'],
      initializers: [makeTensor('W', DT.FLOAT, [M, C, K, K], uniform(r, M * C * K * K, -0.4, 0.4)), makeTensor('B', DT.FLOAT, [M], uniform(r, M, -0.3, 0.3))],
    });
    const planned = { x: gx, y: gy };
    const weights = planWeights(m, planned);
    assert.equal(weights.length, 1);
    const w = weights[0];
    const x = uniform(r, N * C * H * W, -1, 2);
    const run = await integerRun(m, { x: tensor(x, [N, C, H, W]) }, { planned, weights });
    const y = codesOf(run.out.get('y'));

    const xq = onGrid(x, gx).codes;
    const OH = 3,
      OW = 3;
    const expected: number[] = [];
    for (let n = 0; n < N; n++)
      for (let o = 0; o < M; o++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            let acc = w.bias![o];
            for (let c = 0; c < C; c++)
              for (let kh = 0; kh < K; kh++)
                for (let kw = 0; kw < K; kw++) {
                  const ih = oh * 2 - 1 + kh,
                    iw = ow * 2 - 1 + kw;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  acc += (xq[((n * C + c) * H + ih) * W + iw] - gx.zeroPoint) * (w.codes[((o * C + c) * K + kh) * K + kw] - w.params[o].zeroPoint);
                }
            expected.push(requant((acc * gx.scale * w.params[o].scale) / gy.scale, gy));
          }
    assert.deepEqual(Array.from(y), expected);
    assert.deepEqual(run.program.floatOps, []);

    const ref = (await floatRun(withDequantizedWeights(m, weights, planned), { x: tensor(onGrid(x, gx).real, [N, C, H, W]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(y, gy), ref) <= gy.scale / 2 + 1e-6, `max error ${maxAbsDiff(real(y, gy), ref)} vs half step ${gy.scale / 2}`);
  });

  it('depthwise Conv (group = channels) and Gemm (transB, bias): within half a step of onnxruntime', async () => {
    const gx = grid(-2, 2, I8),
      gy = grid(-3, 3, I8),
      gz = grid(-4, 4, I8),
      gf = grid(-2, 2, I8);
    const m = model({
      nodes: [
        makeNode('Conv', ['x', 'Wd'], ['y'], 'dw', { group: 3, pads: [1, 1, 1, 1] }),
        makeNode('Flatten', ['y'], ['f'], 'flat'),
        makeNode('Gemm', ['f', 'Wg', 'Bg'], ['z'], 'fc', { transB: 1 }),
      ],
      inputs: [valueInfo('x', ['N', 3, 4, 4])],
      outputs: ['z'],
      initializers: [
        makeTensor('Wd', DT.FLOAT, [3, 1, 3, 3], uniform(r, 27, -0.5, 0.5)),
        makeTensor('Wg', DT.FLOAT, [5, 48], uniform(r, 240, -0.2, 0.2)),
        makeTensor('Bg', DT.FLOAT, [5], uniform(r, 5, -0.5, 0.5)),
      ],
    });
    const planned = { x: gx, y: gy, f: gf, z: gz };
    const weights = planWeights(m, planned, 'tensorrt');
    const x = uniform(r, 2 * 48, -2, 2);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 4, 4]) }, { planned, weights });
    const z = codesOf(run.out.get('z'));
    // The reference runs the same grids: y and f quantized in between, as the plan does.
    const refModel = withDequantizedWeights(m, weights, planned);
    const y = (await floatRun(refModel, { x: tensor(onGrid(x, gx).real, [2, 3, 4, 4]) })).z;
    assert.deepEqual(y.dims, [2, 5]);
    // y is rounded onto gy first (half a step of gy through the Gemm's weights), then z: allow both.
    let wsum = 0;
    for (const w of weights[1].codes) wsum = Math.max(wsum, Math.abs(w));
    const slack = gz.scale / 2 + (gy.scale / 2) * wsum * weights[1].params[0].scale * 48;
    assert.ok(maxAbsDiff(real(z, gz), y.data as Float32Array) <= slack, `error ${maxAbsDiff(real(z, gz), y.data as Float32Array)} > ${slack}`);
    assert.deepEqual(run.program.ops, { Conv: 1, Flatten: 1, Gemm: 1 });
  });

  it('Gemm codes by hand: (a - za)(w - zw) + bias, one rounding per output channel', async () => {
    const ga = grid(0, 3),
      gz = grid(-2, 6);
    const m = model({
      nodes: [makeNode('Gemm', ['a', 'W', 'B'], ['z'], 'fc', { transB: 1 })],
      inputs: [valueInfo('a', ['N', 6])],
      outputs: ['z'],
      initializers: [makeTensor('W', DT.FLOAT, [4, 6], uniform(r, 24, -0.6, 0.6)), makeTensor('B', DT.FLOAT, [4], uniform(r, 4, -1, 1))],
    });
    const planned = { a: ga, z: gz };
    const weights = planWeights(m, planned);
    const a = uniform(r, 3 * 6, 0, 3);
    const z = codesOf((await integerRun(m, { a: tensor(a, [3, 6]) }, { planned, weights })).out.get('z'));
    const w = weights[0];
    const aq = onGrid(a, ga).codes;
    const expected: number[] = [];
    for (let i = 0; i < 3; i++)
      for (let n = 0; n < 4; n++) {
        let acc = w.bias![n];
        for (let k = 0; k < 6; k++) acc += (aq[i * 6 + k] - ga.zeroPoint) * (w.codes[n * 6 + k] - w.params[n].zeroPoint);
        expected.push(requant((acc * ga.scale * w.params[n].scale) / gz.scale, gz));
      }
    assert.deepEqual(Array.from(z), expected);
  });

  it('MatMul with a constant weight (3-D input) and MatMul of two activations (batched)', async () => {
    const gx = grid(-1, 1, I8),
      gw = grid(-2, 2, I8),
      gb = grid(-1.5, 1.5, I8),
      gy = grid(-3, 3, I8);
    const m = model({
      nodes: [makeNode('MatMul', ['x', 'Wm'], ['h'], 'proj'), makeNode('MatMul', ['h', 'b'], ['y'], 'qk')],
      inputs: [valueInfo('x', ['N', 3, 4]), valueInfo('b', ['N', 5, 2])],
      outputs: ['h', 'y'],
      initializers: [makeTensor('Wm', DT.FLOAT, [4, 5], uniform(r, 20, -0.7, 0.7))],
    });
    const planned = { x: gx, h: gw, b: gb, y: gy };
    const weights = planWeights(m, planned, 'tensorrt');
    const x = uniform(r, 2 * 12, -1, 1),
      b = uniform(r, 2 * 10, -1.5, 1.5);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 4]), b: tensor(b, [2, 5, 2]) }, { planned, weights });
    const h = codesOf(run.out.get('h')),
      y = codesOf(run.out.get('y'));
    const refModel = withDequantizedWeights(m, weights, planned);
    const ref = await floatRun(refModel, { x: tensor(onGrid(x, gx).real, [2, 3, 4]), b: tensor(onGrid(b, gb).real, [2, 5, 2]) });
    assert.ok(maxAbsDiff(real(h, gw), ref.h.data as Float32Array) <= gw.scale / 2 + 1e-6);
    // y from h on its grid: the reference's h is not rounded, so compare y with the product of
    // the integer h (dequantized) and b instead: exactly what the second MatMul must round.
    const hReal = real(h, gw),
      bReal = onGrid(b, gb).real;
    const yRef: number[] = [];
    for (let n = 0; n < 2; n++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 2; j++) {
          let s = 0;
          for (let k = 0; k < 5; k++) s += hReal[(n * 3 + i) * 5 + k] * bReal[(n * 5 + k) * 2 + j];
          yRef.push(s);
        }
    assert.ok(maxAbsDiff(real(y, gy), yRef) <= gy.scale / 2 + 1e-6);
  });

  it('a Conv the plan does not quantize runs as a named float fallback: onnxruntime on the dequantized input, quantized', async () => {
    const gx = grid(-1, 1),
      gy = grid(-2, 2);
    const m = model({
      nodes: [makeNode('Conv', ['x', 'W'], ['y'], 'excluded')],
      inputs: [valueInfo('x', ['N', 2, 3, 3])],
      outputs: ['y'],
      initializers: [makeTensor('W', DT.FLOAT, [2, 2, 2, 2], uniform(r, 16, -0.5, 0.5))],
    });
    const x = uniform(r, 2 * 18, -1, 1);
    const run = await integerRun(m, { x: tensor(x, [2, 2, 3, 3]) }, { planned: { x: gx }, free: { y: gy } });
    assert.deepEqual(run.program.floatOps, [{ node: 'excluded', op: 'Conv', reason: "the plan does not quantize this layer's weights" }]);
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 2, 3, 3]) })).y.data as Float32Array;
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      Array.from(ref, (v) => quantize(v, gy)),
    );
  });
});

describe('arith: Add, Sub, Mul, Div', () => {
  it('Add of two activations on different grids, broadcast: within half a step (+ the 2^-20 fine grid) of onnxruntime', async () => {
    const ga = grid(-1, 3),
      gb = grid(-0.5, 0.5, I8),
      gy = grid(-2, 4);
    const m = model({ nodes: [makeNode('Add', ['a', 'b'], ['y'], 'add')], inputs: [valueInfo('a', ['N', 3, 4]), valueInfo('b', [1, 4])], outputs: ['y'] });
    const a = uniform(r, 24, -1, 3),
      b = uniform(r, 4, -0.5, 0.5);
    const y = codesOf((await integerRun(m, { a: tensor(a, [2, 3, 4]), b: tensor(b, [1, 4]) }, { free: { a: ga, b: gb, y: gy } })).out.get('y'));
    const ref = (await floatRun(m, { a: tensor(onGrid(a, ga).real, [2, 3, 4]), b: tensor(onGrid(b, gb).real, [1, 4]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(y, gy), ref) <= gy.scale * (0.5 + 2 ** -18), `${maxAbsDiff(real(y, gy), ref)}`);
  });

  it('Sub with a constant on either side (x - c, c - x): within half a step of onnxruntime', async () => {
    const gx = grid(-1, 1),
      gy = grid(-3, 3),
      gz = grid(-3, 3);
    const c = uniform(r, 4, -2, 2);
    const m = model({
      nodes: [makeNode('Sub', ['x', 'c'], ['y'], 'sub1'), makeNode('Sub', ['c', 'x'], ['z'], 'sub2')],
      inputs: [valueInfo('x', ['N', 4])],
      outputs: ['y', 'z'],
      initializers: [makeTensor('c', DT.FLOAT, [4], c)],
    });
    const x = uniform(r, 12, -1, 1);
    const run = await integerRun(m, { x: tensor(x, [3, 4]) }, { free: { x: gx, y: gy, z: gz } });
    const ref = await floatRun(m, { x: tensor(onGrid(x, gx).real, [3, 4]) });
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref.y.data as Float32Array) <= gy.scale * (0.5 + 2 ** -18));
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('z')), gz), ref.z.data as Float32Array) <= gz.scale * (0.5 + 2 ** -18));
  });

  it('Mul of two activations and Mul by a constant tensor: within half a step of onnxruntime', async () => {
    const ga = grid(-2, 2),
      gb = grid(0, 1),
      gy = grid(-2, 2),
      gz = grid(-3, 3, U16);
    const k = Float32Array.of(-1.5, 0.25, 3, -0.75);
    const m = model({
      nodes: [makeNode('Mul', ['a', 'b'], ['y'], 'mul'), makeNode('Mul', ['y', 'k'], ['z'], 'mulc')],
      inputs: [valueInfo('a', ['N', 4]), valueInfo('b', ['N', 4])],
      outputs: ['y', 'z'],
      initializers: [makeTensor('k', DT.FLOAT, [4], k)],
    });
    const a = uniform(r, 8, -2, 2),
      b = uniform(r, 8, 0, 1);
    const run = await integerRun(m, { a: tensor(a, [2, 4]), b: tensor(b, [2, 4]) }, { free: { a: ga, b: gb, y: gy, z: gz } });
    const y = codesOf(run.out.get('y'));
    const ref = await floatRun(m, { a: tensor(onGrid(a, ga).real, [2, 4]), b: tensor(onGrid(b, gb).real, [2, 4]) });
    assert.ok(maxAbsDiff(real(y, gy), ref.y.data as Float32Array) <= gy.scale / 2 + 1e-6);
    // z from the integer y: the constant rides on a 16-bit grid (relative error 2^-16 of max|k|).
    const zRef = Array.from(real(y, gy), (v, i) => v * k[i % 4]);
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('z')), gz), zRef) <= gz.scale / 2 + 2 * 3 * 3 * 2 ** -16);
  });

  it('Mul and Div by a positive scalar keep the codes and only rescale the grid (exact)', async () => {
    const gx = grid(-1, 3);
    const m = model({
      nodes: [makeNode('Mul', ['x', 's'], ['y'], 'mul'), makeNode('Div', ['y', 'd'], ['z'], 'div')],
      inputs: [valueInfo('x', ['N', 5])],
      outputs: ['z'],
      initializers: [makeTensor('s', DT.FLOAT, [], [0.125]), makeTensor('d', DT.FLOAT, [1], [6])],
    });
    const x = uniform(r, 10, -1, 3);
    const run = await integerRun(m, { x: tensor(x, [2, 5]) }, { free: { x: gx } });
    assert.deepEqual(Array.from(codesOf(run.out.get('z'))), Array.from(onGrid(x, gx).codes));
    assert.ok(Math.abs(run.program.gridOf('z')!.scale / ((gx.scale * 0.125) / 6) - 1) < 1e-15);
    assert.equal(run.program.gridOf('z')!.zeroPoint, gx.zeroPoint);
  });

  it('Div by an activation has no integer form: a named float fallback', async () => {
    const g = grid(0.5, 2);
    const m = model({ nodes: [makeNode('Div', ['a', 'b'], ['y'], 'div')], inputs: [valueInfo('a', ['N', 2]), valueInfo('b', ['N', 2])], outputs: ['y'] });
    const run = await integerRun(
      m,
      { a: tensor(Float32Array.of(1, 2), [1, 2]), b: tensor(Float32Array.of(0.5, 2), [1, 2]) },
      { free: { a: g, b: g, y: grid(0, 4) } },
    );
    assert.equal(run.program.floatOps.length, 1);
    assert.equal(run.program.floatOps[0].node, 'div');
    assert.match(run.program.floatOps[0].reason, /division by an activation/);
  });
});

describe('activation: Relu, Clip, LeakyRelu, PRelu', () => {
  it('Relu and Clip are exact clamps of codes (by hand)', async () => {
    const gx = grid(-2, 6);
    const m = model({
      nodes: [makeNode('Relu', ['x'], ['y'], 'relu'), makeNode('Clip', ['x', 'lo', 'hi'], ['z'], 'clip')],
      inputs: [valueInfo('x', ['N', 8])],
      outputs: ['y', 'z'],
      initializers: [makeTensor('lo', DT.FLOAT, [], [-1]), makeTensor('hi', DT.FLOAT, [], [2.5])],
    });
    const x = uniform(r, 16, -2, 6);
    const run = await integerRun(m, { x: tensor(x, [2, 8]) }, { free: { x: gx } });
    const q = onGrid(x, gx).codes;
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      Array.from(q, (c) => Math.max(c, gx.zeroPoint)),
    );
    const lo = quantize(-1, gx),
      hi = quantize(2.5, gx);
    assert.deepEqual(
      Array.from(codesOf(run.out.get('z'))),
      Array.from(q, (c) => Math.min(hi, Math.max(lo, c))),
    );
    assert.equal(run.stats.saturated, 0);
  });

  it('Clip (opset-9 attributes) with a planned output grid: one rescale, clamped on the output grid, hitting the bound is no saturation', async () => {
    const gx = grid(-7, 17),
      gy = grid(0, 6);
    const m = model({
      nodes: [makeNode('Clip', ['x'], ['y'], 'relu6', { min: { float: 0 }, max: { float: 6 } })],
      inputs: [valueInfo('x', ['N', 16])],
      outputs: ['y'],
      opset: 9,
    });
    const x = uniform(r, 32, -7, 17);
    const run = await integerRun(m, { x: tensor(x, [2, 16]) }, { planned: { x: gx, y: gy } });
    const xr = onGrid(x, gx).real;
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      Array.from(xr, (v) => requant(Math.min(6, Math.max(0, v)) / gy.scale, gy)),
    );
    assert.equal(run.stats.saturated, 0);
  });

  it('LeakyRelu: negatives times alpha in fixed point, one rounding (by hand); PRelu per channel within half a step of onnxruntime', async () => {
    const gx = grid(-3, 3, I8);
    const m = model({
      nodes: [makeNode('LeakyRelu', ['x'], ['y'], 'leaky', { alpha: { float: 0.1 } }), makeNode('PRelu', ['x', 'slope'], ['z'], 'prelu')],
      inputs: [valueInfo('x', ['N', 3, 2])],
      outputs: ['y', 'z'],
      initializers: [makeTensor('slope', DT.FLOAT, [3, 1], [0.25, -0.5, 0.7])],
    });
    const x = uniform(r, 12, -3, 3);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 2]) }, { free: { x: gx } });
    const q = onGrid(x, gx).codes;
    const alpha = Math.fround(0.1);
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      Array.from(q, (c) => (c >= 0 ? c : requant(c * alpha, gx))),
    );
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 3, 2]) })).z.data as Float32Array;
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('z')), gx), ref) <= gx.scale / 2 + 1e-6);
    // the saturation count's denominator: every code both steps wrote, the kept ones too
    // (the 12 input codes quantized, and the 12 codes each of the two steps wrote, the kept
    // non-negative ones too, not only the 6 negatives they rescaled)
    assert.equal(run.stats.codes, 12 + 12 + 12);
  });
});

describe('pool: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool', () => {
  const gx = grid(-1, 2);
  const x = uniform(r, 2 * 2 * 5 * 5, -1, 2);
  const xq = onGrid(x, gx).codes;
  const at = (n: number, c: number, h: number, w: number) => xq[((n * 2 + c) * 5 + h) * 5 + w];

  it('MaxPool (3x3, stride 2, pad 1) and GlobalMaxPool: exact maxima of codes (by hand)', async () => {
    const m = model({
      nodes: [
        makeNode('MaxPool', ['x'], ['y'], 'mp', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
        makeNode('GlobalMaxPool', ['x'], ['g'], 'gmp'),
      ],
      inputs: [valueInfo('x', ['N', 2, 5, 5])],
      outputs: ['y', 'g'],
    });
    const run = await integerRun(m, { x: tensor(x, [2, 2, 5, 5]) }, { free: { x: gx } });
    const expected: number[] = [];
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 2; c++)
        for (let oh = 0; oh < 3; oh++)
          for (let ow = 0; ow < 3; ow++) {
            let mx = -Infinity;
            for (let kh = 0; kh < 3; kh++)
              for (let kw = 0; kw < 3; kw++) {
                const h = oh * 2 - 1 + kh,
                  w = ow * 2 - 1 + kw;
                if (h >= 0 && h < 5 && w >= 0 && w < 5) mx = Math.max(mx, at(n, c, h, w));
              }
            expected.push(mx);
          }
    assert.deepEqual(Array.from(codesOf(run.out.get('y'))), expected);
    const g = codesOf(run.out.get('g'));
    for (let nc = 0; nc < 4; nc++) assert.equal(g[nc], Math.max(...xq.subarray(nc * 25, nc * 25 + 25)));
  });

  it('AveragePool (count_include_pad 0) and GlobalAveragePool: sum of centred codes, one rounding (by hand), within half a step of onnxruntime', async () => {
    const gy = grid(-1, 2),
      gg = grid(0, 1);
    const m = model({
      nodes: [makeNode('AveragePool', ['x'], ['y'], 'ap', { kernel_shape: [2, 2], pads: [0, 0, 1, 1] }), makeNode('GlobalAveragePool', ['x'], ['g'], 'gap')],
      inputs: [valueInfo('x', ['N', 2, 5, 5])],
      outputs: ['y', 'g'],
    });
    const run = await integerRun(m, { x: tensor(x, [2, 2, 5, 5]) }, { free: { x: gx, y: gy, g: gg } });
    const expected: number[] = [];
    for (let n = 0; n < 2; n++)
      for (let c = 0; c < 2; c++)
        for (let oh = 0; oh < 5; oh++)
          for (let ow = 0; ow < 5; ow++) {
            let s = 0,
              cnt = 0;
            for (let kh = 0; kh < 2; kh++)
              for (let kw = 0; kw < 2; kw++) {
                if (oh + kh < 5 && ow + kw < 5) {
                  s += at(n, c, oh + kh, ow + kw) - gx.zeroPoint;
                  cnt++;
                }
              }
            expected.push(requant((s * gx.scale) / (cnt * gy.scale), gy));
          }
    assert.deepEqual(Array.from(codesOf(run.out.get('y'))), expected);
    const g = codesOf(run.out.get('g'));
    for (let nc = 0; nc < 4; nc++) {
      let s = 0;
      for (let k = 0; k < 25; k++) s += xq[nc * 25 + k] - gx.zeroPoint;
      assert.equal(g[nc], requant((s * gx.scale) / (25 * gg.scale), gg));
    }
    const ref = await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 2, 5, 5]) });
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref.y.data as Float32Array) <= gy.scale / 2 + 1e-6);
    assert.ok(maxAbsDiff(real(g, gg), ref.g.data as Float32Array) <= gg.scale / 2 + 1e-6);
  });
});

describe('batchNorm: BatchNormalization as an integer per-channel affine', () => {
  it('within half a step (+ 2^-9 of the bias rounding) of onnxruntime', async () => {
    const gx = grid(-2, 2),
      gy = grid(-12, 12, I8);
    const init = (name: string, v: number[]) => makeTensor(name, DT.FLOAT, [3], v);
    const m = model({
      nodes: [makeNode('BatchNormalization', ['x', 'g', 'b', 'mu', 'var'], ['y'], 'bn', { epsilon: { float: 1e-3 } })],
      inputs: [valueInfo('x', ['N', 3, 2, 2])],
      outputs: ['y'],
      initializers: [init('g', [1.5, -0.7, 2]), init('b', [0.3, -1, 0.1]), init('mu', [0.2, -0.4, 1]), init('var', [0.5, 2, 0.25])],
    });
    const x = uniform(r, 24, -2, 2);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 2, 2]) }, { free: { x: gx, y: gy } });
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 3, 2, 2]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref) <= gy.scale * (0.5 + 2 ** -8) + 1e-6);
    assert.equal(run.stats.saturated, 0);
    assert.deepEqual(run.program.ops, { BatchNormalization: 1 });
  });
});

describe('reduce: ReduceMean, ReduceSum, ReduceMax', () => {
  it('ReduceMean (opset 13 axes attribute, keepdims 0): integer sum and one rounding by S_in / (count S_out) (by hand); ReduceMax exact', async () => {
    const gx = grid(-1, 2),
      gy = grid(-1, 2, U16);
    const m = model({
      nodes: [makeNode('ReduceMean', ['x'], ['y'], 'mean', { axes: [-1], keepdims: 0 }), makeNode('ReduceMax', ['x'], ['z'], 'max', { axes: [1] })],
      inputs: [valueInfo('x', ['N', 3, 7])],
      outputs: ['y', 'z'],
    });
    const x = uniform(r, 42, -1, 2);
    const run = await integerRun(m, { x: tensor(x, [2, 3, 7]) }, { free: { x: gx, y: gy } });
    const q = onGrid(x, gx).codes;
    const y = codesOf(run.out.get('y'));
    assert.deepEqual(run.out.get('y')!.dims, [2, 3]);
    for (let row = 0; row < 6; row++) {
      let s = 0;
      for (let k = 0; k < 7; k++) s += q[row * 7 + k] - gx.zeroPoint;
      assert.equal(y[row], requant((s * gx.scale) / (7 * gy.scale), gy));
    }
    const z = codesOf(run.out.get('z'));
    assert.deepEqual(run.out.get('z')!.dims, [2, 1, 7]);
    for (let n = 0; n < 2; n++) for (let k = 0; k < 7; k++) assert.equal(z[n * 7 + k], Math.max(q[n * 21 + k], q[n * 21 + 7 + k], q[n * 21 + 14 + k]));
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 3, 7]) })).y.data as Float32Array;
    assert.ok(maxAbsDiff(real(y, gy), ref) <= gy.scale / 2 + 1e-6);
  });

  it('ReduceSum (opset 13 axes input) over two axes: within half a step of onnxruntime', async () => {
    const gx = grid(-1, 1, I8),
      gy = grid(-8, 8, I8);
    const m = model({
      nodes: [makeNode('ReduceSum', ['x', 'ax'], ['y'], 'sum', { keepdims: 1 })],
      inputs: [valueInfo('x', ['N', 2, 3, 4])],
      outputs: ['y'],
      initializers: [makeTensor('ax', DT.INT64, [2], [2, 3])],
    });
    const x = uniform(r, 48, -1, 1);
    const run = await integerRun(m, { x: tensor(x, [2, 2, 3, 4]) }, { free: { x: gx, y: gy } });
    const ref = (await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 2, 3, 4]) })).y;
    assert.deepEqual(run.out.get('y')!.dims, [...ref.dims]);
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref.data as Float32Array) <= gy.scale / 2 + 1e-6);
  });
});

describe('table: elementwise functions as lookup tables filled by onnxruntime', () => {
  it('Sigmoid, HardSigmoid, Tanh, Pow(x, 2), Sqrt: codes equal quantize(onnxruntime(op)(dequantized x)) element by element', async () => {
    const gx = grid(-4, 4);
    const m = model({
      nodes: [
        makeNode('Sigmoid', ['x'], ['s'], 'sig'),
        makeNode('HardSigmoid', ['x'], ['h'], 'hsig', { alpha: { float: 0.2 }, beta: { float: 0.5 } }),
        makeNode('Tanh', ['x'], ['t'], 'tanh'),
        makeNode('Pow', ['x', 'two'], ['p'], 'pow'),
        makeNode('Relu', ['x'], ['xr'], 'relu'),
        makeNode('Sqrt', ['xr'], ['q'], 'sqrt'),
      ],
      inputs: [valueInfo('x', ['N', 50])],
      outputs: ['s', 'h', 't', 'p', 'q'],
      initializers: [makeTensor('two', DT.FLOAT, [], [2])],
    });
    const x = uniform(r, 100, -4.5, 4.5);
    const grids = { x: gx, s: grid(0, 1), h: grid(0, 1), t: grid(-1, 1, I8), p: grid(0, 16, U16), q: grid(0, 2) };
    const run = await integerRun(m, { x: tensor(x, [2, 50]) }, { free: grids });
    const ref = await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 50]) });
    for (const t of ['s', 'h', 't', 'p', 'q'] as const) {
      assert.deepEqual(
        Array.from(codesOf(run.out.get(t))),
        Array.from(ref[t].data as Float32Array, (v) => quantize(v, grids[t])),
        t,
      );
    }
    assert.deepEqual(run.program.floatOps, []);
    assert.ok(run.program.describe().includes('Sigmoid(table) sig'));
  });

  it('a table is refused for a 32-bit input grid: the op falls back to float, named', async () => {
    const wide = { scale: 1e-6, zeroPoint: 0, qmin: -2147483647, qmax: 2147483647 };
    const m = model({ nodes: [makeNode('Sigmoid', ['x'], ['y'], 'sig')], inputs: [valueInfo('x', ['N', 2])], outputs: ['y'] });
    const run = await integerRun(m, { x: tensor(Float32Array.of(-1, 1), [1, 2]) }, { free: { x: wide, y: grid(0, 1) } });
    assert.equal(run.program.floatOps[0]?.node, 'sig');
    assert.match(run.program.floatOps[0].reason, /too wide for a table/);
  });
});
