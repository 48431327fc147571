import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { convGeometry, convInteger } from '../../engine/integer/conv';
import { gemmInteger, matMulInteger } from '../../engine/integer/matmul';
import { qlinearConv, qlinearMatMul } from '../../engine/integer/qlinear';
import { dequantizeLinear, dynamicQuantizeLinear, quantizeLinear } from '../../engine/integer/quantizeLinear';
import type { QuantArray, QuantType } from '../../engine/integer/types';
import { rng } from '../helpers/tinyModels';

const RANGES: Record<QuantType, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535] };

function randomQuant(type: QuantType, n: number, r: () => number): QuantArray {
  const [lo, hi] = RANGES[type];
  const vals = Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
  switch (type) {
    case 'int8':
      return Int8Array.from(vals);
    case 'uint8':
      return Uint8Array.from(vals);
    case 'int16':
      return Int16Array.from(vals);
    case 'uint16':
      return Uint16Array.from(vals);
  }
}
const randomZp = (type: QuantType, r: () => number) => {
  const [lo, hi] = RANGES[type];
  return lo + Math.floor(r() * (hi - lo + 1));
};

/**
 * Direct NCHW convolution straight from the ONNX definition (one loop nest per output, padding
 * contributes nothing after zero-point subtraction). Independent of im2col and of the packing.
 */
function naiveConv(
  x: ArrayLike<number>,
  [N, C, H, W]: number[],
  w: ArrayLike<number>,
  [M, Cg, KH, KW]: number[],
  xzp: number,
  wzp: number[],
  group: number,
  [sH, sW]: number[],
  [dH, dW]: number[],
  [pT, pL]: number[],
  [OH, OW]: number[],
): number[] {
  const out: number[] = [];
  const Mg = M / group;
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const g = Math.floor(m / Mg);
          let s = 0;
          for (let c = 0; c < Cg; c++)
            for (let kh = 0; kh < KH; kh++)
              for (let kw = 0; kw < KW; kw++) {
                const ih = oh * sH - pT + kh * dH,
                  iw = ow * sW - pL + kw * dW;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += (x[((n * C + g * Cg + c) * H + ih) * W + iw] - xzp) * (w[((m * Cg + c) * KH + kh) * KW + kw] - wzp[m]);
              }
          out.push(s);
        }
  return out;
}

