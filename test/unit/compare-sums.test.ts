/**
 * The comparison model's in-graph error sums (engine/quantize/compareGraph.ts) on real onnxruntime
 * sessions, against sums computed here in float64 from the same float32 tensors: plain pairs
 * (float32 reductions), and robust pairs for tensors near float32's limit or holding Inf, which
 * are summed in float64 over the finite elements only (float32 squares overflow from 1.8e19).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildComparisonModel, PAIR_SUMS, SUMS_OUTPUT } from '../../engine/quantize/compareGraph';
import { createSession } from '../../engine/runtime/session';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';

// float: a = 2 x; "quantized": q = x + 1 (float32 arithmetic in onnxruntime)
const float = buildModel({
  nodes: [makeNode('Mul', ['x', 'two'], ['a'], 'mul')],
  inputs: [valueInfo('x', [4])],
  outputs: [valueInfo('a', [4])],
  initializers: [makeTensor('two', DT.FLOAT, [], [2])],
});
const quant = buildModel({
  nodes: [makeNode('Add', ['x', 'one'], ['q'], 'add')],
  inputs: [valueInfo('x', [4])],
  outputs: [valueInfo('q', [4])],
  initializers: [makeTensor('one', DT.FLOAT, [], [1])],
});

/** The five sums in float64 over the elements where a is finite (q = x + c). */
function expected(x: number[], c = 1) {
  const f = Math.fround;
  let sx2 = 0,
    sy2 = 0,
    sd2 = 0,
    max = 0,
    n = 0;
  for (const v of x) {
    const a = f(2 * f(v));
    const q = f(f(v) + c);
    if (!Number.isFinite(a)) continue;
    sx2 += a * a;
    sy2 += q * q;
    sd2 += (a - q) ** 2;
    max = Math.max(max, Math.abs(f(a - q)));
    n++;
  }
  return [sx2, sy2, sd2, max, n];
}

async function sums(x: number[], robust: boolean): Promise<number[]> {
  const built = buildComparisonModel(quant, float, [{ float: 'a', quant: 'q', robust }]);
  const s = await createSession(built.model, 'float');
  const res = await s.run({ x: new ort.Tensor('float32', Float32Array.from(x), [4]) });
  await s.release();
  return Array.from(res[SUMS_OUTPUT].data as Float64Array).slice(0, PAIR_SUMS);
}

const close = (got: number[], want: number[], rel: number) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= rel * Math.abs(want[i]), `sum ${i}: ${g} vs ${want[i]}`));

