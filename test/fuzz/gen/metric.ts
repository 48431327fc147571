/**
 * --metric files (the user's own per-sample metric, an ES module): ones that do not load, export
 * no function, throw, return NaN, infinities, strings, bigints or promises of those, a constant
 * (every sample scores the same: a zero-width interval), and valid ones.
 */
import { baseModels } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { OUT_DIR, file, validNpz } from './common';

interface Metric {
  name: string;
  expect: Expectation;
  source: (r: Rng) => string;
}

/** Mean squared difference of the first outputs: a real metric, lower is better. */
const MSE = `export const higherIsBetter = false;
export const name = 'mse of the first output';
export default function mse(float, quantized) {
  const k = Object.keys(float)[0];
  const a = float[k].data, b = quantized[k].data;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}
`;

const METRICS: Metric[] = [
  { name: 'valid mse', expect: 'accept', source: () => MSE },
  { name: 'valid async', expect: 'accept', source: () => MSE.replace('export default function mse', 'export default async function mse') },
  {
    name: 'constant score',
    expect: 'either',
    source: (r) => `export default () => ${r.pick(['0', '1', '-1e300', '1e300'])};\n`,
  },
  {
    name: 'returns a non-number',
    expect: 'refuse',
    source: (r) =>
      `export default (f, q, label, info) => info.sample === ${r.int(0, 1)} ? ${r.pick(['NaN', 'Infinity', '-Infinity', "'0.5'", '1n', 'null', 'undefined', '[1]', '{}', 'Promise.resolve(NaN)'])} : 0.5;\n`,
  },
  {
    name: 'throws',
    expect: 'refuse',
    source: (r) =>
      `export default (f, q, label, info) => { if (info.sample === ${r.int(0, 1)}) ${r.pick(["throw new Error('bad sample')", "throw 'a string'", 'throw null', 'null.x', 'undefinedFunction()', "return Promise.reject(new Error('async bad'))"])}; return 1; };\n`,
  },
  {
    name: 'does not load',
    expect: 'refuse',
    source: (r) =>
      r.pick([
        'export default (',
        'import nothing from "./no-such-module.mjs"; export default () => 1;',
        "throw new Error('at load');",
        'export const x = 1;',
        'export default 42;',
        'export default () => 1; export const higherIsBetter = "yes";',
        '\u0000\u0001',
      ]),
  },
];

export const metricFiles: Generator = {
  name: 'metric',
  group: 'paths and options',
  weight: 30,
  make(r: Rng, index: number): CaseDraft {
    const m = METRICS[index % METRICS.length];
    const b = baseModels().tiny;
    const special = r.bool(0.1);
    const files: FileSpec[] = [file('model.onnx', b.bytes), file('data.npz', validNpz(b)), OUT_DIR];
    let metricPath = 'metric.mjs';
    let expect = m.expect;
    let title = m.name;
    if (special) {
      const how = r.pick(['fifo', 'dir', 'missing']);
      metricPath = `m-${how}.mjs`;
      if (how === 'fifo') files.push({ path: metricPath, kind: 'fifo' });
      if (how === 'dir') files.push({ path: metricPath, kind: 'dir' });
      expect = 'refuse';
      title = `metric file is ${how}`;
    } else {
      files.push(file(metricPath, new TextEncoder().encode(m.source(r))));
    }
    const cmd = r.pick(['analyze', 'analyze', 'gate']);
    const tail = cmd === 'gate' ? ['--max-drop', '1e300'] : ['--no-sensitivity'];
    return {
      kind: 'cli',
      title: `${cmd} --metric: ${title}`,
      expect,
      files,
      args: [cmd, 'model.onnx', '--data', 'data.npz', '--samples', '2', '--quiet', '--metric', metricPath, ...tail, '--report', 'out/report.json'],
      report: 'out/report.json',
      mentions: [metricPath, '--metric'],
    };
  },
};