describe('u8s8 pairwise saturation (x86 AVX2 without VNNI, VPMADDUBSW)', () => {
  it('two adjacent K products 255*127 saturate: 64770 -> 32767', () => {
    const a = { dims: [1, 2], data: Uint8Array.of(255, 255) };
    const b = { dims: [2, 1], data: Int8Array.of(127, 127) };
    const exact = matMulInteger(a, b);
    const emulated = matMulInteger(a, b, undefined, undefined, { u8s8PairwiseSaturation: true });
    assert.equal(exact.data[0], 64770); // 255 * 127 * 2
    assert.equal(exact.pairSaturationCount, 0);
    assert.equal(emulated.data[0], 32767);
    assert.equal(emulated.pairSaturationCount, 1);
    assert.equal(exact.data[0] - emulated.data[0], 64770 - 32767); // 32003
  });

  it('pairs are (2j, 2j+1) along K; an odd last element is alone and cannot saturate', () => {
    // K = 5: pairs (0,1), (2,3) saturate, element 4 is alone.
    const a = { dims: [1, 5], data: Uint8Array.of(255, 255, 255, 255, 255) };
    const b = { dims: [5, 1], data: Int8Array.of(127, 127, -128, -128, -128) };
    const r = matMulInteger(a, b, 0, 0, { u8s8PairwiseSaturation: true });
    // exact: 64770 - 65280 - 32640 = -33150; emulated: 32767 - 32768 - 32640 = -32641.
    assert.equal(matMulInteger(a, b).data[0], -33150);
    assert.equal(r.data[0], -32641);
    assert.equal(r.pairSaturationCount, 2);
    // Shift the large products by one position: pairs (0,1)=(255*127 + 0), no saturation.
    const a2 = { dims: [1, 4], data: Uint8Array.of(255, 0, 255, 0) };
    const b2 = { dims: [4, 1], data: Int8Array.of(127, 127, 127, 127) };
    assert.equal(matMulInteger(a2, b2, 0, 0, { u8s8PairwiseSaturation: true }).pairSaturationCount, 0);
  });

  it('saturation acts on the stored codes, before the zero-point correction', () => {
    // a - za = 0, so the exact product is 0, but MLAS multiplies the raw 255s: the pair saturates
    // and the correction (za * sum(b) = 255 * 254 = 64770) no longer cancels it.
    const a = { dims: [1, 2], data: Uint8Array.of(255, 255) };
    const b = { dims: [2, 1], data: Int8Array.of(127, 127) };
    assert.equal(matMulInteger(a, b, 255, 0).data[0], 0);
    const r = matMulInteger(a, b, 255, 0, { u8s8PairwiseSaturation: true });
    assert.equal(r.data[0], 32767 - 64770);
    assert.equal(r.pairSaturationCount, 1);
  });

  it('in a convolution the reduction order decides which products pair up', () => {
    // 2 input channels of 255, 3x3 kernel: channel 0 weights +127, channel 1 weights -127.
    const x = { dims: [1, 2, 3, 3], data: new Uint8Array(18).fill(255) };
    const w = { dims: [1, 2, 3, 3], data: Int8Array.from({ length: 18 }, (_, i) => (i < 9 ? 127 : -127)) };
    assert.equal(convInteger(x, w).data[0], 0);
    // HWC (onnxruntime QLinearConv): pairs are (c0, c1) at one tap: 32385 - 32385 = 0, no saturation.
    const hwc = convInteger(x, w, 0, 0, {}, { u8s8PairwiseSaturation: true, reductionOrder: 'HWC' });
    assert.deepEqual([hwc.data[0], hwc.pairSaturationCount], [0, 0]);
    // CHW: K = 18 pairs adjacent taps: 4 pairs of +64770 -> 32767, 4 of -64770 -> -32768, and
    // the pair (tap 8 of c0, tap 0 of c1) = 0: total 4*32767 - 4*32768 = -4.
    const chw = convInteger(x, w, 0, 0, {}, { u8s8PairwiseSaturation: true, reductionOrder: 'CHW' });
    assert.deepEqual([chw.data[0], chw.pairSaturationCount], [-4, 8]);
  });

  it('QLinearConv output moves when the accumulator saturates', () => {
    const inp = {
      x: { dims: [1, 2, 1, 1], data: Uint8Array.of(255, 255) },
      xScale: [1],
      xZeroPoint: [0],
      w: { dims: [1, 2, 1, 1], data: Int8Array.of(127, 127) },
      wScale: [1],
      wZeroPoint: [0],
      yScale: [1024],
      yZeroPoint: [0],
      yType: 'uint8' as const,
    };
    const exact = qlinearConv(inp);
    const emu = qlinearConv(inp, {}, { u8s8PairwiseSaturation: true });
    assert.equal(exact.y.data[0], 63); // 64770 / 1024 = 63.25
    assert.equal(emu.y.data[0], 32); // 32767 / 1024 = 31.999
    assert.equal(emu.accumulators.pairSaturationCount, 1);
  });

  it('refuses operand types the emulation does not model', () => {
    const a = { dims: [1, 2], data: Uint8Array.of(1, 2) };
    const b = { dims: [2, 1], data: Uint8Array.of(1, 2) };
    assert.throws(() => matMulInteger(a, b, 0, 0, { u8s8PairwiseSaturation: true }), /uint8 x uint8/);
  });
});

