/**
 * Per-layer three-way diff of integer output codes:
 *   (a) the SIMULATION (fake-quant: float ops between QuantizeLinear / DequantizeLinear),
 *   (b) onnxruntime's fused integer kernels (QLinearConv, QGemm, QLinearMatMul), and
 *   (c) an integer-only REFERENCE computed here from the SAME integer input codes (b) saw.
 *
 * REFERENCE: exact accumulation of (x - z_x)(w - z_w) + bias, stored in int32 (wrapped modulo
 * 2^32 if the exact sum leaves int32, as two's-complement SIMD adds do), then gemmlowp
 * fixed-point requantization with M = s_in * s_w[c] / s_out split into (M0, shift) once per
 * channel, + z_out, saturated to the output type. No float arithmetic touches an element.
 *
 * Codes are always compared RELATIVE to each source's own zero point (code - zp), so a source
 * that encodes a symmetric int8 grid as uint8 with zero point 128 compares correctly.
 *
 * Expect referenceVsOrt mismatches even when both sides are correct: gemmlowp rounds TWICE (the
 * doubling high multiply rounds acc*M0/2^31 to an integer, i.e. to a multiple of 2^shift output
 * LSB, and the rounding right shift rounds again, a first-step landing on a boundary going away
 * from zero), onnxruntime once in float32. They disagree on a fraction 0.5 * 2^shift of the
 * unsaturated outputs, where 2^shift is in [M, 2M): about 0.06% for M ~ 1e-3, 0.25% for M ~ 5e-3
 * (measured against onnxruntime's QLinearConv in the unit test). All are labelled
 * 'requantization'.
 *
 * ROOT CAUSES. Each mismatching element is recomputed under alternative arithmetic; the first
 * alternative that reproduces the other side's code names the cause.
 *  referenceVsOrt (a = reference, b = onnxruntime):
 *   'accumulator-overflow' the exact sum left int32;
 *   'requantization'       ONNX float requantization of the int32 accumulator, round half to
 *                          even, reproduces onnxruntime: multiplier float32((s_in*s_w)/s_out) and
 *                          the product in float32 (onnxruntime/MLAS) or float64 (ONNX reference);
 *   'rounding-mode'        a single rounding of the exact fixed-point product (ties away from zero
 *                          or to even; gemmlowp rounds twice) or the float32/float64 formula with
 *                          ties away from zero reproduces it;
 *   'u8s8-saturation'      (uint8 x int8 only) the accumulator with adjacent-pair int16 saturation,
 *                          requantized in fixed point or float32, reproduces it;
 *   'zero-point'           codes at the narrow-range boundary (qmin+1 vs qmin, e.g. -127 vs -128);
 *                          or, when the input codes' zero point differs from the spec's, the sum
 *                          with the spec's input zero point reproduces it; or, when onnxruntime's
 *                          output zero point differs from the spec's, its raw code equals the
 *                          reference's raw code (the zero point was applied differently);
 *   'unexplained'          none of these.
 *  simulatedVsOrt / simulatedVsReference (a = simulation, b = other side). E = the exact
 *  accumulator times s_in*s_w/s_out in float64, rounded half to even (exact real arithmetic,
 *  what the simulation approximates):
 *   'accumulator-overflow' the other side wrapped (exact sum outside int32; the float
 *                          simulation never wraps);
 *   'float-accumulation'   the other side equals E and the simulation is one code off, with E's
 *                          rounding boundary within the worst-case float32 error of the
 *                          simulation's dequantize / sum / divide chain (a bound computed from
 *                          the element's own |products|; see `floatNoiseBound`). Beyond that
 *                          bound the simulation's float arithmetic cannot be the cause, e.g. when
 *                          the simulation's own input codes differed from onnxruntime's;
 *   'requantization'       the simulation equals E and the other side's own requantization
 *                          (onnxruntime: ONNX float32; reference: fixed point) reproduces the
 *                          other side, and it is not a tie rounded the other way;
 *   'rounding-mode'        one side equals E and the other equals E with ties away from zero
 *                          (or onnxruntime equals float32 with ties away from zero);
 *   'u8s8-saturation'      (vs onnxruntime, uint8 x int8 only) as above;
 *   'saturation'           exactly one side sits at a bound of the output type;
 *   'unexplained'          none of these.
 *  The causes 'accumulator-overflow' and 'u8s8-saturation' in the simulation comparisons extend
 *  the list the simulation comparisons would otherwise have: without them such elements could
 *  only be 'unexplained'.
 *
 * LSB HISTOGRAM: signed difference (a - b) of the relative codes, one bin per LSB from -8 to
 * +8; differences beyond +-8 are counted in the end bins (-8 holds every d <= -8, +8 every
 * d >= 8). Bin 0 counts the matching elements, so the counts sum to `elements`. `maxLsb` is the
 * unclamped maximum |a - b|.
 *
 * ROUNDING MODES: the simulated code recomputed from the exact accumulator, acc * s_in*s_w/s_out
 * in float64, with ties to even / ties away from zero / stochastic floor(x + u), u uniform in
 * [0, 1) from a seeded generator (elements drawn in output order), saturated; the rate at which
 * each differs from onnxruntime.
 *
 * U8S8: the VPMADDUBSW emulation (x86 AVX2 without VNNI) of accumulate.ts: raw uint8 x int8
 * products of reduction indices (2j, 2j+1) summed and saturated to int16. `changedOutputs`
 * counts outputs whose REFERENCE code (fixed-point requantization) changes when the saturated
 * accumulator replaces the exact one. Applicable when the stored input type is uint8 and the
 * weights int8. For Conv the reduction order is onnxruntime's (kernel row, kernel column, input
 * channel innermost: 'HWC' in conv.ts), so pairs are adjacent input channels of one tap.
 *
 * SUPPORTED: Conv 1-D/2-D (NCHW input, weights [M, C/group, (kH,) kW], pads, strides,
 * dilations, group incl. depthwise, auto_pad), MatMul (input [..., K], weights [K, N]), Gemm
 * (input [M, K] or [K, M] with transA, weights [K, N] or [N, K] with transB, alpha = beta = 1).
 * Weights per tensor or per output channel (Conv axis 0, MatMul axis 1, Gemm axis 1 or 0 with
 * transB); activations per tensor.
 *
 * PERFORMANCE: one pass per batch. Per (image, group) the input is im2col'ed once into an
 * Int32Array, and each output's dot product yields the exact sum and, when applicable, the
 * pairwise-saturated sum in the same loop. Everything per element is arithmetic on numbers
 * (no allocation); alternatives are recomputed only for mismatching elements.
 */
