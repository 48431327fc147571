/**
 * Every configuration of a sweep or a diagnosis quantizes its own clone of the prepared model; the
 * weights' codes depend only on the float values and the weight scheme, so a clone must reuse the
 * codes computed for its original (onnx/model.ts originOf), including inside If bodies, and a
 * different weight scheme must not. The reused codes must also be what quantizing the weight
 * alone gives: round(w / scale), clamped, per output channel.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { cloneModel, originOf } from '../../engine/onnx/model';
import { readFloatTensor } from '../../engine/onnx/tensor';
import { resolveConfig } from '../../engine/quantize/presets';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { DT, bodyGraph, buildModel, controlNode, makeNode, makeTensor, randn, rng, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const demo = path.join(__dirname, '../../examples/mnist-cnn');

describe('quantized weights shared across configurations', () => {
  it('a clone of a clone leads back to the original initializer, in the main graph and in If bodies', () => {
    const body = (name: string, w: number) =>
      bodyGraph(name, {
        nodes: [makeNode('Mul', ['x', `${name}_w`], [`${name}_y`], `${name}_mul`)],
        inputs: [],
        outputs: [valueInfo(`${name}_y`, [2])],
        initializers: [makeTensor(`${name}_w`, DT.FLOAT, [2], Float32Array.of(w, w))],
      });
    const m = buildModel({
      nodes: [controlNode('If', ['c'], ['y'], 'if', { then_branch: body('then', 2), else_branch: body('else', 3) })],
      inputs: [valueInfo('c', [], DT.BOOL), valueInfo('x', [2])],
      outputs: [valueInfo('y', [2])],
      initializers: [makeTensor('k', DT.FLOAT, [1], Float32Array.of(1))],
    });
    const twice = cloneModel(cloneModel(m));
    assert.equal(originOf(twice.graph!.initializer[0]), m.graph!.initializer[0]);
    assert.notEqual(twice.graph!.initializer[0], m.graph!.initializer[0]);
    const branch = (x: typeof m, k: number) => x.graph!.node[0].attribute[k].g!.initializer[0];
    assert.equal(originOf(branch(twice, 0)), branch(m, 0));
    assert.equal(originOf(branch(twice, 1)), branch(m, 1));
    assert.equal(originOf(m.graph!.initializer[0]), m.graph!.initializer[0]);
  });

  it("two configurations with the same weight scheme share the codes; another scheme gets its own, each equal to the weight's own quantization", async () => {
    const p = await prepareAnalysis(path.join(demo, 'model.onnx'), { dataPath: path.join(demo, 'data'), samples: 16 });
    const base = resolveConfig('tensorrt', { calibration: 'entropy' });
    const build = async (config: typeof base) => {
      const q = await quantizeWith(p, config);
      return buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false).weights;
    };
    const a = await build(base);
    const b = await build({ ...base, calibration: 'percentile' });
    const c = await build({ ...base, weights: { ...base.weights, bits: 4 } });
    assert.ok(a.length >= 2);
    let checked = 0;
    for (const [k, w] of a.entries()) {
      assert.equal(b[k].codes, w.codes, `${w.layer}: same scheme, same codes object`);
      assert.notEqual(c[k].codes, w.codes, `${w.layer}: 4-bit weights are quantized anew`);
      // the shared codes are this weight's: round-half-even(w / scale) clamped, per channel
      const init = p.float.graph!.initializer.find((t) => t.name === w.tensor) ?? null;
      if (!init || w.axis === null) continue;
      const f = readFloatTensor(init, p.loaded.dir);
      const inner = f.data.length / f.dims[0];
      for (let i = 0; i < f.data.length; i += 97) {
        const prm = w.params[Math.floor(i / inner)];
        const x = f.data[i] / prm.scale;
        const r = Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x);
        assert.equal(w.codes[i], Math.min(prm.qmax, Math.max(prm.qmin, r + prm.zeroPoint)), `${w.layer}[${i}]`);
        checked++;
      }
    }
    assert.ok(checked > 20, `${checked} weight values checked`);
  });

  it('a BatchNorm folded for every configuration is folded once: each clone gets a fresh tensor with the same numbers, whose codes are shared', async () => {
    const r = rng(5);
    const cw = Float32Array.from({ length: 3 * 2 * 3 * 3 }, () => randn(r));
    const [g, be, mu, v, eps] = [[2, 0.5, -1], [0.1, 0, -0.3], [0.2, -0.1, 0], [4, 0.25, 1], 1e-3];
    const dir = tempDir();
    const file = writeModel(
      dir,
      'bn.onnx',
      buildModel({
        nodes: [
          makeNode('Conv', ['x', 'w'], ['c'], 'conv'),
          makeNode('BatchNormalization', ['c', 'g', 'be', 'mu', 'var'], ['y'], 'bn', { epsilon: { float: eps } }),
        ],
        inputs: [valueInfo('x', ['N', 2, 5, 5])],
        outputs: [valueInfo('y', ['N', 3, 3, 3])],
        initializers: [
          makeTensor('w', DT.FLOAT, [3, 2, 3, 3], cw),
          makeTensor('g', DT.FLOAT, [3], g),
          makeTensor('be', DT.FLOAT, [3], be),
          makeTensor('mu', DT.FLOAT, [3], mu),
          makeTensor('var', DT.FLOAT, [3], v),
        ],
      }),
    );
    try {
      const p = await prepareAnalysis(file, { samples: 8 });
      const base = resolveConfig('tensorrt', { calibration: 'percentile' });
      const folded = async (config: typeof base) => {
        const q = await quantizeWith(p, config);
        const conv = q.prepared.graph!.node.find((n) => n.opType === 'Conv')!;
        const init = (name: string) => q.prepared.graph!.initializer.find((t) => t.name === name)!;
        const codes = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false).weights[0].codes;
        return { w: init(conv.input[1]), b: init(conv.input[2]), codes };
      };
      const a = await folded(base);
      const b = await folded({ ...base, calibration: 'minmax' });
      const c = await folded({ ...base, weights: { ...base.weights, bits: 4 } });
      for (const x of [b, c]) {
        assert.notEqual(x.w, a.w, 'each configuration has its own initializer');
        assert.equal(originOf(x.w), originOf(a.w), 'declared the same numbers as the first fold');
        assert.equal(originOf(x.b), originOf(a.b));
      }
      assert.equal(b.codes, a.codes, 'same weight scheme: the codes are reused');
      assert.notEqual(c.codes, a.codes, '4-bit weights are quantized anew');
      // the numbers, for every configuration: W g / sqrt(var + eps) per output channel, b' = (0 - mu) g / sqrt(var + eps) + beta
      for (const x of [a, b, c]) {
        const w = readFloatTensor(x.w, dir).data;
        const bias = readFloatTensor(x.b, dir).data;
        for (let o = 0; o < 3; o++) {
          const f = g[o] / Math.sqrt(v[o] + eps);
          for (let k = 0; k < 18; k++) assert.ok(Math.abs(w[o * 18 + k] - cw[o * 18 + k] * f) <= 1e-6 * Math.abs(cw[o * 18 + k] * f) + 1e-7);
          assert.ok(Math.abs(bias[o] - (-mu[o] * f + be[o])) < 1e-6);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
