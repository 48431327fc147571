/**
 * The integer arithmetic every lowering shares: real scale ratios turned into fixed-point
 * multipliers ONCE at compile time, and the requantization of an exact integer onto a grid.
 *
 * Requantization here is one rounding of the exact product acc * M0 * 2^(shift-31), ties away
 * from zero (`roundFixedExact`), then + zero point and saturation to the grid. That is the
 * rounding TFLite's reference kernels aim at with their two-step gemmlowp form; the single
 * rounding keeps the executor's codes equal to what the simulated (fake-quant) model computes
 * except at exact ties.
 */
import { InputError } from '../errors';
import { roundFixedExact } from '../integer/diffArith';
import { quantizeMultiplier } from '../integer/requantize';
import type { QuantParams } from '../quantize/scheme';
import type { QuantArray } from '../integer/types';
import type { RunStats } from './types';

const EXACT = 2 ** 53;

/** Fixed-point multipliers for real ratios (one per channel). */
export class Multipliers {
  readonly m0: Int32Array;
  readonly shift: Int32Array;
  /** 2^(shift - 31): the power of two that turns acc * M0 into the real product. */
  private readonly scale: Float64Array;
  constructor(real: ArrayLike<number>, what = 'rescale') {
    this.m0 = new Int32Array(real.length);
    this.shift = new Int32Array(real.length);
    this.scale = new Float64Array(real.length);
    for (let c = 0; c < real.length; c++) {
      if (!(real[c] >= 0 && real[c] < 2 ** 30)) throw new InputError(`${what}: scale ratio ${real[c]} cannot be a fixed-point multiplier`);
      const q = quantizeMultiplier(real[c]);
      this.m0[c] = q.multiplier;
      this.shift[c] = q.shift;
      this.scale[c] = 2 ** (q.shift - 31);
    }
  }
  /**
   * round(acc * M_c): one rounding, ties away from zero. `acc` is an exact integer. While
   * |acc * M0| < 2^53 the product, the power-of-two scaling and the + 1/2 are all exact in a
   * double (the scaled value is below 2^52), so floor gives the exact rounding; larger products
   * take the split-multiply path of `roundFixedExact`.
   */
  apply(acc: number, c = 0): number {
    const m = this.m0[c];
    const p = acc * m;
    if (p < EXACT && p > -EXACT) {
      const x = p * this.scale[c];
      return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(0.5 - x);
    }
    return roundFixedExact(acc, m, this.shift[c], 'half-away');
  }
}

/** Clamp a code to its grid, counting it and its saturation. */
export function saturate(v: number, g: QuantParams, stats: RunStats): number {
  stats.codes++;
  return clampCounted(v, g, stats);
}

/** saturate() for a step that counts all its codes itself (it clamps only some of them). */
export function clampCounted(v: number, g: QuantParams, stats: RunStats): number {
  if (v > g.qmax) {
    stats.saturated++;
    return g.qmax;
  }
  if (v < g.qmin) {
    stats.saturated++;
    return g.qmin;
  }
  return v;
}

export function sameGrid(a: QuantParams, b: QuantParams): boolean {
  return a.scale === b.scale && a.zeroPoint === b.zeroPoint && a.qmin === b.qmin && a.qmax === b.qmax;
}

/** Largest |code - zero point| a grid holds. */
export function centredBound(g: QuantParams): number {
  return Math.max(Math.abs(g.qmin - g.zeroPoint), Math.abs(g.qmax - g.zeroPoint));
}

/** Codes as the narrow typed array the integer GEMM kernels take (8 or 16 bits). */
export function toQuant(data: Int32Array, g: QuantParams, what: string): QuantArray {
  if (g.qmin >= 0 && g.qmax <= 255) return Uint8Array.from(data);
  if (g.qmin >= -128 && g.qmax <= 127) return Int8Array.from(data);
  if (g.qmin >= 0 && g.qmax <= 65535) return Uint16Array.from(data);
  if (g.qmin >= -32768 && g.qmax <= 32767) return Int16Array.from(data);
  throw new InputError(`${what}: grid [${g.qmin}, ${g.qmax}] is wider than 16 bits; a GEMM operand must be requantized first`);
}

/** The wide grid of int32 intermediates with zero point 0 (I-BERT kernel outputs). */
export function int32Grid(scale: number): QuantParams {
  return { scale, zeroPoint: 0, qmin: -2147483647, qmax: 2147483647 };
}
