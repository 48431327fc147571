/**
 * ONNX QLinearConv and QLinearMatMul: the integer accumulation (conv.ts / matmul.ts) followed by
 * requantization to the output type. The accumulators are returned too, with their overflow and
 * saturation counts, since that is where integer execution departs from the float model.
 *
 * Requantization defaults to ONNX's float definition in onnxruntime's float32 arithmetic
 * (bit-exact on the ONNX conformance data); 'fixed-point' runs the gemmlowp/TFLite pipeline
 * instead, to show what an integer-only accelerator would output for the same model.
 */
import { convInteger, type ConvAttributes, type ConvOptions } from './conv';
import { matMulInteger } from './matmul';
import { multiplyByQuantizedMultiplier, quantizeMultiplier, realMultiplierF32, requantizeFloat } from './requantize';
import { type AccumulatorResult, allocQuant, expandParam, InputError, type IntTensor, type QuantArray, type QuantType, QRANGE } from './types';

/**
 * - 'float32': ONNX QLinear* as onnxruntime computes it (multiplier (s_in*s_w)/s_out and the
 *   product in float32, round half to even).
 * - 'float64': the ONNX numpy reference (float32 multiplier, product in float64).
 * - 'fixed-point': gemmlowp/TFLite: multiplier s_in*s_w/s_out in double, quantized to (M0,
 *   shift), applied with SaturatingRoundingDoublingHighMul + RoundingDivideByPOT.
 */
export type Requantization = 'float32' | 'float64' | 'fixed-point';

export interface QLinearOptions extends ConvOptions {
  requantization?: Requantization;
}

export interface QLinearResult {
  y: IntTensor<QuantArray>;
  /** The int32 accumulators (bias included) before requantization, with their stats. */
  accumulators: AccumulatorResult;
}

/**
 * Requantizes with one multiplier per (row, column) class. `setMultiplier` is called once per
 * distinct multiplier (per channel, or per row when a row-wise scale forces it), never per
 * element; `apply` is the per-element step.
 */
class Requantizer {
  private readonly f: Float64Array;
  private readonly m0: Int32Array;
  private readonly sh: Int32Array;
  readonly qmin: number;
  readonly qmax: number;

  constructor(
    readonly mode: Requantization,
    size: number,
    yType: QuantType,
  ) {
    this.f = new Float64Array(size);
    this.m0 = new Int32Array(size);
    this.sh = new Int32Array(size);
    [this.qmin, this.qmax] = QRANGE[yType];
  }

  setMultiplier(i: number, sIn: number, sW: number, sOut: number): void {
    if (this.mode === 'fixed-point') {
      // TFLite computes the real multiplier in double from the float32 scales.
      const q = quantizeMultiplier((sIn * sW) / sOut);
      this.m0[i] = q.multiplier;
      this.sh[i] = q.shift;
    } else {
      this.f[i] = realMultiplierF32(sIn, sW, sOut);
    }
  }

  apply(acc: number, i: number, zeroPoint: number): number {
    if (this.mode === 'fixed-point') {
      const v = multiplyByQuantizedMultiplier(acc, this.m0[i], this.sh[i]) + zeroPoint;
      return v < this.qmin ? this.qmin : v > this.qmax ? this.qmax : v;
    }
    return requantizeFloat(acc, this.f[i], zeroPoint, this.qmin, this.qmax, this.mode);
  }
}

function scalarParam(values: ArrayLike<number>, what: string): number {
  if (values.length !== 1) throw new InputError(`${what} must be per tensor (1 value), got ${values.length}`);
  return values[0];
}

function checkOutputZeroPoint(zp: number, yType: QuantType, what: string): void {
  const [lo, hi] = QRANGE[yType];
  if (!Number.isInteger(zp) || zp < lo || zp > hi) throw new InputError(`${what}: y_zero_point ${zp} is not a ${yType} value`);
}

export interface QLinearConvInputs {
  x: IntTensor<QuantArray>;
  xScale: ArrayLike<number>;
  xZeroPoint: ArrayLike<number>;
  w: IntTensor<QuantArray>;
  /** Per tensor or per output channel. */
  wScale: ArrayLike<number>;
  /** Per tensor or per output channel. */
  wZeroPoint: ArrayLike<number>;
  yScale: ArrayLike<number>;
  yZeroPoint: ArrayLike<number>;
  /** Output type (ONNX: the type of y_zero_point). */
  yType: QuantType;
  /** int32, per output channel, in units of x_scale * w_scale. */
  bias?: ArrayLike<number>;
}

