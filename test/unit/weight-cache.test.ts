/**
 * Every configuration of a sweep or a diagnosis quantizes its own clone of the prepared model; the
 * weights' codes depend only on the float values and the weight scheme, so a clone must reuse the
 * codes computed for its original (onnx/model.ts originOf), including inside If bodies, and a
 * different weight scheme must not. The reused codes must also be what quantizing the weight
 * alone gives: round(w / scale), clamped, per output channel.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { cloneModel, originOf } from '../../engine/onnx/model';
import { readFloatTensor } from '../../engine/onnx/tensor';
import { resolveConfig } from '../../engine/quantize/presets';
import { buildQdqModel } from '../../engine/quantize/qdqRewrite';
import { DT, bodyGraph, buildModel, controlNode, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';

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
});
