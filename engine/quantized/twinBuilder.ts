/**
 * The state of turning a quantized graph into its float twin, node by node, and the operations the
 * per-operator converters share: reading a node's deployed grids, dequantizing its integer
 * constants (keeping their codes), and emitting the float operator with its output grid.
 *
 * Names: every tensor of the source graph has a twin tensor (`float(t)`): a float tensor keeps its
 * name; an integer tensor maps to the float tensor it stands for (the input of its QuantizeLinear,
 * the output of the float operator a QLinear operator becomes). Grids are kept per twin tensor.
 */
import type { TensorProto } from 'onnx-buf';
import type { AttributeProto } from 'onnx-buf';
import { InputError } from '../errors';
import { GraphIndex, type GraphProto, type NodeProto, makeNode, nameAllocator } from '../onnx/graph';
import { DT, makeTensor } from '../onnx/tensor';
import type { FixedCodes } from '../quantize/plan';
import type { QuantParams } from '../quantize/scheme';
import { dequantize, gridsFrom, isCodeType, readCodes, sameGrid, typeName, typeOfGrid } from './codes';

/** Float operators whose output can be negative: a grid starting at 0 right after one of them is a fused Relu. */
const SIGNED_OPS = new Set([
  'Conv',
  'ConvTranspose',
  'Gemm',
  'MatMul',
  'Add',
  'Sub',
  'Sum',
  'BatchNormalization',
  'InstanceNormalization',
  'LayerNormalization',
]);

const INT32: Pick<QuantParams, 'qmin' | 'qmax'> = { qmin: -(2 ** 31), qmax: 2 ** 31 - 1 };

/** Permutations between the NHWC layout onnxruntime's layout transformer uses and NCHW, by rank. */
export function toChannelsFirst(rank: number): number[] {
  return [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
}
export function toChannelsLast(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2), 1];
}

export class TwinBuilder {
  readonly src: GraphIndex;
  readonly nodes: NodeProto[] = [];
  /** New float initializers (dequantized constants); the source's float initializers are kept as they are. */
  readonly initializers: TensorProto[] = [];
  /** Twin tensor -> the deployed grid of the value it holds. */
  readonly grids = new Map<string, QuantParams>();
  /** Twin initializer -> the integer codes the deployed model holds for it. */
  readonly constants = new Map<string, FixedCodes>();
  /** Source tensor -> twin tensor (only where they differ). */
  readonly alias = new Map<string, string>();
  /** Element type of each integer activation tensor of the source. */
  readonly codeType = new Map<string, number>();
  /** Integer source tensors quantized at run time (DynamicQuantizeLinear): no fixed grid. */
  readonly dynamic = new Set<string>();
  /** Twin node -> the deployed operator it stands for ('QLinearConv', 'QDQ', ...). */
  readonly quantized = new Map<string, string>();
  /** Twin node -> the tensor holding its deployed output grid when a Relu had to be made explicit. */
  readonly layerOutput = new Map<string, string>();
  /** Twin nodes whose activations were quantized at run time, or whose weights are block-quantized. */
  readonly dynamicNodes = new Set<string>();
  readonly blockedNodes = new Set<string>();
  /** Twin tensors a graph output should be renamed from (source DQ output names). */
  readonly outputRenames = new Map<string, string>();
  /** Source nodes an earlier converter already turned into float (e.g. a MatMulInteger's Cast and Mul). */
  readonly absorbed = new Set<NodeProto>();
  readonly notes: string[] = [];
  readonly fresh: (base: string) => string;
  private readonly producer = new Map<string, NodeProto>();
  /** Node names in use (the source's and the twin's), so a cleaned-up name never collides. */
  private readonly nodeNames: Set<string>;
  private readonly dequantized = new Map<string, { name: string; params: QuantParams[] }>();

  constructor(
    graph: GraphProto,
    readonly file: string,
    readonly opset: number,
  ) {
    this.src = new GraphIndex(graph);
    this.fresh = nameAllocator(graph);
    this.nodeNames = new Set(graph.node.map((n) => n.name));
  }

  where(n: NodeProto): string {
    return `${this.file}: ${n.opType} ${n.name}`;
  }

  /** The twin tensor for a source tensor. */
  float(t: string): string {
    return this.alias.get(t) ?? t;
  }

  constant(t: string): TensorProto | undefined {
    return t ? this.src.initializers.get(t) : undefined;
  }

  isIntConstant(t: string): boolean {
    const c = this.constant(t);
    return c !== undefined && isCodeType(c.dataType);
  }

  /** A source integer tensor the twin follows (it has a float counterpart). */
  isTracked(t: string): boolean {
    return this.codeType.has(t) || this.dynamic.has(t);
  }

  required(n: NodeProto, i: number, what: string): string {
    const t = n.input[i];
    if (!t) throw new InputError(`${this.where(n)} has no ${what} (input ${i})`);
    return t;
  }

