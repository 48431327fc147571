/**
 * Integer convolution (ONNX ConvInteger; the accumulator half of QLinearConv), NCHW, 1-D or 2-D,
 * with groups (depthwise included), pads, strides, dilations and auto_pad.
 *
 * Computed as MLAS does it: per image and group, im2col of the activations into a [pixels, K]
 * matrix (rows K-contiguous) and a GEMM against the weights packed [out channels, K]. Padding
 * taps hold the activation ZERO POINT (not 0): after the zero-point correction they contribute
 * exactly nothing, and in the VPMADDUBSW emulation they take part in the pair sums with their
 * stored value, as in MLAS's im2col.
 */
import { accumulateGemm, pairwiseRequested, type PackedGemm } from './accumulate';
import {
  type AccumulateOptions,
  type AccumulatorResult,
  emptyStats,
  expandParam,
  expandZeroPoint,
  InputError,
  type IntTensor,
  type QuantArray,
  requireQuantType,
} from './types';

export type AutoPad = 'NOTSET' | 'VALID' | 'SAME_UPPER' | 'SAME_LOWER';

export interface ConvAttributes {
  autoPad?: AutoPad;
  /** Per spatial axis; default 1. */
  dilations?: number[];
  group?: number;
  /** Checked against the weight shape when given. */
  kernelShape?: number[];
  /** [x1_begin, x2_begin, ..., x1_end, x2_end, ...]; default 0. Ignored unless autoPad is NOTSET. */
  pads?: number[];
  strides?: number[];
}

/**
 * Order of the flattened reduction index K = (input channel, kernel row, kernel column). It does
 * not change exact results, only which products the u8s8 emulation pairs:
 * - 'HWC': k = (kh*KW + kw)*C + c, channel innermost: onnxruntime's QLinearConv reorders the
 *   filter to [KH, KW, C, M] and im2cols NHWC activations, so adjacent K are adjacent channels.
 * - 'CHW': k = (c*KH + kh)*KW + kw, ONNX's weight layout (an NCHW im2col).
 */
export type ReductionOrder = 'HWC' | 'CHW';

export interface ConvOptions extends AccumulateOptions {
  reductionOrder?: ReductionOrder;
}

export interface ConvGeometry {
  /** Per spatial axis. */
  inSpatial: number[];
  kernel: number[];
  outSpatial: number[];
  strides: number[];
  dilations: number[];
  /** Begin pads then end pads, as ONNX lists them. */
  pads: number[];
}

/** Output size and effective pads (auto_pad resolved) for a convolution's spatial axes. */
export function convGeometry(inSpatial: readonly number[], kernel: readonly number[], attrs: ConvAttributes): ConvGeometry {
  const r = inSpatial.length;
  const strides = attrs.strides ?? new Array<number>(r).fill(1);
  const dilations = attrs.dilations ?? new Array<number>(r).fill(1);
  if (strides.length !== r || dilations.length !== r) throw new InputError(`Conv: strides/dilations need ${r} values`);
  if (strides.some((s) => !(s >= 1)) || dilations.some((d) => !(d >= 1))) throw new InputError('Conv: strides and dilations must be >= 1');
  const autoPad = attrs.autoPad ?? 'NOTSET';
  const pads = new Array<number>(2 * r).fill(0);
  const outSpatial: number[] = [];
  for (let i = 0; i < r; i++) {
    const span = (kernel[i] - 1) * dilations[i] + 1; // receptive field of one output
    let out: number;
    if (autoPad === 'NOTSET') {
      const pb = attrs.pads?.[i] ?? 0,
        pe = attrs.pads?.[i + r] ?? 0;
      if (pb < 0 || pe < 0) throw new InputError('Conv: negative pads');
      pads[i] = pb;
      pads[i + r] = pe;
      out = Math.floor((inSpatial[i] + pb + pe - span) / strides[i]) + 1;
    } else if (autoPad === 'VALID') {
      out = Math.floor((inSpatial[i] - span) / strides[i]) + 1;
    } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      out = Math.ceil(inSpatial[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + span - inSpatial[i]);
      // The odd pixel of padding goes at the end for SAME_UPPER, at the beginning for SAME_LOWER.
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      pads[i] = begin;
      pads[i + r] = total - begin;
    } else {
      throw new InputError(`Conv: unknown auto_pad ${String(autoPad)}`);
    }
    if (!(out >= 1)) throw new InputError(`Conv: kernel ${kernel[i]} (dilation ${dilations[i]}) does not fit input ${inSpatial[i]} with these pads`);
    outSpatial.push(out);
  }
  return { inSpatial: [...inSpatial], kernel: [...kernel], outSpatial, strides, dilations, pads };
}

/**
 * ONNX ConvInteger: Y = conv(X - x_zero_point, W - w_zero_point) in int32, Y NCHW.
 * `wZeroPoint` may be per output channel (length M). `bias` (int32, per output channel) is
 * folded into the exact sum: QLinearConv's B input, and ORT's fused ConvInteger + Add.
 */