describe('the accumulation loop (four columns at a time, then the rest)', () => {
  /** C = A*B with zero points, straight from the definition; pairs saturated as VPMADDUBSW does. */
  function naiveMatMul(a: Uint8Array, b: Int8Array, M: number, K: number, N: number, za: number, zb: number, pairwise: boolean) {
    const out: number[] = [];
    let saturated = 0;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let raw = 0;
        for (let k = 0; k < K; k += pairwise ? 2 : 1) {
          let v = a[m * K + k] * b[k * N + n];
          if (pairwise && k + 1 < K) {
            v += a[m * K + k + 1] * b[(k + 1) * N + n];
            if (v > 32767 || v < -32768) saturated++;
            v = Math.max(-32768, Math.min(32767, v));
          }
          raw += v;
        }
        let colSum = 0;
        let rowSum = 0;
        for (let k = 0; k < K; k++) {
          rowSum += a[m * K + k];
          colSum += b[k * N + n];
        }
        out.push(raw - zb * rowSum - za * colSum + K * za * zb);
      }
    return { out, saturated };
  }

  it('equals the definition on every shape, the column tail (N not a multiple of 4) and odd K included', () => {
    const r = rng(11);
    let tails = 0;
    for (let trial = 0; trial < 300; trial++) {
      const [M, K, N] = [1 + Math.floor(r() * 5), 1 + Math.floor(r() * 9), 1 + Math.floor(r() * 11)];
      if (N % 4 !== 0) tails++;
      const a = randomQuant('uint8', M * K, r) as Uint8Array;
      // Large codes often, so that pairs saturate.
      const b = Int8Array.from({ length: K * N }, () => (r() < 0.5 ? (r() < 0.5 ? 127 : -128) : Math.floor(r() * 256) - 128));
      const [za, zb] = [randomZp('uint8', r), randomZp('int8', r)];
      for (const pairwise of [false, true]) {
        const got = matMulInteger({ dims: [M, K], data: a }, { dims: [K, N], data: b }, za, zb, { u8s8PairwiseSaturation: pairwise });
        const want = naiveMatMul(a, b, M, K, N, za, zb, pairwise);
        assert.deepEqual([...got.data], want.out, `M ${M} K ${K} N ${N} pairwise ${pairwise}`);
        assert.equal(got.pairSaturationCount, want.saturated, `saturations, M ${M} K ${K} N ${N}`);
      }
    }
    assert.ok(tails > 100, `${tails} trials with a column tail`);
  });
});

describe('int32 accumulator overflow detection', () => {
  it('counts outputs whose exact sum leaves int32 and stores the wrapped value', () => {
    // (-128 - 127)^2 = 65025 per product. K = 33025: 2147450625 fits; K = 33026: 2147515650 does not.
    const run = (K: number) =>
      matMulInteger({ dims: [1, K], data: new Int8Array(K).fill(-128) }, { dims: [K, 1], data: new Int8Array(K).fill(-128) }, 127, 127);
    const fits = run(33025);
    assert.deepEqual([fits.data[0], fits.overflowCount], [2147450625, 0]);
    const over = run(33026);
    assert.equal(over.overflowCount, 1);
    assert.equal(over.data[0], 2147515650 - 2 ** 32); // two's-complement wrap
  });

  it('int16 operands: two products of 2^30 reach 2^31', () => {
    const a = { dims: [1, 2], data: Int16Array.of(-32768, -32768) };
    const b = { dims: [2, 1], data: Int16Array.of(-32768, -32768) };
    const r = matMulInteger(a, b);
    assert.deepEqual([r.data[0], r.overflowCount], [-2147483648, 1]);
    const one = matMulInteger({ dims: [1, 1], data: Int16Array.of(-32768) }, { dims: [1, 1], data: Int16Array.of(-32768) });
    assert.deepEqual([one.data[0], one.overflowCount], [2 ** 30, 0]);
  });

  it('the bias is part of the checked sum', () => {
    const a = { dims: [1, 1], data: Int16Array.of(-32768) };
    const b = { dims: [1, 1], data: Int16Array.of(-32768) };
    const r = gemmInteger(a, b, { bias: [2 ** 30] });
    assert.deepEqual([r.data[0], r.overflowCount], [-2147483648, 1]);
  });
});

