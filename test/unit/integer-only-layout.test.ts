/**
 * Integer-only executor, data-movement op families (engine/integerOnly/ops: layout, concat,
 * select, shape, pad, resize). Moving or selecting elements is exact on codes, so the expected
 * codes are onnxruntime's own result for the same op run on the input CODES as float32 (integers
 * are exact in float32): any index mistake shows as a mismatch. Raw tensors (int64 shapes) are
 * compared with onnxruntime's directly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { makeNode, makeTensor, DT, rng, valueInfo } from '../helpers/tinyModels';
import { I8, codesOf, floatRun, grid, integerRun, maxAbsDiff, model, onGrid, real, requant, tensor, uniform } from '../helpers/integerOnly';
import { quantize } from '../../engine/quantize/scheme';
import type { ModelProto } from 'onnx-buf';

const r = rng(4242);
const gx = grid(-2, 3);

/** onnxruntime on the codes themselves, one output per name. */
async function onCodes(
  m: ModelProto,
  codes: Int32Array,
  dims: number[],
  names: string[],
  extra: Record<string, ort.Tensor> = {},
): Promise<Record<string, number[]>> {
  const res = await floatRun(m, { x: tensor(Float32Array.from(codes), dims), ...extra });
  return Object.fromEntries(names.map((n) => [n, Array.from(res[n].data as Float32Array)]));
}

describe('layout: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Identity', () => {
  it('codes move exactly as onnxruntime moves them, dims included', async () => {
    const m = model({
      nodes: [
        makeNode('Reshape', ['x', 'shape'], ['a'], 'reshape'),
        makeNode('Transpose', ['x'], ['b'], 'transpose', { perm: [2, 0, 3, 1] }),
        makeNode('Flatten', ['x'], ['c'], 'flatten', { axis: 2 }),
        makeNode('Unsqueeze', ['x', 'ax'], ['d'], 'unsqueeze'),
        makeNode('Squeeze', ['d', 'ax'], ['e'], 'squeeze'),
        makeNode('Slice', ['x', 'zero', 'one', 'one'], ['x1'], 'take1'),
        makeNode('Expand', ['x1', 'eshape'], ['f'], 'expand'),
        makeNode('Identity', ['x'], ['g'], 'identity'),
      ],
      inputs: [valueInfo('x', ['N', 3, 4, 2])],
      outputs: ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
      initializers: [
        makeTensor('shape', DT.INT64, [2], [0, -1]),
        makeTensor('ax', DT.INT64, [2], [1, -1]),
        makeTensor('eshape', DT.INT64, [4], [1, 3, 1, 1]),
        makeTensor('zero', DT.INT64, [1], [0]),
        makeTensor('one', DT.INT64, [1], [1]),
      ],
    });
    const x = uniform(r, 48, -2, 3);
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const run = await integerRun(m, { x: tensor(x, [2, 3, 4, 2]) }, { free: { x: gx } });
    const q = onGrid(x, gx).codes;
    const want = await onCodes(m, q, [2, 3, 4, 2], names);
    const ref = await floatRun(m, { x: tensor(Float32Array.from(q), [2, 3, 4, 2]) });
    for (const n of names) {
      assert.deepEqual(Array.from(codesOf(run.out.get(n))), want[n], n);
      assert.deepEqual(run.out.get(n)!.dims, [...ref[n].dims], `${n} dims`);
      assert.deepEqual(run.program.gridOf(n), gx, `${n} keeps the input grid`);
    }
    assert.deepEqual(run.program.floatOps, []);
  });

  it('a planned output grid of its own gets one rescale (by hand)', async () => {
    const gy = grid(-1, 1, I8);
    const m = model({ nodes: [makeNode('Transpose', ['x'], ['y'], 't', { perm: [1, 0] })], inputs: [valueInfo('x', [3, 4])], outputs: ['y'] });
    const x = uniform(r, 12, -2, 3);
    const run = await integerRun(m, { x: tensor(x, [3, 4]) }, { planned: { x: gx, y: gy } });
    const q = onGrid(x, gx).codes;
    const moved = (await onCodes(m, q, [3, 4], ['y'])).y;
    assert.deepEqual(
      Array.from(codesOf(run.out.get('y'))),
      moved.map((c) => requant(((c - gx.zeroPoint) * gx.scale) / gy.scale, gy)),
    );
    assert.ok(run.stats.saturated > 0, 'values beyond [-1, 1] saturate and are counted');
  });
});

