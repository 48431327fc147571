/**
 * A fix search's candidate runs only downstream of its change, fed with the codes a measured
 * configuration computed at the cut (engine/analysis/prefixReuse.ts). The shortcut must not change
 * a single number: every candidate is measured both ways, on real onnxruntime integer kernels,
 * and the measurements must be identical (onnxruntime's integer kernels are exact, and the cut
 * lies at codes, so the suffix computes the same integers), or, with a layer kept in float,
 * within float noise. It must also really cut: a change
 * to a late layer runs a small part of the model, one to the first layer runs all of it.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FixChange } from '../../protocol/report';
import { type Prepared, type Quantized, prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { type Measurement, OutputMeasurer } from '../../engine/analysis/measure';
import { applyChanges } from '../../engine/diagnosis/candidates';
import { resolveConfig } from '../../engine/quantize/presets';

const demo = path.resolve(__dirname, '../../examples/mnist-cnn');

/** Everything a measurement reports. */
function numbers(m: Measurement) {
  return { outputs: m.outputs, primary: m.primary, metrics: m.metrics, perSample: [...m.perSample], perSampleSqnr: [...m.perSampleSqnr], table: m.table };
}

/**
 * `a` equals `b`, numbers within `rel` (relative). A layer kept in float runs onnxruntime's float
 * kernels, whose summation order may follow the graph around them (its layout pass): on the
 * PP-OCRv4 recogniser such candidates differed by ~1e-6 relative, float noise; integer kernels
 * are exact.
 */
function assertClose(a: unknown, b: unknown, rel: number, at = ''): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Object.is(a, b)) return;
    assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)), `${at}: ${a} vs ${b}`);
    return;
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
    assert.equal(a, b, at);
    return;
  }
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), at);
  for (const k of Object.keys(a)) assertClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], rel, `${at}.${k}`);
}

describe("candidates measured from a measured configuration's codes (demo CNN, integer kernels)", () => {
  let p: Prepared;
  let q: Quantized;
  let whole: OutputMeasurer;
  let reusing: OutputMeasurer;
  let layers: string[];

  before(async () => {
    p = await prepareAnalysis(path.join(demo, 'model.onnx'), { dataPath: path.join(demo, 'data'), samples: 96 });
    q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' }));
    layers = q.plan.layers.map((l) => l.node.name);
    whole = await OutputMeasurer.create(p);
    reusing = await OutputMeasurer.create(p, { cutLayers: layers });
    // The configuration every candidate extends, measured first (as the diagnosis does).
    assert.deepEqual(numbers(await reusing.measureConfig(q.config, q)), numbers(await whole.measureConfig(q.config, q)));
    assert.equal(reusing.reuse.candidates, 0);
  });
  after(async () => {
    await whole.release();
    await reusing.release();
  });

  /** Measure `changes` both ways; the share of the model's nodes the reusing measurer ran. */
  async function both(changes: FixChange[]): Promise<number | null> {
    const config = applyChanges(q.config, changes);
    const before = { ...reusing.reuse };
    const fast = await reusing.measureConfig(config);
    const slow = await whole.measureConfig(config);
    if (changes.some((c) => c.kind === 'float')) assertClose(numbers(fast), numbers(slow), 1e-5);
    else assert.deepEqual(numbers(fast), numbers(slow));
    if (reusing.reuse.candidates === before.candidates) return null;
    return (reusing.reuse.nodesRun - before.nodesRun) / (reusing.reuse.nodesWhole - before.nodesWhole);
  }

  it("a change to the last layer runs only its end of the model, with the whole model's numbers", async () => {
    const last = q.plan.layers[q.plan.layers.length - 1];
    for (const changes of [
      [{ kind: 'per-channel', node: last.node.name, value: false }],
      [{ kind: 'float', node: last.node.name, value: true }],
      [{ kind: 'calibration', tensor: last.output, value: 'minmax' }],
    ] as FixChange[][]) {
      const share = await both(changes);
      assert.ok(share !== null && share < 0.5, `${JSON.stringify(changes)}: ran ${share} of the nodes`);
    }
  });

  it("recalibrating a layer's INPUT cuts before the layer producing it (their kernel is fused)", async () => {
    const last = q.plan.layers[q.plan.layers.length - 1];
    const input = last.node.input.find((_, i) => last.roles[i]?.kind === 'activation')!;
    const share = await both([{ kind: 'calibration', tensor: input, value: 'minmax' }]);
    assert.ok(share !== null && share < 0.8, `ran ${share} of the nodes`);
  });

  it('16-bit weights move every Q/DQ to the com.microsoft domain: the 8-bit ones upstream are still shared, with the same numbers', async () => {
    const last = q.plan.layers[q.plan.layers.length - 1];
    const share = await both([{ kind: 'weight-bits', node: last.node.name, value: 16 }]);
    assert.ok(share !== null && share < 0.5, `ran ${share} of the nodes`);
    // and a plan holding a 16-bit step, extended by another change
    const share2 = await both([
      { kind: 'weight-bits', node: last.node.name, value: 16 },
      { kind: 'per-channel', node: layers[layers.length - 2], value: false },
    ]);
    assert.ok(share2 !== null && share2 < 0.9, `ran ${share2} of the nodes`);
  });

  it('a change to the first layer runs the whole model (nothing upstream to reuse)', async () => {
    const share = await both([{ kind: 'float', node: layers[0], value: true }]);
    assert.ok(share === null || share > 0.9, `ran ${share} of the nodes`);
  });

  it('a plan of several changes starts from the measured plan it extends, not only from the baseline', async () => {
    const first: FixChange = { kind: 'weight-bits', node: layers[1], value: 16 };
    await both([first]);
    const share = await both([first, { kind: 'float', node: layers[layers.length - 1], value: true }]);
    assert.ok(share !== null && share < 0.5, `ran ${share} of the nodes`);
  });

  it('keeps only the latest cuts whose codes fit the budget, and never holds more than it', async () => {
    // 100 bytes per sample per model: the codes entering the classifier head (64 per sample) fit,
    // a feature map's (8 x 14 x 14 and more) do not.
    const keptBytes = 8 * 100 * p.data.samples;
    const small = await OutputMeasurer.create(p, { cutLayers: layers, keptBytes });
    try {
      await small.measureConfig(q.config, q);
      const last = layers[layers.length - 1];
      const middle = q.plan.layers.find((l) => l.node.opType === 'Conv' && l !== q.plan.layers[0])!.node.name;
      for (const [node, reused] of [
        [last, true],
        [middle, false],
      ] as const) {
        const config = applyChanges(q.config, [{ kind: 'per-channel', node, value: false }]);
        const before = small.reuse.candidates;
        assert.deepEqual(numbers(await small.measureConfig(config)), numbers(await whole.measureConfig(config)));
        assert.equal(small.reuse.candidates > before, reused, node);
        assert.ok(small.reuse.keptBytes > 0 && small.reuse.keptBytes <= keptBytes, `${small.reuse.keptBytes} bytes kept`);
      }
    } finally {
      await small.release();
    }
  });
});
