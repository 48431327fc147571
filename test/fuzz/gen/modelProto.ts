/**
 * Models mutated as protobuf messages (decoded with onnx-buf, changed, encoded again): shapes,
 * element types, raw_data lengths, names, cycles, outputs, attributes, operators, opsets, weight
 * values and input shapes. Each mutation says whether the result must be refused.
 */
import { clearField, create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType as AT,
  type ModelProto,
  OperatorSetIdProtoSchema,
  type TensorProto,
  TensorProtoSchema,
  TensorProto_DataType as DT,
  TensorShapeProto_DimensionSchema,
} from 'onnx-buf';
import { encodeModel } from '../../../engine/onnx/model';
import { makeNode, makeTensor } from '../../helpers/tinyModels';
import { type BaseModel, baseModels, protoOf } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, Generator } from '../types';
import { cliCase, file, pickCommand, validNpz } from './common';

interface Mutation {
  name: string;
  expect: Expectation;
  /** Change `m` in place; return what was done (for the case title). */
  apply(m: ModelProto, r: Rng, b: BaseModel): string;
  /** Run without --data (synthetic inputs). */
  noData?: boolean;
}

const g = (m: ModelProto) => m.graph!;
const weights = (m: ModelProto) => g(m).initializer.filter((t) => t.rawData.length >= 8);
const floatsOf = (t: TensorProto) => new Float32Array(t.rawData.slice().buffer);
function setFloats(t: TensorProto, v: Float32Array) {
  t.rawData = new Uint8Array(v.buffer.slice(0)) as Uint8Array<ArrayBuffer>;
}
const nodesOf = (m: ModelProto, op: string) => g(m).node.filter((n) => n.opType === op);
const outputsOf = (m: ModelProto) => g(m).node.flatMap((n) => n.output);
function inputDims(m: ModelProto) {
  const t = g(m).input[0].type!.value;
  if (t.case !== 'tensorType') throw new Error('input is not a tensor');
  return t.value;
}
const dimOf = (v: number | string) =>
  create(TensorShapeProto_DimensionSchema, { value: typeof v === 'number' ? { case: 'dimValue', value: BigInt(v) } : { case: 'dimParam', value: v } });

/** Put `values` at random positions of a random float weight. */
function poison(m: ModelProto, r: Rng, values: number[]): string {
  const t = r.pick(weights(m));
  const v = floatsOf(t);
  const k = r.int(1, Math.min(4, v.length));
  for (let i = 0; i < k; i++) v[r.int(0, v.length - 1)] = r.pick(values);
  setFloats(t, v);
  return `${k} value(s) of ${t.name} set to ${values.join('/')}`;
}

