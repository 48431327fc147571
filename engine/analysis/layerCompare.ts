/**
 * Per-layer comparisons, accumulated over batches.
 *   - Error sums (accumulated and isolated, simulated and integer) arrive already reduced by
 *     onnxruntime (quantize/compareGraph.ts): `addSums`.
 *   - The code-level detail (simulated vs integer codes, the integer error in LSB) needs the codes
 *     themselves and runs on a bounded subset of samples: `addDetail`, a WebAssembly SIMD loop
 *     (codeDetail.wat) with its JavaScript twin for the last elements.
 */
import { codeDetailKernel, sliceOf } from './codeDetailKernel';
import { ErrorAccumulator } from './metrics';

/** Codes fetched from a session, with the grid that turns them into real numbers. */
export interface CodeView {
  codes: ArrayLike<number>;
  scale: number;
  zeroPoint: number;
}

/** Error distribution spans +-ERR_SPAN output LSB. */
export const ERR_SPAN = 16;

/**
 * Codes arrive as Uint8Array, Int8Array, Uint16Array... A loop indexing all of those through one
 * ArrayLike is megamorphic and runs ~10x slower in V8, so codes are first copied (natively, by
 * TypedArray.set) into one of these Int32Array scratch buffers and every loop reads Int32Array.
 */
const scratch = [new Int32Array(0), new Int32Array(0)];
function asInt32(codes: ArrayLike<number>, slot: 0 | 1): Int32Array {
  if (codes instanceof Int32Array) return codes;
  if (scratch[slot].length < codes.length) scratch[slot] = new Int32Array(Math.max(codes.length, scratch[slot].length * 2));
  const out = scratch[slot].subarray(0, codes.length);
  if (ArrayBuffer.isView(codes)) out.set(codes as unknown as Int32Array);
  else for (let i = 0; i < codes.length; i++) out[i] = codes[i];
  return out;
}

export type SumsKind = 'sim' | 'int' | 'isoSim' | 'isoInt';

export class LayerComparison {
  /** Accumulated: whole model quantized. Isolated: only this layer, float inputs. */
  readonly sim = new ErrorAccumulator();
  readonly int = new ErrorAccumulator();
  readonly isoSim = new ErrorAccumulator();
  readonly isoInt = new ErrorAccumulator();
  /** Detail subset: elements whose simulated and integer codes differ, and by how much at most (LSB). */
  mismatch = 0;
  maxLsb = 0;
  /** Elements compared in the detail subset. */
  n = 0;
  /** Integer-vs-float error in output LSB on the detail subset; index = lsb + ERR_SPAN. */
  readonly errHist = new Float64Array(2 * ERR_SPAN + 1);

  /**
   * One batch's reduced sums for one comparison: PAIR_SUMS values from `sums` at `offset`; or, from
   * a model fed its float tensors, FED_PAIR_SUMS values there and the float tensor's own sum x^2
   * and count from `ref`, the pair of the model that computed it (compareGraph.ts).
   */
  addSums(kind: SumsKind, sums: ArrayLike<number>, offset: number, ref?: { sums: ArrayLike<number>; offset: number }): void {
    let sx2: number, sy2: number, sd2: number, max: number, n: number;
    if (ref) {
      sx2 = ref.sums[ref.offset];
      n = ref.sums[ref.offset + 4];
      sy2 = sums[offset];
      sd2 = sums[offset + 1];
      max = sums[offset + 2];
    } else {
      sx2 = sums[offset];
      sy2 = sums[offset + 1];
      sd2 = sums[offset + 2];
      max = sums[offset + 3];
      n = sums[offset + 4];
    }
    // sum xy from the identity sum (x - y)^2 = sum x^2 + sum y^2 - 2 sum xy (compareGraph.ts).
    this[kind].addSums(sx2, sy2, (sx2 + sy2 - sd2) / 2, sd2, max, n);
  }

  /**
   * Sums and detail in one JavaScript pass, for layers whose tensors cannot be reduced inside the
   * comparison models (those inside If/Loop/Scan bodies, fetched lifted): float x vs simulated and
   * integer codes of the same tensor, whole model quantized.
   */
  addAccumulated(x: Float32Array, sim: CodeView, int: CodeView): void {
    const cs = asInt32(sim.codes, 0);
    const ci = asInt32(int.codes, 1);
    const ss = sim.scale,
      si = int.scale;
    const zs = sim.zeroPoint,
      zi = int.zeroPoint;
    let sx2 = 0,
      sys = 0,
      sds = 0,
      mds = 0,
      syi = 0,
      sdi = 0,
      mdi = 0,
      skipped = 0;
    for (let i = 0; i < x.length; i++) {
      const a = x[i];
      // A float reference of Inf/NaN has no error to measure (as in compareGraph's robust sums).
      if (a - a !== 0) {
        skipped++;
        continue;
      }
      const ys = (cs[i] - zs) * ss;
      const yi = (ci[i] - zi) * si;
      const ds = a - ys;
      const di = a - yi;
      sx2 += a * a;
      sys += ys * ys;
      syi += yi * yi;
      sds += ds * ds;
      sdi += di * di;
      // Math.abs: branch-free (an error's sign is random, a ternary mispredicts half the time)
      const ads = Math.abs(ds);
      const adi = Math.abs(di);
      if (ads > mds) mds = ads;
      if (adi > mdi) mdi = adi;
    }
    this.sim.addSums(sx2, sys, (sx2 + sys - sds) / 2, sds, mds, x.length - skipped);
    this.int.addSums(sx2, syi, (sx2 + syi - sdi) / 2, sdi, mdi, x.length - skipped);
    this.addDetail(x, sim, int);
  }