describe('concat: Concat', () => {
  it('parts on one grid: exact codes; parts on other grids and a constant: within half a step of onnxruntime', async () => {
    const gb = grid(-1, 1, I8),
      gy = grid(-3, 3);
    const m = model({
      nodes: [makeNode('Concat', ['x', 'x'], ['same'], 'c1', { axis: 1 }), makeNode('Concat', ['x', 'b', 'k'], ['y'], 'c2', { axis: -1 })],
      inputs: [valueInfo('x', ['N', 2, 3]), valueInfo('b', ['N', 2, 2])],
      outputs: ['same', 'y'],
      initializers: [makeTensor('k', DT.FLOAT, [2, 2, 1], [0.5, -2.5, 1.25, 2])],
    });
    const x = uniform(r, 12, -2, 3),
      b = uniform(r, 8, -1, 1);
    const run = await integerRun(m, { x: tensor(x, [2, 2, 3]), b: tensor(b, [2, 2, 2]) }, { free: { x: gx, b: gb, y: gy } });
    const q = onGrid(x, gx).codes;
    assert.deepEqual(Array.from(codesOf(run.out.get('same'))), (await onCodes(m, q, [2, 2, 3], ['same'], { b: tensor(b, [2, 2, 2]) })).same);
    const ref = await floatRun(m, { x: tensor(onGrid(x, gx).real, [2, 2, 3]), b: tensor(onGrid(b, gb).real, [2, 2, 2]) });
    assert.ok(maxAbsDiff(real(codesOf(run.out.get('y')), gy), ref.y.data as Float32Array) <= gy.scale / 2 + 1e-6);
  });
});

