/**
 * Runs ONNX nodes of the quantized operator set through the integer kernels: the bridge between
 * a NodeProto (attributes, optional inputs, element types) and the typed kernel functions. Used
 * by the conformance tests and, later, by the integer executor of whole graphs.
 */
import { attr, attrInt, attrInts, type NodeProto } from '../onnx/graph';
import { DT, type HostTensor, type NumericArray } from '../onnx/tensor';
import { type AutoPad, type ConvAttributes, convInteger } from './conv';
import { matMulInteger } from './matmul';
import { qlinearConv, type QLinearOptions, qlinearMatMul } from './qlinear';
import { dequantizeLinear, dynamicQuantizeLinear, quantizeLinear } from './quantizeLinear';
import { type AccumulatorStats, InputError, type IntArray, type QuantArray, type QuantType } from './types';

/** Operators this module executes (default ONNX domain). */
export const INTEGER_OPS: ReadonlySet<string> = new Set([
  'QuantizeLinear',
  'DequantizeLinear',
  'DynamicQuantizeLinear',
  'ConvInteger',
  'MatMulInteger',
  'QLinearConv',
  'QLinearMatMul',
]);

export interface NodeRunResult {
  outputs: HostTensor[];
  /** Accumulator stats of ops that accumulate (undefined for Q/DQ ops). */
  stats?: AccumulatorStats;
}

const QUANT_DT: Partial<Record<DT, QuantType>> = {
  [DT.INT8]: 'int8',
  [DT.UINT8]: 'uint8',
  [DT.INT16]: 'int16',
  [DT.UINT16]: 'uint16',
};
const DT_OF: Record<QuantType, DT> = { int8: DT.INT8, uint8: DT.UINT8, int16: DT.INT16, uint16: DT.UINT16 };

function quantType(t: HostTensor, what: string): QuantType {
  const q = QUANT_DT[t.dataType];
  if (!q) throw new InputError(`${what}: element type ${DT[t.dataType]} is not supported (int8/uint8/int16/uint16)`);
  return q;
}

function quantData(t: HostTensor, what: string): QuantArray {
  quantType(t, what);
  return t.data as QuantArray;
}

function floatData(t: HostTensor, what: string): Float32Array {
  if (!(t.data instanceof Float32Array)) throw new InputError(`${what}: expected float32, got ${DT[t.dataType]}`);
  return t.data;
}

function required(inputs: readonly (HostTensor | undefined)[], i: number, node: NodeProto): HostTensor {
  const t = inputs[i];
  if (!t) throw new InputError(`${node.opType} ${node.name}: input ${i} is required`);
  return t;
}

