/**
 * The integer kernels against onnxruntime's CPU kernels on random data and shapes the small ONNX
 * backend tests never reach: groups, depthwise, strides, dilations, auto_pad, per-channel
 * weights, int8 activations, int16/uint16 Q/DQ, broadcasting batch matmuls. Outputs must be
 * bit-exact.
 *
 * The u8s8 pairwise-saturation emulation is deliberately off: on a CPU with VNNI (or on ARM)
 * onnxruntime accumulates exactly, and whether a given machine saturates depends on its CPU.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { NodeProto, TensorProto } from 'onnx-buf';
import { platform, u8s8Hazard } from '../../engine/analysis/platform';
import { depthwiseKernel } from '../../engine/integer/accumulate';
import { runIntegerNode } from '../../engine/integer/onnxNode';
import { untypedValueInfo } from '../../engine/onnx/graph';
import { encodeModel } from '../../engine/onnx/model';
import type { HostTensor, NumericArray } from '../../engine/onnx/tensor';
import { buildModel, DT, makeNode, makeTensor, rng, valueInfo } from '../helpers/tinyModels';

type R = () => number;

const RANGE: Partial<Record<DT, [number, number]>> = {
  [DT.INT8]: [-128, 127],
  [DT.UINT8]: [0, 255],
  [DT.INT16]: [-32768, 32767],
  [DT.UINT16]: [0, 65535],
};

function typedOf(dt: DT, values: ArrayLike<number>): NumericArray {
  switch (dt) {
    case DT.INT8:
      return Int8Array.from(values);
    case DT.UINT8:
      return Uint8Array.from(values);
    case DT.INT16:
      return Int16Array.from(values);
    case DT.UINT16:
      return Uint16Array.from(values);
    case DT.INT32:
      return Int32Array.from(values);
    case DT.FLOAT:
      return Float32Array.from(values);
    default:
      throw new Error(`type ${DT[dt]}`);
  }
}

function randInts(dt: DT, n: number, r: R): HostTensor['data'] {
  const [lo, hi] = RANGE[dt]!;
  return typedOf(
    dt,
    Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1))),
  );
}

const prod = (d: readonly number[]) => d.reduce((a, b) => a * b, 1);

interface Operand {
  name: string;
  dims: number[];
  dt: DT;
  data: NumericArray;
  /** Fed at run time instead of stored as an initializer. */
  feed?: boolean;
}

interface Case {
  name: string;
  opset: number;
  node: NodeProto;
  /** In node input order; undefined = omitted optional input. */
  inputs: (Operand | undefined)[];
  outputs: string[];
}

const ORT_TYPE: Partial<Record<DT, ort.Tensor.Type>> = {
  [DT.FLOAT]: 'float32',
  [DT.INT8]: 'int8',
  [DT.UINT8]: 'uint8',
  [DT.INT16]: 'int16',
  [DT.UINT16]: 'uint16',
  [DT.INT32]: 'int32',
};

