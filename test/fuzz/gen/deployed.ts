/**
 * Already-quantized models (QDQ, analyzed as deployed, and `compare`): the tiny CNN quantized by
 * hand (uint8 activations, int8 per-channel weights), then its grids mutated: zero, negative,
 * non-finite and extreme scales, zero points of the wrong type, per-channel lengths and axes that
 * do not fit, a missing DequantizeLinear, a QuantizeLinear with no DequantizeLinear after it.
 */
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { encodeModel } from '../../../engine/onnx/model';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../../helpers/tinyModels';
import { type BaseModel, baseModels, protoOf } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { OUT_DIR, file, validNpz } from './common';

const floatsOf = (t: TensorProto) => new Float32Array(t.rawData.slice().buffer);

/** The tiny CNN with BatchNormalization folded into conv1, then Q/DQ around every activation and weight. */
export function qdqTiny(b: BaseModel): ModelProto {
  const g = protoOf(b).graph!;
  const w = (name: string) => {
    const t = g.initializer.find((x) => x.name === name)!;
    return { dims: t.dims.map(Number), v: floatsOf(t) };
  };
  // fold bn1 into conv1: w' = w * s / sqrt(v + eps), b' = (b - m) * s / sqrt(v + eps) + beta
  const w1 = w('w1'),
    b1 = w('b1'),
    s = w('bn_s').v,
    beta = w('bn_b').v,
    m = w('bn_m').v,
    v = w('bn_v').v;
  const k = Array.from(s, (sc, c) => sc / Math.sqrt(v[c] + 1e-5));
  const w1f = w1.v.map((x, i) => x * k[Math.floor(i / 9)]);
  const b1f = Array.from(b1.v, (x, c) => (x - m[c]) * k[c] + beta[c]);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  /** int8 codes per output channel (axis 0) and a DequantizeLinear giving `name`. */
  const weight = (name: string, dims: number[], values: ArrayLike<number>) => {
    const ch = dims[0];
    const per = values.length / ch;
    const scales = Array.from({ length: ch }, (_, c) => Math.max(1e-8, ...Array.from({ length: per }, (_, i) => Math.abs(values[c * per + i]))) / 127);
    const codes = Array.from(values, (x, i) => Math.max(-127, Math.min(127, Math.round(x / scales[Math.floor(i / per)]))));
    inits.push(
      makeTensor(`${name}_q`, DT.INT8, dims, codes),
      makeTensor(`${name}_s`, DT.FLOAT, [ch], scales),
      makeTensor(`${name}_z`, DT.INT8, [ch], new Array(ch).fill(0)),
    );
    nodes.push(makeNode('DequantizeLinear', [`${name}_q`, `${name}_s`, `${name}_z`], [name], `${name}_dq`, { axis: 0 }));
  };
  /** QuantizeLinear -> DequantizeLinear on activation `t` (uint8), giving `${t}_dq`. */
  const act = (t: string, scale: number, zero: number) => {
    inits.push(makeTensor(`${t}_s`, DT.FLOAT, [], [scale]), makeTensor(`${t}_z`, DT.UINT8, [], [zero]));
    nodes.push(
      makeNode('QuantizeLinear', [t, `${t}_s`, `${t}_z`], [`${t}_q`], `${t}_quant`),
      makeNode('DequantizeLinear', [`${t}_q`, `${t}_s`, `${t}_z`], [`${t}_dq`], `${t}_dequant`),
    );
  };
  act('x', 8 / 255, 128);
  weight('w1d', w1.dims, w1f);
  nodes.push(
    makeNode('Conv', ['x_dq', 'w1d', 'b1f'], ['c1'], 'conv1', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('Relu', ['c1'], ['r1'], 'relu1'),
  );
  inits.push(makeTensor('b1f', DT.FLOAT, [4], b1f));
  act('r1', 6 / 255, 0);
  const w2 = w('w2');
  weight('w2d', w2.dims, w2.v);
  nodes.push(
    makeNode('Conv', ['r1_dq', 'w2d', 'b2'], ['c2'], 'conv2', { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    makeNode('Relu', ['c2'], ['r2'], 'relu2'),
  );
  inits.push(makeTensor('b2', DT.FLOAT, [4], w('b2').v));
  act('r2', 6 / 255, 0);
  const wf = w('wf');
  weight('wfd', wf.dims, wf.v);
  nodes.push(
    makeNode('GlobalAveragePool', ['r2_dq'], ['p'], 'pool'),
    makeNode('Flatten', ['p'], ['f'], 'flatten', { axis: 1 }),
    makeNode('Gemm', ['f', 'wfd', 'bf'], ['y'], 'fc', { transB: 1 }),
  );
  inits.push(makeTensor('bf', DT.FLOAT, [3], w('bf').v));
  return buildModel({ nodes, inputs: [valueInfo('x', ['N', 1, 6, 6])], outputs: [valueInfo('y', ['N', 3])], initializers: inits });
}

interface Mutation {
  name: string;
  expect: Expectation;
  apply(m: ModelProto, r: Rng): string;
}

const init = (m: ModelProto, name: string) => m.graph!.initializer.find((t) => t.name === name)!;
function setScale(m: ModelProto, name: string, values: number[]) {
  const t = init(m, name);
  const fresh = makeTensor(name, DT.FLOAT, t.dims.map(Number), t.dims.length ? values.slice(0, Number(t.dims[0])) : values.slice(0, 1));
  t.rawData = fresh.rawData;
}
const SCALES = ['x_s', 'r1_s', 'r2_s', 'w1d_s', 'w2d_s', 'wfd_s'];

const MUTATIONS: Mutation[] = [
  { name: 'control', expect: 'accept', apply: () => 'hand-quantized tiny CNN (QDQ)' },
  {
    name: 'scale zero or negative',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(SCALES);
      const v = r.pick([0, -0.01, -1]);
      setScale(m, n, new Array(4).fill(v));
      return `${n} = ${v}`;
    },
  },
  {
    name: 'scale not finite',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(SCALES);
      const v = r.pick([NaN, Infinity, -Infinity]);
      setScale(m, n, new Array(4).fill(v));
      return `${n} = ${v}`;
    },
  },
  {
    name: 'scale extreme',
    expect: 'either',
    apply(m, r) {
      const n = r.pick(SCALES);
      const v = r.pick([1e38, 1e20, 1e-20, 1e-45]);
      setScale(m, n, new Array(4).fill(v));
      return `${n} = ${v}`;
    },
  },
  {
    name: 'zero point of another type',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(['x_z', 'r1_z', 'w1d_z']);
      const t = init(m, n);
      const to = r.pick([DT.INT32, DT.FLOAT, DT.INT64]);
      const fresh = makeTensor(n, to === DT.FLOAT ? DT.FLOAT : to, t.dims.map(Number), new Array(Math.max(1, Number(t.dims[0] ?? 1))).fill(0));
      t.dataType = to;
      t.rawData = fresh.rawData;
      return `${n} as ${DT[to]}`;
    },
  },
  {
    name: 'per-channel length wrong',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(['w1d', 'w2d']);
      const s = init(m, `${n}_s`);
      const z = init(m, `${n}_z`);
      // (a single scale is per-tensor for onnxruntime whatever the axis: not this mutation)
      const len = r.pick([2, 3, 5]);
      Object.assign(s, { dims: [BigInt(len)], rawData: makeTensor('s', DT.FLOAT, [len], new Array(len).fill(0.01)).rawData });
      Object.assign(z, { dims: [BigInt(len)], rawData: new Uint8Array(len) });
      return `${n} scales of length ${len} for 4 channels`;
    },
  },
  {
    name: 'axis out of range',
    expect: 'refuse',
    apply(m, r) {
      const name = r.pick(['w1d_dq', 'w2d_dq']);
      const dq = m.graph!.node.find((x) => x.name === name)!;
      const a = dq.attribute.find((x) => x.name === 'axis')!;
      a.i = BigInt(r.pick([4, 7, -9]));
      return `${dq.name} axis ${a.i}`;
    },
  },
  {
    name: 'weight DequantizeLinear missing',
    expect: 'refuse',
    apply(m, r) {
      const n = r.pick(['w1d', 'w2d']);
      m.graph!.node = m.graph!.node.filter((x) => x.name !== `${n}_dq`);
      for (const x of m.graph!.node) x.input = x.input.map((i) => (i === n ? `${n}_q` : i));
      return `${n.replace('d', '')} read as int8 codes by the Conv`;
    },
  },
  {
    name: 'QuantizeLinear without DequantizeLinear',
    expect: 'refuse',
    apply(m, r) {
      const t = r.pick(['r1', 'r2']);
      m.graph!.node = m.graph!.node.filter((x) => x.name !== `${t}_dequant`);
      for (const x of m.graph!.node) x.input = x.input.map((i) => (i === `${t}_dq` ? `${t}_q` : i));
      return `${t} codes (uint8) fed to the next op`;
    },
  },
  {
    name: 'weight codes all zero',
    expect: 'either',
    apply(m, r) {
      const n = r.pick(['w1d_q', 'w2d_q', 'wfd_q']);
      init(m, n).rawData = new Uint8Array(init(m, n).rawData.length);
      return `${n} all zero`;
    },
  },
];

