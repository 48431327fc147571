/**
 * Is a model already quantized, and how: QDQ (QuantizeLinear/DequantizeLinear pairs around float
 * operators, weights as integer initializers behind DequantizeLinear), QOperator (operators that
 * compute on integers: QLinearConv, QGemm, ConvInteger, MatMulNBits, ...), both ("mixed"), or
 * neither ("float"). Pure: looks at the graph only.
 */
import type { ModelQuantizationKind } from '../../protocol/report';
import { GraphIndex, type GraphProto, type NodeProto } from '../onnx/graph';
import { graphsIn } from '../onnx/scopes';
import { isCodeType } from './codes';

const MS = 'com.microsoft';

/** Q/DQ operators (ONNX and onnxruntime domains). */
const QDQ_OPS = new Set(['QuantizeLinear', 'DequantizeLinear']);

/** Operators that compute on integer tensors, by domain. */
export const QOPERATOR_OPS: Record<string, ReadonlySet<string>> = {
  '': new Set(['QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']),
  [MS]: new Set([
    'QLinearConv',
    'QGemm',
    'QLinearAdd',
    'QLinearMul',
    'QLinearConcat',
    'QLinearSigmoid',
    'QLinearLeakyRelu',
    'QLinearSoftmax',
    'QLinearGlobalAveragePool',
    'QLinearAveragePool',
    'QLinearReduceMean',
    'QLinearWhere',
    'QLinearConvTranspose',
    'QAttention',
    'MatMulNBits',
    'MatMulIntegerToFloat',
    'DynamicQuantizeMatMul',
    'DynamicQuantizeLSTM',
    'QEmbedLayerNormalization',
    'QOrderedMatMul',
  ]),
};

/** Float operators that do the arithmetic a QDQ model quantizes (a DQ'd weight or a DQ->op->Q sandwich around them). */
const COMPUTE = new Set([
  'Conv',
  'ConvTranspose',
  'Gemm',
  'MatMul',
  'Add',
  'Mul',
  'Sub',
  'Concat',
  'AveragePool',
  'GlobalAveragePool',
  'Sigmoid',
  'Softmax',
  'LeakyRelu',
]);

function domainOf(n: NodeProto): string {
  return n.domain === 'ai.onnx' ? '' : n.domain;
}

export function isQdqNode(n: NodeProto): boolean {
  return (domainOf(n) === '' || domainOf(n) === MS) && QDQ_OPS.has(n.opType);
}

export function isQOperatorNode(n: NodeProto): boolean {
  return QOPERATOR_OPS[domainOf(n)]?.has(n.opType) ?? false;
}

export interface QuantizationCensus {
  kind: ModelQuantizationKind;
  /** Quantized operators in the graph, counted by (domain-qualified) name, bodies included. */
  ops: Record<string, number>;
  /** How many of them sit inside If/Loop/Scan bodies (at any depth). */
  inBodies: number;
}

/**
 * Classify a graph. QOperator models also hold QuantizeLinear/DequantizeLinear at the borders of
 * their integer parts; "mixed" means some float compute operator is ALSO quantized the QDQ way
 * (a DQ'd integer weight, or DQ in and Q out), as onnxruntime leaves layers it cannot fuse.
 */
export function detectQuantization(graph: GraphProto): QuantizationCensus {
  const idx = new GraphIndex(graph);
  const ops: Record<string, number> = {};
  let qdq = false;
  let qop = false;
  let inBodies = 0;
  for (const { graph: g, scope } of graphsIn(graph)) {
    for (const n of g.node) {
      const isQdq = isQdqNode(n);
      const isQop = isQOperatorNode(n);
      if (!isQdq && !isQop) continue;
      const name = domainOf(n) ? `${domainOf(n)}.${n.opType}` : n.opType;
      ops[name] = (ops[name] ?? 0) + 1;
      qdq ||= isQdq;
      qop ||= isQop;
      if (scope.length > 0) inBodies++;
    }
  }
  if (!qdq && !qop) return { kind: 'float', ops, inBodies };
  if (!qop) return { kind: 'qdq', ops, inBodies };
  const fromDq = (t: string) => {
    const p = idx.producer.get(t);
    return p !== undefined && isQdqNode(p) && p.opType === 'DequantizeLinear';
  };
  const intWeight = (t: string) => {
    const p = idx.producer.get(t);
    const w = p && fromDq(t) ? idx.initializers.get(p.input[0]) : undefined;
    return w !== undefined && isCodeType(w.dataType);
  };
  const toQ = (t: string) => (idx.consumers.get(t) ?? []).some((c) => isQdqNode(c) && c.opType === 'QuantizeLinear');
  const qdqCompute = graph.node.some(
    (n) => COMPUTE.has(n.opType) && domainOf(n) === '' && (n.input.some(intWeight) || (n.input.some(fromDq) && n.output.some(toQ))),
  );
  return { kind: qdqCompute ? 'mixed' : 'qoperator', ops, inBodies };
}
