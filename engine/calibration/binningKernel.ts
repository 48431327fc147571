/**
 * The calibration pass's per-value loops (min/max scan, histogram binning) as WebAssembly SIMD
 * (binning.wat), for Float32Array batches. Each thread (the main one, every statistics worker)
 * instantiates its own copy on first use. The values are copied into the module's memory a chunk
 * at a time: a memcpy costs far less than the loops it feeds, and the memory stays bounded
 * whatever the tensor's size. Where WebAssembly SIMD is missing, `binningKernel()` is null and
 * histogram.ts keeps its JavaScript loops, which give the same numbers.
 */
import { simdKernel } from '../simdKernel';
import { BINNING_WASM_BASE64 } from './binningWasm';

/** Values copied per call: 1 MB, within a core's L2 cache. */
const CHUNK = 1 << 18;
/** Counts per bin stay below 2^31 (i32 counters): the copies are emptied at least this often. */
const FLUSH_VALUES = 1 << 30;

interface Exports {
  memory: WebAssembly.Memory;
  min: WebAssembly.Global;
  max: WebAssembly.Global;
  bad: WebAssembly.Global;
  scan(p: number, n: number): void;
  bin(p: number, n: number, h: number, L: number, w: number): void;
}

export class BinningKernel {
  /** Layout: the chunk of values at 0, then four histogram copies of 2L i32 bins each. */
  private bins = 0;

  constructor(private readonly e: Exports) {
    e.memory.grow(Math.ceil((CHUNK * 4) / 65536));
  }

  /** Min and max of the finite values, and whether any value is NaN or infinite. */
  scan(x: Float32Array): { min: number; max: number; nonFinite: boolean } {
    const { e } = this;
    e.min.value = Infinity;
    e.max.value = -Infinity;
    e.bad.value = 0;
    const chunk = new Float32Array(e.memory.buffer, 0, CHUNK);
    for (let o = 0; o < x.length; o += CHUNK) {
      const n = Math.min(CHUNK, x.length - o);
      chunk.set(x.subarray(o, o + n));
      e.scan(0, n);
    }
    return { min: e.min.value, max: e.max.value, nonFinite: Number.isNaN(e.bad.value) };
  }

  /**
   * Add the counts of `x` (finite values only) to the half-histograms `pos` and `neg` (L bins each,
   * bin k holding |v| in [k w, (k+1) w), the top edge and beyond in bin L - 1).
   */
  bin(x: Float32Array, pos: Float64Array, neg: Float64Array, w: number): void {
    const L = pos.length;
    const h = this.histogramAt(L);
    const copies = new Int32Array(this.e.memory.buffer, h, 8 * L);
    const chunk = new Float32Array(this.e.memory.buffer, 0, CHUNK);
    let pending = 0;
    for (let o = 0; o < x.length; o += CHUNK) {
      const n = Math.min(CHUNK, x.length - o);
      chunk.set(x.subarray(o, o + n));
      this.e.bin(0, n, h, L, w);
      pending += n;
      if (pending >= FLUSH_VALUES) {
        addCopies(copies, pos, neg);
        pending = 0;
      }
    }
    addCopies(copies, pos, neg);
  }

  /** Byte offset of the four copies for L bins per half, zeroed; grows the memory when L does. */
  private histogramAt(L: number): number {
    const h = CHUNK * 4;
    if (L > this.bins) {
      const need = h + 32 * L - this.e.memory.buffer.byteLength;
      if (need > 0) this.e.memory.grow(Math.ceil(need / 65536));
      this.bins = L;
    }
    return h;
  }
}

/**
 * Add four interleaved histogram copies (each 2L bins: positive half, then negative half) into
 * pos/neg and zero them for the next batch; `copies` may be longer than the 8L bins it holds.
 * Shared with histogram.ts's JavaScript loop, which counts into the same layout.
 */
export function addCopies(copies: Int32Array | Float64Array, pos: Float64Array, neg: Float64Array): void {
  const L = pos.length;
  const S = 2 * L;
  for (let k = 0; k < L; k++) {
    pos[k] += copies[k] + copies[S + k] + copies[2 * S + k] + copies[3 * S + k];
    neg[k] += copies[L + k] + copies[S + L + k] + copies[2 * S + L + k] + copies[3 * S + L + k];
  }
  copies.fill(0, 0, 4 * S);
}

/** This thread's kernel, or null where the engine's WebAssembly lacks SIMD. */
export const binningKernel = simdKernel(BINNING_WASM_BASE64, (e: Exports) => new BinningKernel(e));