const MUTATIONS: Mutation[] = [
  { name: 'control', expect: 'accept', apply: () => 'unchanged (decoded and encoded again)' },
  {
    name: 'typed-field weights',
    expect: 'accept',
    apply(m) {
      // Weights moved from raw_data to float_data: another valid encoding of the same model.
      for (const t of weights(m)) {
        t.floatData = Array.from(floatsOf(t));
        clearField(t, TensorProtoSchema.field.rawData);
      }
      return 'every weight in float_data instead of raw_data';
    },
  },
  {
    name: 'empty raw_data beside float_data',
    expect: 'either',
    apply(m, r) {
      // raw_data present but empty (proto2 presence) while the values sit in float_data
      const t = r.pick(weights(m));
      t.floatData = Array.from(floatsOf(t));
      t.rawData = new Uint8Array(0);
      return `${t.name} in float_data with an empty raw_data field`;
    },
  },
  {
    name: 'dims changed',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      const i = r.int(0, t.dims.length - 1);
      const old = t.dims[i];
      t.dims[i] = r.pick([old + 1n, old * 2n, 0n, old + 1000n]);
      return `${t.name} dims[${i}] ${old} -> ${t.dims[i]}`;
    },
  },
  {
    name: 'dims negative / huge / dropped',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      const how = r.pick(['negative', 'huge', 'drop', 'extra']);
      if (how === 'negative') t.dims[0] = -t.dims[0];
      else if (how === 'huge') t.dims[0] = r.pick([2n ** 40n, 2n ** 62n, 2n ** 31n]);
      else if (how === 'drop') t.dims.pop();
      else t.dims.push(r.pick([2n, 7n]));
      return `${t.name} dims ${how}: [${t.dims.join(',')}]`;
    },
  },
  {
    name: 'data type changed',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      const to = r.pick([DT.DOUBLE, DT.INT32, DT.INT64, DT.UINT8, DT.FLOAT16, DT.STRING, DT.BOOL, DT.UNDEFINED, 999, 23, DT.COMPLEX64, DT.UINT32]);
      t.dataType = to;
      return `${t.name} data_type FLOAT -> ${DT[to] ?? to}`;
    },
  },
  {
    name: 'raw_data length',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      const n = t.rawData.length;
      const to = r.pick([n - 1, n - 4, n + 1, n + 4, Math.floor(n / 2), 0, 1]);
      const raw = new Uint8Array(to);
      raw.set(t.rawData.subarray(0, Math.min(n, to)));
      // length 0 with no typed values is also a size mismatch
      t.rawData = raw;
      return `${t.name} raw_data ${n} -> ${to} bytes`;
    },
  },
  {
    name: 'typed values short',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      const v = Array.from(floatsOf(t));
      clearField(t, TensorProtoSchema.field.rawData);
      t.floatData = v.slice(0, r.int(0, v.length - 1));
      return `${t.name} as ${t.floatData.length} float_data values of ${v.length}`;
    },
  },
  {
    name: 'dangling input',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(g(m).node);
      const i = r.int(0, n.input.length - 1);
      n.input[i] = r.pick(['nowhere', `${n.input[i]}_x`, ' ', 'logits ']);
      return `${n.name} input ${i} -> "${n.input[i]}"`;
    },
  },
  {
    name: 'initializer removed',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(weights(m));
      g(m).initializer = g(m).initializer.filter((x) => x !== t);
      return `initializer ${t.name} removed`;
    },
  },
  {
    name: 'duplicate output',
    expect: 'refuse',
    apply(m, r) {
      const nodes = g(m).node;
      const i = r.int(0, nodes.length - 2);
      const j = r.int(i + 1, nodes.length - 1);
      nodes[j].output[0] = nodes[i].output[0];
      return `${nodes[j].name} writes ${nodes[i].output[0]} too`;
    },
  },
  {
    name: 'duplicate node name',
    expect: 'refuse',
    apply(m, r) {
      const nodes = g(m).node;
      const i = r.int(0, nodes.length - 2);
      const j = r.int(i + 1, nodes.length - 1);
      nodes[j].name = nodes[i].name;
      return `node #${j} renamed ${nodes[i].name}`;
    },
  },
  {
    name: 'cycle',
    expect: 'refuse',
    apply(m, r) {
      const nodes = g(m).node;
      const i = r.int(0, nodes.length - 2);
      const j = r.int(i, nodes.length - 1);
      // node i reads what node j (at or after it, hence downstream) writes: a cycle or a self loop
      nodes[i].input[0] = nodes[j].output[0];
      return `${nodes[i].name} reads ${nodes[j].output[0]} (of ${nodes[j].name})`;
    },
  },
  {
    name: 'writes an input or initializer',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(g(m).node);
      n.output[0] = r.pick([g(m).input[0].name, r.pick(weights(m)).name]);
      return `${n.name} writes ${n.output[0]}`;
    },
  },
  {
    name: 'outputs missing',
    expect: 'refuse',
    apply(m, r) {
      const how = r.pick(['none', 'ghost', 'empty', 'twice-ghost']);
      if (how === 'none') g(m).output = [];
      else if (how === 'ghost') g(m).output[0].name = 'ghost';
      else if (how === 'empty') g(m).output[0].name = '';
      else g(m).output.push({ ...g(m).output[0], name: 'ghost2' });
      return `graph outputs: ${how}`;
    },
  },
  {
    name: 'attribute of wrong type',
    expect: 'refuse',
    apply(m, r) {
      const conv = r.pick(nodesOf(m, 'Conv'));
      const a = conv.attribute.find((x) => x.name === r.pick(['kernel_shape', 'strides', 'pads', 'dilations', 'group'])) ?? conv.attribute[0];
      const to = r.pick([AT.FLOAT, AT.STRING, AT.TENSOR, AT.GRAPH, AT.FLOATS, AT.STRINGS, AT.INT, AT.UNDEFINED, 99]);
      if (to === a.type) a.type = AT.STRING;
      else a.type = to;
      if (a.type === AT.FLOAT) a.f = 1.5;
      if (a.type === AT.STRING) a.s = new TextEncoder().encode('3,3');
      if (a.type === AT.INT && a.ints.length) a.i = 0n;
      return `${conv.name} attribute ${a.name} typed ${AT[a.type] ?? a.type}`;
    },
  },
  {
    name: 'attribute of bad value',
    expect: 'refuse',
    apply(m, r) {
      const conv = r.pick(nodesOf(m, 'Conv'));
      const set = (name: string, ints: number[]) => {
        const a = conv.attribute.find((x) => x.name === name);
        if (a) a.ints = ints.map(BigInt);
        else conv.attribute.push(makeNode('X', [], [], 'x', { [name]: ints }).attribute[0]);
      };
      const how = r.pick(['kernel 5x5', 'kernel 1-D', 'strides 0', 'dilations 0', 'group 0', 'group 3', 'auto_pad bogus']);
      if (how === 'kernel 5x5') set('kernel_shape', [5, 5]);
      else if (how === 'kernel 1-D') set('kernel_shape', [3]);
      else if (how === 'strides 0') set('strides', [0, 0]);
      else if (how === 'dilations 0') set('dilations', [0, 0]);
      else if (how.startsWith('group')) {
        conv.attribute = conv.attribute.filter((a) => a.name !== 'group');
        conv.attribute.push(makeNode('X', [], [], 'x', { group: how === 'group 0' ? 0 : 3 }).attribute[0]);
      } else {
        conv.attribute = conv.attribute.filter((a) => a.name !== 'pads');
        conv.attribute.push(makeNode('X', [], [], 'x', { auto_pad: 'BOGUS' }).attribute[0]);
      }
      return `${conv.name} ${how}`;
    },
  },
  {
    name: 'unknown operator',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(g(m).node);
      const how = r.pick(['op', 'domain']);
      if (how === 'op') n.opType = r.pick(['NoSuchOp', 'conv', '', 'Conv2D']);
      else n.domain = r.pick(['com.example.evil', 'ai.onnx.ml.bogus']);
      return `${n.name} ${how === 'op' ? `op "${n.opType}"` : `domain ${n.domain}`}`;
    },
  },
  {
    name: 'opset out of range',
    expect: 'refuse',
    apply(m, r) {
      const v = r.pick([0n, 999n, -1n, 2n ** 40n]);
      m.opsetImport = [create(OperatorSetIdProtoSchema, { domain: '', version: v })];
      return `opset ${v}`;
    },
  },
  {
    name: 'opset other',
    expect: 'either',
    apply(m, r) {
      const how = r.pick(['old', 'new', 'none', 'twice']);
      if (how === 'none') m.opsetImport = [];
      else if (how === 'twice') m.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: '', version: 11n }));
      else m.opsetImport = [create(OperatorSetIdProtoSchema, { domain: '', version: how === 'old' ? BigInt(r.int(1, 10)) : BigInt(r.int(14, 22)) })];
      return `opset ${how}: ${m.opsetImport.map((o) => o.version).join(',') || 'none'}`;
    },
  },
  {
    name: 'ir_version',
    expect: 'either',
    apply(m, r) {
      m.irVersion = r.pick([0n, 1n, 3n, 99n, 2n ** 40n]);
      return `ir_version ${m.irVersion}`;
    },
  },
  { name: 'NaN weights', expect: 'refuse', apply: (m, r) => poison(m, r, [NaN]) },
  { name: 'infinite weights', expect: 'refuse', apply: (m, r) => poison(m, r, [Infinity, -Infinity]) },
  { name: 'huge weights', expect: 'either', apply: (m, r) => poison(m, r, [1e38, -1e38, 3.4e38, 1e31]) },
  { name: 'tiny weights', expect: 'either', apply: (m, r) => poison(m, r, [1e-45, -1e-40, 1e-30]) },
  {
    name: 'all-zero weight',
    expect: 'either',
    apply(m, r) {
      const t = r.pick(weights(m));
      setFloats(t, new Float32Array(floatsOf(t).length));
      return `${t.name} all zero`;
    },
  },
  {
    name: 'BatchNorm negative variance',
    expect: 'refuse',
    apply(m, r) {
      const bn = r.pick(nodesOf(m, 'BatchNormalization'));
      const t = g(m).initializer.find((x) => x.name === bn.input[4])!;
      const v = floatsOf(t);
      v[r.int(0, v.length - 1)] = -r.pick([1e-3, 1, 100]);
      setFloats(t, v);
      return `${bn.name} variance ${t.name} gets a negative entry`;
    },
  },
  {
    name: 'BatchNorm zero variance',
    expect: 'either',
    apply(m, r) {
      const bn = r.pick(nodesOf(m, 'BatchNormalization'));
      const t = g(m).initializer.find((x) => x.name === bn.input[4])!;
      setFloats(t, new Float32Array(floatsOf(t).length));
      if (r.bool()) bn.attribute = bn.attribute.filter((a) => a.name !== 'epsilon').concat(makeNode('X', [], [], 'x', { epsilon: { float: 0 } }).attribute);
      return `${bn.name} variance all zero${bn.attribute.some((a) => a.name === 'epsilon' && a.f === 0) ? ', epsilon 0' : ''}`;
    },
  },
  {
    name: 'huge fixed input dims',
    expect: 'refuse',
    apply(m, r, b) {
      const dims = r.pick([
        [1, 1, 100000, 100000],
        [2 ** 31, 1, 6, 6],
        [1, 1, 30000, 30000],
        [1, 1, 8000, 8000],
      ]);
      inputDims(m).shape!.dim = dims.map(dimOf);
      return `${b.name} input shape fixed to [${dims.join(',')}]`;
    },
  },
  {
    name: 'huge fixed input dims, synthetic data',
    expect: 'refuse',
    noData: true,
    apply(m, r, b) {
      // No data file: QuantLens makes synthetic inputs of the declared shape; it must not try 10 GB.
      const dims = r.pick([
        [1, 1, 30000, 30000],
        [64, 1, 8192, 8192],
        ['N', 1, 50000, 50000],
      ]);
      inputDims(m).shape!.dim = dims.map(dimOf);
      return `${b.name} input shape fixed to [${dims.join(',')}], no --data`;
    },
  },
  {
    name: 'input shape wrong',
    expect: 'refuse',
    apply(m, r, b) {
      const dims = r.pick([
        ['N', 3, ...b.sample.slice(1)],
        ['N', ...b.sample, 1],
        ['N', b.sample.reduce((x, y) => x * y, 1)],
        [-1, ...b.sample],
      ]);
      inputDims(m).shape!.dim = dims.map(dimOf);
      return `${b.name} input shape [${dims.join(',')}]`;
    },
  },
  {
    name: 'input element type',
    expect: 'refuse',
    apply(m, r) {
      const to = r.pick([DT.STRING, DT.INT8, DT.UNDEFINED, 999, DT.COMPLEX64, DT.BOOL]);
      inputDims(m).elemType = to;
      return `input element type ${DT[to] ?? to}`;
    },
  },
  {
    name: 'no nodes',
    expect: 'refuse',
    apply(m) {
      g(m).node = [];
      return 'every node removed';
    },
  },
  {
    name: 'graph input declared twice',
    expect: 'refuse',
    apply(m) {
      g(m).input.push(g(m).input[0]);
      return `${g(m).input[0].name} declared twice`;
    },
  },
  {
    name: 'weight of wrong rank',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick([...nodesOf(m, 'Conv'), ...nodesOf(m, 'Gemm')]);
      const t = g(m).initializer.find((x) => x.name === n.input[1])!;
      const count = t.dims.reduce((a, b) => a * b, 1n);
      t.dims = r.pick([[count], [1n, count], [...t.dims].reverse()]);
      return `${n.name} weight ${t.name} dims [${t.dims.join(',')}]`;
    },
  },
  {
    name: 'Constant node with NaN',
    expect: 'refuse',
    apply(m, r) {
      // A bias moved out of the initializers into a Constant node holding a NaN.
      const t = r.pick(g(m).initializer.filter((x) => x.dims.length === 1 && x.rawData.length >= 4));
      g(m).initializer = g(m).initializer.filter((x) => x !== t);
      const v = floatsOf(t);
      v[0] = NaN;
      g(m).node.unshift(makeNode('Constant', [], [t.name], `const_${t.name}`, { value: makeTensor('v', DT.FLOAT, t.dims.map(Number), v) }));
      return `${t.name} from a Constant node holding NaN`;
    },
  },
  {
    name: 'Constant node',
    expect: 'accept',
    apply(m, r) {
      const t = r.pick(g(m).initializer.filter((x) => x.dims.length === 1 && x.rawData.length >= 4));
      g(m).initializer = g(m).initializer.filter((x) => x !== t);
      g(m).node.unshift(makeNode('Constant', [], [t.name], `const_${t.name}`, { value: makeTensor('v', DT.FLOAT, t.dims.map(Number), floatsOf(t)) }));
      return `${t.name} from a Constant node`;
    },
  },
  {
    name: 'node names removed',
    expect: 'accept',
    apply(m) {
      for (const n of g(m).node) n.name = '';
      return 'every node unnamed';
    },
  },
  {
    name: 'output type wrong',
    expect: 'either',
    apply(m, r) {
      const t = g(m).output[0].type!.value;
      if (t.case === 'tensorType') t.value.elemType = r.pick([DT.INT64, DT.DOUBLE, DT.STRING]);
      return 'graph output declared with another element type';
    },
  },
  {
    name: 'renamed tensors',
    expect: 'accept',
    apply(m, r) {
      // Odd but legal names: spaces, slashes, unicode, very long.
      const rename = new Map<string, string>();
      for (const o of outputsOf(m)) if (!g(m).output.some((x) => x.name === o)) rename.set(o, r.pick([`${o} x`, `a/b\\c:${o}`, `é${o}✓`, o.padEnd(300, '_')]));
      for (const n of g(m).node) n.input = n.input.map((i) => rename.get(i) ?? i);
      for (const n of g(m).node) n.output = n.output.map((o) => rename.get(o) ?? o);
      return `${rename.size} intermediate tensors renamed`;
    },
  },
];

/** Nodes with Conv/BatchNormalization exist in both base models; every mutation applies to both. */
export const modelProto: Generator = {
  name: 'model-proto',
  group: 'models',
  weight: 180,
  make(r: Rng, index: number): CaseDraft {
    const mut = MUTATIONS[index % MUTATIONS.length];
    const { demo, tiny } = baseModels();
    const b = r.bool(0.6) ? tiny : demo;
    const m = protoOf(b);
    const what = mut.apply(m, r, b);
    const bytes = encodeModel(m);
    return cliCase(
      { title: `${mut.name}: ${what}`, expect: mut.expect, files: [file('model.onnx', bytes), file('data.npz', validNpz(b))] },
      pickCommand(r),
      'model.onnx',
      mut.noData ? undefined : 'data.npz',
    );
  },
};
