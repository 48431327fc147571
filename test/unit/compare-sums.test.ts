/**
 * The comparison model's in-graph error sums (engine/quantize/compareGraph.ts) on real onnxruntime
 * sessions, against sums computed here in float64 from the same float32 tensors: plain pairs
 * (float32 reductions), and robust pairs for tensors near float32's limit or holding Inf, which
 * are summed in float64 over the finite elements only (float32 squares overflow from 1.8e19).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import {
  buildComparisonModel,
  CODES_PREFIX,
  FED_PAIR_SUMS,
  GATED_SUMS_OUTPUT,
  ISO_PREFIX,
  ISOLATED_FLAG,
  mergeIsolated,
  PAIR_SUMS,
  SUMS_OUTPUT,
} from '../../engine/quantize/compareGraph';
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

/**
 * float: h = relu(x), a = 2 h. The isolated layer quantizes h (scale 0.07, zero point 3, uint8)
 * and multiplies by 2; h is nobody's output, a is compared (accumulated and isolated).
 */
function isolatedMul() {
  const f = buildModel({
    nodes: [makeNode('Relu', ['x'], ['h'], 'relu'), makeNode('Mul', ['h', 'two'], ['a'], 'mul')],
    inputs: [valueInfo('x', [4])],
    outputs: [valueInfo('a', [4])],
    initializers: [makeTensor('two', DT.FLOAT, [], [2])],
  });
  const iso = buildModel({
    nodes: [
      makeNode('QuantizeLinear', ['h', 's', 'z'], ['hq'], 'h_q'),
      makeNode('DequantizeLinear', ['hq', 's', 'z'], ['hd'], 'h_dq'),
      makeNode('Mul', ['hd', 'two'], ['m'], 'mul__isolated'),
      makeNode('QuantizeLinear', ['m', 's', 'z'], ['mq'], 'm_q'),
      makeNode('DequantizeLinear', ['mq', 's', 'z'], ['md'], 'm_dq'),
    ],
    inputs: [valueInfo('h', [4])],
    outputs: [valueInfo('md', [4])],
    initializers: [makeTensor('two', DT.FLOAT, [], [2]), makeTensor('s', DT.FLOAT, [], [0.07]), makeTensor('z', DT.UINT8, [], [3])],
  });
  return { f, merged: mergeIsolated(quant, { model: iso, taps: [{ layer: 'mul', dq: 'md' }], inputs: ['h'] }) };
}

