import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { QuantConfig, TensorReport } from '../../protocol/report';
import { resolveConfig } from '../../engine/quantize/presets';
import { paramsFor, representableRange } from '../../engine/quantize/scheme';
import { currentError, currentGrid, klPointAt, rangeFor, tensorScheme, thresholdBounds, whatIf, whatIfApplies } from '../../webview/whatIfData';

const config: QuantConfig = resolveConfig('tensorrt', { calibration: 'entropy' });

/** An activation quantized like the engine does: range -> paramsFor -> chosen (representable range, scale). */
function tensor(bits: 8 | 16, amax: number): TensorReport {
  const p = paramsFor(-amax, amax, { ...config.activations, bits });
  const edges = Array.from({ length: 101 }, (_, i) => -4 + i * 0.08);
  const counts = edges.slice(0, -1).map((x) => Math.round(1000 * Math.exp(-Math.abs(x))));
  return {
    name: 't',
    kind: 'activation',
    min: -4,
    max: 4,
    count: counts.reduce((a, b) => a + b, 0),
    degenerate: null,
    nanCount: 0,
    infCount: 0,
    histogram: { edges, counts },
    thresholds: {},
    clipRate: 0,
    chosen: { method: 'entropy', range: representableRange(p), scale: p.scale, zeroPoint: p.zeroPoint },
  };
}

describe('what-if threshold data', () => {
  it("reads the tensor's bits back from its own grid (an override may have changed them)", () => {
    assert.equal(tensorScheme(config, tensor(8, 0.514)).bits, 8);
    assert.equal(tensorScheme(config, tensor(16, 0.514)).bits, 16);
    assert.equal(tensorScheme({ ...config, activations: { ...config.activations, bits: 16 } }, tensor(8, 1)).bits, 8);
  });

  it('the current grid is the chosen range and scale; the what-if grid follows the scheme', () => {
    const t = tensor(8, 0.514);
    const g = currentGrid(t)!;
    assert.ok(Math.abs(g.step - 0.514 / 127) < 1e-8 && Math.abs(g.hi - 0.514) < 1e-6);
    const w = whatIf(t, tensorScheme(config, t), rangeFor(tensorScheme(config, t), 0, 2.54));
    // int8 narrow symmetric with amax 2.54: step 0.02, grid [-2.54, 2.54].
    assert.ok(Math.abs(w.grid.step - 0.02) < 1e-7 && Math.abs(w.grid.lo + 2.54) < 1e-6);
    // Widening from 0.514 to 2.54 trades clip error for rounding error on this tensor.
    const now = currentError(t)!;
    assert.ok(w.error.clip < now.clip && w.error.rounding > now.rounding);
    assert.ok(w.error.total < now.total, 'the wider grid is better here: most mass lies past 0.514');
  });

  it('symmetric schemes take one |x| threshold; asymmetric ones keep both ends and include 0', () => {
    const sym = tensorScheme(config, tensor(8, 1));
    assert.deepEqual(rangeFor(sym, -0.3, 2), { lo: -2, hi: 2 });
    const asym = { ...sym, symmetric: false, signed: false };
    assert.deepEqual(rangeFor(asym, 0.5, 2), { lo: 0, hi: 2 });
    assert.deepEqual(rangeFor(asym, -1, 3), { lo: -1, hi: 3 });
  });

  it('offers the what-if only for single-scale activations with a histogram', () => {
    const t = tensor(8, 1);
    assert.equal(whatIfApplies(t), true);
    assert.equal(whatIfApplies({ ...t, kind: 'weight' }), false);
    assert.equal(whatIfApplies({ ...t, chosen: { ...t.chosen!, scale: [0.1, 0.2] } }), false);
    assert.equal(whatIfApplies({ ...t, histogram: { edges: [0, 0], counts: [0] } }), false);
    const b = thresholdBounds(t);
    assert.ok(Math.abs(b.max - 4.4) < 1e-12 && b.min > 0);
  });

  it('marks the KL point picked by entropy only when it is on the curve', () => {
    const curve = [0.5, 1, 1.5, 2].map((threshold, i) => ({ threshold, value: [0.9, 0.38, 0.5, Infinity][i] }));
    assert.deepEqual(klPointAt(curve, 1), { threshold: 1, value: 0.38, isMinimum: true });
    assert.deepEqual(klPointAt(curve, 1.5), { threshold: 1.5, value: 0.5, isMinimum: false });
    // 3.3 is more than one step past the last finite point: no point rather than a wrong one.
    assert.equal(klPointAt(curve, 3.3), null);
    assert.equal(klPointAt([], 1), null);
  });
});
