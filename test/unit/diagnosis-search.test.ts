/**
 * The fix search's look (engine/diagnosis/search.ts): an option whose first 16 samples say, paired
 * with the plan so far at 97.5%, that it is worse stops there, and a stopped option is never taken
 * nor counted as the best, even when its estimate over those (easier) first samples beats the
 * others' estimates over all samples. Measurements here are per-sample SQNRs made up for the test,
 * measured by a stand-in that honours the look as measure.ts does.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Look, Measurement } from '../../engine/analysis/paired';
import { meanInterval } from '../../engine/analysis/statistics';
import { searchFix } from '../../engine/diagnosis/search';
import { ModelLoadError } from '../../engine/runtime/ortErrors';
import type { QuantConfig } from '../../protocol/report';
import { resolveConfig } from '../../engine/quantize/presets';

function measurement(values: number[]): Measurement {
  const value = meanInterval(values);
  return {
    outputs: [],
    primary: {
      kind: 'sqnr',
      output: 'y',
      description: 'SQNR of y',
      value,
      loss: null,
      lossUnit: 'dB',
      lossSd: null,
      n: values.length,
      rationale: '',
      warnings: [],
    },
    metrics: { top1: null, agreement: 1, outputSqnrDb: value.estimate, samples: values.length },
    perSample: Float64Array.from(values),
    perSampleSqnr: Float64Array.from(values),
    table: null,
    samples: values.length,
  };
}

// 48 samples: the first 16 easy (about 40 dB), the rest hard (about 10 dB); a little spread.
const base = Array.from({ length: 48 }, (_, i) => (i < 16 ? 40 : 10) + ((i * 7) % 5) * 0.1);
const floatLayer = base.map((v) => v + 3); // clearly better everywhere: mean ~23 dB
const wider = base.map((v) => v - 1); // worse on every sample; its first 16 average ~39 dB

describe('fix search: the look', () => {
  it('stops an option that is worse than the plan on its first 16 samples, and never takes it', async () => {
    const runs: number[] = [];
    const measure = async (config: QuantConfig, look?: Look): Promise<Measurement> => {
      const values = config.exclude.includes('L') ? floatLayer : (config.layerOverrides ?? []).length ? wider : base;
      if (look) {
        const partial = measurement(values.slice(0, look.samples));
        if (look.stop(partial)) {
          runs.push(look.samples);
          return partial;
        }
      }
      runs.push(values.length);
      return measurement(values);
    };
    const config = resolveConfig('tensorrt');
    const result = await searchFix({
      base: config,
      baseline: measurement(base),
      layers: [
        {
          node: 'L',
          options: [
            { node: 'L', cost: 1, changes: [{ kind: 'weight-bits', node: 'L', value: 16 }] },
            { node: 'L', cost: 5, changes: [{ kind: 'float', node: 'L', value: true }] },
          ],
        },
      ],
      budget: 30,
      measure,
    });
    const stopped = result.tried.filter((t) => t.stopped);
    assert.equal(stopped.length, 1);
    assert.deepEqual(stopped[0].changes, [{ kind: 'weight-bits', node: 'L', value: 16 }]);
    assert.equal(stopped[0].m.samples, 16);
    // its estimate over the first 16 samples is higher than the float option's over all 48 ...
    assert.ok(stopped[0].m.primary.value.estimate > 38 && result.steps[0].m.primary.value.estimate < 24);
    // ... yet the step taken is the float option, measured on every sample
    assert.equal(result.steps.length, 1);
    assert.deepEqual(result.steps[0].changes, [{ kind: 'float', node: 'L', value: true }]);
    assert.equal(result.steps[0].m.samples, 48);
    assert.deepEqual(runs.slice(0, 2), [16, 48]);
    assert.ok(
      result.notes.some((n) => n.startsWith('1 of ') && n.includes('stopped after the first 16 of 48 samples')),
      result.notes.join(' | '),
    );
  });

  it('passes over a candidate onnxruntime cannot load, says so, and takes the next best', async () => {
    const measure = async (config: QuantConfig): Promise<Measurement> => {
      if (config.exclude.includes('L'))
        throw new ModelLoadError(
          'quantized model of m.onnx: onnxruntime cannot load it: node L_bias_div_round (Round): ...',
          'node L_bias_div_round (Round): ...',
        );
      return measurement((config.layerOverrides ?? []).length ? floatLayer : base);
    };
    const result = await searchFix({
      base: resolveConfig('tensorrt'),
      baseline: measurement(base),
      layers: [
        {
          node: 'L',
          options: [
            { node: 'L', cost: 5, changes: [{ kind: 'float', node: 'L', value: true }] },
            { node: 'L', cost: 1, changes: [{ kind: 'weight-bits', node: 'L', value: 16 }] },
          ],
        },
      ],
      budget: 30,
      measure,
    });
    assert.equal(result.steps.length, 1);
    assert.deepEqual(result.steps[0].changes, [{ kind: 'weight-bits', node: 'L', value: 16 }]);
    assert.ok(
      result.notes.some((n) => /^1 candidate not measured: onnxruntime cannot load it.*L in float \(node L_bias_div_round/.test(n)),
      result.notes.join(' | '),
    );
    // any other error still ends the search
    await assert.rejects(
      searchFix({
        base: resolveConfig('tensorrt'),
        baseline: measurement(base),
        layers: [{ node: 'L', options: [{ node: 'L', cost: 1, changes: [{ kind: 'float', node: 'L', value: true }] }] }],
        budget: 30,
        measure: async () => {
          throw new Error('disk full');
        },
      }),
      /disk full/,
    );
  });

  it('measures every option on every sample when the samples are too few for a look', async () => {
    const few = base.slice(0, 24);
    const seen: (Look | undefined)[] = [];
    const result = await searchFix({
      base: resolveConfig('tensorrt'),
      baseline: measurement(few),
      layers: [{ node: 'L', options: [{ node: 'L', cost: 1, changes: [{ kind: 'weight-bits', node: 'L', value: 16 }] }] }],
      budget: 30,
      measure: async (_c, look) => {
        seen.push(look);
        return measurement(few.map((v) => v - 1));
      },
    });
    assert.deepEqual(seen, [undefined]);
    assert.ok(!result.tried.some((t) => t.stopped));
  });
});