async function runOrt(c: Case): Promise<HostTensor[]> {
  const present = c.inputs.filter((o): o is Operand => o !== undefined);
  const initializers: TensorProto[] = present.filter((o) => !o.feed).map((o) => makeTensor(o.name, o.dt, o.dims, o.data as ArrayLike<number>));
  const model = buildModel({
    nodes: [c.node],
    inputs: present.filter((o) => o.feed).map((o) => valueInfo(o.name, o.dims, o.dt)),
    outputs: c.outputs.map(untypedValueInfo),
    initializers,
    opset: c.opset,
  });
  const session = await ort.InferenceSession.create(encodeModel(model), { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const feeds: Record<string, ort.Tensor> = {};
  for (const o of present.filter((p) => p.feed)) feeds[o.name] = new ort.Tensor(ORT_TYPE[o.dt]!, o.data as Float32Array, o.dims);
  const res = await session.run(feeds);
  await session.release();
  return c.outputs.map((name) => {
    const t = res[name];
    const dt = Number(Object.entries(ORT_TYPE).find(([, v]) => v === t.type)![0]) as DT;
    return { dims: [...t.dims], data: t.data as NumericArray, dataType: dt };
  });
}

/** Activation and weight operand positions of the ops that accumulate in int32. */
const OPERANDS: Record<string, [number, number]> = { QLinearConv: [0, 3], QLinearMatMul: [0, 3], ConvInteger: [0, 1], MatMulInteger: [0, 1] };

/** onnxruntime's depthwise kernel runs this case (a grouped convolution, one channel per group). */
function depthwise(c: Case): boolean {
  if (!c.node.opType.includes('Conv')) return false;
  const group = Number(c.node.attribute.find((a) => a.name === 'group')?.i ?? 1);
  return depthwiseKernel(group, c.inputs[OPERANDS[c.node.opType][1]]!.dims);
}

/**
 * The integer reference, as the host CPU computes: onnxruntime's x86 QGEMM kernel without VNNI sums
 * uint8 x int8 product pairs with int16 saturation (VPMADDUBSW), so there the reference emulates it
 * (depthwise convolutions run their own kernel, which does not).
 */
function runOurs(c: Case): HostTensor[] {
  const inputs = c.inputs.map((o) => (o ? { dims: o.dims, data: o.data, dataType: o.dt } : undefined));
  const ops = OPERANDS[c.node.opType];
  const u8s8 = ops !== undefined && c.inputs[ops[0]]?.dt === DT.UINT8 && c.inputs[ops[1]]?.dt === DT.INT8 && !depthwise(c);
  return runIntegerNode(c.node, inputs, { u8s8PairwiseSaturation: u8s8 && u8s8Hazard(platform()) }).outputs;
}

function bitsEqual(a: NumericArray, b: NumericArray): number {
  const ba = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const bb = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (ba.equals(bb)) return -1;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return 0;
}

// ---- case generators ------------------------------------------------------------------------

function scalesFor(n: number, r: R, lo = 0.0005, hi = 0.05): Float32Array {
  return Float32Array.from({ length: n }, () => lo * Math.pow(hi / lo, r()));
}

interface ConvSpec {
  x: number[];
  w: number[];
  group?: number;
  strides?: number[];
  dilations?: number[];
  pads?: number[];
  autoPad?: string;
  xt: DT;
  wt: DT;
  perChannel: boolean;
  bias: boolean;
}

function convAttrs(s: ConvSpec): Record<string, number | number[] | string> {
  const a: Record<string, number | number[] | string> = { kernel_shape: s.w.slice(2) };
  if (s.group) a.group = s.group;
  if (s.strides) a.strides = s.strides;
  if (s.dilations) a.dilations = s.dilations;
  if (s.pads) a.pads = s.pads;
  if (s.autoPad) a.auto_pad = s.autoPad;
  return a;
}

function qlinearConvCase(name: string, s: ConvSpec, r: R): Case {
  const M = s.w[0];
  const [xlo, xhi] = RANGE[s.xt]!;
  const xzp = xlo + Math.floor(r() * (xhi - xlo + 1));
  // onnxruntime requires one weight zero point for all channels; int8 weights are symmetric.
  const wzpv = s.wt === DT.INT8 ? 0 : Math.floor(r() * 256);
  const wn = s.perChannel ? M : 1;
  const yzp = s.xt === DT.INT8 ? Math.floor(r() * 40) - 20 : 100 + Math.floor(r() * 50);
  const inputs: Operand[] = [
    { name: 'x', dims: s.x, dt: s.xt, data: randInts(s.xt, prod(s.x), r), feed: true },
    { name: 'x_scale', dims: [], dt: DT.FLOAT, data: scalesFor(1, r, 0.005, 0.05) },
    { name: 'x_zero_point', dims: [], dt: s.xt, data: typedOf(s.xt, [xzp]) },
    { name: 'w', dims: s.w, dt: s.wt, data: randInts(s.wt, prod(s.w), r) },
    { name: 'w_scale', dims: [wn], dt: DT.FLOAT, data: scalesFor(wn, r, 0.001, 0.02) },
    { name: 'w_zero_point', dims: [wn], dt: s.wt, data: typedOf(s.wt, new Array(wn).fill(wzpv)) },
    // y_scale sized so outputs spread over the range and some saturate.
    { name: 'y_scale', dims: [], dt: DT.FLOAT, data: scalesFor(1, r, 0.02, 0.2) },
    { name: 'y_zero_point', dims: [], dt: s.xt, data: typedOf(s.xt, [yzp]) },
  ];
  if (s.bias)
    inputs.push({
      name: 'B',
      dims: [M],
      dt: DT.INT32,
      data: typedOf(
        DT.INT32,
        Array.from({ length: M }, () => Math.floor((r() - 0.5) * 20000)),
      ),
    });
  const names = inputs.map((i) => i.name);
  return { name, opset: 13, node: makeNode('QLinearConv', names, ['y'], 'n', convAttrs(s)), inputs, outputs: ['y'] };
}

function convIntegerCase(name: string, s: ConvSpec, r: R): Case {
  const inputs: Operand[] = [
    { name: 'x', dims: s.x, dt: s.xt, data: randInts(s.xt, prod(s.x), r), feed: true },
    { name: 'w', dims: s.w, dt: s.wt, data: randInts(s.wt, prod(s.w), r) },
    { name: 'x_zero_point', dims: [], dt: s.xt, data: randInts(s.xt, 1, r) },
    { name: 'w_zero_point', dims: [], dt: s.wt, data: randInts(s.wt, 1, r) },
  ];
  return {
    name,
    opset: 13,
    node: makeNode(
      'ConvInteger',
      inputs.map((i) => i.name),
      ['y'],
      'n',
      convAttrs(s),
    ),
    inputs,
    outputs: ['y'],
  };
}

function qlinearMatMulCase(name: string, aDims: number[], bDims: number[], at: DT, bt: DT, perColumn: boolean, r: R): Case {
  const N = bDims[bDims.length - 1];
  const bn = perColumn ? N : 1;
  const inputs: Operand[] = [
    { name: 'a', dims: aDims, dt: at, data: randInts(at, prod(aDims), r), feed: true },
    { name: 'a_scale', dims: [], dt: DT.FLOAT, data: scalesFor(1, r, 0.005, 0.05) },
    { name: 'a_zero_point', dims: [], dt: at, data: randInts(at, 1, r) },
    { name: 'b', dims: bDims, dt: bt, data: randInts(bt, prod(bDims), r) },
    { name: 'b_scale', dims: perColumn ? [bn] : [], dt: DT.FLOAT, data: scalesFor(bn, r, 0.001, 0.02) },
    { name: 'b_zero_point', dims: perColumn ? [bn] : [], dt: bt, data: bt === DT.INT8 ? new Int8Array(bn) : randInts(bt, bn, r) },
    { name: 'y_scale', dims: [], dt: DT.FLOAT, data: scalesFor(1, r, 0.02, 0.2) },
    { name: 'y_zero_point', dims: [], dt: at, data: randInts(at, 1, r) },
  ];
  return {
    name,
    opset: 21,
    node: makeNode(
      'QLinearMatMul',
      inputs.map((i) => i.name),
      ['y'],
      'n',
    ),
    inputs,
    outputs: ['y'],
  };
}

function matMulIntegerCase(name: string, aDims: number[], bDims: number[], at: DT, bt: DT, perColumnB: boolean, r: R): Case {
  const N = bDims[bDims.length - 1];
  const inputs: Operand[] = [
    { name: 'A', dims: aDims, dt: at, data: randInts(at, prod(aDims), r), feed: true },
    { name: 'B', dims: bDims, dt: bt, data: randInts(bt, prod(bDims), r) },
    { name: 'a_zero_point', dims: [], dt: at, data: randInts(at, 1, r) },
    { name: 'b_zero_point', dims: perColumnB ? [N] : [], dt: bt, data: randInts(bt, perColumnB ? N : 1, r) },
  ];
  return {
    name,
    opset: 13,
    node: makeNode(
      'MatMulInteger',
      inputs.map((i) => i.name),
      ['Y'],
      'n',
    ),
    inputs,
    outputs: ['Y'],
  };
}

/** Floats on a scale grid (many exact .5 ties for round-half-even) plus wide outliers to saturate. */
function floatsFor(n: number, scale: number, spread: number, r: R): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = r();
    if (u < 0.4) return Math.round((r() - 0.5) * 2 * spread) * 0.5 * scale;
    if (u < 0.95) return (r() - 0.5) * 2 * spread * scale;
    return (r() - 0.5) * 1e6;
  });
}

