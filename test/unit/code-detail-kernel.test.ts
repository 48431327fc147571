/**
 * The code-level detail's WebAssembly loop (analysis/codeDetail.wat, codeDetailKernel.ts, used by
 * LayerComparison.addDetail) against the definition written out here: the integer code's error
 * against the float value in output LSB, ((ci - zi) * si - x) / si, rounded by Math.round (half up)
 * and clamped to +-16, NaN errors in no bin; elements whose simulated and integer codes differ on
 * the simulated grid's zero point, and by how much at most. The data holds exact ties (+-0.5 and
 * +-1.5 LSB on a power-of-two scale), NaN and infinite values, errors far beyond 16 LSB, every code
 * array type, a shifted integer grid, lengths on every remainder mod 4 and across the kernel's chunks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { codeDetailKernel } from '../../engine/analysis/codeDetailKernel';
import { CODE_DETAIL_WASM_BASE64 } from '../../engine/analysis/codeDetailWasm';
import { ERR_SPAN, LayerComparison } from '../../engine/analysis/layerCompare';
// @ts-expect-error: a build script without type declarations
import { assemble } from '../../scripts/wasm.mjs';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

interface Case {
  x: Float32Array;
  cs: ArrayLike<number>;
  ci: ArrayLike<number>;
  zs: number;
  si: number;
  zi: number;
}

/** The definition: Math.round, clamp, NaN in no bin. */
function expected(c: Case) {
  const hist = new Array(2 * ERR_SPAN + 1).fill(0);
  let mismatch = 0;
  let maxLsb = 0;
  for (let i = 0; i < c.x.length; i++) {
    const e = Math.round(((c.ci[i] - c.zi) * c.si - c.x[i]) / c.si);
    if (!Number.isNaN(e)) hist[Math.max(-ERR_SPAN, Math.min(ERR_SPAN, e)) + ERR_SPAN]++;
    const qi = c.ci[i] - c.zi + c.zs;
    if (c.cs[i] !== qi) {
      mismatch++;
      maxLsb = Math.max(maxLsb, Math.abs(c.cs[i] - qi));
    }
  }
  return { hist, mismatch, maxLsb, n: c.x.length };
}

function measured(c: Case) {
  const lc = new LayerComparison();
  lc.addDetail(c.x, { codes: c.cs, scale: c.si, zeroPoint: c.zs }, { codes: c.ci, scale: c.si, zeroPoint: c.zi });
  return { hist: Array.from(lc.errHist), mismatch: lc.mismatch, maxLsb: lc.maxLsb, n: lc.n };
}

/**
 * n elements on a uint8 grid of scale 1/4 (exact in binary): x sits at the codes' values plus an
 * offset that is often an exact tie (+-1/8 = half an LSB, +-3/8), sometimes beyond 16 LSB, sometimes
 * NaN or infinite; the integer codes differ from the simulated ones now and then.
 */
function data(n: number, seed: number, zi = 128, zs = 128): Case {
  const r = rng(seed);
  const si = 0.25;
  const x = new Float32Array(n);
  const cs = new Int32Array(n);
  const ci = new Int32Array(n);
  const offsets = [0, 0.125, -0.125, 0.375, -0.375, 0.01, -0.2, 5, -7];
  for (let i = 0; i < n; i++) {
    const q = Math.floor(r() * 256);
    ci[i] = q - 128 + zi;
    cs[i] = q - 128 + zs + (r() < 0.03 ? Math.floor(r() * 9) - 4 : 0);
    const u = r();
    const off = u < 0.6 ? offsets[0] : offsets[Math.floor(r() * offsets.length)];
    x[i] = (q - 128) * si - off;
    if (u > 0.995) x[i] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][Math.floor(r() * 3)];
  }
  return { x, cs, ci, zs, si, zi };
}

describe('code-level detail in WebAssembly', () => {
  it('is available on this Node, and its bytes are what npm run wasm assembles from codeDetail.wat', async () => {
    assert.ok(codeDetailKernel(), 'WebAssembly SIMD missing: the detail falls back to the slower JavaScript loop');
    const bytes: Uint8Array = await assemble('codeDetail');
    assert.deepEqual(Buffer.from(CODE_DETAIL_WASM_BASE64, 'base64'), Buffer.from(bytes), 'run `npm run wasm`');
  });

  it('counts exactly as the definition, on every remainder mod 4 and across chunks', () => {
    for (const n of [1, 2, 3, 4, 5, 7, 64, 1001, (1 << 16) + 3, 3 * (1 << 16) + 2]) {
      const c = data(n, n);
      const m = measured(c);
      assert.deepEqual(m, expected(c), `n = ${n}`);
    }
    // the data reaches every kind of bin
    const big = expected(data(50_000, 9));
    assert.ok(big.hist[0] > 0 && big.hist[2 * ERR_SPAN] > 0, 'errors beyond +-16 LSB land in the end bins');
    assert.ok(big.hist[ERR_SPAN + 1] > 0 && big.hist[ERR_SPAN - 1] > 0 && big.mismatch > 0);
  });

  it('rounds exact ties half up: +0.5 LSB to 1, -0.5 to 0, +-1.5 to 2 and -1', () => {
    const si = 0.25;
    // error (c * si - x) / si = +0.5, -0.5, +1.5, -1.5 LSB for code 10 (zero point 0)
    const x = Float32Array.from([2.5 - 0.125, 2.5 + 0.125, 2.5 - 0.375, 2.5 + 0.375]);
    const codes = Int32Array.from([10, 10, 10, 10]);
    const m = measured({ x, cs: codes, ci: codes, zs: 0, si, zi: 0 });
    const at = (lsb: number) => m.hist[lsb + ERR_SPAN];
    assert.deepEqual([at(1), at(0), at(2), at(-1)], [1, 1, 1, 1]);
    assert.equal(m.mismatch, 0);
  });

  it('reads every code array type, on a shifted integer grid', () => {
    const base = data(4099, 3, 128, 0);
    // the simulated grid signed (zero point 0), the integer one shifted by 128 (x86's u8 encoding)
    const cases: Case[] = [
      { ...base, cs: Int8Array.from(base.cs, (v) => Math.max(-128, Math.min(127, v))), ci: Uint8Array.from(base.ci) },
      { ...base, cs: Int16Array.from(base.cs), ci: Uint16Array.from(base.ci) },
      { ...base, cs: Array.from(base.cs), ci: Array.from(base.ci) },
    ];
    for (const c of cases) assert.deepEqual(measured(c), expected(c), c.cs.constructor.name);
  });

  it('carries the largest mismatch and the counts over calls', () => {
    const a = data(1000, 21);
    const b = data(2003, 22);
    const lc = new LayerComparison();
    for (const c of [a, b]) lc.addDetail(c.x, { codes: c.cs, scale: c.si, zeroPoint: c.zs }, { codes: c.ci, scale: c.si, zeroPoint: c.zi });
    const ea = expected(a);
    const eb = expected(b);
    assert.deepEqual(
      Array.from(lc.errHist),
      ea.hist.map((v, k) => v + eb.hist[k]),
    );
    assert.equal(lc.mismatch, ea.mismatch + eb.mismatch);
    assert.equal(lc.maxLsb, Math.max(ea.maxLsb, eb.maxLsb));
    assert.equal(lc.n, 3003);
  });
});