describe('comparison sums', () => {
  it('plain pairs: float32 reductions match float64 sums to float32 precision', async () => {
    const x = [1, -2.5, 3, 0.25];
    close(await sums(x, false), expected(x), 1e-6);
  });

  it('fed the float tensors instead of running the float graph (floatFrom): same sums, no float node', async () => {
    const x = [1, -2.5, 3, 0.25];
    const sim = buildComparisonModel(quant, float, [{ float: 'a', quant: 'q' }], { exposeFloat: ['a'] });
    const fed = buildComparisonModel(quant, float, [{ float: 'a', quant: 'q' }], { floatFrom: (t) => (t === 'a' ? DT.FLOAT : undefined) });
    assert.deepEqual(fed.floatInputs, ['a']);
    assert.ok(!fed.model.graph!.node.some((n) => n.opType === 'Mul'), 'the float graph is not in the fed model');
    const feeds = { x: new ort.Tensor('float32', Float32Array.from(x), [4]) };
    const s = await createSession(sim.model, 'float');
    const rs = await s.run(feeds);
    await s.release();
    const f = await createSession(fed.model, 'float');
    const rf = await f.run({ ...feeds, [fed.floatName('a')]: rs[sim.floatName('a')] });
    await f.release();
    const got = Array.from(rf[SUMS_OUTPUT].data as Float64Array);
    assert.deepEqual(got, Array.from(rs[SUMS_OUTPUT].data as Float64Array));
    close(got, expected(x), 1e-6);
    // A float tensor of unknown element type cannot become an input.
    assert.throws(
      () => buildComparisonModel(quant, float, [{ float: 'a', quant: 'q' }], { floatFrom: () => undefined }),
      /no element type known for float tensor a/,
    );
  });

  it('70 pairs, more than one gathering node takes: the sums of every pair at its offset (opset 13 and 10)', async () => {
    const x = [1, -2.5, 3, 0.25];
    // Pair k compares a = 2x with q_k = x + k: distinct sums, so a pair landing at another offset fails.
    const n = 70;
    const many = buildModel({
      nodes: Array.from({ length: n }, (_, k) => makeNode('Add', ['x', `c${k}`], [`q${k}`], `add${k}`)),
      inputs: [valueInfo('x', [4])],
      outputs: Array.from({ length: n }, (_, k) => valueInfo(`q${k}`, [4])),
      initializers: Array.from({ length: n }, (_, k) => makeTensor(`c${k}`, DT.FLOAT, [], [k])),
    });
    for (const opset of [13, 10]) {
      const f = { ...float, opsetImport: [{ ...float.opsetImport[0], version: BigInt(opset) }] };
      const q = { ...many, opsetImport: [{ ...many.opsetImport[0], version: BigInt(opset) }] };
      const pairs = Array.from({ length: n }, (_, k) => ({ float: 'a', quant: `q${k}`, robust: k % 3 === 1, rank: k % 3 === 2 ? 1 : undefined }));
      const built = buildComparisonModel(q, f, pairs);
      const s = await createSession(built.model, 'float');
      const res = await s.run({ x: new ort.Tensor('float32', Float32Array.from(x), [4]) });
      await s.release();
      const got = Array.from(res[SUMS_OUTPUT].data as Float64Array);
      assert.equal(got.length, n * PAIR_SUMS);
      for (let k = 0; k < n; k++) close(got.slice(built.pairOffset(k), built.pairOffset(k) + PAIR_SUMS), expected(x, k), 1e-6);
      // No gathering node reads more than 32 tensors.
      assert.ok(
        built.model.graph!.node.every((nd) => nd.opType === 'Gather' || nd.input.length <= 32),
        `opset ${opset}`,
      );
    }
  });

  it('robust pairs: values of 1e20 and an infinite element give finite float64 sums over the finite elements', async () => {
    const x = [1e20, -2e20, Infinity, 3];
    const got = await sums(x, true);
    close(got, expected(x), 1e-12);
    assert.equal(got[4], 3);
    // the plain float32 path overflows on the same tensor: the reason robust pairs exist
    assert.ok((await sums([1e20, -2e20, 5, 3], false)).slice(0, 3).some((v) => !Number.isFinite(v)));
  });

  it('many pairs of both kinds, of known rank or not, land at their offsets, with sequences (opset 13) and without (opset 10)', async () => {
    const x = [1, -2.5, 3, 0.25];
    const want = expected(x);
    for (const opset of [13, 10]) {
      const f = { ...float, opsetImport: [{ ...float.opsetImport[0], version: BigInt(opset) }] };
      const q = { ...quant, opsetImport: [{ ...quant.opsetImport[0], version: BigInt(opset) }] };
      const pairs = [
        { float: 'a', quant: 'q', robust: false },
        { float: 'a', quant: 'q', robust: true },
        { float: 'a', quant: 'q', robust: false, rank: 1 },
      ];
      const built = buildComparisonModel(q, f, pairs);
      const ops = built.model.graph!.node.map((n) => n.opType);
      assert.equal(ops.includes('SequenceConstruct'), opset >= 11, `opset ${opset}: ${ops.join(' ')}`);
      // A handful of nodes gather the sums, not one Reshape and Cast per scalar.
      assert.ok(ops.filter((o) => o === 'Reshape').length <= (opset >= 11 ? 0 : 20));
      // Casts: the robust pair's x, mask and q; the float32 and int64 stacks to float64.
      assert.equal(ops.filter((o) => o === 'Cast').length, 5);
      const s = await createSession(built.model, 'float');
      const res = await s.run({ x: new ort.Tensor('float32', Float32Array.from(x), [4]) });
      await s.release();
      const got = Array.from(res[SUMS_OUTPUT].data as Float64Array);
      assert.equal(got.length, pairs.length * PAIR_SUMS);
      for (let k = 0; k < pairs.length; k++) close(got.slice(built.pairOffset(k), built.pairOffset(k) + PAIR_SUMS), want, 1e-6);
    }
  });
});