import { roundHalfAway, roundHalfEven } from '../quantize/rounding';
import { depthwiseKernel } from './accumulate';
import { type AutoPad, type ConvAttributes, convGeometry } from './conv';
import { clampRel, floatRel32, floatRel64, roundFixedExact, seededUniform } from './diffArith';
import { multiplyByQuantizedMultiplier, quantizeMultiplier, realMultiplierF32 } from './requantize';
import { elementCount, InputError, INT32_MAX, INT32_MIN, QRANGE, type QuantType } from './types';

export interface IntegerLayerSpec {
  op: 'Conv' | 'Gemm' | 'MatMul';
  /** Conv: pads, strides, dilations, group, auto_pad ('NOTSET'|...), kernel_shape; Gemm: transA, transB (alpha=beta=1 only). */
  attrs: Record<string, number | number[] | string>;
  /** Weight codes as stored (int8/uint8/int16/uint16), ONNX layout (Conv [M, C/group, kH, kW]; Gemm B [K,N] or [N,K] with transB; MatMul B [K,N]). */
  weight: { codes: Int8Array | Uint8Array | Int16Array | Uint16Array; dims: number[]; scale: number[]; zeroPoint: number[]; axis: number | null };
  /** int32 bias codes at scale s_in * s_w (per output channel), or undefined. */
  bias?: Int32Array;
  input: { scale: number; zeroPoint: number; type: 'int8' | 'uint8' | 'int16' | 'uint16' };
  output: { scale: number; zeroPoint: number; type: 'int8' | 'uint8' | 'int16' | 'uint16' };
}

/** Codes from one source for one batch, relative to ITS zero point (sources may encode differently: e.g. onnxruntime may run a symmetric int8 grid as uint8 with zero point 128). */
export interface Codes {
  codes: ArrayLike<number>;
  zeroPoint: number;
  dims: number[];
}

export interface DiffStats {
  mismatchRate: number;
  maxLsb: number;
  lsbHistogram: { lsb: number[]; counts: number[] };
  causes: { cause: string; count: number }[];
}

export interface LayerDiffResult {
  referenceVsOrt: DiffStats;
  simulatedVsOrt: DiffStats;
  simulatedVsReference: DiffStats;
  /** What each simulation rounding mode would change: mismatch rate vs onnxruntime's codes when the simulated requantization rounds half-to-even (ONNX), half-away-from-zero, or stochastically (INT8 training). */
  roundingModes: { halfEven: number; halfAwayFromZero: number; stochastic: number };
  /** Which fixed-point requantization the reference used, and how often the other one differs from onnxruntime. */
  requantization: { reference: 'single-rounding' | 'double-rounding'; otherVsOrt: number };
  /** x86 without VNNI: u8 x s8 pair sums that would saturate int16, and output codes that would change. */
  u8s8: { applicable: boolean; saturatedPairs: number; changedOutputs: number; elements: number };
  accumulatorOverflows: number;
  elements: number;
}

// Cause indices. Both lists share the index space; each comparison reports its own subset.
const C_OVERFLOW = 0,
  C_REQUANT = 1,
  C_ROUNDING = 2,
  C_U8S8 = 3,
  C_ZERO_POINT = 4,
  C_FLOAT_ACC = 5,
  C_SATURATION = 6,
  C_UNEXPLAINED = 7;
const CAUSE_NAMES = [
  'accumulator-overflow',
  'requantization',
  'rounding-mode',
  'u8s8-saturation',
  'zero-point',
  'float-accumulation',
  'saturation',
  'unexplained',
] as const;
export type DiffCause = (typeof CAUSE_NAMES)[number];

/** Histogram bins: -HIST_SPAN .. +HIST_SPAN LSB, ends clamped. */
export const LSB_HIST_SPAN = 8;

const EXACT_LIMIT = 2 ** 53;
/** float32 unit roundoff. */
const U32 = 2 ** -24;
/** MatMul/Gemm rows packed per tile. */
const ROW_BLOCK = 256;

class DiffCounter {
  mismatches = 0;
  maxLsb = 0;
  readonly hist = new Float64Array(2 * LSB_HIST_SPAN + 1);
  readonly causes = new Float64Array(CAUSE_NAMES.length);

  /** Records d = a - b; returns true for a mismatch (the caller then records its cause). */
  add(d: number): boolean {
    const bin = d < -LSB_HIST_SPAN ? -LSB_HIST_SPAN : d > LSB_HIST_SPAN ? LSB_HIST_SPAN : d;
    this.hist[bin + LSB_HIST_SPAN]++;
    if (d === 0) return false;
    this.mismatches++;
    const m = Math.abs(d);
    if (m > this.maxLsb) this.maxLsb = m;
    return true;
  }

