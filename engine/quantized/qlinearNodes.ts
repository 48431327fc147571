/**
 * Float twins of the QOperator operators (QLinearConv, QLinearMatMul and onnxruntime's QGemm,
 * QLinearAdd, ...): the float operator on the dequantized inputs, with integer weights
 * dequantized (their codes kept) and the output's deployed grid recorded.
 * Input layouts follow the ONNX and onnxruntime contrib operator specs.
 */
import type { AttributeProto } from 'onnx-buf';
import { attrFloat, attrInt, attrInts, type NodeProto } from '../onnx/graph';
import { DT, makeTensor } from '../onnx/tensor';
import type { TwinBuilder } from './twinBuilder';

export type Converter = (b: TwinBuilder, n: NodeProto) => void;

const without = (n: NodeProto, ...names: string[]): AttributeProto[] => n.attribute.filter((a) => !names.includes(a.name));
const rankOf = (n: NodeProto, rank: number) => (attrInt(n, 'channels_last', 0) ? { channelsLast: rank } : {});

/** Last axis for per-column scales of a right-hand matrix, the row axis for a left-hand one. */
const lastAxis = (dims: number[]) => dims.length - 1;
const rowAxis = (dims: number[]) => dims.length - 2;

function qlinearConv(b: TwinBuilder, n: NodeProto): void {
  const x = b.activation(n, 0, 1, 2);
  const xs = b.tensorParams(n, 1, 2, 'input', b.codeType.get(n.input[0]));
  const w = b.weight(n, 3, 4, 5, () => 0);
  const out = b.tensorParams(n, 6, 7, 'output');
  const inputs = [x, w.name];
  if (n.input[8])
    inputs.push(
      b.bias(
        n,
        8,
        w.params.map((p) => xs.scale * p.scale),
      ),
    );
  const rank = b.constant(n.input[3])!.dims.length;
  b.compute(n, 'Conv', inputs, without(n, 'channels_last'), out, rankOf(n, rank));
}

function qlinearMatMul(b: TwinBuilder, n: NodeProto): void {
  const a = b.activation(n, 0, 1, 2, rowAxis);
  const w = b.activation(n, 3, 4, 5, lastAxis);
  b.compute(n, 'MatMul', [a, w], [], b.tensorParams(n, 6, 7, 'output'));
}

/** QGemm: Y = alpha * A' * B' + C, C int32 at scale alpha * a_scale * b_scale; without y_scale the output is float. */
function qgemm(b: TwinBuilder, n: NodeProto): void {
  const transB = attrInt(n, 'transB', 0);
  const alpha = attrFloat(n, 'alpha', 1);
  const a = b.activation(n, 0, 1, 2, rowAxis);
  const as = b.tensorParams(n, 1, 2, 'input', b.codeType.get(n.input[0]));
  const w = b.isIntConstant(n.input[3]) ? b.weight(n, 3, 4, 5, () => (transB ? 0 : 1)) : null;
  const inputs = [a, w ? w.name : b.activation(n, 3, 4, 5)];
  if (n.input[6])
    inputs.push(
      b.bias(
        n,
        6,
        (w?.params ?? b.params(n, 4, 5, 'input B')).map((p) => alpha * as.scale * p.scale),
      ),
    );
  const out = n.input[7] ? b.tensorParams(n, 7, 8, 'output') : null;
  b.compute(n, 'Gemm', inputs, n.attribute, out);
}

/** Binary elementwise QLinear ops: (A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp). */
const binary =
  (op: string): Converter =>
  (b, n) => {
    const x = b.activation(n, 0, 1, 2);
    const y = b.activation(n, 3, 4, 5);
    b.compute(n, op, [x, y], [], b.tensorParams(n, 6, 7, 'output'));
  };

/** Unary QLinear ops: (X, X_scale, X_zp, Y_scale, Y_zp) plus the float op's own attributes. */
const unary =
  (op: string, drop: string[] = [], rank?: number): Converter =>
  (b, n) => {
    const x = b.activation(n, 0, 1, 2);
    b.compute(n, op, [x], without(n, 'channels_last', ...drop), b.tensorParams(n, 3, 4, 'output'), rank ? rankOf(n, rank) : {});
  };

function qlinearConcat(b: TwinBuilder, n: NodeProto): void {
  const out = b.tensorParams(n, 0, 1, 'output');
  const inputs: string[] = [];
  for (let i = 2; i + 2 < n.input.length; i += 3) inputs.push(b.activation(n, i, i + 1, i + 2));
  b.compute(n, 'Concat', inputs, n.attribute, out);
}

/** ReduceMean takes its axes as an attribute up to opset 17 and as an input from 18. */
function qlinearReduceMean(b: TwinBuilder, n: NodeProto): void {
  const x = b.activation(n, 0, 1, 2);
  const out = b.tensorParams(n, 3, 4, 'output');
  const axes = attrInts(n, 'axes');
  if (b.opset < 18 || !axes) {
    b.compute(n, 'ReduceMean', [x], n.attribute, out);
    return;
  }
  const name = b.fresh(`${n.name}_axes`);
  b.initializers.push(makeTensor(name, DT.INT64, [axes.length], BigInt64Array.from(axes.map(BigInt))));
  b.compute(n, 'ReduceMean', [x, name], without(n, 'axes'), out);
}

/** QOperator converters by domain-qualified op type ('' = ONNX). */
export const QLINEAR: Record<string, Converter> = {
  QLinearConv: qlinearConv,
  'com.microsoft.QLinearConv': qlinearConv,
  QLinearMatMul: qlinearMatMul,
  'com.microsoft.QGemm': qgemm,
  'com.microsoft.QLinearAdd': binary('Add'),
  'com.microsoft.QLinearMul': binary('Mul'),
  'com.microsoft.QLinearSigmoid': unary('Sigmoid'),
  'com.microsoft.QLinearLeakyRelu': unary('LeakyRelu'),
  'com.microsoft.QLinearSoftmax': unary('Softmax', ['opset']),
  'com.microsoft.QLinearGlobalAveragePool': unary('GlobalAveragePool', [], 4),
  'com.microsoft.QLinearAveragePool': unary('AveragePool', [], 4),
  'com.microsoft.QLinearConcat': qlinearConcat,
  'com.microsoft.QLinearReduceMean': qlinearReduceMean,
};
