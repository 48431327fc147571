/**
 * Per-layer comparison of float outputs with the integer codes of simulated and integer
 * execution, accumulated over batches in one allocation-free pass per tensor (this is the
 * evaluation's hot loop: every layer output of every batch goes through it).
 */
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

export class LayerComparison {
  readonly sim = new ErrorAccumulator();
  readonly int = new ErrorAccumulator();
  readonly isoSim = new ErrorAccumulator();
  readonly isoInt = new ErrorAccumulator();
  /** Elements whose simulated and integer codes differ, and by how much at most (LSB). */
  mismatch = 0;
  maxLsb = 0;
  n = 0;
  /** Integer-vs-float error in output LSB; index = lsb + ERR_SPAN. */
  readonly errHist = new Float64Array(2 * ERR_SPAN + 1);

  /** Whole model quantized: float x vs simulated and integer codes of the same tensor. */
  addAccumulated(x: Float32Array, sim: CodeView, int: CodeView): void {
    const cs = asInt32(sim.codes, 0);
    const ci = asInt32(int.codes, 1);
    const ss = sim.scale, zs = sim.zeroPoint, si = int.scale, zi = int.zeroPoint;
    const inv = 1 / si;
    let sx2 = 0, sys = 0, sxys = 0, sds = 0, mds = 0;
    let syi = 0, sxyi = 0, sdi = 0, mdi = 0;
    let mismatch = 0, maxLsb = this.maxLsb;
    const hist = this.errHist;
    for (let i = 0; i < x.length; i++) {
      const a = x[i];
      const qs = cs[i] - zs;
      const qi = ci[i] - zi; // codes relative to their zero points: the integer grid may be shifted
      const ys = qs * ss;
      const yi = qi * si;
      sx2 += a * a;
      sys += ys * ys;
      sxys += a * ys;
      syi += yi * yi;
      sxyi += a * yi;
      const ds = a - ys;
      const di = a - yi;
      sds += ds * ds;
      sdi += di * di;
      const ads = ds < 0 ? -ds : ds;
      const adi = di < 0 ? -di : di;
      if (ads > mds) mds = ads;
      if (adi > mdi) mdi = adi;
      let e = Math.round(-di * inv);
      e = e < -ERR_SPAN ? -ERR_SPAN : e > ERR_SPAN ? ERR_SPAN : e;
      hist[e + ERR_SPAN]++;
      const dl = qs > qi ? qs - qi : qi - qs;
      if (dl !== 0) {
        mismatch++;
        if (dl > maxLsb) maxLsb = dl;
      }
    }
    this.sim.addSums(sx2, sys, sxys, sds, mds, x.length);
    this.int.addSums(sx2, syi, sxyi, sdi, mdi, x.length);
    this.mismatch += mismatch;
    this.maxLsb = maxLsb;
    this.n += x.length;
  }

  /** Only this layer quantized, float inputs. */
  addIsolated(x: Float32Array, sim: CodeView, int: CodeView): void {
    addCodes(this.isoSim, x, sim);
    addCodes(this.isoInt, x, int);
  }
}

function addCodes(acc: ErrorAccumulator, x: Float32Array, v: CodeView): void {
  const c = asInt32(v.codes, 0);
  const s = v.scale, z = v.zeroPoint;
  let sx2 = 0, sy2 = 0, sxy = 0, sd2 = 0, md = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    const y = (c[i] - z) * s;
    sx2 += a * a;
    sy2 += y * y;
    sxy += a * y;
    const d = a - y;
    sd2 += d * d;
    const ad = d < 0 ? -d : d;
    if (ad > md) md = ad;
  }
  acc.addSums(sx2, sy2, sxy, sd2, md, x.length);
}
