/**
 * The code-level detail's per-element loop (layerCompare.ts's addDetail) as WebAssembly SIMD
 * (codeDetail.wat). The values and both code arrays are copied into the module's memory a chunk at
 * a time (the codes widened to i32 by TypedArray.set, natively), so the memory stays bounded
 * whatever the layer's size. Where WebAssembly SIMD is missing, `codeDetailKernel()` is null and
 * addDetail keeps its JavaScript loop, which gives the same counts.
 */
import { simdKernel } from '../simdKernel';
import { CODE_DETAIL_WASM_BASE64 } from './codeDetailWasm';

/** Elements copied per call: 768 KB of values and codes, within a core's L2 cache. */
const CHUNK = 1 << 16;
/** Bins: -16..16 LSB, then the one NaN errors go to (not reported). */
const BINS = 34;

interface Exports {
  memory: WebAssembly.Memory;
  mismatch: WebAssembly.Global;
  maxLsb: WebAssembly.Global;
  detail(x: number, cs: number, ci: number, n: number, h: number, zs: number, zi: number, si: number, inv: number): void;
}

/** What one layer's detail adds up: bins of the integer error in LSB, code mismatches and their largest size. */
export interface DetailCounts {
  /** Index lsb + 16, |lsb| <= 16 (the ends hold everything beyond). */
  bins: Int32Array;
  mismatch: number;
  maxLsb: number;
}

export class CodeDetailKernel {
  private readonly x: Float32Array;
  private readonly cs: Int32Array;
  private readonly ci: Int32Array;
  private readonly bins: Int32Array;

  constructor(private readonly e: Exports) {
    const need = CHUNK * 12 + BINS * 4;
    e.memory.grow(Math.ceil(need / 65536));
    const buf = e.memory.buffer;
    this.x = new Float32Array(buf, 0, CHUNK);
    this.cs = new Int32Array(buf, CHUNK * 4, CHUNK);
    this.ci = new Int32Array(buf, CHUNK * 8, CHUNK);
    this.bins = new Int32Array(buf, CHUNK * 12, BINS);
  }

  /**
   * Counts over the first `n` elements, n a multiple of 4 (the caller counts the rest): codes
   * `cs` (simulated, zero point zs) and `ci` (integer, scale si and zero point zi) against x.
   */
  count(x: Float32Array, cs: ArrayLike<number>, ci: ArrayLike<number>, n: number, zs: number, si: number, zi: number, maxLsb: number): DetailCounts {
    const { e } = this;
    this.bins.fill(0);
    e.mismatch.value = 0;
    e.maxLsb.value = maxLsb;
    for (let o = 0; o < n; o += CHUNK) {
      const k = Math.min(CHUNK, n - o);
      this.x.set(x.subarray(o, o + k));
      this.cs.set(sliceOf(cs, o, o + k));
      this.ci.set(sliceOf(ci, o, o + k));
      e.detail(0, CHUNK * 4, CHUNK * 8, k, CHUNK * 12, zs, zi, si, 1 / si);
    }
    return { bins: this.bins.slice(0, BINS - 1), mismatch: e.mismatch.value, maxLsb: e.maxLsb.value };
  }
}

/** Elements [from, to) of codes: a view of a typed array, a copy of a plain one. */
export function sliceOf(a: ArrayLike<number>, from: number, to = a.length): ArrayLike<number> {
  return ArrayBuffer.isView(a) ? (a as unknown as Int32Array).subarray(from, to) : Array.prototype.slice.call(a, from, to);
}

/** This thread's kernel, or null where the engine's WebAssembly lacks SIMD. */
export const codeDetailKernel = simdKernel(CODE_DETAIL_WASM_BASE64, (e: Exports) => new CodeDetailKernel(e));