function quantizeCase(name: string, dims: number[], axis: number | undefined, yt: DT, perAxis: boolean, r: R): Case {
  const ax = axis === undefined ? 1 : axis < 0 ? axis + dims.length : axis;
  const n = perAxis ? dims[ax] : 1;
  const scale = scalesFor(n, r, 0.01, 2);
  const [lo, hi] = RANGE[yt]!;
  const spread = (hi - lo) * 0.6;
  const inputs: Operand[] = [
    { name: 'x', dims, dt: DT.FLOAT, data: floatsFor(prod(dims), scale[0], spread, r), feed: true },
    { name: 'y_scale', dims: perAxis ? [n] : [], dt: DT.FLOAT, data: scale },
    { name: 'y_zero_point', dims: perAxis ? [n] : [], dt: yt, data: randInts(yt, n, r) },
  ];
  const attrs: Record<string, number> = axis === undefined ? {} : { axis };
  return {
    name,
    opset: 21,
    node: makeNode(
      'QuantizeLinear',
      inputs.map((i) => i.name),
      ['y'],
      'n',
      attrs,
    ),
    inputs,
    outputs: ['y'],
  };
}

function dequantizeCase(name: string, dims: number[], axis: number | undefined, xt: DT, perAxis: boolean, r: R): Case {
  const ax = axis === undefined ? 1 : axis < 0 ? axis + dims.length : axis;
  const n = perAxis ? dims[ax] : 1;
  const inputs: (Operand | undefined)[] = [
    {
      name: 'x',
      dims,
      dt: xt,
      data:
        xt === DT.INT32
          ? typedOf(
              DT.INT32,
              Array.from({ length: prod(dims) }, () => Math.floor((r() - 0.5) * 2 ** 31)),
            )
          : randInts(xt, prod(dims), r),
      feed: true,
    },
    { name: 'x_scale', dims: perAxis ? [n] : [], dt: DT.FLOAT, data: scalesFor(n, r, 0.0001, 3) },
    xt === DT.INT32 ? undefined : { name: 'x_zero_point', dims: perAxis ? [n] : [], dt: xt, data: randInts(xt, n, r) },
  ];
  const attrs: Record<string, number> = axis === undefined ? {} : { axis };
  const names = inputs.map((i) => i?.name ?? '');
  return { name, opset: 21, node: makeNode('DequantizeLinear', names, ['y'], 'n', attrs), inputs, outputs: ['y'] };
}

