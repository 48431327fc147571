/**
 * Error metrics when the float reference holds Inf or NaN (a model whose float activations
 * overflow, e.g. weights near 1e38 that load with a warning): those elements have no error to
 * measure and are left out, so the other elements still give finite numbers, computed by hand.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LayerComparison } from '../../engine/analysis/layerCompare';
import { ErrorAccumulator } from '../../engine/analysis/metrics';

// Finite pairs (1,1), (2,1), (2,2): ||x||^2 = 9, ||x - y||^2 = 1 -> SQNR 10 log10 9 dB, MSE 1/3.
const x = Float32Array.from([1, 2, Infinity, 2, NaN]);
const y = [1, 1, 5, 2, 3];
const sqnr = 10 * Math.log10(9);

describe('error metrics skip a non-finite reference', () => {
  it('ErrorAccumulator.add', () => {
    const acc = new ErrorAccumulator();
    acc.add(x, y);
    const r = acc.result();
    assert.equal(acc.count, 3);
    assert.ok(Math.abs(r.sqnrDb - sqnr) < 1e-12, String(r.sqnrDb));
    assert.ok(Math.abs(r.mse - 1 / 3) < 1e-12);
    assert.equal(r.maxAbs, 1);
    // cosine = <x,y> / (|x||y|) = (1 + 2 + 4) / (3 * sqrt(1 + 1 + 4))
    assert.ok(Math.abs(r.cosine - 7 / (3 * Math.sqrt(6))) < 1e-12);
  });

  it('LayerComparison: accumulated and isolated sums, codes compared everywhere', () => {
    const c = new LayerComparison();
    const sim = { codes: Int8Array.from(y), scale: 1, zeroPoint: 0 };
    // the integer codes differ from the simulated ones only where the reference is Inf
    const int = { codes: Int8Array.from([1, 1, 7, 2, 3]), scale: 1, zeroPoint: 0 };
    c.addAccumulated(x, sim, int);
    c.addIsolated(x, sim, int);
    for (const acc of [c.sim, c.int, c.isoSim, c.isoInt]) {
      assert.equal(acc.count, 3);
      assert.ok(Math.abs(acc.result().sqnrDb - sqnr) < 1e-12, String(acc.result().sqnrDb));
    }
    assert.equal(c.mismatch, 1);
    assert.equal(c.maxLsb, 2);
  });
});

describe('code-level detail (LayerComparison.addDetail)', () => {
  it('integer error histogram, mismatches and max LSB as Math.round and plain counting give them', () => {
    let s = 5;
    const r = () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
    const n = 50_000;
    const scale = 0.037;
    const zs = 3;
    const zi = 131; // the integer grid shifted by 128, as on x86
    const x = new Float32Array(n);
    const cs = new Int8Array(n);
    const ci = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const q = Math.floor(r() * 200) - 100;
      // exactly half an LSB away from a code, or anywhere, or far outside the +-16 LSB span
      const off = i % 3 === 0 ? 0.5 * (r() < 0.5 ? -1 : 1) : i % 3 === 1 ? r() * 2 - 1 : (r() - 0.5) * 60;
      x[i] = (q + off) * scale;
      cs[i] = q + zs;
      ci[i] = q + zi + (r() < 0.05 ? (r() < 0.5 ? -1 : 2) : 0);
    }
    const lc = new LayerComparison();
    lc.addDetail(x, { codes: cs, scale, zeroPoint: zs }, { codes: ci, scale, zeroPoint: zi });
    const hist = new Array(33).fill(0);
    let mismatch = 0;
    let maxLsb = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.round(((ci[i] - zi) * scale - x[i]) * (1 / scale));
      hist[Math.max(-16, Math.min(16, e)) + 16]++;
      const d = Math.abs(cs[i] - zs - (ci[i] - zi));
      if (d) mismatch++;
      maxLsb = Math.max(maxLsb, d);
    }
    assert.deepEqual(Array.from(lc.errHist), hist);
    assert.equal(lc.mismatch, mismatch);
    assert.equal(lc.maxLsb, 2);
    assert.equal(maxLsb, 2);
    assert.equal(lc.n, n);
  });
});