describe('ConvInteger', () => {
  it('auto_pad geometry, by hand', () => {
    // in 4, kernel 2, stride 1: 4 outputs need 1 pad; SAME_UPPER puts it at the end.
    assert.deepEqual(convGeometry([4], [2], { autoPad: 'SAME_UPPER' }).pads, [0, 1]);
    assert.deepEqual(convGeometry([4], [2], { autoPad: 'SAME_LOWER' }).pads, [1, 0]);
    // in 5, kernel 3, stride 2: ceil(5/2) = 3 outputs, total pad (3-1)*2 + 3 - 5 = 2 -> [1, 1].
    assert.deepEqual(convGeometry([5], [3], { autoPad: 'SAME_UPPER', strides: [2] }), {
      inSpatial: [5],
      kernel: [3],
      outSpatial: [3],
      strides: [2],
      dilations: [1],
      pads: [1, 1],
    });
    // VALID: floor((7 - 5) / 2) + 1 = 2 with a dilated 3-tap kernel spanning 5.
    assert.deepEqual(convGeometry([7], [3], { autoPad: 'VALID', strides: [2], dilations: [2] }).outSpatial, [2]);
    // NOTSET with asymmetric pads: floor((6 + 1 + 2 - 3) / 1) + 1 = 7.
    assert.deepEqual(convGeometry([6], [3], { pads: [1, 2] }).outSpatial, [7]);
  });

  it('the padded taps hold the zero point (contribute 0): hand-checked 3x3 with pads 1', () => {
    // x = 2..10 (zp 1 -> 1..9), 2x2 ones kernel, pads 1: the ONNX test_convinteger_with_padding.
    const x = { dims: [1, 1, 3, 3], data: Uint8Array.from([2, 3, 4, 5, 6, 7, 8, 9, 10]) };
    const w = { dims: [1, 1, 2, 2], data: Uint8Array.of(1, 1, 1, 1) };
    const r = convInteger(x, w, 1, 0, { pads: [1, 1, 1, 1] });
    assert.deepEqual(r.dims, [1, 1, 4, 4]);
    assert.deepEqual([...r.data], [1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9]);
  });

  const cases: {
    name: string;
    x: number[];
    w: number[];
    group: number;
    s: number[];
    d: number[];
    pads: number[];
    xt: QuantType;
    wt: QuantType;
    perChannel: boolean;
  }[] = [
    { name: 'plain 3x3', x: [1, 3, 7, 6], w: [4, 3, 3, 3], group: 1, s: [1, 1], d: [1, 1], pads: [0, 0, 0, 0], xt: 'uint8', wt: 'int8', perChannel: false },
    {
      name: 'stride 2, asymmetric pads',
      x: [2, 3, 8, 7],
      w: [5, 3, 3, 2],
      group: 1,
      s: [2, 2],
      d: [1, 1],
      pads: [1, 0, 2, 1],
      xt: 'uint8',
      wt: 'uint8',
      perChannel: true,
    },
    {
      name: 'dilation 2, stride (1,3)',
      x: [1, 2, 9, 10],
      w: [3, 2, 3, 3],
      group: 1,
      s: [1, 3],
      d: [2, 2],
      pads: [2, 2, 2, 2],
      xt: 'int8',
      wt: 'int8',
      perChannel: true,
    },
    { name: 'groups 2', x: [1, 4, 6, 6], w: [6, 2, 3, 3], group: 2, s: [1, 1], d: [1, 1], pads: [1, 1, 1, 1], xt: 'uint8', wt: 'int8', perChannel: true },
    {
      name: 'depthwise x2 multiplier',
      x: [2, 3, 5, 5],
      w: [6, 1, 3, 3],
      group: 3,
      s: [2, 1],
      d: [1, 2],
      pads: [1, 2, 1, 2],
      xt: 'uint8',
      wt: 'int8',
      perChannel: true,
    },
    {
      name: 'int16 operands',
      x: [1, 2, 5, 4],
      w: [2, 2, 2, 2],
      group: 1,
      s: [1, 1],
      d: [1, 1],
      pads: [0, 1, 1, 0],
      xt: 'int16',
      wt: 'int16',
      perChannel: true,
    },
    { name: '1x1 pointwise', x: [1, 8, 3, 3], w: [5, 8, 1, 1], group: 1, s: [1, 1], d: [1, 1], pads: [0, 0, 0, 0], xt: 'uint8', wt: 'int8', perChannel: false },
  ];
  for (const c of cases) {
    it(`matches a direct convolution: ${c.name}`, () => {
      const r = rng(c.x.concat(c.w).reduce((a, b) => a * 31 + b, 17));
      const x = randomQuant(
        c.xt,
        c.x.reduce((a, b) => a * b, 1),
        r,
      );
      const w = randomQuant(
        c.wt,
        c.w.reduce((a, b) => a * b, 1),
        r,
      );
      const xzp = randomZp(c.xt, r);
      const wzp = c.perChannel ? Array.from({ length: c.w[0] }, () => randomZp(c.wt, r)) : [randomZp(c.wt, r)];
      const OH = Math.floor((c.x[2] + c.pads[0] + c.pads[2] - ((c.w[2] - 1) * c.d[0] + 1)) / c.s[0]) + 1;
      const OW = Math.floor((c.x[3] + c.pads[1] + c.pads[3] - ((c.w[3] - 1) * c.d[1] + 1)) / c.s[1]) + 1;
      const want = naiveConv(x, c.x, w, c.w, xzp, c.perChannel ? wzp : new Array(c.w[0]).fill(wzp[0]), c.group, c.s, c.d, [c.pads[0], c.pads[1]], [OH, OW]);
      for (const reductionOrder of ['HWC', 'CHW'] as const) {
        const got = convInteger(
          { dims: c.x, data: x },
          { dims: c.w, data: w },
          xzp,
          wzp,
          { group: c.group, strides: c.s, dilations: c.d, pads: c.pads },
          { reductionOrder },
        );
        assert.deepEqual(got.dims, [c.x[0], c.w[0], OH, OW]);
        // int16 operands overflow int32 here: the stored values wrap, and each one is counted.
        assert.deepEqual(
          [...got.data],
          want.map((v) => v | 0),
        );
        assert.equal(got.overflowCount, want.filter((v) => v !== (v | 0)).length);
      }
    });
  }

  it('1-D convolution equals the 2-D one with height 1', () => {
    const r = rng(5);
    const x = randomQuant('uint8', 2 * 3 * 11, r);
    const w = randomQuant('int8', 4 * 3 * 3, r);
    const one = convInteger({ dims: [2, 3, 11], data: x }, { dims: [4, 3, 3], data: w }, 7, 0, { strides: [2], pads: [1, 2], dilations: [2] });
    const two = convInteger({ dims: [2, 3, 1, 11], data: x }, { dims: [4, 3, 1, 3], data: w }, 7, 0, {
      strides: [1, 2],
      pads: [0, 1, 0, 2],
      dilations: [1, 2],
    });
    assert.deepEqual(one.dims, [2, 4, 5]);
    assert.deepEqual([...one.data], [...two.data]);
  });

  it('SAME_LOWER equals NOTSET with the pads it implies', () => {
    const r = rng(9);
    const x = randomQuant('uint8', 1 * 2 * 6 * 5, r);
    const w = randomQuant('uint8', 3 * 2 * 2 * 3, r);
    const geo = convGeometry([6, 5], [2, 3], { autoPad: 'SAME_LOWER', strides: [2, 2] });
    assert.deepEqual(geo.pads, [0, 1, 0, 1]); // H: total (3-1)*2+2-6 = 0; W: (3-1)*2+3-5 = 2 -> [1,1]
    const a = convInteger({ dims: [1, 2, 6, 5], data: x }, { dims: [3, 2, 2, 3], data: w }, 3, 4, { autoPad: 'SAME_LOWER', strides: [2, 2] });
    const b = convInteger({ dims: [1, 2, 6, 5], data: x }, { dims: [3, 2, 2, 3], data: w }, 3, 4, { pads: geo.pads, strides: [2, 2] });
    assert.deepEqual([...a.data], [...b.data]);
  });
});