function convAttributes(node: NodeProto): ConvAttributes {
  const a = attr(node, 'auto_pad');
  const autoPad = a ? new TextDecoder().decode(a.s) || 'NOTSET' : 'NOTSET';
  if (!['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(autoPad)) throw new InputError(`${node.opType}: auto_pad ${autoPad}`);
  return {
    autoPad: autoPad as AutoPad,
    dilations: attrInts(node, 'dilations'),
    group: attrInt(node, 'group', 1),
    kernelShape: attrInts(node, 'kernel_shape'),
    pads: attrInts(node, 'pads'),
    strides: attrInts(node, 'strides'),
  };
}

function host(dims: number[], data: NumericArray, dataType: DT): HostTensor {
  return { dims, data, dataType };
}

/**
 * Execute one node. `inputs[i]` is undefined for an omitted optional input (empty name).
 * Unsupported operators, attributes and types raise InputError rather than guessing.
 */
export function runIntegerNode(node: NodeProto, inputs: readonly (HostTensor | undefined)[], opts: QLinearOptions = {}): NodeRunResult {
  if (node.domain !== '' && node.domain !== 'ai.onnx') throw new InputError(`${node.opType}: domain ${node.domain} is not supported`);
  const op = node.opType;
  switch (op) {
    case 'QuantizeLinear': {
      if (attrInt(node, 'block_size', 0) !== 0) throw new InputError('QuantizeLinear: blocked quantization is not supported');
      const x = required(inputs, 0, node);
      const zp = inputs[2];
      const outDt = zp ? zp.dataType : ((attrInt(node, 'output_dtype', 0) || DT.UINT8) as DT);
      const outType = QUANT_DT[outDt];
      if (!outType) throw new InputError(`QuantizeLinear: output type ${DT[outDt]} is not supported`);
      const y = quantizeLinear(
        { dims: x.dims, data: floatData(x, 'QuantizeLinear x') },
        floatData(required(inputs, 1, node), 'QuantizeLinear y_scale'),
        zp ? (zp.data as QuantArray) : undefined,
        outType,
        attrInt(node, 'axis', 1),
      );
      return { outputs: [host(y.dims, y.data, DT_OF[outType])] };
    }
    case 'DequantizeLinear': {
      if (attrInt(node, 'block_size', 0) !== 0) throw new InputError('DequantizeLinear: blocked quantization is not supported');
      const x = required(inputs, 0, node);
      if (x.dataType !== DT.INT32) quantType(x, 'DequantizeLinear x');
      const zp = inputs[2];
      const y = dequantizeLinear(
        { dims: x.dims, data: x.data as IntArray },
        floatData(required(inputs, 1, node), 'DequantizeLinear x_scale'),
        zp ? (zp.data as IntArray) : undefined,
        attrInt(node, 'axis', 1),
      );
      return { outputs: [host(y.dims, y.data, DT.FLOAT)] };
    }
    case 'DynamicQuantizeLinear': {
      const x = required(inputs, 0, node);
      const r = dynamicQuantizeLinear({ dims: x.dims, data: floatData(x, 'DynamicQuantizeLinear x') });
      return {
        outputs: [host(r.y.dims, r.y.data, DT.UINT8), host([], Float32Array.of(r.scale), DT.FLOAT), host([], Uint8Array.of(r.zeroPoint), DT.UINT8)],
      };
    }
    case 'ConvInteger': {
      const x = required(inputs, 0, node),
        w = required(inputs, 1, node);
      const acc = convInteger(
        { dims: x.dims, data: quantData(x, 'ConvInteger x') },
        { dims: w.dims, data: quantData(w, 'ConvInteger w') },
        inputs[2]?.data as QuantArray | undefined,
        inputs[3]?.data as QuantArray | undefined,
        convAttributes(node),
        opts,
      );
      return { outputs: [host(acc.dims, acc.data, DT.INT32)], stats: acc };
    }
    case 'MatMulInteger': {
      const a = required(inputs, 0, node),
        b = required(inputs, 1, node);
      const acc = matMulInteger(
        { dims: a.dims, data: quantData(a, 'MatMulInteger A') },
        { dims: b.dims, data: quantData(b, 'MatMulInteger B') },
        inputs[2]?.data as QuantArray | undefined,
        inputs[3]?.data as QuantArray | undefined,
        opts,
      );
      return { outputs: [host(acc.dims, acc.data, DT.INT32)], stats: acc };
    }
    case 'QLinearConv': {
      const [x, xs, xz, w, ws, wz, ys, yz] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => required(inputs, i, node));
      const bias = inputs[8];
      if (bias && bias.dataType !== DT.INT32) throw new InputError('QLinearConv: bias must be int32');
      const yType = quantType(yz, 'QLinearConv y_zero_point');
      const r = qlinearConv(
        {
          x: { dims: x.dims, data: quantData(x, 'QLinearConv x') },
          xScale: floatData(xs, 'QLinearConv x_scale'),
          xZeroPoint: quantData(xz, 'QLinearConv x_zero_point'),
          w: { dims: w.dims, data: quantData(w, 'QLinearConv w') },
          wScale: floatData(ws, 'QLinearConv w_scale'),
          wZeroPoint: quantData(wz, 'QLinearConv w_zero_point'),
          yScale: floatData(ys, 'QLinearConv y_scale'),
          yZeroPoint: quantData(yz, 'QLinearConv y_zero_point'),
          yType,
          bias: bias?.data as Int32Array | undefined,
        },
        convAttributes(node),
        opts,
      );
      return { outputs: [host(r.y.dims, r.y.data, DT_OF[yType])], stats: r.accumulators };
    }
    case 'QLinearMatMul': {
      const [a, as, az, b, bs, bz, ys, yz] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => required(inputs, i, node));
      const yType = quantType(yz, 'QLinearMatMul y_zero_point');
      const r = qlinearMatMul(
        {
          a: { dims: a.dims, data: quantData(a, 'QLinearMatMul a') },
          aScale: floatData(as, 'QLinearMatMul a_scale'),
          aZeroPoint: quantData(az, 'QLinearMatMul a_zero_point'),
          b: { dims: b.dims, data: quantData(b, 'QLinearMatMul b') },
          bScale: floatData(bs, 'QLinearMatMul b_scale'),
          bZeroPoint: quantData(bz, 'QLinearMatMul b_zero_point'),
          yScale: floatData(ys, 'QLinearMatMul y_scale'),
          yZeroPoint: quantData(yz, 'QLinearMatMul y_zero_point'),
          yType,
        },
        opts,
      );
      return { outputs: [host(r.y.dims, r.y.data, DT_OF[yType])], stats: r.accumulators };
    }
    default:
      throw new InputError(`operator ${op} is not supported by the integer executor`);
  }
}
