/**
 * Linear quantization q = clamp(round(x / S) + Z, qmin, qmax): integer grids, scale and zero point
 * from a real range, and fake-quantization.
 */
import { roundHalfEven } from './rounding';

export type Bits = 4 | 8 | 16;

export interface TensorScheme {
  bits: Bits;
  signed: boolean;
  symmetric: boolean;
  /** Signed grids without the lowest code ([-127, 127] for int8): symmetric around zero. */
  narrowRange: boolean;
  /** Round scales up to a power of two (Vitis/TVM: requantization becomes a shift). */
  powerOfTwo: boolean;
}

export interface QuantParams {
  scale: number;
  zeroPoint: number;
  qmin: number;
  qmax: number;
}

export function grid(s: Pick<TensorScheme, 'bits' | 'signed' | 'narrowRange'>): { qmin: number; qmax: number } {
  if (s.signed) {
    const qmax = 2 ** (s.bits - 1) - 1;
    return { qmin: s.narrowRange ? -qmax : -qmax - 1, qmax };
  }
  return { qmin: 0, qmax: 2 ** s.bits - 1 };
}

/**
 * Scale and zero point covering [lo, hi] (widened to include 0, so zero is exact, as every ONNX
 * backend requires). Symmetric schemes use max(|lo|, |hi|) on both sides with the grid's centre
 * as zero point. A zero-width range gets scale 1, as onnxruntime does.
 */
export function paramsFor(lo: number, hi: number, s: TensorScheme): QuantParams {
  const { qmin, qmax } = grid(s);
  let rmin = Math.min(lo, 0);
  let rmax = Math.max(hi, 0);
  if (s.symmetric) {
    const a = Math.max(Math.abs(rmin), Math.abs(rmax));
    rmin = -a;
    rmax = a;
  }
  let scale = (rmax - rmin) / (qmax - qmin);
  if (!(scale > 0) || !Number.isFinite(scale)) scale = 1;
  if (s.powerOfTwo) scale = 2 ** Math.ceil(Math.log2(scale));
  // Scales travel as float32 in the model: compute codes with exactly the value the runtime sees.
  scale = Math.fround(scale);
  let zeroPoint: number;
  if (s.symmetric) {
    zeroPoint = roundHalfEven((qmax + qmin) / 2);
    if (Object.is(zeroPoint, -0)) zeroPoint = 0;
  } else {
    zeroPoint = Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - rmin / scale)));
  }
  return { scale, zeroPoint, qmin, qmax };
}

/** ONNX QuantizeLinear on one value (half-to-even rounding, saturation to the grid). */
export function quantize(x: number, p: QuantParams): number {
  return Math.min(p.qmax, Math.max(p.qmin, roundHalfEven(x / p.scale) + p.zeroPoint));
}

export function dequantize(q: number, p: QuantParams): number {
  return (q - p.zeroPoint) * p.scale;
}

/** The real interval a QuantParams represents without clipping. */
export function representableRange(p: QuantParams): { lo: number; hi: number } {
  return { lo: (p.qmin - p.zeroPoint) * p.scale, hi: (p.qmax - p.zeroPoint) * p.scale };
}