describe('MatMulInteger and Gemm-style integer matmul', () => {
  function naiveMatMul(
    a: ArrayLike<number>,
    b: ArrayLike<number>,
    M: number,
    K: number,
    N: number,
    za: (m: number) => number,
    zb: (n: number) => number,
  ): number[] {
    const out: number[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (a[m * K + k] - za(m)) * (b[k * N + n] - zb(n));
        out.push(s);
      }
    return out;
  }

  it('broadcasts batch dimensions like numpy matmul', () => {
    const r = rng(21);
    const a = randomQuant('uint8', 2 * 1 * 3 * 4, r); // [2, 1, 3, 4]
    const b = randomQuant('int8', 3 * 4 * 5, r); // [3, 4, 5]
    const got = matMulInteger({ dims: [2, 1, 3, 4], data: a }, { dims: [3, 4, 5], data: b }, [10, 20, 30], Int8Array.of(1, -2, 3, -4, 5));
    assert.deepEqual(got.dims, [2, 3, 3, 5]);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) {
        const want = naiveMatMul(
          a.subarray(i * 12, i * 12 + 12),
          b.subarray(j * 20, j * 20 + 20),
          3,
          4,
          5,
          (m) => [10, 20, 30][m],
          (n) => [1, -2, 3, -4, 5][n],
        );
        assert.deepEqual([...got.data.subarray((i * 3 + j) * 15, (i * 3 + j + 1) * 15)], want);
      }
  });

  it('1-D operands are promoted and the added axis removed', () => {
    const a = { dims: [3], data: Uint8Array.of(1, 2, 3) };
    const b = { dims: [3, 2], data: Uint8Array.of(1, 2, 3, 4, 5, 6) };
    const v = matMulInteger(a, b);
    assert.deepEqual([v.dims, [...v.data]], [[2], [22, 28]]);
    const mv = matMulInteger({ dims: [2, 3], data: Uint8Array.of(1, 2, 3, 4, 5, 6) }, { dims: [3], data: Uint8Array.of(1, 1, 1) });
    assert.deepEqual([mv.dims, [...mv.data]], [[2], [6, 15]]);
  });

  it('gemm with transA/transB and bias equals the naive product of the transposes', () => {
    const r = rng(33);
    const [M, K, N] = [4, 7, 3];
    const at = randomQuant('uint8', K * M, r); // stored [K, M]
    const bt = randomQuant('int8', N * K, r); // stored [N, K]
    const a = new Uint8Array(M * K),
      b = new Int8Array(K * N);
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) a[m * K + k] = at[k * M + m];
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) b[k * N + n] = bt[n * K + k];
    const bias = [100, -200, 300];
    const got = gemmInteger(
      { dims: [K, M], data: at },
      { dims: [N, K], data: bt },
      { transA: true, transB: true, aZeroPoint: 128, bZeroPoint: [1, 0, -1], bias },
    );
    const want = naiveMatMul(
      a,
      b,
      M,
      K,
      N,
      () => 128,
      (n) => [1, 0, -1][n],
    ).map((v, i) => v + bias[i % N]);
    assert.deepEqual(got.dims, [M, N]);
    assert.deepEqual([...got.data], want);
  });
});