  /**
   * The grid(s) of a node's scale and zero-point inputs. `codes` is the element type of the codes
   * they describe when known: a zero point of another type is malformed.
   */
  params(n: NodeProto, scaleIdx: number, zpIdx: number, what: string, codes?: number): QuantParams[] {
    const sName = this.required(n, scaleIdx, `${what} scale`);
    const s = this.constant(sName);
    if (!s) throw new InputError(`${this.where(n)}: the ${what} scale ${sName} is not a constant (QuantLens reads the deployed grid from the file)`);
    const zName = n.input[zpIdx];
    const z = zName ? this.constant(zName) : undefined;
    if (zName && !z) throw new InputError(`${this.where(n)}: the ${what} zero point ${zName} is not a constant`);
    if (z && codes !== undefined && z.dataType !== codes) {
      throw new InputError(`${this.where(n)}: the ${what} zero point ${zName} is ${typeName(z.dataType)} but the codes it describes are ${typeName(codes)}`);
    }
    return gridsFrom(s, z, z?.dataType ?? codes ?? DT.UINT8, `${this.where(n)} (${what})`);
  }

  /** One grid for the whole tensor (activations). */
  tensorParams(n: NodeProto, scaleIdx: number, zpIdx: number, what: string, codes?: number): QuantParams {
    const p = this.params(n, scaleIdx, zpIdx, what, codes);
    if (p.length !== 1) throw new InputError(`${this.where(n)}: the ${what} has ${p.length} scales; activations are quantized per tensor here`);
    return p[0];
  }

  /**
   * A constant integer input dequantized into a float initializer of the twin; its codes and grid
   * are kept for the analysis. `axisOf` picks the channel axis for per-channel scales.
   */
  weight(
    n: NodeProto,
    idx: number,
    scaleIdx: number,
    zpIdx: number,
    axisOf: (dims: number[]) => number,
    name?: string,
  ): { name: string; params: QuantParams[] } {
    const t = this.required(n, idx, 'weight');
    const key = `${t}|${n.input[scaleIdx]}|${n.input[zpIdx] ?? ''}`;
    const known = this.dequantized.get(key);
    if (known) return known;
    const c = this.constant(t)!;
    const params = this.params(n, scaleIdx, zpIdx, 'weight', c.dataType);
    const dims = c.dims.map(Number);
    const codes = readCodes(c, `${this.where(n)}: weight ${t}`);
    let axis: number | null = null;
    if (params.length > 1) {
      axis = axisOf(dims);
      if (axis < 0) axis += dims.length;
      if (dims[axis] !== params.length)
        throw new InputError(`${this.where(n)}: weight ${t} has ${dims[axis]} channels on axis ${axis} but ${params.length} scales`);
    }
    const out = name ?? this.fresh(t.replace(/_quantized$/, '') === t ? `${t}_dequantized` : t.replace(/_quantized$/, ''));
    this.initializers.push(makeTensor(out, DT.FLOAT, dims, dequantize(codes, dims, params, axis)));
    this.constants.set(out, { axis, params, codes, dims });
    const r = { name: out, params };
    this.dequantized.set(key, r);
    return r;
  }

  /** An int32 bias at the given per-channel (or single) scales, zero point 0. */
  bias(n: NodeProto, idx: number, scales: number[]): string {
    const t = this.required(n, idx, 'bias');
    const c = this.constant(t);
    if (!c) throw new InputError(`${this.where(n)}: the bias ${t} is not a constant`);
    if (!isCodeType(c.dataType)) return t; // a float bias: nothing to dequantize
    if (c.dataType !== DT.INT32) throw new InputError(`${this.where(n)}: the bias ${t} is ${typeName(c.dataType)}, not int32`);
    const codes = readCodes(c, `${this.where(n)}: bias ${t}`);
    if (scales.length !== 1 && scales.length !== codes.length)
      throw new InputError(`${this.where(n)}: the bias ${t} has ${codes.length} values for ${scales.length} weight channels`);
    const params = scales.map((scale) => ({ scale: Math.fround(scale), zeroPoint: 0, ...INT32 }));
    const dims = c.dims.map(Number);
    const out = this.fresh(t.replace(/_quantized$/, '') === t ? `${t}_dequantized` : t.replace(/_quantized$/, ''));
    this.initializers.push(makeTensor(out, DT.FLOAT, dims, dequantize(codes, dims, params, params.length > 1 ? 0 : null)));
    this.constants.set(out, { axis: params.length > 1 ? 0 : null, params, codes, dims });
    return out;
  }