describe('select: Slice, Gather', () => {
  it('Slice with negative steps (opset 13 inputs), Slice with attributes (opset 9), Gather with negative indices: exact', async () => {
    const m13 = model({
      nodes: [makeNode('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['s'], 'slice'), makeNode('Gather', ['x', 'idx'], ['g'], 'gather', { axis: 2 })],
      inputs: [valueInfo('x', ['N', 3, 5])],
      outputs: ['s', 'g'],
      initializers: [
        makeTensor('st', DT.INT64, [2], [-1, 4]),
        makeTensor('en', DT.INT64, [2], [-100, 0]),
        makeTensor('ax', DT.INT64, [2], [1, 2]),
        makeTensor('sp', DT.INT64, [2], [-1, -2]),
        makeTensor('idx', DT.INT64, [2, 2], [-1, 0, 2, -3]),
      ],
    });
    const m9 = model({
      nodes: [makeNode('Slice', ['x'], ['s'], 'slice9', { starts: [1, -4], ends: [3, 1000], axes: [1, 2] })],
      inputs: [valueInfo('x', ['N', 3, 5])],
      outputs: ['s'],
      opset: 9,
    });
    const x = uniform(r, 30, -2, 3);
    const q = onGrid(x, gx).codes;
    for (const [m, names] of [
      [m13, ['s', 'g']],
      [m9, ['s']],
    ] as const) {
      const run = await integerRun(m, { x: tensor(x, [2, 3, 5]) }, { free: { x: gx } });
      const want = await onCodes(m, q, [2, 3, 5], [...names]);
      for (const n of names) assert.deepEqual(Array.from(codesOf(run.out.get(n))), want[n], n);
    }
  });

  it('Gather from a constant table by int64 ids (an embedding): the table quantized once onto the output grid', async () => {
    const table = uniform(r, 6 * 4, -1, 1);
    const gy = grid(-1, 1, I8);
    const m = model({
      nodes: [makeNode('Gather', ['emb', 'ids'], ['y'], 'embed')],
      inputs: [valueInfo('ids', ['N', 3], DT.INT64)],
      outputs: ['y'],
      initializers: [makeTensor('emb', DT.FLOAT, [6, 4], table)],
    });
    const ids = BigInt64Array.from([5n, 0n, 2n, 2n, 1n, 4n]);
    const run = await integerRun(m, { ids: new ort.Tensor('int64', ids, [2, 3]) }, { free: { y: gy } });
    assert.ok(run.program.ctx.isCodes('y'), 'an embedding looked up by the input ids is an activation');
    const expected = Array.from(ids).flatMap((id) => Array.from(table.subarray(Number(id) * 4, Number(id) * 4 + 4), (v) => quantize(v, gy)));
    assert.deepEqual(Array.from(codesOf(run.out.get('y'))), expected);
    assert.deepEqual(run.out.get('y')!.dims, [2, 3, 4]);
  });
});

describe('shape: Shape, Size, ConstantOfShape, Cast (raw tensors at run time)', () => {
  it('a Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain follows the batch size; shape tensors stay raw', async () => {
    const m = model({
      nodes: [
        makeNode('Shape', ['x'], ['sh'], 'shape'),
        makeNode('Gather', ['sh', 'i0'], ['n'], 'g0', { axis: 0 }),
        makeNode('Unsqueeze', ['n', 'a0'], ['n1'], 'u0'),
        makeNode('Concat', ['n1', 'minus1'], ['target'], 'cat', { axis: 0 }),
        makeNode('Reshape', ['x', 'target'], ['y'], 'reshape'),
        makeNode('Cast', ['sh'], ['shf'], 'castf', { to: DT.FLOAT }),
        makeNode('Cast', ['sh'], ['sh32'], 'cast32', { to: DT.INT32 }),
        makeNode('ConstantOfShape', ['sh'], ['zeros'], 'cos'),
        makeNode('Size', ['x'], ['size'], 'size'),
      ],
      inputs: [valueInfo('x', ['N', 2, 3])],
      outputs: ['y', 'sh', 'shf', 'sh32', 'zeros', 'size'],
      initializers: [makeTensor('i0', DT.INT64, [], [0]), makeTensor('a0', DT.INT64, [1], [0]), makeTensor('minus1', DT.INT64, [1], [-1])],
    });
    const x = uniform(r, 18, -2, 3);
    const run = await integerRun(m, { x: tensor(x, [3, 2, 3]) }, { free: { x: gx } });
    assert.deepEqual(run.out.get('y')!.dims, [3, 6]);
    assert.deepEqual(Array.from(codesOf(run.out.get('y'))), Array.from(onGrid(x, gx).codes));
    const ref = await floatRun(m, { x: tensor(x, [3, 2, 3]) });
    for (const n of ['sh', 'shf', 'sh32', 'zeros', 'size']) {
      const v = run.out.get(n)!;
      assert.equal(v.kind, 'raw', `${n} is not an activation`);
      assert.equal(v.kind === 'raw' && v.type, ref[n].type, `${n} type`);
      assert.deepEqual(Array.from(v.data as ArrayLike<number | bigint>), Array.from(ref[n].data as ArrayLike<number | bigint>), n);
      assert.deepEqual(v.dims, [...ref[n].dims]);
    }
    assert.deepEqual(run.program.floatOps, []);
  });
});

describe('pad: Pad', () => {
  it('constant 0 (the zero point), reflect and edge; opset-9 attributes: exact', async () => {
    const pads = [0, 1, 2, 0, 2, 1];
    const mk = (mode: string, cv: number) =>
      model({
        nodes: [makeNode('Pad', ['x', 'pads', 'cv'], ['y'], 'pad', { mode })],
        inputs: [valueInfo('x', ['N', 3, 4])],
        outputs: ['y'],
        initializers: [makeTensor('pads', DT.INT64, [6], pads), makeTensor('cv', DT.FLOAT, [], [cv])],
      });
    const x = uniform(r, 24, -2, 3);
    const q = onGrid(x, gx).codes;
    for (const mode of ['constant', 'reflect', 'edge']) {
      const run = await integerRun(mk(mode, 0), { x: tensor(x, [2, 3, 4]) }, { free: { x: gx } });
      // Zero pads to the code of 0: the zero point. onnxruntime pads the codes with it directly.
      const want = (await onCodes(mk(mode, gx.zeroPoint), q, [2, 3, 4], ['y'])).y;
      assert.deepEqual(Array.from(codesOf(run.out.get('y'))), want, mode);
    }
    const m9 = model({
      nodes: [makeNode('Pad', ['x'], ['y'], 'pad9', { pads, mode: 'edge' })],
      inputs: [valueInfo('x', ['N', 3, 4])],
      outputs: ['y'],
      opset: 9,
    });
    const run9 = await integerRun(m9, { x: tensor(x, [2, 3, 4]) }, { free: { x: gx } });
    assert.deepEqual(Array.from(codesOf(run9.out.get('y'))), (await onCodes(m9, q, [2, 3, 4], ['y'])).y);
  });
});

describe('resize: Resize nearest, Upsample', () => {
  it('every coordinate transformation onnxruntime supports and every nearest mode, scales 2 and 1.5 and explicit sizes: exact', async () => {
    const x = uniform(r, 2 * 5 * 3, -2, 3);
    const q = onGrid(x, gx).codes;
    const coords = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric'];
    const modes = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
    for (const coordinate_transformation_mode of coords)
      for (const nearest_mode of modes)
        for (const how of ['scales', 'sizes']) {
          const inits =
            how === 'scales'
              ? [makeTensor('roi', DT.FLOAT, [0], []), makeTensor('sc', DT.FLOAT, [4], [1, 1, 2, 1.5])]
              : [makeTensor('roi', DT.FLOAT, [0], []), makeTensor('sz', DT.INT64, [4], [1, 2, 7, 4])];
          const m = model({
            nodes: [
              makeNode('Resize', how === 'scales' ? ['x', 'roi', 'sc'] : ['x', 'roi', '', 'sz'], ['y'], 'resize', {
                mode: 'nearest',
                coordinate_transformation_mode,
                nearest_mode,
              }),
            ],
            inputs: [valueInfo('x', [1, 2, 5, 3])],
            outputs: ['y'],
            initializers: inits,
          });
          const run = await integerRun(m, { x: tensor(x, [1, 2, 5, 3]) }, { free: { x: gx } });
          const want = (await onCodes(m, q, [1, 2, 5, 3], ['y'])).y;
          assert.deepEqual(Array.from(codesOf(run.out.get('y'))), want, `${coordinate_transformation_mode} ${nearest_mode} ${how}`);
        }
    const up = model({
      nodes: [makeNode('Upsample', ['x', 'sc'], ['y'], 'up', { mode: 'nearest' })],
      inputs: [valueInfo('x', [1, 2, 5, 3])],
      outputs: ['y'],
      initializers: [makeTensor('sc', DT.FLOAT, [4], [1, 1, 2, 3])],
      opset: 9,
    });
    const run = await integerRun(up, { x: tensor(x, [1, 2, 5, 3]) }, { free: { x: gx } });
    assert.deepEqual(Array.from(codesOf(run.out.get('y'))), (await onCodes(up, q, [1, 2, 5, 3], ['y'])).y);
  });

  it('linear Resize has no exact integer form here: a named float fallback', async () => {
    const m = model({
      nodes: [makeNode('Resize', ['x', 'roi', 'sc'], ['y'], 'bilinear', { mode: 'linear' })],
      inputs: [valueInfo('x', [1, 1, 2, 2])],
      outputs: ['y'],
      initializers: [makeTensor('roi', DT.FLOAT, [0], []), makeTensor('sc', DT.FLOAT, [4], [1, 1, 2, 2])],
    });
    const run = await integerRun(m, { x: tensor(Float32Array.of(0, 1, 2, 3), [1, 1, 2, 2]) }, { free: { x: gx, y: gx } });
    assert.deepEqual(
      run.program.floatOps.map((f) => f.node),
      ['bilinear'],
    );
    assert.match(run.program.floatOps[0].reason, /mode linear/);
  });
});