/** ONNX QLinearConv, NCHW. */
export function qlinearConv(inp: QLinearConvInputs, attrs: ConvAttributes = {}, opts: QLinearOptions = {}): QLinearResult {
  const what = 'QLinearConv';
  const acc = convInteger(inp.x, inp.w, inp.xZeroPoint, inp.wZeroPoint, attrs, opts, inp.bias);
  const M = acc.dims[1];
  const P = acc.data.length / (acc.dims[0] * M);
  const xs = Math.fround(scalarParam(inp.xScale, `${what} x_scale`));
  const ys = Math.fround(scalarParam(inp.yScale, `${what} y_scale`));
  const yz = scalarParam(inp.yZeroPoint, `${what} y_zero_point`);
  checkOutputZeroPoint(yz, inp.yType, what);
  const ws = expandParam(inp.wScale, M, `${what} w_scale`);
  const rq = new Requantizer(opts.requantization ?? 'float32', M, inp.yType);
  for (let m = 0; m < M; m++) rq.setMultiplier(m, xs, Math.fround(ws[m]), ys);
  const y = allocQuant(inp.yType, acc.data.length);
  const a = acc.data;
  for (let i = 0, nm = 0; i < a.length; nm++) {
    const m = nm % M;
    for (const end = i + P; i < end; i++) y[i] = rq.apply(a[i], m, yz);
  }
  return { y: { dims: [...acc.dims], data: y }, accumulators: acc };
}

export interface QLinearMatMulInputs {
  a: IntTensor<QuantArray>;
  /** Per tensor or per row of A (length M). */
  aScale: ArrayLike<number>;
  aZeroPoint: ArrayLike<number>;
  b: IntTensor<QuantArray>;
  /** Per tensor or per column of B (length N). */
  bScale: ArrayLike<number>;
  bZeroPoint: ArrayLike<number>;
  /** Per tensor or per row (length M). */
  yScale: ArrayLike<number>;
  yZeroPoint: ArrayLike<number>;
  yType: QuantType;
}

/** ONNX QLinearMatMul (MatMul shape rules, batch broadcasting). */
export function qlinearMatMul(inp: QLinearMatMulInputs, opts: QLinearOptions = {}): QLinearResult {
  const what = 'QLinearMatMul';
  const acc = matMulInteger(inp.a, inp.b, inp.aZeroPoint, inp.bZeroPoint, opts);
  const M = inp.a.dims.length === 1 ? 1 : inp.a.dims[inp.a.dims.length - 2];
  const N = inp.b.dims.length === 1 ? 1 : inp.b.dims[inp.b.dims.length - 1];
  const sa = expandParam(inp.aScale, M, `${what} a_scale`);
  const sb = expandParam(inp.bScale, N, `${what} b_scale`);
  const sy = expandParam(inp.yScale, M, `${what} y_scale`);
  const zy = expandParam(inp.yZeroPoint, M, `${what} y_zero_point`);
  for (const z of zy) checkOutputZeroPoint(z, inp.yType, what);
  // One multiplier per (row, column); per-row scales are rare, so share rows when they are equal.
  const rowWise = inp.aScale.length > 1 || inp.yScale.length > 1;
  const rows = rowWise ? M : 1;
  const rq = new Requantizer(opts.requantization ?? 'float32', rows * N, inp.yType);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) rq.setMultiplier(r * N + n, Math.fround(sa[r]), Math.fround(sb[n]), Math.fround(sy[r]));
  }
  const y = allocQuant(inp.yType, acc.data.length);
  const a = acc.data;
  for (let i = 0; i < a.length; ) {
    for (let m = 0; m < M; m++) {
      const base = rowWise ? m * N : 0;
      const z = zy[m];
      for (let n = 0; n < N; n++, i++) y[i] = rq.apply(a[i], base + n, z);
    }
  }
  return { y: { dims: [...acc.dims], data: y }, accumulators: acc };
}