  /** Only this layer quantized, float inputs (JavaScript path, as addAccumulated). */
  addIsolated(x: Float32Array, sim: CodeView, int: CodeView): void {
    addCodes(this.isoSim, x, sim, 0);
    addCodes(this.isoInt, x, int, 1);
  }

  /** Detail: float x vs simulated and integer codes of the same tensor (whole model quantized). */
  addDetail(x: Float32Array, sim: CodeView, int: CodeView): void {
    const kernel = codeDetailKernel();
    // The kernel takes groups of 4 elements; the rest (and everything, without WebAssembly SIMD)
    // runs the JavaScript loop, which counts the same.
    const fast = kernel ? x.length & ~3 : 0;
    if (kernel && fast) {
      const c = kernel.count(x, sim.codes, int.codes, fast, sim.zeroPoint, int.scale, int.zeroPoint, this.maxLsb);
      for (let k = 0; k < c.bins.length; k++) this.errHist[k] += c.bins[k];
      this.mismatch += c.mismatch;
      this.maxLsb = c.maxLsb;
    }
    if (fast < x.length) {
      const tail = (c: CodeView): CodeView => ({ ...c, codes: sliceOf(c.codes, fast) });
      this.addDetailJs(x.subarray(fast), tail(sim), tail(int));
    }
    this.n += x.length;
  }

  /** addDetail's JavaScript loop (the codes widened to Int32Array once, as asInt32 says why). */
  private addDetailJs(x: Float32Array, sim: CodeView, int: CodeView): void {
    const cs = asInt32(sim.codes, 0);
    const ci = asInt32(int.codes, 1);
    const zs = sim.zeroPoint,
      si = int.scale,
      zi = int.zeroPoint;
    const inv = 1 / si;
    let mismatch = 0,
      maxLsb = this.maxLsb;
    const hist = this.errHist;
    // Nearly every element lands in the 0-LSB bin. Counted in memory, each increment would wait on
    // the previous one's store; counted in a register, and decided without rounding where
    // -0.5 < v < 0.5 (exactly where Math.round gives 0 but at v = -0.5, which the rounding path
    // takes): 15 -> 5 ns per element.
    let zero = 0;
    for (let i = 0; i < x.length; i++) {
      // codes relative to their zero points (the integer grid may be shifted), the integer one
      // moved onto the simulated grid's zero point, so equal codes compare equal
      const qs = cs[i];
      const qi = ci[i] - zi + zs;
      const v = ((qi - zs) * si - x[i]) * inv;
      if (v < 0.5 && v > -0.5) zero++;
      else {
        // Math.round, written as floor(v + 0.5): V8's Math.round made this loop 2.5x slower. The
        // two differ only where v + 0.5 rounds up to the next integer (v = 0.49999999999999994).
        let e = Math.floor(v + 0.5);
        if (e - 0.5 > v) e--;
        if (e === 0) zero++;
        else hist[(e < -ERR_SPAN ? -ERR_SPAN : e > ERR_SPAN ? ERR_SPAN : e) + ERR_SPAN]++;
      }
      if (qs !== qi) {
        mismatch++;
        const dl = qs > qi ? qs - qi : qi - qs;
        if (dl > maxLsb) maxLsb = dl;
      }
    }
    hist[ERR_SPAN] += zero;
    this.mismatch += mismatch;
    this.maxLsb = maxLsb;
  }
}

function addCodes(acc: ErrorAccumulator, x: Float32Array, v: CodeView, slot: 0 | 1): void {
  const c = asInt32(v.codes, slot);
  const s = v.scale,
    z = v.zeroPoint;
  let sx2 = 0,
    sy2 = 0,
    sd2 = 0,
    md = 0,
    skipped = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    if (a - a !== 0) {
      skipped++;
      continue;
    }
    const y = (c[i] - z) * s;
    sx2 += a * a;
    sy2 += y * y;
    const d = a - y;
    sd2 += d * d;
    const ad = Math.abs(d);
    if (ad > md) md = ad;
  }
  acc.addSums(sx2, sy2, (sx2 + sy2 - sd2) / 2, sd2, md, x.length - skipped);
}
