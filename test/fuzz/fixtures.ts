/**
 * The inputs the generators mutate, built once per process and identical on every run: the demo
 * CNN (examples/mnist-cnn) with a few of its samples, and a tiny CNN (Conv, BatchNormalization,
 * Relu, Conv, pooling, Gemm: 3 classes on 1x6x6 inputs) with seeded weights and data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelProto } from 'onnx-buf';
import { decodeModel, encodeModel, cloneModel } from '../../engine/onnx/model';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../helpers/tinyModels';
import { rngFrom } from './random';

export const ROOT = path.resolve(__dirname, '../..');

export interface BaseModel {
  name: 'demo' | 'tiny';
  proto: ModelProto;
  bytes: Uint8Array;
  input: string;
  /** Per-sample input shape. */
  sample: number[];
  classes: number;
  /** A few valid samples (flattened, float32) and labels for them. */
  data: Float32Array;
  samples: number;
  labels: number[];
}

let cache: { demo: BaseModel; tiny: BaseModel } | undefined;

export function baseModels(): { demo: BaseModel; tiny: BaseModel } {
  if (!cache) cache = { demo: demoModel(), tiny: tinyModel() };
  return cache;
}

/** A fresh, mutable copy of a base model's protobuf. */
export function protoOf(b: BaseModel): ModelProto {
  return cloneModel(b.proto);
}

/** The body of a little-endian float32/int64 .npy written by numpy (header parsed just enough). */
function npyBody(file: string): { shape: number[]; body: Uint8Array; descr: string } {
  const bytes = fs.readFileSync(file);
  const hlen = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + hlen).toString('latin1');
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)![1]
    .split(',')
    .filter((s) => s.trim())
    .map(Number);
  const descr = /'descr': '([^']*)'/.exec(header)![1];
  return { shape, body: new Uint8Array(bytes.subarray(10 + hlen)), descr };
}

function demoModel(): BaseModel {
  const dir = path.join(ROOT, 'examples/mnist-cnn');
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'model.onnx')));
  const proto = decodeModel(bytes, 'demo').proto;
  const samples = 4;
  const x = npyBody(path.join(dir, 'data/input.npy'));
  if (x.descr !== '<f4') throw new Error(`demo input dtype ${x.descr}`);
  const per = 28 * 28;
  const data = new Float32Array(x.body.slice(0, samples * per * 4).buffer);
  const y = npyBody(path.join(dir, 'data/labels.npy'));
  const labelView = new DataView(y.body.buffer, y.body.byteOffset);
  const labels = Array.from({ length: samples }, (_, i) => (y.descr === '<i8' ? Number(labelView.getBigInt64(i * 8, true)) : labelView.getInt32(i * 4, true)));
  return { name: 'demo', proto, bytes, input: 'input', sample: [1, 28, 28], classes: 10, data, samples, labels };
}

function tinyModel(): BaseModel {
  const r = rngFrom(20240601);
  const w = (n: number, scale: number) => Array.from({ length: n }, () => r.normal() * scale);
  const proto = buildModel({
    nodes: [
      makeNode('Conv', ['x', 'w1', 'b1'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('BatchNormalization', ['c1', 'bn_s', 'bn_b', 'bn_m', 'bn_v'], ['n1'], 'bn1', { epsilon: { float: 1e-5 } }),
      makeNode('Relu', ['n1'], ['r1'], 'relu1'),
      makeNode('Conv', ['r1', 'w2', 'b2'], ['c2'], 'conv2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      makeNode('Relu', ['c2'], ['r2'], 'relu2'),
      makeNode('GlobalAveragePool', ['r2'], ['p'], 'pool'),
      makeNode('Flatten', ['p'], ['f'], 'flatten', { axis: 1 }),
      makeNode('Gemm', ['f', 'wf', 'bf'], ['y'], 'fc', { transB: 1 }),
    ],
    inputs: [valueInfo('x', ['N', 1, 6, 6])],
    outputs: [valueInfo('y', ['N', 3])],
    initializers: [
      makeTensor('w1', DT.FLOAT, [4, 1, 3, 3], w(36, 0.5)),
      makeTensor('b1', DT.FLOAT, [4], w(4, 0.1)),
      makeTensor('bn_s', DT.FLOAT, [4], [1, 0.8, 1.2, 0.9]),
      makeTensor('bn_b', DT.FLOAT, [4], [0.1, -0.1, 0, 0.2]),
      makeTensor('bn_m', DT.FLOAT, [4], [0, 0.1, -0.1, 0.05]),
      makeTensor('bn_v', DT.FLOAT, [4], [1, 0.5, 2, 1.5]),
      makeTensor('w2', DT.FLOAT, [4, 4, 3, 3], w(144, 0.3)),
      makeTensor('b2', DT.FLOAT, [4], w(4, 0.1)),
      makeTensor('wf', DT.FLOAT, [3, 4], w(12, 0.8)),
      makeTensor('bf', DT.FLOAT, [3], [0, 0.1, -0.1]),
    ],
  });
  const samples = 6;
  const data = Float32Array.from({ length: samples * 36 }, () => r.normal());
  const labels = Array.from({ length: samples }, (_, i) => i % 3);
  const bytes = encodeModel(proto);
  return { name: 'tiny', proto, bytes, input: 'x', sample: [1, 6, 6], classes: 3, data, samples, labels };
}
