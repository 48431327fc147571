/**
 * Element types of every value at any depth, inferred from the graph alone (onnxruntime does not
 * write the types it infers into a saved model). Lifting a tensor out of an If branch needs its
 * type before any session exists: the other branch must output an empty tensor of that type.
 * Unknown stays unknown (the caller then refuses to lift rather than guess).
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { attr } from './graph';
import { DT } from './tensor';

type Rule = (n: NodeProto, inputs: (number | undefined)[], outputIndex: number) => number | undefined;

const first: Rule = (_n, t) => t[0];
const fixed =
  (dt: DT): Rule =>
  () =>
    dt;
const attrType =
  (name: string, dflt?: DT): Rule =>
  (n) => {
    const a = attr(n, name);
    return a ? Number(a.i) : dflt;
  };

/** Per op, the output type from the node and its input types (ops not listed: the first input's). */
const RULES: Record<string, Rule> = {
  Shape: fixed(DT.INT64),
  Size: fixed(DT.INT64),
  NonZero: fixed(DT.INT64),
  ArgMax: fixed(DT.INT64),
  ArgMin: fixed(DT.INT64),
  Equal: fixed(DT.BOOL),
  Less: fixed(DT.BOOL),
  Greater: fixed(DT.BOOL),
  LessOrEqual: fixed(DT.BOOL),
  GreaterOrEqual: fixed(DT.BOOL),
  Not: fixed(DT.BOOL),
  And: fixed(DT.BOOL),
  Or: fixed(DT.BOOL),
  Xor: fixed(DT.BOOL),
  IsNaN: fixed(DT.BOOL),
  IsInf: fixed(DT.BOOL),
  Cast: attrType('to'),
  CastLike: (_n, t) => t[1],
  Constant: (n) => attr(n, 'value')?.t?.dataType,
  ConstantOfShape: (n) => attr(n, 'value')?.t?.dataType ?? DT.FLOAT,
  EyeLike: (n, t) => attrType('dtype')(n, t, 0) ?? t[0],
  RandomNormal: attrType('dtype', DT.FLOAT),
  RandomUniform: attrType('dtype', DT.FLOAT),
  RandomNormalLike: (n, t) => attrType('dtype')(n, t, 0) ?? t[0],
  RandomUniformLike: (n, t) => attrType('dtype')(n, t, 0) ?? t[0],
  Multinomial: attrType('dtype', DT.INT32),
  Where: (_n, t) => t[1],
  TopK: (_n, t, k) => (k === 1 ? DT.INT64 : t[0]),
  MaxPool: (_n, t, k) => (k === 1 ? DT.INT64 : t[0]),
  Unique: (_n, t, k) => (k === 0 ? t[0] : DT.INT64),
  QuantizeLinear: (_n, t) => t[2] ?? DT.UINT8,
  DequantizeLinear: (_n, t) => (t[1] === DT.FLOAT16 ? DT.FLOAT16 : DT.FLOAT),
  DynamicQuantizeLinear: (_n, _t, k) => (k === 0 ? DT.UINT8 : k === 1 ? DT.FLOAT : DT.UINT8),
  QLinearConv: (_n, t) => t[7],
  QLinearMatMul: (_n, t) => t[7],
  MatMulInteger: fixed(DT.INT32),
  ConvInteger: fixed(DT.INT32),
  Range: first,
};

/** Tensor name -> ONNX element type, for every value the model defines or reads. */
export function inferElementTypes(model: ModelProto): Map<string, number> {
  const types = new Map<string, number>();
  if (model.graph) inferGraph(model.graph, types);
  return types;
}

function declared(vi: { name: string; type?: { value: { case?: string; value?: unknown } } }): number | undefined {
  if (vi.type?.value.case !== 'tensorType') return undefined;
  const t = (vi.type.value.value as { elemType: number }).elemType;
  return t || undefined;
}

function inferGraph(g: GraphProto, types: Map<string, number>): void {
  const set = (name: string, t: number | undefined) => {
    if (name && t && !types.has(name)) types.set(name, t);
  };
  for (const i of g.input) set(i.name, declared(i));
  for (const t of g.initializer) set(t.name, t.dataType);
  for (const v of g.valueInfo) set(v.name, declared(v));
  for (const n of g.node) {
    const ins = n.input.map((x) => (x ? types.get(x) : undefined));
    const bodyOut = bodyOutputs(n, types);
    n.output.forEach((o, k) => {
      if (!o) return;
      const t = bodyOut ? bodyOut(k) : n.domain === '' || n.domain === 'ai.onnx' ? (RULES[n.opType] ?? first)(n, ins, k) : undefined;
      set(o, t);
    });
  }
  for (const o of g.output) set(o.name, declared(o));
}

/** If / Loop / Scan: walk the bodies, and type the node's outputs from the bodies' outputs. */
function bodyOutputs(n: NodeProto, types: Map<string, number>): ((k: number) => number | undefined) | null {
  const bodies = n.attribute.filter((a) => a.g).map((a) => ({ name: a.name, g: a.g! }));
  if (bodies.length === 0) return null;
  for (const b of bodies) inferGraph(b.g, types);
  const outType = (g: GraphProto, i: number) => (g.output[i] ? (types.get(g.output[i].name) ?? declared(g.output[i])) : undefined);
  if (n.opType === 'If') {
    const then = bodies.find((b) => b.name === 'then_branch')?.g;
    const other = bodies.find((b) => b.name === 'else_branch')?.g;
    return (k) => (then && outType(then, k)) || (other && outType(other, k)) || undefined;
  }
  const body = bodies.find((b) => b.name === 'body')?.g;
  if (!body) return () => undefined;
  // Loop body outputs: cond, carried..., scans...; node outputs: carried..., scans...
  if (n.opType === 'Loop') return (k) => outType(body, k + 1);
  // Scan body outputs: states..., scans...; node outputs in the same order.
  if (n.opType === 'Scan') return (k) => outType(body, k);
  return () => undefined;
}
