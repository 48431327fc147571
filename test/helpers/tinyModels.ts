/**
 * Tiny ONNX graphs built in the tests, so each numeric expectation can be checked by hand.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  OperatorSetIdProtoSchema,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from 'onnx-buf';
import { makeNode as makeNodeRaw } from '../../engine/onnx/graph';
import { encodeModel } from '../../engine/onnx/model';
import { DT, makeTensor } from '../../engine/onnx/tensor';

export { makeNode } from '../../engine/onnx/graph';
export { DT, makeTensor };

export function valueInfo(name: string, dims: (number | string)[], elemType = DT.FLOAT) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType,
          shape: create(TensorShapeProtoSchema, {
            dim: dims.map((d) =>
              create(TensorShapeProto_DimensionSchema, {
                value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
              }),
            ),
          }),
        }),
      },
    }),
  });
}

export interface GraphSpec {
  nodes: NodeProto[];
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  initializers?: TensorProto[];
  opset?: number;
}

export function buildModel(spec: GraphSpec): ModelProto {
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'quantlens-test',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(spec.opset ?? 13) })],
    graph: create(GraphProtoSchema, {
      name: 'test',
      node: spec.nodes,
      input: spec.inputs,
      output: spec.outputs,
      initializer: spec.initializers ?? [],
    }),
  });
}

/** A fresh temp folder per test file; removed by the caller with fs.rmSync when wanted. */
export function tempDir(prefix = 'quantlens-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeModel(dir: string, name: string, model: ModelProto): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, encodeModel(model));
  return file;
}

/** Deterministic pseudo-random numbers (xorshift32) in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randn(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A body graph (If branch, Loop/Scan body) for a graph-valued attribute. */
export function bodyGraph(name: string, spec: Omit<GraphSpec, 'opset'>) {
  return create(GraphProtoSchema, { name, node: spec.nodes, input: spec.inputs, output: spec.outputs, initializer: spec.initializers ?? [] });
}

/** A node with graph-valued attributes (If: then_branch/else_branch; Loop/Scan: body) and others. */
export function controlNode(
  op: string,
  inputs: string[],
  outputs: string[],
  name: string,
  graphs: Record<string, ReturnType<typeof bodyGraph>>,
  attrs: Record<string, number | number[]> = {},
): NodeProto {
  const n = makeNodeRaw(op, inputs, outputs, name, attrs);
  for (const [k, g] of Object.entries(graphs)) n.attribute.push(create(AttributeProtoSchema, { name: k, type: AttributeProto_AttributeType.GRAPH, g }));
  return n;
}