describe('comparison sums', () => {
  it('plain pairs: float32 reductions match float64 sums to float32 precision', async () => {
    const x = [1, -2.5, 3, 0.25];
    close(await sums(x, false), expected(x), 1e-6);
  });

  it('fed the float tensors instead of running the float graph (floatFrom): same sums, no float node', async () => {
    // plain pairs, and robust ones over a tensor holding an infinity (summed over the finite elements)
    for (const [x, robust] of [
      [[1, -2.5, 3, 0.25], false],
      [[1e20, -2e20, Infinity, 3], true],
    ] as const) {
      const pairs = [{ float: 'a', quant: 'q', robust }];
      const sim = buildComparisonModel(quant, float, pairs, { exposeFloat: ['a'] });
      const fed = buildComparisonModel(quant, float, pairs, { floatFrom: (t) => (t === 'a' ? DT.FLOAT : undefined) });
      assert.deepEqual(fed.floatInputs, ['a']);
      assert.ok(!fed.model.graph!.node.some((n) => n.opType === 'Mul'), 'the float graph is not in the fed model');
      const feeds = { x: new ort.Tensor('float32', Float32Array.from(x), [4]) };
      const s = await createSession(sim.model, 'float');
      const rs = await s.run(feeds);
      await s.release();
      const f = await createSession(fed.model, 'float');
      const rf = await f.run({ ...feeds, [fed.floatName('a')]: rs[sim.floatName('a')] });
      await f.release();
      // Fed, the model leaves out the float tensor's own sums (sum x^2, count): the feeding model has them.
      const got = Array.from(rf[SUMS_OUTPUT].data as Float64Array);
      const full = Array.from(rs[SUMS_OUTPUT].data as Float64Array);
      assert.equal(got.length, FED_PAIR_SUMS);
      assert.deepEqual(got, full.slice(1, 4));
      close(full, expected([...x]), robust ? 1e-12 : 1e-6);
    }
    // A float tensor of unknown element type cannot become an input.
    assert.throws(
      () => buildComparisonModel(quant, float, [{ float: 'a', quant: 'q' }], { floatFrom: () => undefined }),
      /no element type known for float tensor a/,
    );
  });

  it("an isolated layer's input that no pair reads is fed as codes the simulated model quantizes: the integer sums are those of a model running its own float graph", async () => {
    const { f, merged } = isolatedMul();
    const pairs = [
      { float: 'a', quant: 'q' },
      { float: 'a', quant: merged.dq.get('mul')! },
    ];
    const int = buildComparisonModel(merged.model, f, pairs, { floatFrom: () => DT.FLOAT });
    assert.deepEqual(int.floatInputs, ['a'], 'h is not fed as float');
    assert.deepEqual(
      int.codesInputs.map((c) => [c.float, c.name]),
      [['h', `${ISO_PREFIX}hq`]],
    );
    assert.ok(!int.model.graph!.node.some((n) => n.name === `${ISO_PREFIX}h_q`), 'its QuantizeLinear left the integer model');
    const sim = buildComparisonModel(merged.model, f, pairs, { exposeFloat: int.floatInputs, exposeCodes: int.codesInputs });
    const whole = buildComparisonModel(merged.model, f, pairs);

    const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, -2.5, 3, 0.3]), [4]) };
    const run = async (model: typeof f, mode: 'simulated' | 'integer', fd: Record<string, ort.Tensor>) => {
      const session = await createSession(model, mode);
      const r = await session.run(fd);
      await session.release();
      return r;
    };
    const rs = await run(sim.model, 'simulated', feeds);
    // round(relu(x) / 0.07) + 3 = round(14.29, 0, 42.86, 4.29) + 3
    assert.deepEqual(Array.from(rs[`${CODES_PREFIX}${ISO_PREFIX}hq`].data as Uint8Array), [17, 3, 46, 7]);
    const fed = await run(int.model, 'integer', {
      ...feeds,
      [int.floatName('a')]: rs[sim.floatName('a')],
      [`${ISO_PREFIX}hq`]: rs[`${CODES_PREFIX}${ISO_PREFIX}hq`],
    });
    const own = Array.from((await run(whole.model, 'integer', feeds))[SUMS_OUTPUT].data as Float64Array);
    // per pair: sum y^2, (x-y)^2, max |x-y| (fed: the float tensor's own sums are the simulated model's)
    const got = Array.from(fed[SUMS_OUTPUT].data as Float64Array);
    assert.deepEqual(got, [...own.slice(1, 4), ...own.slice(PAIR_SUMS + 1, PAIR_SUMS + 4)]);
    // The isolated pair by hand: a = 2h against the layer on the dequantized codes, requantized.
    const f32 = Math.fround;
    const sc = f32(0.07);
    const sd2 = [1, 0, 3, 0.3].reduce((acc, v, i) => {
      const y = Math.round(f32(f32(2 * f32([14, 0, 43, 4][i] * sc)) / sc)) * sc;
      return acc + (f32(2 * f32(v)) - f32(y)) ** 2;
    }, 0);
    close([got[int.pairOffset(1) + 1]], [sd2], 1e-5);
    assert.ok(sd2 > 1e-3, `a visible isolated error: ${sd2}`);
  });

  it('an isolated layer gated by an If runs only on batches fed the flag: the same sums as ungated when true, zeros when false', async () => {
    const { f, merged } = isolatedMul();
    const plain = [
      { float: 'a', quant: 'q' },
      { float: 'a', quant: merged.dq.get('mul')! },
    ];
    const gated = [plain[0], { ...plain[1], gate: 'mul' }];
    const int = buildComparisonModel(merged.model, f, gated, { floatFrom: () => DT.FLOAT });
    const sim = buildComparisonModel(merged.model, f, gated, { exposeFloat: int.floatInputs, exposeCodes: int.codesInputs });
    const ungated = buildComparisonModel(merged.model, f, plain);
    for (const m of [sim, int]) {
      assert.ok(m.gated);
      const main = m.model.graph!.node;
      // Only the If is left of the isolated layer in the main graph (the codes' own QuantizeLinear is not isolated).
      assert.deepEqual(
        main.filter((n) => n.name.startsWith(ISO_PREFIX)).map((n) => n.opType),
        ['If'],
      );
      const branch = main.find((n) => n.opType === 'If')!.attribute.find((a) => a.name === 'then_branch')!.g!;
      assert.ok(
        branch.node.some((n) => n.opType === 'Mul' && n.name.startsWith(`${ISO_PREFIX}mul__isolated`)),
        'the layer copy runs in the branch',
      );
    }

    const x = new ort.Tensor('float32', Float32Array.from([1, -2.5, 3, 0.3]), [4]);
    const run = async (model: typeof f, mode: 'simulated' | 'integer', fd: Record<string, ort.Tensor>) => {
      const session = await createSession(model, mode);
      const r = await session.run(fd);
      await session.release();
      return r;
    };
    const want = {
      simulated: Array.from((await run(ungated.model, 'simulated', { x }))[SUMS_OUTPUT].data as Float64Array),
      integer: Array.from((await run(ungated.model, 'integer', { x }))[SUMS_OUTPUT].data as Float64Array),
    };
    // the isolated pair's sum y^2, (x-y)^2, max |x-y| in an ungated model
    const isoSums = (w: number[]) => w.slice(PAIR_SUMS + 1, PAIR_SUMS + 4);
    assert.ok(isoSums(want.integer)[1] > 1e-3, 'a visible isolated error');
    for (const on of [true, false]) {
      const flag = new ort.Tensor('bool', [on], []);
      const rs = await run(sim.model, 'simulated', { x, [ISOLATED_FLAG]: flag });
      const ri = await run(int.model, 'integer', {
        x,
        [ISOLATED_FLAG]: flag,
        [int.floatName('a')]: rs[sim.floatName('a')],
        [`${ISO_PREFIX}hq`]: rs[`${CODES_PREFIX}${ISO_PREFIX}hq`],
      });
      // the accumulated pair whatever the flag
      assert.deepEqual(Array.from(rs[SUMS_OUTPUT].data as Float64Array), want.simulated.slice(0, PAIR_SUMS));
      assert.deepEqual(Array.from(ri[SUMS_OUTPUT].data as Float64Array), want.integer.slice(1, 4));
      for (const [r, m, w] of [
        [rs, sim, want.simulated],
        [ri, int, want.integer],
      ] as const) {
        const got = Array.from(r[GATED_SUMS_OUTPUT].data as Float64Array);
        assert.equal(m.pairOffset(1), 0);
        assert.deepEqual(got, on ? isoSums(w) : [0, 0, 0]);
      }
    }
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
