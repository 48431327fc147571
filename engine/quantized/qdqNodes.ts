/**
 * Float twins of QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear, and of the operators
 * that merely move integer codes around (Transpose, MaxPool, Reshape, ...), which compute the same
 * on the float values the codes stand for.
 */
import { InputError } from '../errors';
import { attrInt, type NodeProto } from '../onnx/graph';
import { DT, makeTensor } from '../onnx/tensor';
import { quantize } from '../quantize/scheme';
import { dequantizeBlocked, isCodeType, readCodes, readFloats, sameGrid, typeName } from './codes';
import type { TwinBuilder } from './twinBuilder';

/** Operators that compute the same on codes as on the values they stand for (order-preserving, no arithmetic). */
const CODE_MOVERS = new Set([
  'Transpose',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'MaxPool',
  'GlobalMaxPool',
  'Slice',
  'Gather',
  'GatherElements',
  'Split',
  'Concat',
  'Identity',
  'Resize',
  'Upsample',
  'Pad',
  'DepthToSpace',
  'SpaceToDepth',
  'Tile',
  'Expand',
  'ReduceMax',
  'ReduceMin',
]);
/** Operators that read only the shape of their input. */
const SHAPE_READERS = new Set(['Shape', 'Size']);

export function quantizeLinear(b: TwinBuilder, n: NodeProto): void {
  const x = b.required(n, 0, 'input');
  const z = b.constant(n.input[2] ?? '');
  const codes = z?.dataType ?? (attrInt(n, 'output_dtype', 0) || DT.UINT8);
  const params = b.params(n, 1, 2, 'output', codes);
  const xc = b.constant(x);
  if (xc && !isCodeType(xc.dataType)) {
    // A float constant quantized in the graph (PyTorch exports weights this way): compute its codes
    // once, as QuantizeLinear would, and let the DequantizeLinear after it read them as a weight.
    const dims = xc.dims.map(Number);
    const values = readFloats(xc, `${b.where(n)}: input ${x}`);
    const axis = params.length > 1 ? (attrInt(n, 'axis', 1) + dims.length) % dims.length : null;
    const inner = axis === null ? values.length : dims.slice(axis + 1).reduce((a, c) => a * c, 1);
    const q = Int32Array.from(values, (v, i) => quantize(v, params[axis === null ? 0 : Math.floor(i / inner) % dims[axis]]));
    b.src.initializers.set(n.output[0], makeTensor(n.output[0], codes as DT, dims, q));
    return;
  }
  b.codeType.set(n.output[0], codes);
  if (params.length > 1) {
    b.alias.set(n.output[0], b.float(x));
    b.notes.push(`${n.name} quantizes the activation ${x} per channel: the twin keeps it float and the analysis does not simulate that grid`);
    return;
  }
  const f = b.float(x);
  // Quantizers name a QuantizeLinear after the float tensor it quantizes: a requantized value gets that name.
  const named = n.name.replace(/_QuantizeLinear$/, '');
  b.alias.set(n.output[0], b.quantizeValue(f, params[0], named !== n.name ? named : `${f}_requantized`, `${named}_requantize`));
}

export function dequantizeLinear(b: TwinBuilder, n: NodeProto): void {
  const x = b.required(n, 0, 'input');
  const out = n.output[0];
  if (b.isIntConstant(x)) {
    const block = attrInt(n, 'block_size', 0);
    if (block > 0) {
      blockedWeight(b, n, x, block);
      return;
    }
    const w = b.weight(n, 0, 1, 2, () => attrInt(n, 'axis', 1), out);
    if (w.name !== out) b.alias.set(out, w.name);
    return;
  }
  if (b.dynamic.has(x)) {
    b.alias.set(out, b.float(x));
    return;
  }
  if (!b.codeType.has(x)) {
    // Codes from outside (an integer graph input): the twin dequantizes them as the model does.
    b.params(n, 1, 2, 'input');
    b.emit(n.opType, [...n.input], [...n.output], n.name, n.attribute).domain = n.domain;
    return;
  }
  const p = b.params(n, 1, 2, 'input', b.codeType.get(x));
  const f = b.float(x);
  const g = b.grids.get(f);
  if (p.length === 1 && g && !sameGrid(g, p[0])) {
    b.notes.push(
      `${n.name} dequantizes ${x} with scale ${p[0].scale} / zero point ${p[0].zeroPoint} although it was quantized with ${g.scale} / ${g.zeroPoint}; the twin uses the value as quantized`,
    );
  }
  b.alias.set(out, f);
  if (b.src.graphOutputs.has(out)) b.outputRenames.set(f, out);
}

