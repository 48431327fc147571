/**
 * The calibration pass's WebAssembly loops (calibration/binning.wat, binningKernel.ts) against the
 * JavaScript loops they replace: ActivationStats fed a Float32Array takes the kernel, the same
 * values as a plain array take the JavaScript path, and every statistic must come out identical
 * (counts, range, NaN/infinity counts, bin width, each bin). The batches cross the kernel's 1 MB
 * chunks, grow the histogram far past its first 2048 bins, hold NaN and infinities at the edges
 * of chunks and SIMD groups, and alternate between histograms of different lengths (the kernel
 * reuses one memory for all of them). The committed bytes must be what `npm run wasm` makes of the
 * .wat, so the module that runs is the source that was reviewed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binningKernel } from '../../engine/calibration/binningKernel';
import { BINNING_WASM_BASE64 } from '../../engine/calibration/binningWasm';
import { ActivationStats } from '../../engine/calibration/histogram';
// @ts-expect-error: a build script without type declarations
import { assemble, moduleText } from '../../scripts/wasm.mjs';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

const CHUNK = 1 << 18;

function statsOf(batches: ArrayLike<number>[]): ActivationStats {
  const s = new ActivationStats();
  for (const b of batches) s.add(b);
  return s;
}

/** Kernel (Float32Array) against JavaScript (the same float32 values as a plain array). */
function same(batches: Float32Array[], what: string): ActivationStats {
  const fast = statsOf(batches);
  const slow = statsOf(batches.map((b) => Array.from(b)));
  for (const k of ['count', 'nanCount', 'infCount', 'zeroCount', 'min', 'max', 'batchMinSum', 'batchMaxSum', 'batches', 'width'] as const)
    assert.equal(fast[k], slow[k], `${what}: ${k}`);
  assert.deepEqual(Array.from(fast.pos), Array.from(slow.pos), `${what}: positive half`);
  assert.deepEqual(Array.from(fast.neg), Array.from(slow.neg), `${what}: negative half`);
  return fast;
}

describe('calibration loops in WebAssembly', () => {
  it('is available on this Node, and its bytes are what npm run wasm assembles from binning.wat', async () => {
    assert.ok(binningKernel(), 'WebAssembly SIMD missing: calibration falls back to the slower JavaScript loops');
    const bytes: Uint8Array = await assemble();
    assert.deepEqual(Buffer.from(BINNING_WASM_BASE64, 'base64'), Buffer.from(bytes), 'run `npm run wasm`');
    assert.ok(moduleText(bytes).includes(BINNING_WASM_BASE64.slice(0, 64)));
  });

  it('batches across chunks, on every remainder mod 4, growing the histogram 40-fold', () => {
    const r = rng(5);
    const smooth = (n: number, scale: number) => {
      const x = new Float32Array(n);
      let v = 0;
      for (let i = 0; i < n; i++) x[i] = v = 0.9 * v + (r() - 0.45) * scale;
      return x;
    };
    const s = same([smooth(CHUNK + 3, 1), smooth(2 * CHUNK + 1, 4), smooth(CHUNK - 2, 40), smooth(3 * CHUNK, 20)], 'chunks');
    assert.ok(s.pos.length > 20 * 2048, `the histogram grew to ${s.pos.length} bins`);
    assert.equal(s.count, 7 * CHUNK + 2);
  });

  it('NaN and infinities anywhere: counted, left out of the range and of the bins', () => {
    const r = rng(9);
    const base = () => Float32Array.from({ length: CHUNK + 9 }, () => (r() - 0.5) * 6);
    const cases: [number, number][] = [
      [0, Number.NaN],
      [3, Number.POSITIVE_INFINITY],
      [CHUNK - 1, Number.NEGATIVE_INFINITY],
      [CHUNK, Number.NaN],
      [CHUNK + 8, Number.POSITIVE_INFINITY],
    ];
    for (const [at, v] of cases) {
      const x = base();
      x[at] = v;
      const s = same([base(), x], `${v} at ${at}`);
      assert.equal(s.nanCount + s.infCount, 1, `${v} at ${at}`);
      assert.equal(s.count, 2 * (CHUNK + 9) - 1);
    }
  });

  it('histograms of different lengths in turn share the kernel memory without leaking counts', () => {
    const r = rng(13);
    const wide = same([Float32Array.from({ length: 40000 }, () => r() - 0.5), Float32Array.from({ length: 60000 }, () => (r() - 0.5) * 30)], 'wide');
    const narrow = same([Float32Array.from({ length: 20000 }, () => r() * 3)], 'narrow');
    const again = same([Float32Array.from({ length: 50000 }, () => (r() - 0.7) * 2)], 'again');
    assert.ok(wide.pos.length > narrow.pos.length);
    for (const s of [wide, narrow, again]) {
      const total = [...s.pos, ...s.neg].reduce((a, b) => a + b, 0);
      assert.equal(total, s.count, 'every finite value in exactly one bin');
    }
  });
});
