/**
 * Float twins of the integer-arithmetic operators that leave rescaling to the graph or keep their
 * activations float: ConvInteger / MatMulInteger (followed by Cast and a Mul by the combined scale,
 * as onnxruntime's dynamic quantizer writes them), onnxruntime's MatMulIntegerToFloat and
 * DynamicQuantizeMatMul, and MatMulNBits (block-quantized weights, float activations).
 */
import { InputError } from '../errors';
import { attrInt, type NodeProto } from '../onnx/graph';
import { DT, makeTensor } from '../onnx/tensor';
import type { QuantParams } from '../quantize/scheme';
import { codeRange, readCodes, readFloats } from './codes';
import type { TwinBuilder } from './twinBuilder';

/** The only consumer of `t`, if there is exactly one. */
function soleConsumer(b: TwinBuilder, t: string): NodeProto | undefined {
  const c = b.src.consumers.get(t) ?? [];
  return c.length === 1 ? c[0] : undefined;
}

/**
 * The weight scale of an integer product: the graph multiplies the int32 result (after a Cast to
 * float) by S = a_scale * b_scale, either a constant (static a_scale: b_scale = S / a_scale) or
 * Mul(a_scale, b_scale) with a_scale from DynamicQuantizeLinear.
 */
function productScale(b: TwinBuilder, n: NodeProto, aGrid: QuantParams | undefined): { scales: Float64Array; cast: NodeProto; mul: NodeProto } {
  const cast = soleConsumer(b, n.output[0]);
  const mul = cast && cast.opType === 'Cast' ? soleConsumer(b, cast.output[0]) : undefined;
  const fail = (why: string) => new InputError(`${b.where(n)}: ${why}; QuantLens recovers its weight scale from Cast -> Mul(scale) after it`);
  if (!cast || cast.opType !== 'Cast' || attrInt(cast, 'to', 0) !== DT.FLOAT) throw fail('its int32 output is not cast to float by a single Cast');
  if (!mul || mul.opType !== 'Mul') throw fail('the cast result is not multiplied by a scale');
  const s = mul.input[0] === cast.output[0] ? mul.input[1] : mul.input[0];
  const constant = b.constant(s);
  if (constant) {
    if (!aGrid) throw fail('its input is quantized at run time but the rescaling factor is a constant');
    return { scales: readFloats(constant, `${b.where(mul)}: scale`).map((v) => v / aGrid.scale), cast, mul };
  }
  const prod = b.src.producer.get(s);
  const w = prod?.opType === 'Mul' ? prod.input.map((t) => b.constant(t)).find((t) => t !== undefined) : undefined;
  if (!w) throw fail(`the rescaling factor ${s} is neither a constant nor Mul(input scale, constant weight scale)`);
  return { scales: readFloats(w, `${b.where(prod!)}: weight scale`), cast, mul };
}

/** ConvInteger / MatMulInteger: the float op on the dequantized weight; the Cast and Mul after it are absorbed. */
const integerProduct =
  (op: 'Conv' | 'MatMul') =>
  (b: TwinBuilder, n: NodeProto): void => {
    const aName = b.required(n, 0, 'input');
    const wName = b.required(n, 1, 'weight');
    const w = b.constant(wName);
    if (!w || !codeRange(w.dataType)) throw new InputError(`${b.where(n)}: its weight ${wName} is not an integer constant`);
    const dynamic = b.dynamic.has(aName);
    const aGrid = dynamic ? undefined : b.grids.get(b.float(aName));
    if (!dynamic && !aGrid)
      throw new InputError(`${b.where(n)}: its input ${aName} does not come from a QuantizeLinear or DynamicQuantizeLinear QuantLens can follow`);
    const { scales, cast, mul } = productScale(b, n, aGrid);
    const dims = w.dims.map(Number);
    const zp = b.constant(n.input[3] ?? '');
    if (zp && zp.dataType !== w.dataType)
      throw new InputError(
        `${b.where(n)}: the weight zero point ${n.input[3]} is ${DT[zp.dataType].toLowerCase()} but the weight ${wName} is ${DT[w.dataType].toLowerCase()}`,
      );
    const zps = zp ? readCodes(zp, `${b.where(n)}: weight zero point`) : new Int32Array(1);
    const range = codeRange(w.dataType)!;
    const count = Math.max(scales.length, zps.length);
    const params = Array.from({ length: count }, (_, i) => ({
      scale: Math.fround(scales[scales.length === 1 ? 0 : i]),
      zeroPoint: zps[zps.length === 1 ? 0 : i],
      ...range,
    }));
    // Build the DequantizeLinear-like view the shared weight code reads: scale and zero point as constants.
    const sName = b.fresh(`${wName}_scale`);
    const zName = b.fresh(`${wName}_zero_point`);
    b.src.initializers.set(
      sName,
      makeTensor(
        sName,
        DT.FLOAT,
        count > 1 ? [count] : [],
        params.map((p) => p.scale),
      ),
    );
    b.src.initializers.set(
      zName,
      makeTensor(
        zName,
        w.dataType as DT,
        count > 1 ? [count] : [],
        params.map((p) => p.zeroPoint),
      ),
    );
    const view = { ...n, input: [aName, wName, sName, zName] } as NodeProto;
    const wf = b.weight(view, 1, 2, 3, () => (op === 'Conv' ? 0 : dims.length - 1));
    b.absorbed.add(cast).add(mul);
    const node = b.emit(op, [b.float(aName), wf.name], [mul.output[0]], b.nodeName(n), n.attribute);
    b.quantized.set(node.name, n.opType);
    if (dynamic) b.dynamicNodes.add(node.name);
  };