describe('QLinearMatMul / QLinearConv requantization', () => {
  it('per-column weight scales (hand-computed)', () => {
    // a - za = (2, -2); acc = [2*10 - 2*30, 2*20 - 2*40] = [-40, -40]; scales 0.5 and 0.25.
    const r = qlinearMatMul({
      a: { dims: [1, 2], data: Uint8Array.of(130, 126) },
      aScale: [1],
      aZeroPoint: [128],
      b: { dims: [2, 2], data: Int8Array.of(10, 20, 30, 40) },
      bScale: [0.5, 0.25],
      bZeroPoint: [0, 0],
      yScale: [1],
      yZeroPoint: [0],
      yType: 'int8',
    });
    assert.deepEqual([...r.accumulators.data], [-40, -40]);
    assert.deepEqual([...r.y.data], [-20, -10]);
  });

  it('per-channel QLinearConv with bias; fixed-point requantization stays within 1 LSB of float', () => {
    const r = rng(44);
    const x = { dims: [1, 3, 6, 6], data: randomQuant('uint8', 108, r) as Uint8Array };
    const w = { dims: [4, 3, 3, 3], data: randomQuant('int8', 108, r) as Int8Array };
    const inp = {
      x,
      xScale: [0.02],
      xZeroPoint: [120],
      w,
      wScale: [0.01, 0.004, 0.02, 0.003],
      wZeroPoint: [0, 0, 0, 0],
      yScale: [0.05],
      yZeroPoint: [-3],
      yType: 'int8' as const,
      bias: [1000, -500, 0, 25000],
    };
    const f32 = qlinearConv(inp, { pads: [1, 1, 1, 1] });
    const fixed = qlinearConv(inp, { pads: [1, 1, 1, 1] }, { requantization: 'fixed-point' });
    const f64 = qlinearConv(inp, { pads: [1, 1, 1, 1] }, { requantization: 'float64' });
    assert.deepEqual(f32.y.dims, [1, 4, 6, 6]);
    const acc = f32.accumulators.data;
    for (let i = 0; i < acc.length; i++) {
      assert.ok(Math.abs(fixed.y.data[i] - f32.y.data[i]) <= 1, `${i}`);
      assert.ok(Math.abs(f64.y.data[i] - f32.y.data[i]) <= 1, `${i}`);
    }
    // One element of channel 3 recomputed from the ONNX formula in float32.
    const m = 3,
      p = 7;
    const mult = Math.fround(Math.fround(Math.fround(0.02) * Math.fround(0.003)) / Math.fround(0.05));
    const v = Math.fround(acc[m * 36 + p] * mult);
    const want = Math.min(127, Math.max(-128, (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v)) - 3));
    assert.equal(f32.y.data[m * 36 + p], want);
  });
});