type Cmd = 'analyze' | 'gate' | 'compare' | 'quantize';

export const deployedModels: Generator = {
  name: 'model-deployed',
  group: 'models',
  weight: 60,
  make(r: Rng, index: number): CaseDraft {
    const mut = MUTATIONS[index % MUTATIONS.length];
    const b = baseModels().tiny;
    const good = qdqTiny(b);
    const m = qdqTiny(b);
    const what = mut.apply(m, r);
    const cmd: Cmd = r.pick(['analyze', 'analyze', 'gate', 'compare', 'compare', 'quantize']);
    const files: FileSpec[] = [file('q.onnx', encodeModel(m)), file('data.npz', validNpz(b)), OUT_DIR];
    const common = ['--data', 'data.npz', '--samples', '2', '--quiet'];
    let args: string[];
    let expect = mut.expect;
    let title = `${mut.name}: ${what}`;
    if (cmd === 'compare') {
      // A: the good model (or the float one, which compare refuses), B: the mutated one
      const againstFloat = r.bool(0.15);
      files.push(file('a.onnx', againstFloat ? b.bytes : encodeModel(good)));
      args = ['compare', 'a.onnx', 'q.onnx', ...common, '--no-sensitivity', '--report', 'out/report.json'];
      if (againstFloat) {
        expect = 'refuse';
        title += ', compared with the FLOAT model';
      }
    } else if (cmd === 'quantize') {
      // a model that is already quantized is not quantized again
      args = ['quantize', 'q.onnx', ...common, '--out', 'out/q2.onnx'];
      expect = 'refuse';
    } else {
      args = [cmd, 'q.onnx', ...common, ...(cmd === 'gate' ? ['--max-drop', '100'] : ['--no-sensitivity']), '--report', 'out/report.json'];
    }
    return { kind: 'cli', title: `${cmd}: ${title}`, expect, files, args, report: args.includes('--report') ? 'out/report.json' : undefined };
  },
};
