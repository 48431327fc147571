/**
 * Requests to the engine server (as the VS Code host sends them over IPC): null and garbage
 * params, wrong types, huge numbers, paths outside the workspace (directly, through .., through
 * symlinks), outputs onto inputs and existing files, special files, unknown methods, and valid
 * requests that must succeed with finite numbers. "{case}" is the case folder inside the
 * workspace, "{outside}" a folder outside it.
 */
import { resolveConfig } from '../../../engine/quantize/presets';
import { encodeModel } from '../../../engine/onnx/model';
import { baseModels, protoOf } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { file, validNpz } from './common';
import { qdqTiny } from './deployed';

interface Req {
  name: string;
  method: string;
  params: unknown;
  expect: Expectation;
  files?: FileSpec[];
  mayChange?: string[];
  mustNotExist?: string[];
  mentions?: string[];
}

const ANALYZE = 'quantlens/analyze';
const QUANTIZE = 'quantlens/quantize';

function requests(r: Rng): Req[] {
  const config = resolveConfig(r.pick(['tensorrt', 'ort-cpu', 'qnn', 'power-of-two'] as const), {
    calibration: r.pick(['minmax', 'percentile', 'mse', 'ema'] as const),
  });
  const run = { modelPath: '{case}/model.onnx', dataPath: '{case}/data.npz', samples: 2, config };
  const analyze = { ...run, sensitivity: false, sqnrWarningDb: 20 };
  const quantize = { ...run, outPath: '{case}/q.onnx' };
  const garbage = () => r.pick<unknown>([null, [], 42, 'str', true, {}, [analyze], { params: analyze }, -0, 1e308]);
  const qdq = encodeModel(qdqTiny(baseModels().tiny));
  const nan = protoOf(baseModels().tiny);
  new DataView(nan.graph!.initializer[0].rawData.buffer, nan.graph!.initializer[0].rawData.byteOffset).setFloat32(0, NaN, true);
  return [
    { name: 'valid analyze', method: ANALYZE, params: analyze, expect: 'accept' },
    { name: 'valid quantize', method: QUANTIZE, params: quantize, expect: 'accept' },
    {
      name: 'valid outline',
      method: 'quantlens/outline',
      params: { modelPath: '{case}/model.onnx', uri: 'quantlens-outline:{case}/model.onnx.outline' },
      expect: 'accept',
    },
    {
      name: 'valid sweep',
      method: 'quantlens/sweep',
      params: { ...run, configs: [config, { ...config, weights: { ...config.weights, bits: 4 } }] },
      expect: 'accept',
    },
    { name: 'valid mixed precision', method: 'quantlens/mixedPrecision', params: { ...run, maxDrop: r.pick([100, 1e308, 0.5]) }, expect: 'accept' },
    {
      name: 'garbage params',
      method: r.pick([ANALYZE, QUANTIZE, 'quantlens/sweep', 'quantlens/mixedPrecision', 'quantlens/outline', 'quantlens/allowPath']),
      params: garbage(),
      expect: 'refuse',
      mentions: ['params', 'request'],
    },
    {
      name: 'wrong types',
      method: ANALYZE,
      expect: 'refuse',
      ...(() => {
        // a value of another JSON type than the field's
        const wrong: Record<string, unknown[]> = {
          modelPath: [42, null, [], { x: 1 }, true],
          dataPath: [42, null, [], true],
          samples: ['2', null, [], { x: 1 }, true],
          config: [42, 'tensorrt', null, [], true],
          sensitivity: ['yes', 1, null, []],
          sqnrWarningDb: ['20', null, [], true],
          workDoneToken: [{}, [], true],
        };
        const key = r.pick(Object.keys(wrong));
        return { params: { ...analyze, [key]: r.pick(wrong[key]) }, mentions: [key] };
      })(),
    },
    {
      name: 'config fields wrong',
      method: ANALYZE,
      expect: 'refuse',
      ...(() => {
        const how = r.pick(['preset', 'bits', 'percentile', 'extra key', 'exclude type', 'calibration']);
        const c = structuredClone(config) as unknown as Record<string, unknown>;
        if (how === 'preset') c.preset = 'evil';
        else if (how === 'bits') (c.weights as Record<string, unknown>).bits = r.pick([5, 0, -8, 8.5, 1e308]);
        else if (how === 'percentile') c.percentile = r.pick([0, -1, 100.0001, 1e308]);
        else if (how === 'extra key') c.__proto_pollution__ = { polluted: true };
        else if (how === 'exclude type') c.exclude = r.pick([['a', 1], 'conv1', null]);
        else c.calibration = r.pick(['', 'kl', null]);
        return { params: { ...analyze, config: c }, mentions: ['config'] };
      })(),
    },
    {
      name: 'huge numbers',
      method: ANALYZE,
      expect: 'refuse',
      ...(() => {
        const [key, value] = r.pick<[string, number]>([
          ['samples', 1e308],
          ['samples', 2.5],
          ['samples', -1],
          ['samples', 0],
          ['samples', 2 ** 53 + 2],
          ['sqnrWarningDb', -Infinity],
        ]);
        return { params: { ...analyze, [key]: value }, mentions: [key] };
      })(),
    },
    {
      name: 'big but allowed numbers',
      method: ANALYZE,
      params: { ...analyze, samples: r.pick([10_000_000, 7]), sqnrWarningDb: r.pick([1e308, -1e308, 0]) },
      expect: 'accept',
    },
    {
      name: 'maxDrop out of range',
      method: 'quantlens/mixedPrecision',
      params: { ...run, maxDrop: r.pick([-1, -1e-9, 'x', null]) },
      expect: 'refuse',
      mentions: ['maxDrop'],
    },
    {
      name: 'too many excluded names',
      method: ANALYZE,
      params: { ...analyze, config: { ...config, exclude: Array.from({ length: 100_001 }, (_, i) => `n${i}`) } },
      expect: 'refuse',
      mentions: ['exclude'],
    },
    {
      name: 'too many sweep configs',
      method: 'quantlens/sweep',
      params: { ...run, configs: r.pick([[], Array.from({ length: 1001 }, () => config)]) },
      expect: 'refuse',
      mentions: ['configs'],
    },
    {
      name: 'path strings bad',
      method: ANALYZE,
      expect: 'refuse',
      ...(() => {
        const key = r.pick(['modelPath', 'dataPath']);
        const value = r.pick([
          '',
          'model.onnx',
          './model.onnx',
          '{case}/model.onnx\u0000.txt',
          `{case}/${'a'.repeat(5000)}`,
          '~/model.onnx',
          'file:///etc/passwd',
        ]);
        return { params: { ...analyze, [key]: value }, mentions: [key, 'model.onnx', 'model', 'calibration data'] };
      })(),
    },
    {
      name: 'outside the workspace',
      method: r.pick([ANALYZE, 'quantlens/outline']),
      expect: 'refuse',
      files: [file('{outside}/model.onnx', baseModels().tiny.bytes), file('{outside}/data.npz', validNpz(baseModels().tiny))],
      ...(() => {
        const where = r.pick(['{outside}/model.onnx', '{case}/../../outside/{name}/model.onnx', '/etc/passwd', '/dev/zero', '/proc/self/environ']);
        return { params: { ...analyze, modelPath: where, uri: 'quantlens-outline:x' }, mentions: ['outside', 'model'] };
      })(),
    },
    {
      name: 'data outside the workspace',
      method: ANALYZE,
      expect: 'refuse',
      files: [file('{outside}/data.npz', validNpz(baseModels().tiny)), { path: 'dlink.npz', kind: 'symlink', target: '{outside}/data.npz' }],
      params: { ...analyze, dataPath: r.pick(['{outside}/data.npz', '{case}/dlink.npz', '/dev/zero']) },
      mentions: ['outside', 'data'],
    },
    {
      name: 'symlink escaping the workspace',
      method: r.pick([ANALYZE, 'quantlens/outline']),
      expect: 'refuse',
      files: [
        file('{outside}/model.onnx', baseModels().tiny.bytes),
        { path: 'escape', kind: 'symlink', target: '{outside}' },
        { path: 'mlink.onnx', kind: 'symlink', target: '{outside}/model.onnx' },
      ],
      params: { ...analyze, modelPath: r.pick(['{case}/escape/model.onnx', '{case}/mlink.onnx']), uri: 'quantlens-outline:x' },
      mentions: ['outside'],
    },
    {
      name: 'output outside the workspace',
      method: QUANTIZE,
      expect: 'refuse',
      files: [{ path: 'escape', kind: 'symlink', target: '{outside}' }],
      params: {
        ...quantize,
        outPath: r.pick(['{outside}/q.onnx', '{case}/escape/q.onnx', '{case}/../../outside/{name}/q.onnx', '/tmp/quantlens-fuzz-escape.onnx']),
      },
      mustNotExist: ['{outside}/q.onnx', '/tmp/quantlens-fuzz-escape.onnx'],
      mentions: ['outside', 'output'],
    },
    {
      name: 'output onto an input',
      method: QUANTIZE,
      expect: 'refuse',
      files: [{ path: 'alias.onnx', kind: 'symlink', target: 'model.onnx' }],
      params: { ...quantize, force: r.bool(), outPath: r.pick(['{case}/model.onnx', '{case}/data.npz', '{case}/alias.onnx', '{case}/./model.onnx']) },
      mentions: ['input'],
    },
    {
      name: 'output onto an existing file',
      method: QUANTIZE,
      expect: 'refuse',
      files: [file('keep.onnx', new TextEncoder().encode('precious'))],
      params: { ...quantize, outPath: '{case}/keep.onnx', force: r.pick([false, undefined]) },
      mentions: ['keep.onnx'],
    },
    {
      name: 'output onto an existing file, forced',
      method: QUANTIZE,
      expect: 'accept',
      files: [file('keep.onnx', new TextEncoder().encode('precious'))],
      params: { ...quantize, outPath: '{case}/keep.onnx', force: true },
      mayChange: ['keep.onnx'],
    },
    {
      name: 'output onto a special file',
      method: QUANTIZE,
      expect: 'refuse',
      files: [
        { path: 'pipe', kind: 'fifo' },
        { path: 'dir', kind: 'dir' },
      ],
      params: { ...quantize, force: r.bool(), outPath: r.pick(['{case}/pipe', '{case}/dir', '{case}', '{case}/nofolder/q.onnx']) },
      mentions: ['pipe', 'dir', 'nofolder', 'folder'],
    },
    {
      name: 'special model file',
      method: r.pick([ANALYZE, 'quantlens/outline']),
      expect: 'refuse',
      files: [{ path: 'pipe.onnx', kind: 'fifo' }, { path: 'dir.onnx', kind: 'dir' }, file('empty.onnx', new Uint8Array(0))],
      params: {
        ...analyze,
        uri: 'quantlens-outline:x',
        modelPath: r.pick(['{case}/pipe.onnx', '{case}/dir.onnx', '{case}/empty.onnx', '{case}/missing.onnx']),
      },
      mentions: ['.onnx'],
    },
    {
      name: 'special data file',
      method: ANALYZE,
      expect: 'refuse',
      files: [
        { path: 'pipe.npz', kind: 'fifo' },
        { path: 'empty.npz', kind: 'file', bytes: new Uint8Array(0) },
      ],
      params: { ...analyze, dataPath: r.pick(['{case}/pipe.npz', '{case}/empty.npz', '{case}/missing.npz', '{case}/model.onnx']) },
      mentions: ['.npz', 'model.onnx'],
    },
    {
      name: 'bad model',
      method: r.pick([ANALYZE, 'quantlens/outline', QUANTIZE]),
      expect: 'refuse',
      files: [file('nan.onnx', encodeModel(nan)), file('cut.onnx', baseModels().tiny.bytes.slice(0, 200))],
      params: { ...quantize, sensitivity: false, sqnrWarningDb: 20, uri: 'quantlens-outline:x', modelPath: r.pick(['{case}/nan.onnx', '{case}/cut.onnx']) },
      mentions: ['.onnx'],
    },
    {
      name: 'unknown method',
      method: r.pick(['quantlens/frobnicate', 'quantlens/', '$/quantlens', 'workspace/executeCommand']),
      params: analyze,
      expect: 'refuse',
      mentions: ['method', 'Unhandled', 'not found'],
    },
    {
      name: 'hover garbage',
      method: 'textDocument/hover',
      expect: 'either',
      params: r.pick<unknown>([
        null,
        {},
        { textDocument: null },
        { textDocument: { uri: 42 }, position: 'x' },
        { textDocument: { uri: 'quantlens-outline:x' }, position: { line: -1, character: 1e308 } },
      ]),
      mentions: ['hover', 'params', 'textDocument', 'position'],
    },
    { name: 'allow a path inside the case', method: 'quantlens/allowPath', params: { path: '{case}/model.onnx' }, expect: 'accept' },
    {
      name: 'valid compare',
      method: 'quantlens/compare',
      expect: 'accept',
      files: [file('qa.onnx', qdq), file('qb.onnx', qdq)],
      params: { modelPath: '{case}/qa.onnx', otherModelPath: '{case}/qb.onnx', dataPath: '{case}/data.npz', samples: 2, sensitivity: false },
    },
    {
      name: 'compare with a model outside the workspace',
      method: 'quantlens/compare',
      expect: 'refuse',
      files: [
        file('qa.onnx', qdq),
        file('{outside}/qb.onnx', qdq),
        file('{outside}/model.onnx', baseModels().tiny.bytes),
        { path: 'blink.onnx', kind: 'symlink', target: '{outside}/qb.onnx' },
      ],
      ...(() => {
        const which = r.pick(['otherModelPath', 'floatModelPath']);
        const where = r.pick(which === 'otherModelPath' ? ['{outside}/qb.onnx', '{case}/blink.onnx'] : ['{outside}/model.onnx', '/etc/passwd']);
        return {
          params: {
            modelPath: '{case}/qa.onnx',
            otherModelPath: '{case}/qa.onnx',
            dataPath: '{case}/data.npz',
            samples: 2,
            sensitivity: false,
            [which]: where,
          },
          mentions: ['outside'],
        };
      })(),
    },
    {
      name: 'compare with a float model',
      method: 'quantlens/compare',
      expect: 'refuse',
      files: [file('qa.onnx', qdq)],
      params: { modelPath: '{case}/qa.onnx', otherModelPath: '{case}/model.onnx', dataPath: '{case}/data.npz', samples: 2, sensitivity: false },
      mentions: ['model.onnx'],
    },
  ];
}

export const server: Generator = {
  name: 'server',
  group: 'server',
  weight: 150,
  make(r: Rng, index: number): CaseDraft {
    const all = requests(r);
    const q = all[index % all.length];
    const { tiny } = baseModels();
    const files: FileSpec[] = [file('model.onnx', tiny.bytes), file('data.npz', validNpz(tiny)), ...(q.files ?? [])];
    return {
      kind: 'server',
      title: `${q.name}: ${q.method} ${JSON.stringify(q.params, (_k, v) => (Array.isArray(v) && v.length > 4 ? `[${v.length} items]` : v)).slice(0, 160)}`,
      expect: q.expect,
      files,
      method: q.method,
      params: q.params,
      mayChange: q.mayChange,
      mustNotExist: q.mustNotExist,
      mentions: q.mentions,
    };
  },
};