/** MatMulIntegerToFloat (A, B, a_scale, b_scale, a_zp, b_zp, bias) and DynamicQuantizeMatMul (A float, B, b_scale, b_zp, bias). */
const floatOutputProduct =
  (dynamicA: boolean) =>
  (b: TwinBuilder, n: NodeProto): void => {
    const [bIdx, sIdx, zIdx, biasIdx] = dynamicA ? [1, 2, 3, 4] : [1, 3, 5, 6];
    const aName = b.required(n, 0, 'input');
    const wf = b.weight(n, bIdx, sIdx, zIdx, (dims) => dims.length - 1);
    const bias = n.input[biasIdx];
    const out = bias ? b.fresh(`${n.output[0]}_matmul`) : n.output[0];
    const node = b.emit('MatMul', [b.float(aName), wf.name], [out], b.nodeName(n));
    if (bias) b.emit('Add', [out, b.float(bias)], [n.output[0]], b.fresh(`${node.name}_bias`));
    b.quantized.set(node.name, n.opType);
    if (dynamicA || b.dynamic.has(aName)) b.dynamicNodes.add(node.name);
  };

/**
 * MatMulNBits: Y = A x dequant(B)^T (+ bias). B is uint8 [N, blocks, blob] with `bits`-bit codes
 * packed low bits first along K; scales [N, blocks]; zero points packed the same way per row of
 * blocks (default 2^(bits-1)).
 */
function matMulNBits(b: TwinBuilder, n: NodeProto): void {
  const K = attrInt(n, 'K', 0);
  const N = attrInt(n, 'N', 0);
  const bits = attrInt(n, 'bits', 4);
  const block = attrInt(n, 'block_size', 0);
  if (!(K > 0 && N > 0 && block > 0 && [2, 4, 8].includes(bits)))
    throw new InputError(`${b.where(n)}: attributes K=${K} N=${N} bits=${bits} block_size=${block} are not a valid MatMulNBits`);
  const packed = b.constant(b.required(n, 1, 'packed weight'));
  const scaleT = b.constant(b.required(n, 2, 'scales'));
  if (!packed || !scaleT) throw new InputError(`${b.where(n)}: its weight and scales must be constants`);
  if (scaleT.dataType !== DT.FLOAT)
    throw new InputError(`${b.where(n)}: scales of type ${DT[scaleT.dataType]} (a float16 model) are not supported; QuantLens analyzes float32 models`);
  if (n.input[4]) throw new InputError(`${b.where(n)}: g_idx (act-order) is not supported`);
  const blocks = Math.ceil(K / block);
  const blob = (block * bits) / 8;
  const bytes = readCodes(packed, `${b.where(n)}: packed weight`);
  if (bytes.length !== N * blocks * blob)
    throw new InputError(`${b.where(n)}: the packed weight holds ${bytes.length} bytes, expected N x blocks x blob = ${N * blocks * blob}`);
  const scales = readFloats(scaleT, `${b.where(n)}: scales`);
  if (scales.length !== N * blocks) throw new InputError(`${b.where(n)}: ${scales.length} scales, expected N x blocks = ${N * blocks}`);
  const zpT = b.constant(n.input[3] ?? '');
  if (zpT && zpT.dataType !== DT.UINT8) throw new InputError(`${b.where(n)}: zero points of type ${DT[zpT.dataType]} are not supported (packed uint8 only)`);
  const zpBytes = zpT ? readCodes(zpT, `${b.where(n)}: zero points`) : null;
  const zpRow = Math.ceil((blocks * bits) / 8);
  const mask = (1 << bits) - 1;
  const field = (data: Int32Array, byteBase: number, index: number) => (data[byteBase + ((index * bits) >> 3)] >> ((index * bits) & 7)) & mask;
  const w = new Float32Array(K * N);
  for (let col = 0; col < N; col++) {
    for (let k = 0; k < K; k++) {
      const blk = Math.floor(k / block);
      const code = field(bytes, (col * blocks + blk) * blob, k % block);
      const zp = zpBytes ? field(zpBytes, col * zpRow, blk) : 1 << (bits - 1);
      w[k * N + col] = (code - zp) * Math.fround(scales[col * blocks + blk]);
    }
  }
  const wName = b.fresh(`${n.input[1]}_dequantized`);
  b.initializers.push(makeTensor(wName, DT.FLOAT, [K, N], w));
  const bias = n.input[5];
  const out = bias ? b.fresh(`${n.output[0]}_matmul`) : n.output[0];
  const node = b.emit('MatMul', [b.float(b.required(n, 0, 'input')), wName], [out], b.nodeName(n));
  if (bias) b.emit('Add', [out, b.float(bias)], [n.output[0]], b.fresh(`${node.name}_bias`));
  b.quantized.set(node.name, n.opType);
  b.blockedNodes.add(node.name);
}

export const INTEGER_NODES: Record<string, (b: TwinBuilder, n: NodeProto) => void> = {
  ConvInteger: integerProduct('Conv'),
  MatMulInteger: integerProduct('MatMul'),
  'com.microsoft.MatMulIntegerToFloat': floatOutputProduct(false),
  'com.microsoft.DynamicQuantizeMatMul': floatOutputProduct(true),
  'com.microsoft.MatMulNBits': matMulNBits,
};