function dynamicCase(name: string, dims: number[], lo: number, hi: number, r: R): Case {
  const inputs: Operand[] = [{ name: 'x', dims, dt: DT.FLOAT, data: Float32Array.from({ length: prod(dims) }, () => lo + (hi - lo) * r()), feed: true }];
  return {
    name,
    opset: 11,
    node: makeNode('DynamicQuantizeLinear', ['x'], ['y', 'y_scale', 'y_zero_point'], 'n'),
    inputs,
    outputs: ['y', 'y_scale', 'y_zero_point'],
  };
}

function allCases(): Case[] {
  const r = rng(20240611);
  const U8 = DT.UINT8,
    S8 = DT.INT8;
  const convs: [string, ConvSpec][] = [
    ['3x3 pads 1', { x: [1, 3, 8, 8], w: [8, 3, 3, 3], pads: [1, 1, 1, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['stride 2, asymmetric pads', { x: [2, 4, 9, 7], w: [6, 4, 3, 2], strides: [2, 2], pads: [1, 0, 2, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['dilation 2', { x: [1, 3, 10, 10], w: [4, 3, 3, 3], dilations: [2, 2], pads: [2, 2, 2, 2], xt: U8, wt: S8, perChannel: false, bias: false }],
    ['groups 2', { x: [1, 8, 6, 6], w: [6, 4, 3, 3], group: 2, pads: [1, 1, 1, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['depthwise', { x: [1, 16, 7, 7], w: [16, 1, 3, 3], group: 16, pads: [1, 1, 1, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['depthwise stride 2', { x: [1, 8, 9, 9], w: [8, 1, 3, 3], group: 8, strides: [2, 2], pads: [1, 1, 1, 1], xt: U8, wt: S8, perChannel: true, bias: false }],
    ['SAME_UPPER stride 2', { x: [1, 3, 7, 8], w: [5, 3, 3, 3], strides: [2, 2], autoPad: 'SAME_UPPER', xt: U8, wt: S8, perChannel: true, bias: true }],
    ['SAME_LOWER', { x: [1, 3, 6, 5], w: [4, 3, 2, 4], autoPad: 'SAME_LOWER', xt: U8, wt: S8, perChannel: true, bias: false }],
    ['VALID stride 3', { x: [1, 2, 11, 10], w: [3, 2, 3, 3], strides: [3, 3], autoPad: 'VALID', xt: U8, wt: S8, perChannel: false, bias: true }],
    ['1x1 pointwise', { x: [1, 32, 5, 5], w: [16, 32, 1, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['u8 weights', { x: [1, 3, 6, 6], w: [4, 3, 3, 3], pads: [1, 1, 1, 1], xt: U8, wt: U8, perChannel: false, bias: true }],
    ['int8 activations', { x: [1, 4, 6, 6], w: [5, 4, 3, 3], pads: [0, 1, 1, 0], xt: S8, wt: S8, perChannel: true, bias: true }],
    ['1-D', { x: [2, 4, 17], w: [6, 4, 5], strides: [2], dilations: [2], pads: [3, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
    ['large K (288)', { x: [1, 32, 6, 6], w: [8, 32, 3, 3], pads: [1, 1, 1, 1], xt: U8, wt: S8, perChannel: true, bias: true }],
  ];
  const cases: Case[] = [];
  for (const [name, spec] of convs) cases.push(qlinearConvCase(`QLinearConv ${name}`, spec, r));
  const ci: [string, ConvSpec][] = [
    ['u8 x u8, stride 2, pads', { x: [1, 3, 9, 8], w: [4, 3, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], xt: U8, wt: U8, perChannel: false, bias: false }],
    ['u8 x u8, groups 2, dilation 2', { x: [2, 4, 9, 9], w: [4, 2, 3, 3], group: 2, dilations: [2, 2], xt: U8, wt: U8, perChannel: false, bias: false }],
    ['u8 x u8, SAME_UPPER', { x: [1, 2, 5, 6], w: [3, 2, 2, 3], autoPad: 'SAME_UPPER', xt: U8, wt: U8, perChannel: false, bias: false }],
  ];
  for (const [name, spec] of ci) cases.push(convIntegerCase(`ConvInteger ${name}`, spec, r));
  cases.push(qlinearMatMulCase('QLinearMatMul u8 x s8 2-D per-column', [5, 40], [40, 7], U8, S8, true, r));
  cases.push(qlinearMatMulCase('QLinearMatMul u8 x u8 3-D', [3, 4, 16], [3, 16, 5], U8, U8, false, r));
  cases.push(qlinearMatMulCase('QLinearMatMul s8 x s8 broadcast B', [2, 3, 6, 20], [20, 9], S8, S8, false, r));
  cases.push(matMulIntegerCase('MatMulInteger u8 x u8 broadcast', [2, 1, 4, 12], [3, 12, 5], U8, U8, false, r));
  cases.push(matMulIntegerCase('MatMulInteger u8 x s8 per-column zp', [6, 33], [33, 4], U8, S8, true, r));
  cases.push(matMulIntegerCase('MatMulInteger s8 x s8 1-D A', [10], [10, 3], S8, S8, false, r));
  for (const [yt, tn] of [
    [DT.UINT8, 'uint8'],
    [DT.INT8, 'int8'],
    [DT.INT16, 'int16'],
    [DT.UINT16, 'uint16'],
  ] as const) {
    cases.push(quantizeCase(`QuantizeLinear ${tn} per-tensor`, [3, 50], undefined, yt, false, r));
    cases.push(quantizeCase(`QuantizeLinear ${tn} per-axis 1`, [2, 4, 5, 6], 1, yt, true, r));
    cases.push(quantizeCase(`QuantizeLinear ${tn} per-axis -1`, [3, 7, 8], -1, yt, true, r));
    cases.push(dequantizeCase(`DequantizeLinear ${tn} per-tensor`, [4, 40], undefined, yt, false, r));
    cases.push(dequantizeCase(`DequantizeLinear ${tn} per-axis 0`, [6, 3, 5], 0, yt, true, r));
  }
  cases.push(dequantizeCase('DequantizeLinear int32 per-tensor', [64], undefined, DT.INT32, false, r));
  cases.push(dynamicCase('DynamicQuantizeLinear mixed signs', [4, 50], -3.7, 5.1, r));
  cases.push(dynamicCase('DynamicQuantizeLinear positive only', [100], 0.5, 9, r));
  cases.push(dynamicCase('DynamicQuantizeLinear negative only', [3, 3, 7], -12, -0.1, r));
  return cases;
}

test('integer kernels are bit-exact with onnxruntime CPU on random cases', async (t) => {
  const cases = allCases();
  const results: string[] = [];
  let failed = 0;
  const started = performance.now();
  for (const c of cases) {
    let detail: string | undefined;
    try {
      const [want, got] = [await runOrt(c), runOurs(c)];
      for (let k = 0; k < want.length && !detail; k++) {
        if (got[k].dims.join() !== want[k].dims.join()) detail = `output ${k}: shape [${got[k].dims}], onnxruntime [${want[k].dims}]`;
        else if (got[k].dataType !== want[k].dataType) detail = `output ${k}: type ${DT[got[k].dataType]}, onnxruntime ${DT[want[k].dataType]}`;
        else {
          const i = bitsEqual(got[k].data, want[k].data);
          if (i >= 0) detail = `output ${k}[${i}] = ${got[k].data[i]}, onnxruntime ${want[k].data[i]}`;
        }
      }
    } catch (e) {
      detail = `threw: ${(e as Error).message.split('\n')[0]}`;
    }
    if (detail) failed++;
    results.push(`  ${detail ? 'FAIL' : 'PASS'}  ${c.name}${detail ? `: ${detail}` : ''}`);
    await t.test(c.name, () => assert.equal(detail, undefined, detail));
  }
  const summary = `onnxruntime ${ort.env.versions.common} cross-check: ${cases.length} cases, ${cases.length - failed} bit-exact, ${failed} failed; ${(performance.now() - started).toFixed(0)} ms`;
  console.log([...results, summary].join('\n'));
  t.diagnostic(summary);
  assert.equal(failed, 0, summary);
});