/** A block-quantized constant (opset 21 block_size): dequantized, its codes not kept (no per-block grid downstream). */
function blockedWeight(b: TwinBuilder, n: NodeProto, x: string, block: number): void {
  const c = b.constant(x)!;
  const dims = c.dims.map(Number);
  const axis = (attrInt(n, 'axis', 1) + dims.length) % dims.length;
  const s = b.constant(b.required(n, 1, 'scale'));
  if (!s) throw new InputError(`${b.where(n)}: the scale ${n.input[1]} is not a constant`);
  const z = b.constant(n.input[2] ?? '');
  if (z && z.dataType !== c.dataType)
    throw new InputError(`${b.where(n)}: the zero point ${n.input[2]} is ${typeName(z.dataType)} but the codes are ${typeName(c.dataType)}`);
  const values = dequantizeBlocked(
    readCodes(c, `${b.where(n)}: ${x}`),
    dims,
    readFloats(s, `${b.where(n)}: scale`),
    z ? readCodes(z, `${b.where(n)}: zero point`) : null,
    axis,
    block,
  );
  b.initializers.push(makeTensor(n.output[0], DT.FLOAT, dims, values));
  b.notes.push(
    `${x} is block-quantized (blocks of ${block}): the twin holds its dequantized values, which the analysis keeps exactly (no per-block grid is re-applied)`,
  );
}

export function dynamicQuantizeLinear(b: TwinBuilder, n: NodeProto): void {
  const x = b.required(n, 0, 'input');
  b.alias.set(n.output[0], b.float(x));
  b.dynamic.add(n.output[0]);
}

/** Any other node: float nodes are copied; nodes that only move integer codes compute the same on floats, with the same grid. */
export function otherNode(b: TwinBuilder, n: NodeProto): void {
  const tracked = n.input.filter((t) => t && b.isTracked(t));
  const inputs = n.input.map((t) => (t ? b.float(t) : t));
  const copy = () => {
    const c = b.emit(n.opType, inputs, [...n.output], n.name, n.attribute);
    c.domain = n.domain;
    return c;
  };
  if (tracked.length === 0) return void copy();
  const known = (n.domain === '' || n.domain === 'ai.onnx') && (CODE_MOVERS.has(n.opType) || SHAPE_READERS.has(n.opType));
  if (!known || tracked.some((t) => b.dynamic.has(t))) {
    throw new InputError(
      `${b.where(n)} computes on the integer tensor ${tracked[0]}; QuantLens cannot turn that into float (it follows Q/DQ, QLinear*, ConvInteger/MatMulInteger, MatMulNBits and operators that only move codes)`,
    );
  }
  if (SHAPE_READERS.has(n.opType)) return void copy();
  const first = tracked[0];
  const grid = b.grids.get(b.float(first));
  if (n.opType === 'Pad' && n.input[2] && b.isIntConstant(n.input[2]) && grid) {
    // The pad value is a code: the twin pads with the value it stands for.
    const code = readCodes(b.constant(n.input[2])!, `${b.where(n)}: pad value`)[0];
    inputs[2] = b.fresh(`${n.name}_pad_value`);
    b.initializers.push(makeTensor(inputs[2], DT.FLOAT, [], [(code - grid.zeroPoint) * grid.scale]));
  }
  for (const t of tracked.slice(1)) {
    const g = b.grids.get(b.float(t));
    if (grid && g && !sameGrid(grid, g)) b.notes.push(`${n.opType} ${n.name} joins codes of different grids (${first}, ${t}); the twin joins their values`);
  }
  copy();
  for (const o of n.output) {
    if (!o) continue;
    b.codeType.set(o, b.codeType.get(first)!);
    if (grid) b.grids.set(o, grid);
  }
}