  /**
   * A quantized activation input of a QOperator node: its twin float tensor. The grid the node
   * declares should be the one its codes were made with; a constant input is a weight.
   */
  activation(n: NodeProto, idx: number, scaleIdx: number, zpIdx: number, axisOf: (dims: number[]) => number = () => 0): string {
    const t = this.required(n, idx, 'input');
    if (this.isIntConstant(t)) return this.weight(n, idx, scaleIdx, zpIdx, axisOf).name;
    if (!this.codeType.has(t)) {
      throw new InputError(
        `${this.where(n)}: its input ${t} does not come from a quantized operator QuantLens can follow (an integer graph input, or an unsupported producer)`,
      );
    }
    const p = this.tensorParams(n, scaleIdx, zpIdx, 'input', this.codeType.get(t));
    const f = this.float(t);
    const g = this.grids.get(f);
    if (!g) this.grids.set(f, p);
    else if (!sameGrid(g, p))
      this.notes.push(
        `${n.opType} ${n.name} reads ${t} with scale ${p.scale} / zero point ${p.zeroPoint} although it was quantized with ${g.scale} / ${g.zeroPoint}; the twin uses the value as quantized`,
      );
    return f;
  }

  /** Append a twin node. */
  emit(opType: string, inputs: string[], outputs: string[], name: string, attrs: AttributeProto[] = []): NodeProto {
    const node = makeNode(opType, inputs, outputs, name);
    node.attribute = attrs;
    this.nodes.push(node);
    for (const o of outputs) if (o) this.producer.set(o, node);
    return node;
  }

  /** A node name for the twin of `n`: onnxruntime's layout transformer appends `_token_<k>` to the names of nodes it rewrites. */
  nodeName(n: NodeProto): string {
    const clean = n.name.replace(/_token_\d+$/, '');
    if (clean === n.name || this.nodeNames.has(clean)) return n.name;
    this.nodeNames.add(clean);
    return clean;
  }

  /** A grid starting at 0 on a value a signed operator produced: the deployed model clamps negatives there. */
  private impliesRelu(value: string, p: QuantParams): boolean {
    if (p.zeroPoint !== p.qmin) return false;
    const g = this.grids.get(value);
    if (g) return g.zeroPoint > g.qmin;
    const prod = this.producer.get(value);
    return prod !== undefined && SIGNED_OPS.has(prod.opType);
  }

  /**
   * Give the twin value `value` the grid `p` and return the tensor that holds it: `value` itself,
   * or a new tensor when `value` already has another grid (a requantization) or when the grid
   * starting at 0 stands for a Relu the quantizer folded away (then the Relu is made explicit).
   */
  quantizeValue(value: string, p: QuantParams, newName: string, nodeName: string): string {
    const g = this.grids.get(value);
    if (g && sameGrid(g, p)) return value;
    const relu = this.impliesRelu(value, p);
    if (!g && !relu) {
      this.grids.set(value, p);
      return value;
    }
    const out = this.fresh(newName);
    this.emit(relu ? 'Relu' : 'Identity', [value], [out], this.fresh(nodeName));
    if (relu) {
      const prod = this.producer.get(value);
      if (prod && !g) this.layerOutput.set(prod.name, out);
      this.notes.push(
        `${out}: a Relu is made explicit (the deployed grid of ${value} starts at 0, so negatives are clamped there, as quantizers do when they fold a Relu)`,
      );
    }
    this.grids.set(out, p);
    return out;
  }

  /**
   * Emit the float operator a QOperator node stands for and give its output the deployed grid
   * (`out` null: the node outputs float). Channels-last nodes (onnxruntime's NHWC kernels) get
   * transposes around the NCHW operator; pairs of transposes cancel out later.
   */
  compute(n: NodeProto, opType: string, inputs: string[], attrs: AttributeProto[], out: QuantParams | null, opts: { channelsLast?: number } = {}): void {
    const name = this.nodeName(n);
    const rank = opts.channelsLast;
    const ins = rank ? inputs.map((x, i) => (i === 0 ? this.transpose(x, toChannelsFirst(rank), `${name}_to_nchw`) : x)) : inputs;
    const intOut = n.output[0];
    // Exporters name a node's output "<node>_output_0"; where free, the twin does too.
    const core = this.fresh(out ? `${name}_output_0` : intOut);
    const node = this.emit(opType, ins, [core], name, attrs);
    this.quantized.set(node.name, n.opType);
    let value = core;
    if (out) {
      value = this.quantizeValue(core, out, `${core}_relu`, `${name}_relu`);
      this.layerOutput.set(node.name, value);
    }
    if (rank) {
      const back = this.transpose(value, toChannelsLast(rank), `${name}_to_nhwc`);
      if (out) this.grids.set(back, out);
      value = back;
    }
    this.alias.set(intOut, value);
    if (out) this.codeType.set(intOut, typeOfGrid(out));
  }

  private transpose(x: string, perm: number[], base: string): string {
    const out = this.fresh(`${x}_${perm.join('')}`);
    const node = makeNode('Transpose', [x], [out], this.fresh(base), { perm });
    this.nodes.push(node);
    this.producer.set(out, node);
    const g = this.grids.get(x);
    if (g) this.grids.set(out, g);
    return out;
  }
}