  stats(elements: number): DiffStats {
    const lsb: number[] = [];
    for (let i = -LSB_HIST_SPAN; i <= LSB_HIST_SPAN; i++) lsb.push(i);
    const causes: { cause: string; count: number }[] = [];
    this.causes.forEach((count, i) => {
      if (count > 0) causes.push({ cause: CAUSE_NAMES[i], count });
    });
    causes.sort((x, y) => y.count - x.count);
    return {
      mismatchRate: elements > 0 ? this.mismatches / elements : 0,
      maxLsb: this.maxLsb,
      lsbHistogram: { lsb, counts: Array.from(this.hist) },
      causes,
    };
  }
}

function typeOfArray(a: ArrayLike<number>): QuantType | null {
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  return null;
}

/** Offset between the signed and unsigned encodings of one grid (int8 zp z = uint8 zp z + 128). */
const SIGN_OFFSET: Record<QuantType, number> = { int8: 128, uint8: -128, int16: 32768, uint16: -32768 };
const TWIN: Record<QuantType, QuantType> = { int8: 'uint8', uint8: 'int8', int16: 'uint16', uint16: 'int16' };

function num(attrs: IntegerLayerSpec['attrs'], name: string, dflt: number): number {
  const v = attrs[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`attribute ${name} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function ints(attrs: IntegerLayerSpec['attrs'], name: string): number[] | undefined {
  const v = attrs[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) throw new InputError(`attribute ${name} must be a list of integers, got ${JSON.stringify(v)}`);
  return v;
}

function checkZp(z: number, type: QuantType, what: string): void {
  const [lo, hi] = QRANGE[type];
  if (!Number.isInteger(z) || z < lo || z > hi) throw new InputError(`${what} ${z} is not a ${type} value`);
}

function maxAbsOfRange(t: QuantType): number {
  const [lo, hi] = QRANGE[t];
  return Math.max(-lo, hi);
}

export class LayerDiff {
  private readonly op: IntegerLayerSpec['op'];
  /** Reduction length of one output (per group for Conv). */
  private readonly K: number;
  /** Output channels (Conv M, MatMul/Gemm N). */
  private readonly channels: number;
  private readonly group: number;
  private readonly Mg: number;
  /** Weights [channels, K] raw codes in reduction order (Conv: HWC within each filter). */
  private readonly w: Int32Array;
  private readonly wZero: Int32Array;
  /** Per channel: sum of raw codes over K, and sum of (code - zero point). */
  private readonly wColSum: Float64Array;
  private readonly bias: Float64Array;
  private readonly biasMax: number;
  private readonly m0: Int32Array;
  private readonly shift: Int32Array;
  /** onnxruntime's float32 multiplier float32((s_in*s_w)/s_out). */
  private readonly m32: Float64Array;
  /** s_in*s_w/s_out in float64. */
  private readonly m64: Float64Array;
  /** s_in * s_w in float64 (dequantized product scale). */
  private readonly prodScale: Float64Array;
  private readonly sOut: number;
  private readonly zIn: number;
  private readonly inType: QuantType;
  private readonly zOut: number;
  private readonly qmin: number;
  private readonly qmax: number;
  private readonly weightType: QuantType;
  private readonly conv: ConvAttributes | null;
  /** Conv kernel (height 1 for 1-D) and channels per group. */
  private readonly KH: number;
  private readonly KW: number;
  private readonly Cg: number;
  private readonly convRank: number;
  private readonly transA: boolean;
  private readonly rand: () => number;

  // Totals.
  private readonly refOrt = new DiffCounter();
  private readonly simOrt = new DiffCounter();
  private readonly simRef = new DiffCounter();
  private nElements = 0;
  private overflows = 0;
  private rmEven = 0;
  private rmAway = 0;
  private rmStochastic = 0;
  private satPairs = 0;
  private satChanged = 0;
  private satElements = 0;
  /** Before any batch: whether the spec's types make the emulation applicable. */
  private readonly sawU8s8: boolean;
  /** onnxruntime's depthwise kernel, not QGEMM, runs this layer: no u8 x s8 pair saturation. */
  private depthwise = false;

  // Per-batch context read by the element step and the cause attribution.
  private ort: ArrayLike<number> = [];
  private ortZp = 0;
  private sim: ArrayLike<number> = [];
  private simZp = 0;
  /** Zero point of the current input codes (may differ from the spec's). */
  private za = 0;
  private pairwise = false;
  /** Current tile's packed activations, K-contiguous rows. */
  private tileA: Int32Array = new Int32Array(0);
  /** Conv geometry of the current batch (for in-bounds tap sums). */
  private geo = { H: 1, W: 1, OW: 1, sH: 1, sW: 1, dH: 1, dW: 1, padT: 0, padL: 0 };
  private rowSum = new Float64Array(0);

  private readonly doubleRounding: boolean;

  constructor(spec: IntegerLayerSpec, opts: { seed?: number; requantization?: 'single-rounding' | 'double-rounding' } = {}) {
    this.doubleRounding = opts.requantization === 'double-rounding';
    this.op = spec.op;
    if (this.op !== 'Conv' && this.op !== 'Gemm' && this.op !== 'MatMul') throw new InputError(`LayerDiff: unsupported op ${String(this.op)}`);
    const wt = typeOfArray(spec.weight.codes);
    if (wt === null) throw new InputError('LayerDiff: weight codes must be an Int8Array, Uint8Array, Int16Array or Uint16Array');
    this.weightType = wt;
    if (!QRANGE[spec.input.type] || !QRANGE[spec.output.type]) throw new InputError('LayerDiff: input/output type must be int8, uint8, int16 or uint16');
    this.inType = spec.input.type;
    checkZp(spec.input.zeroPoint, spec.input.type, 'input zero point');
    checkZp(spec.output.zeroPoint, spec.output.type, 'output zero point');
    this.zIn = spec.input.zeroPoint;
    this.zOut = spec.output.zeroPoint;
    [this.qmin, this.qmax] = QRANGE[spec.output.type];
    const wd = spec.weight.dims;
    if (elementCount(wd) !== spec.weight.codes.length) throw new InputError(`LayerDiff: weight dims [${wd}] do not match ${spec.weight.codes.length} codes`);
    const a = spec.attrs;

    let chAxis: number;
    let K: number, channels: number;
    this.conv = null;
    this.KH = 1;
    this.KW = 1;
    this.Cg = 1;
    this.convRank = 0;
    this.group = 1;
    this.transA = false;
    let pack: (dst: Int32Array) => void;
    const src = spec.weight.codes;
    if (this.op === 'Conv') {
      if (wd.length !== 3 && wd.length !== 4) throw new InputError(`LayerDiff Conv: weight must be [M, C/group, kW] or [M, C/group, kH, kW], got [${wd}]`);
      const group = num(a, 'group', 1);
      const autoPad = a.auto_pad ?? 'NOTSET';
      if (typeof autoPad !== 'string' || !['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(autoPad))
        throw new InputError(`LayerDiff Conv: auto_pad ${String(autoPad)}`);
      const kernel = wd.slice(2);
      const ks = ints(a, 'kernel_shape');
      if (ks && ks.join() !== kernel.join()) throw new InputError(`LayerDiff Conv: kernel_shape [${ks}] differs from the weight [${wd}]`);
      this.conv = { autoPad: autoPad as AutoPad, group, pads: ints(a, 'pads'), strides: ints(a, 'strides'), dilations: ints(a, 'dilations') };
      this.convRank = wd.length;
      const M = wd[0];
      if (!Number.isInteger(group) || group < 1 || M % group !== 0) throw new InputError(`LayerDiff Conv: group ${group} does not divide ${M} output channels`);
      this.group = group;
      this.Cg = wd[1];
      this.depthwise = depthwiseKernel(group, wd);
      this.KH = wd.length === 4 ? wd[2] : 1;
      this.KW = wd[wd.length - 1];
      channels = M;
      K = this.Cg * this.KH * this.KW;
      chAxis = 0;
      const { Cg, KH, KW } = this;
      pack = (dst) => {
        // ONNX [M, Cg, KH, KW] -> [M, (kh*KW + kw)*Cg + c]: onnxruntime's reduction order.
        for (let m = 0; m < M; m++)
          for (let c = 0; c < Cg; c++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                dst[m * K + (kh * KW + kw) * Cg + c] = src[((m * Cg + c) * KH + kh) * KW + kw];
              }
      };
    } else {
      if (wd.length !== 2) throw new InputError(`LayerDiff ${this.op}: weight must be 2-D, got [${wd}]`);
      let transB = false;
      if (this.op === 'Gemm') {
        if (num(a, 'alpha', 1) !== 1 || num(a, 'beta', 1) !== 1) throw new InputError('LayerDiff Gemm: only alpha = beta = 1 is supported');
        this.transA = num(a, 'transA', 0) !== 0;
        transB = num(a, 'transB', 0) !== 0;
      }
      [K, channels] = transB ? [wd[1], wd[0]] : [wd[0], wd[1]];
      chAxis = transB ? 0 : 1;
      const N = channels;
      pack = (dst) => {
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) dst[n * K + k] = transB ? src[n * K + k] : src[k * N + n];
      };
    }
    this.K = K;
    this.channels = channels;
    this.Mg = channels / this.group;
    if (!(K >= 1) || !(channels >= 1)) throw new InputError('LayerDiff: empty weight');
    this.w = new Int32Array(channels * K);
    pack(this.w);

    // Per-channel parameters.
    const { scale, zeroPoint, axis } = spec.weight;
    if (scale.length !== 1 && scale.length !== channels) throw new InputError(`LayerDiff: ${scale.length} weight scales for ${channels} output channels`);
    if (scale.length > 1) {
      const ax = axis === null ? null : axis < 0 ? axis + wd.length : axis;
      if (ax !== chAxis) throw new InputError(`LayerDiff ${this.op}: per-channel weight axis ${axis} is not the output-channel axis ${chAxis}`);
    }
    if (zeroPoint.length > 1 && zeroPoint.length !== channels)
      throw new InputError(`LayerDiff: ${zeroPoint.length} weight zero points for ${channels} output channels`);
    if (spec.bias && spec.bias.length !== channels && spec.bias.length !== 1)
      throw new InputError(`LayerDiff: ${spec.bias.length} bias values for ${channels} output channels`);
    const sIn = Math.fround(spec.input.scale);
    const sOut = Math.fround(spec.output.scale);
    if (!(sIn > 0) || !(sOut > 0) || !Number.isFinite(sIn) || !Number.isFinite(sOut))
      throw new InputError('LayerDiff: input and output scales must be positive and finite');
    this.sOut = sOut;
    this.wZero = new Int32Array(channels);
    this.wColSum = new Float64Array(channels);
    this.bias = new Float64Array(channels);
    this.m0 = new Int32Array(channels);
    this.shift = new Int32Array(channels);
    this.m32 = new Float64Array(channels);
    this.m64 = new Float64Array(channels);
    this.prodScale = new Float64Array(channels);
    let biasMax = 0;
    for (let c = 0; c < channels; c++) {
      const zw = zeroPoint.length === 0 ? 0 : zeroPoint[zeroPoint.length === 1 ? 0 : c];
      checkZp(zw, wt, 'weight zero point');
      this.wZero[c] = zw;
      let s = 0;
      for (let k = 0; k < K; k++) s += this.w[c * K + k];
      this.wColSum[c] = s;
      const b = spec.bias ? spec.bias[spec.bias.length === 1 ? 0 : c] : 0;
      this.bias[c] = b;
      biasMax = Math.max(biasMax, Math.abs(b));
      const sW = Math.fround(scale[scale.length === 1 ? 0 : c]);
      if (!(sW > 0) || !Number.isFinite(sW)) throw new InputError(`LayerDiff: weight scale ${scale[c]} must be positive and finite`);
      let q: ReturnType<typeof quantizeMultiplier>;
      try {
        q = quantizeMultiplier((sIn * sW) / sOut);
      } catch (e) {
        throw new InputError(`LayerDiff: requantization multiplier of channel ${c}: ${(e as Error).message}`);
      }
      this.m0[c] = q.multiplier;
      this.shift[c] = q.shift;
      this.m32[c] = realMultiplierF32(sIn, sW, sOut);
      this.m64[c] = (sIn * sW) / sOut;
      this.prodScale[c] = sIn * sW;
    }
    this.biasMax = biasMax;
    this.sawU8s8 = spec.input.type === 'uint8' && wt === 'int8' && !this.depthwise;
    this.rand = seededUniform(opts.seed ?? 1);
  }

  /**
   * The stored type of an input batch: a typed array's own type; for plain arrays the spec's
   * type, or its signed/unsigned twin when the zero point is the spec's shifted by 128 (32768).
   */
  private storedInputType(input: Codes): QuantType {
    const t = typeOfArray(input.codes);
    if (t !== null) return t;
    if (input.zeroPoint !== this.zIn && input.zeroPoint === this.zIn + SIGN_OFFSET[this.inType]) return TWIN[this.inType];
    return this.inType;
  }

  /** One batch: the integer INPUT codes onnxruntime's integer session produced for this layer's input, and the OUTPUT codes of onnxruntime (integer) and of the simulation. */
  /**
   * Compare one batch. `share` in (0, 1]: compare only that share of the output rows (Conv: output
   * positions, Gemm/MatMul: rows), in a stratified random sample: a 512x512 detector is billions
   * of multiply-accumulates per sample, and the rates this reports are per compared element.
   */
  add(input: Codes, ort: Codes, simulated: Codes, share = 1): void {
    const inType = this.storedInputType(input);
    checkZp(input.zeroPoint, inType, 'input codes zero point');
    if (!Number.isInteger(ort.zeroPoint) || !Number.isInteger(simulated.zeroPoint)) throw new InputError('LayerDiff: zero points must be integers');
    const nIn = elementCount(input.dims);
    if (input.codes.length !== nIn) throw new InputError(`LayerDiff: input dims [${input.dims}] do not match ${input.codes.length} codes`);
    if (typeOfArray(input.codes) === null) {
      const [lo, hi] = QRANGE[inType];
      const x = input.codes;
      for (let i = 0; i < nIn; i++) {
        const v = x[i];
        if (!Number.isInteger(v) || v < lo || v > hi) throw new InputError(`LayerDiff: input code ${v} at ${i} is not a ${inType} value`);
      }
    }
    // Every partial sum must stay an exact integer in a double.
    const am = maxAbsOfRange(inType),
      bm = maxAbsOfRange(this.weightType);
    const zam = Math.abs(input.zeroPoint);
    let zbm = 0;
    for (const z of this.wZero) zbm = Math.max(zbm, Math.abs(z));
    const bound = this.K * (am * bm + zbm * am + zam * bm + zam * zbm) + this.biasMax;
    if (!(bound < EXACT_LIMIT))
      throw new InputError(`LayerDiff: K=${this.K} with ${inType} x ${this.weightType} operands could exceed 2^53; not computed exactly`);

    this.pairwise = inType === 'uint8' && this.weightType === 'int8' && !this.depthwise;
    this.za = input.zeroPoint;
    this.ort = ort.codes;
    this.ortZp = ort.zeroPoint;
    this.sim = simulated.codes;
    this.simZp = simulated.zeroPoint;
    if (!(share > 0 && share <= 1)) throw new InputError(`LayerDiff: share ${share} is not in (0, 1]`);
    if (this.op === 'Conv') this.addConv(input, ort, simulated, share);
    else this.addGemm(input, ort, simulated, share);
    this.ort = [];
    this.sim = [];
  }

  private checkOutputs(expectedDims: number[], ort: Codes, sim: Codes): void {
    const n = elementCount(expectedDims);
    for (const [what, c] of [
      ['onnxruntime', ort],
      ['simulated', sim],
    ] as const) {
      if (c.codes.length !== n || elementCount(c.dims) !== n) {
        throw new InputError(`LayerDiff: ${what} output has dims [${c.dims}] (${c.codes.length} codes); expected [${expectedDims}]`);
      }
    }
  }

  private addConv(input: Codes, ort: Codes, sim: Codes, share: number): void {
    const d = input.dims;
    if (d.length !== this.convRank) throw new InputError(`LayerDiff Conv: input [${d}] and weight rank ${this.convRank} differ`);
    const [N, C, H, W] = d.length === 3 ? [d[0], d[1], 1, d[2]] : d;
    const { group, Cg, KH, KW, K, Mg, channels: M } = this;
    if (C !== Cg * group) throw new InputError(`LayerDiff Conv: input has ${C} channels; weight expects ${Cg} x group ${group}`);
    const geo = convGeometry(d.length === 3 ? [W] : [H, W], d.length === 3 ? [KW] : [KH, KW], this.conv!);
    const hw = (v: number[], dflt: number): [number, number] => (d.length === 3 ? [dflt, v[0]] : [v[0], v[1]]);
    const [OH, OW] = hw(geo.outSpatial, 1);
    const [sH, sW] = hw(geo.strides, 1);
    const [dH, dW] = hw(geo.dilations, 1);
    const [padT, padL] = hw(geo.pads, 0);
    const P = OH * OW;
    this.checkOutputs(d.length === 3 ? [N, M, OW] : [N, M, OH, OW], ort, sim);
    this.geo = { H, W, OW, sH, sW, dH, dW, padT, padL };

    const x = input.codes;
    const za = input.zeroPoint;
    const img = new Int32Array(C * H * W);
    const pick = this.pickRows(P, share);
    const rows = pick?.length ?? P;
    const col = new Int32Array(rows * K);
    this.tileA = col;
    if (this.rowSum.length < rows) this.rowSum = new Float64Array(rows);
    for (let n = 0; n < N; n++) {
      const base = n * C * H * W;
      for (let i = 0; i < img.length; i++) img[i] = x[base + i];
      for (let g = 0; g < group; g++) {
        // im2col in HWC order; taps outside the image hold the input zero point.
        for (let r = 0; r < rows; r++) {
          const pos = pick ? pick[r] : r;
          const oh = Math.floor(pos / OW),
            ow = pos - oh * OW;
          const row = r * K;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * sH - padT + kh * dH;
            const rowOk = ih >= 0 && ih < H;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * sW - padL + kw * dW;
              const dst = row + (kh * KW + kw) * Cg;
              if (rowOk && iw >= 0 && iw < W) {
                let s = (g * Cg * H + ih) * W + iw;
                for (let c = 0; c < Cg; c++, s += H * W) col[dst + c] = img[s];
              } else {
                for (let c = 0; c < Cg; c++) col[dst + c] = za;
              }
            }
          }
        }
        this.runTile(rows, g * Mg, Mg, (n * M + g * Mg) * P, 1, P, pick);
      }
    }
  }

  private addGemm(input: Codes, ort: Codes, sim: Codes, share: number): void {
    const d = input.dims;
    const { K, channels: N } = this;
    let rows: number;
    let outDims: number[];
    if (this.op === 'Gemm') {
      if (d.length !== 2) throw new InputError(`LayerDiff Gemm: input must be 2-D, got [${d}]`);
      const [Mr, Kr] = this.transA ? [d[1], d[0]] : [d[0], d[1]];
      if (Kr !== K) throw new InputError(`LayerDiff Gemm: input [${d}] (transA=${this.transA ? 1 : 0}) does not have K=${K}`);
      rows = Mr;
      outDims = [Mr, N];
    } else {
      if (d.length < 1 || d[d.length - 1] !== K) throw new InputError(`LayerDiff MatMul: input [${d}] does not end in K=${K}`);
      rows = elementCount(d) / K;
      outDims = d.length === 1 ? [N] : [...d.slice(0, -1), N];
    }
    this.checkOutputs(outDims, ort, sim);
    const x = input.codes;
    const pick = this.pickRows(rows, share);
    const total = pick?.length ?? rows;
    const block = Math.min(ROW_BLOCK, total);
    const a = new Int32Array(block * K);
    this.tileA = a;
    if (this.rowSum.length < block) this.rowSum = new Float64Array(block);
    for (let r0 = 0; r0 < total; r0 += block) {
      const R = Math.min(block, total - r0);
      const index = pick?.subarray(r0, r0 + R) ?? null;
      for (let r = 0; r < R; r++) {
        const src = index ? index[r] : r0 + r;
        if (this.transA) for (let k = 0; k < K; k++) a[r * K + k] = x[k * rows + src];
        else for (let k = 0; k < K; k++) a[r * K + k] = x[src * K + k];
      }
      this.runTile(R, 0, N, index ? 0 : r0 * N, N, 1, index);
    }
  }

  /**
   * `count` of `total` rows in a stratified random sample (one per equal stretch: no aliasing with
   * the image's width, unlike a fixed stride), or null for all of them.
   */
  private pickRows(total: number, share: number): Int32Array | null {
    if (share >= 1) return null;
    const count = Math.max(1, Math.min(total, Math.round(total * share)));
    const rows = new Int32Array(count);
    for (let i = 0; i < count; i++) rows[i] = Math.min(total - 1, Math.floor(((i + this.pickRand()) * total) / count));
    return rows;
  }

  /** Its own stream, so that sampling rows does not shift the stochastic-rounding draws. */
  private readonly pickRand = seededUniform(7);

  /**
   * Rows [0, R) of `tileA` against channels [ch0, ch0 + Nc): exact and (u8s8) pair-saturated
   * accumulators, then the per-element comparison. Output (r, j) is element
   * outBase + row*rowStride + j*colStride of the batch's output codes, where row is r or, for a
   * sample of rows, index[r].
   */
  private runTile(R: number, ch0: number, Nc: number, outBase: number, rowStride: number, colStride: number, index: Int32Array | null): void {
    const a = this.tileA,
      b = this.w,
      K = this.K,
      za = this.za;
    const rowSum = this.rowSum;
    for (let r = 0; r < R; r++) {
      let s = 0;
      const off = r * K;
      for (let k = 0; k < K; k++) s += a[off + k];
      rowSum[r] = s;
    }
    const pairwise = this.pairwise;
    const kEven = K & ~1;
    let satPairs = 0;
    for (let r = 0; r < R; r++) {
      const aOff = r * K;
      const rs = rowSum[r];
      for (let j = 0; j < Nc; j++) {
        const ch = ch0 + j;
        const bOff = ch * K;
        let s = 0,
          t = 0;
        if (pairwise) {
          for (let k = 0; k < kEven; k += 2) {
            const pair = a[aOff + k] * b[bOff + k] + a[aOff + k + 1] * b[bOff + k + 1];
            s += pair;
            if (pair > 32767) {
              t += 32767;
              satPairs++;
            } else if (pair < -32768) {
              t -= 32768;
              satPairs++;
            } else t += pair;
          }
          if (kEven !== K) {
            const p = a[aOff + kEven] * b[bOff + kEven];
            s += p;
            t += p;
          }
        } else {
          for (let k = 0; k < K; k++) s += a[aOff + k] * b[bOff + k];
        }
        const zb = this.wZero[ch];
        const corr = K * za * zb - zb * rs - za * this.wColSum[ch] + this.bias[ch];
        const row = index ? index[r] : r;
        this.element(outBase + row * rowStride + j * colStride, ch, s + corr, t + corr, aOff, bOff, row);
      }
    }
    this.satPairs += satPairs;
  }

  /**
   * Reference code of an int32 accumulator, relative to the output zero point: acc x M0 x 2^-n
   * rounded ONCE (TFLite's single-rounding mode, as CMSIS-NN does), or, with
   * `requantization: 'double-rounding'`, gemmlowp's classic path that rounds in the doubling high
   * multiply and again in the right shift. The other variant is counted alongside.
   */
  private fixedRel(acc32: number, ch: number): number {
    const single = clampRel(roundFixedExact(acc32, this.m0[ch], this.shift[ch], 'half-away'), this.zOut, this.qmin, this.qmax);
    const double = clampRel(multiplyByQuantizedMultiplier(acc32, this.m0[ch], this.shift[ch]), this.zOut, this.qmin, this.qmax);
    const [ref, other] = this.doubleRounding ? [double, single] : [single, double];
    this.lastOtherRel = other;
    return ref;
  }

  /** The requantization variant not used as the reference, for the last element (see fixedRel). */
  private lastOtherRel = 0;
  private otherVsOrt = 0;

  private element(e: number, ch: number, A: number, satA: number, aOff: number, bOff: number, row: number): void {
    this.nElements++;
    const z = this.zOut,
      qmin = this.qmin,
      qmax = this.qmax;
    if (A > INT32_MAX || A < INT32_MIN) this.overflows++;
    const refRel = this.fixedRel(A | 0, ch); // `| 0`: the int32 the hardware keeps (wraps)
    const ortRel = this.ort[e] - this.ortZp;
    if (this.lastOtherRel !== ortRel) this.otherVsOrt++;
    const simRel = this.sim[e] - this.simZp;

    const v = A * this.m64[ch];
    if (clampRel(roundHalfEven(v), z, qmin, qmax) !== ortRel) this.rmEven++;
    if (clampRel(roundHalfAway(v), z, qmin, qmax) !== ortRel) this.rmAway++;
    if (clampRel(Math.floor(v + this.rand()), z, qmin, qmax) !== ortRel) this.rmStochastic++;

    if (this.pairwise) {
      this.satElements++;
      if (satA !== A && this.fixedRel(satA | 0, ch) !== refRel) this.satChanged++;
    }

    if (this.refOrt.add(refRel - ortRel)) this.refOrt.causes[this.causeRefOrt(A, satA, ch, refRel, ortRel, bOff, row)]++;
    if (this.simOrt.add(simRel - ortRel)) this.simOrt.causes[this.causeSim(A, satA, ch, simRel, ortRel, true, refRel, aOff, bOff)]++;
    if (this.simRef.add(simRel - refRel)) this.simRef.causes[this.causeSim(A, satA, ch, simRel, refRel, false, refRel, aOff, bOff)]++;
  }

  private causeRefOrt(A: number, satA: number, ch: number, refRel: number, ortRel: number, bOff: number, row: number): number {
    if (A > INT32_MAX || A < INT32_MIN) return C_OVERFLOW;
    const z = this.zOut,
      qmin = this.qmin,
      qmax = this.qmax;
    const acc = A; // fits int32 here
    const f32 = clampRel(floatRel32(acc, this.m32[ch], 'half-even'), z, qmin, qmax);
    if (f32 === ortRel || clampRel(floatRel64(acc, this.m32[ch], 'half-even'), z, qmin, qmax) === ortRel) return C_REQUANT;
    if (this.roundingAlternatives(acc, ch, ortRel)) return C_ROUNDING;
    if (this.pairwise && satA !== A && this.reproducedBySaturated(satA, ch, ortRel)) return C_U8S8;
    // Zero-point handling.
    const lo = qmin - z;
    if ((refRel === lo && ortRel === lo + 1) || (refRel === lo + 1 && ortRel === lo)) return C_ZERO_POINT;
    if (this.za !== this.zIn) {
      const alt = acc + (this.za - this.zIn) * this.inBoundsWeightSum(row, ch, bOff);
      if (alt >= INT32_MIN && alt <= INT32_MAX) {
        if (this.fixedRel(alt, ch) === ortRel || clampRel(floatRel32(alt, this.m32[ch], 'half-even'), z, qmin, qmax) === ortRel) return C_ZERO_POINT;
      }
    }
    if (this.ortZp !== z) {
      const ortRaw = ortRel + this.ortZp;
      if (ortRaw === refRel + z || ortRaw === f32 + z) return C_ZERO_POINT;
    }
    return C_UNEXPLAINED;
  }

  /** Whether a half-away / single-rounding variant of fixed point or float reproduces `target`. */
  private roundingAlternatives(acc: number, ch: number, target: number): boolean {
    const z = this.zOut,
      qmin = this.qmin,
      qmax = this.qmax;
    const m0 = this.m0[ch],
      sh = this.shift[ch];
    return (
      clampRel(roundFixedExact(acc, m0, sh, 'half-away'), z, qmin, qmax) === target ||
      clampRel(roundFixedExact(acc, m0, sh, 'half-even'), z, qmin, qmax) === target ||
      clampRel(floatRel32(acc, this.m32[ch], 'half-away'), z, qmin, qmax) === target ||
      clampRel(floatRel64(acc, this.m64[ch], 'half-away'), z, qmin, qmax) === target
    );
  }

  private reproducedBySaturated(satA: number, ch: number, target: number): boolean {
    const s = satA | 0;
    return this.fixedRel(s, ch) === target || clampRel(floatRel32(s, this.m32[ch], 'half-even'), this.zOut, this.qmin, this.qmax) === target;
  }

  /**
   * Sum of (w - z_w) over the taps of output `row` that read real input (not padding): what a
   * change of the input zero point shifts the accumulator by, per unit.
   */
  private inBoundsWeightSum(row: number, ch: number, bOff: number): number {
    const b = this.w,
      zb = this.wZero[ch],
      K = this.K;
    if (this.op !== 'Conv') return this.wColSum[ch] - K * zb;
    const { H, W, OW, sH, sW, dH, dW, padT, padL } = this.geo;
    const { KH, KW, Cg } = this;
    const oh = Math.floor(row / OW),
      ow = row - oh * OW;
    let s = 0;
    for (let kh = 0; kh < KH; kh++) {
      const ih = oh * sH - padT + kh * dH;
      if (ih < 0 || ih >= H) continue;
      for (let kw = 0; kw < KW; kw++) {
        const iw = ow * sW - padL + kw * dW;
        if (iw < 0 || iw >= W) continue;
        const off = bOff + (kh * KW + kw) * Cg;
        for (let c = 0; c < Cg; c++) s += b[off + c] - zb;
      }
    }
    return s;
  }

  /**
   * Worst-case distance (in output LSB) between the simulation's float32 result and the exact
   * value A*s_in*s_w/s_out: dequantized operands and their products each round once (3u per
   * term), any summation order of K terms adds at most (K-1)u of the sum of |terms|, the float32
   * bias dequantization 2u of |bias|, and the conversion of the float32 sum and its division by
   * s_out 2u of |value| (u = 2^-24). Generous by a few u on purpose.
   */
  private floatNoiseBound(ch: number, aOff: number, bOff: number, v: number): number {
    const a = this.tileA,
      b = this.w,
      za = this.za,
      zb = this.wZero[ch];
    let s = 0;
    for (let k = 0; k < this.K; k++) {
      const x = a[aOff + k] - za,
        w = b[bOff + k] - zb;
      s += Math.abs(x) * Math.abs(w); // branch-free: the signs are random
    }
    const terms = ((s + Math.abs(this.bias[ch])) * this.prodScale[ch]) / this.sOut;
    return U32 * ((this.K + 8) * terms + 4 * Math.abs(v));
  }

  private causeSim(
    A: number,
    satA: number,
    ch: number,
    simRel: number,
    otherRel: number,
    otherIsOrt: boolean,
    refRel: number,
    aOff: number,
    bOff: number,
  ): number {
    if (A > INT32_MAX || A < INT32_MIN) return C_OVERFLOW;
    const z = this.zOut,
      qmin = this.qmin,
      qmax = this.qmax;
    const v = A * this.m64[ch];
    const E = clampRel(roundHalfEven(v), z, qmin, qmax);
    const Ea = clampRel(roundHalfAway(v), z, qmin, qmax);
    if (otherRel === E) {
      const d = simRel - E;
      if ((d === 1 || d === -1) && Math.abs(v - (simRel + E) / 2) <= this.floatNoiseBound(ch, aOff, bOff, v)) return C_FLOAT_ACC;
    }
    if (simRel === E) {
      const scheme = otherIsOrt ? clampRel(floatRel32(A, this.m32[ch], 'half-even'), z, qmin, qmax) : refRel;
      if (otherRel === scheme && otherRel !== Ea) return C_REQUANT;
      if (otherRel === Ea) return C_ROUNDING;
      if (otherIsOrt && this.roundingAlternatives(A, ch, otherRel)) return C_ROUNDING;
    } else if (simRel === Ea && otherRel === E) {
      return C_ROUNDING;
    }
    if (otherIsOrt && this.pairwise && satA !== A && this.reproducedBySaturated(satA, ch, otherRel)) return C_U8S8;
    const lo = qmin - z,
      hi = qmax - z;
    const simAt = simRel === lo || simRel === hi,
      otherAt = otherRel === lo || otherRel === hi;
    if (simAt !== otherAt) return C_SATURATION;
    return C_UNEXPLAINED;
  }

  result(): LayerDiffResult {
    const n = this.nElements;
    const rate = (c: number) => (n > 0 ? c / n : 0);
    return {
      referenceVsOrt: this.refOrt.stats(n),
      simulatedVsOrt: this.simOrt.stats(n),
      simulatedVsReference: this.simRef.stats(n),
      roundingModes: { halfEven: rate(this.rmEven), halfAwayFromZero: rate(this.rmAway), stochastic: rate(this.rmStochastic) },
      requantization: {
        reference: this.doubleRounding ? 'double-rounding' : 'single-rounding',
        otherVsOrt: rate(this.otherVsOrt),
      },
      u8s8: {
        applicable: n > 0 ? this.satElements > 0 : this.sawU8s8,
        saturatedPairs: this.satPairs,
        changedOutputs: this.satChanged,
        elements: this.satElements,
      },
      accumulatorOverflows: this.overflows,
      elements: n,
    };
  }
}