describe('QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear', () => {
  it('round half to even and saturation', () => {
    const y = quantizeLinear({ dims: [7], data: Float32Array.of(0.5, 1.5, 2.5, -0.5, -1.5, 300, -300) }, [1], [0], 'int8');
    assert.deepEqual([...y.data], [0, 2, 2, 0, -2, 127, -128]);
  });

  it('per axis, 16-bit outputs', () => {
    // [2, 3] with axis 1: column c uses scale [1, 2, 4][c] and zero point [0, 100, -100][c].
    const x = { dims: [2, 3], data: Float32Array.of(3, 3, 3, 70000, -70000, 1e6) };
    const y16 = quantizeLinear(x, [1, 2, 4], [0, 100, -100], 'int16', 1);
    assert.deepEqual([...y16.data], [3, 102, -99, 32767, -32768, 32767]); // 3/2 = 1.5 -> 2; 3/4 = 0.75 -> 1
    const yu16 = quantizeLinear(x, [1, 2, 4], [0, 100, 100], 'uint16', -1);
    assert.deepEqual([...yu16.data], [3, 102, 101, 65535, 0, 65535]);
    const back = dequantizeLinear(y16, [1, 2, 4], Int16Array.of(0, 100, -100), 1);
    assert.deepEqual([...back.data], [3, 4, 4, 32767, -65736, 131468]);
  });

  it('DequantizeLinear of int32 converts x - zp to float32 first (rounds above 2^24)', () => {
    const y = dequantizeLinear({ dims: [2], data: Int32Array.of(16777217, -7) }, [0.5], undefined);
    assert.deepEqual([...y.data], [8388608, -3.5]);
  });

  it('DynamicQuantizeLinear: range extended to 0; all-zero input gets scale 1 (onnxruntime)', () => {
    const r = dynamicQuantizeLinear({ dims: [3], data: Float32Array.of(1, 2, 3) });
    assert.equal(r.zeroPoint, 0);
    assert.equal(r.scale, Math.fround(3 / 255));
    const z = dynamicQuantizeLinear({ dims: [2], data: new Float32Array(2) });
    assert.deepEqual([z.scale, z.zeroPoint, ...z.y.data], [1, 0, 0, 0]);
  });
});