export function convInteger(
  x: IntTensor<QuantArray>,
  w: IntTensor<QuantArray>,
  xZeroPoint?: ArrayLike<number> | number,
  wZeroPoint?: ArrayLike<number> | number,
  attrs: ConvAttributes = {},
  opts: ConvOptions = {},
  bias?: ArrayLike<number>,
): AccumulatorResult {
  const what = 'ConvInteger';
  const xt = requireQuantType(x.data, `${what} X`);
  const wt = requireQuantType(w.data, `${what} W`);
  const rank = x.dims.length;
  if (rank !== 3 && rank !== 4) throw new InputError(`${what}: only 1-D and 2-D convolutions (X of rank 3 or 4) are supported, got [${x.dims}]`);
  if (w.dims.length !== rank) throw new InputError(`${what}: W [${w.dims}] and X [${x.dims}] ranks differ`);
  // 1-D runs as 2-D with a height of 1.
  const as2d = (d: readonly number[]) => (rank === 3 ? [d[0], d[1], 1, d[2]] : [...d]);
  const [N, C, H, W] = as2d(x.dims);
  const [M, Cg, KH, KW] = as2d(w.dims);
  const group = attrs.group ?? 1;
  if (!(group >= 1) || C % group !== 0 || M % group !== 0 || C / group !== Cg) {
    throw new InputError(`${what}: group ${group} does not fit X channels ${C} and W [${w.dims}]`);
  }
  const kernel = rank === 3 ? [w.dims[2]] : [w.dims[2], w.dims[3]];
  if (attrs.kernelShape && attrs.kernelShape.join() !== kernel.join()) {
    throw new InputError(`${what}: kernel_shape [${attrs.kernelShape}] differs from W [${w.dims}]`);
  }
  const geo = convGeometry(rank === 3 ? [W] : [H, W], kernel, attrs);
  // Per-axis values of the (possibly 1-D) geometry as (height, width); 1-D has height 1.
  const hw = (v: readonly number[], h: number): [number, number] => (rank === 3 ? [h, v[0]] : [v[0], v[1]]);
  const [sH, sW] = hw(geo.strides, 1);
  const [dH, dW] = hw(geo.dilations, 1);
  const [OH, OW] = hw(geo.outSpatial, 1);
  const [padT, padL] = hw(geo.pads, 0); // begin pads; the end pads only shaped OH, OW

  const xzp = expandZeroPoint(xZeroPoint, 1, xt, `${what} x_zero_point`)[0];
  const wzp = expandZeroPoint(wZeroPoint, M, wt, `${what} w_zero_point`);
  let biasAll: Int32Array | null = null;
  if (bias !== undefined) {
    const f = expandParam(bias, M, `${what} bias`);
    biasAll = new Int32Array(M);
    for (let m = 0; m < M; m++) {
      if (!Number.isInteger(f[m]) || f[m] < -2147483648 || f[m] > 2147483647) throw new InputError(`${what} bias ${f[m]} is not an int32`);
      biasAll[m] = f[m];
    }
  }
  const pairwise = pairwiseRequested(opts, x.data, w.data, what);
  const hwc = (opts.reductionOrder ?? 'HWC') === 'HWC';

  const Mg = M / group;
  const K = Cg * KH * KW;
  const P = OH * OW;
  const col = new Float64Array(P * K);
  const packedW = new Float64Array(Mg * K);
  const rowZero = new Int32Array(P).fill(xzp);
  const out = new Int32Array(N * M * P);
  const stats = emptyStats();
  const xd = x.data,
    wd = w.data;
  const kIndex = (c: number, kh: number, kw: number) => (hwc ? (kh * KW + kw) * Cg + c : (c * KH + kh) * KW + kw);

  for (let g = 0; g < group; g++) {
    // Weights of this group, [Mg, K] in the chosen reduction order.
    for (let m = 0; m < Mg; m++) {
      const src = (g * Mg + m) * K; // ONNX order is CHW within one filter
      for (let c = 0; c < Cg; c++)
        for (let kh = 0; kh < KH; kh++)
          for (let kw = 0; kw < KW; kw++) {
            packedW[m * K + kIndex(c, kh, kw)] = wd[src + (c * KH + kh) * KW + kw];
          }
    }
    const p: PackedGemm = {
      M: P,
      N: Mg,
      K,
      a: col,
      b: packedW,
      aZero: rowZero,
      bZero: wzp.subarray(g * Mg, (g + 1) * Mg),
      bias: biasAll ? biasAll.subarray(g * Mg, (g + 1) * Mg) : null,
    };
    for (let n = 0; n < N; n++) {
      // im2col: row = output pixel, K-contiguous; out-of-image taps hold the zero point.
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const row = (oh * OW + ow) * K;
          for (let c = 0; c < Cg; c++) {
            const plane = (n * C + g * Cg + c) * H * W;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * sH - padT + kh * dH;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * sW - padL + kw * dW;
                col[row + kIndex(c, kh, kw)] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xd[plane + ih * W + iw] : xzp;
              }
            }
          }
        }
      // C[pixel][m] lands at Y[n, g*Mg + m, pixel].
      accumulateGemm(p, { out, offset: (n * M + g * Mg) * P, rowStride: 1, colStride: P }, pairwise, stats);
    }
  }
  const dims = rank === 3 ? [N, M, OW] : [N, M, OH, OW];
  return { dims, data: out, ...stats };
}
