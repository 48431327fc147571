/**
 * --calibration-table files from other tools, damaged: TensorRT calibration caches (float32 bits in
 * hex) and onnxruntime's calibration.json / calibration.cache with non-finite, zero, negative and
 * absurd ranges, unknown and duplicated tensors, garbage, and special files.
 */
import { baseModels } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { OUT_DIR, file, validNpz } from './common';

/** The tiny CNN's activations (float graph names) with plausible ranges. */
const RANGES: [string, number][] = [
  ['x', 3.2],
  ['c1', 4.1],
  ['n1', 3.3],
  ['r1', 3.3],
  ['c2', 2.7],
  ['r2', 2.7],
  ['p', 1.2],
  ['f', 1.2],
  ['y', 2.5],
];

const hex = (x: number) => {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return dv.getUint32(0).toString(16).padStart(8, '0');
};

const trt = (rows: [string, string][], header = 'TRT-8601-EntropyCalibration2') => [header, ...rows.map(([n, h]) => `${n}: ${h}`)].join('\n') + '\n';
const trtRows = (): [string, string][] => RANGES.map(([n, amax]) => [n, hex(amax / 127)]);
const ortJson = (rows: [string, unknown, unknown][]) => JSON.stringify(Object.fromEntries(rows.map(([n, lo, hi]) => [n, [lo, hi]])));

interface Table {
  name: string;
  expect: Expectation;
  make(r: Rng): { text?: string; special?: FileSpec; file: string; what: string };
}

const TABLES: Table[] = [
  { name: 'control TensorRT cache', expect: 'accept', make: () => ({ text: trt(trtRows()), file: 'table.cache', what: 'valid' }) },
  {
    name: 'control onnxruntime json',
    expect: 'accept',
    make: () => ({ text: ortJson(RANGES.map(([n, a]) => [n, -a, a])), file: 'calibration.json', what: 'valid' }),
  },
  {
    name: 'scale bits not finite or negative',
    expect: 'refuse',
    make(r) {
      const rows = trtRows();
      const k = r.int(0, rows.length - 1);
      const bad = r.pick(['7fc00000', '7f800000', 'ff800000', 'bf800000', 'c2c80000']);
      rows[k][1] = bad;
      return { text: trt(rows), file: 'table.cache', what: `${rows[k][0]}: ${bad}` };
    },
  },
  {
    name: 'scale bits extreme',
    expect: 'either',
    make(r) {
      const rows = trtRows();
      const k = r.int(0, rows.length - 1);
      // zero (and -0) is a tensor that was all zeros on the calibration data: a range of 0 is honest
      rows[k][1] = r.pick(['00000001', '7f7fffff', '00800000', '5f000000', '00000000', '80000000']);
      return { text: trt(rows), file: 'table.cache', what: `${rows[k][0]}: ${rows[k][1]}` };
    },
  },
  {
    name: 'hex garbage',
    expect: 'refuse',
    make(r) {
      const rows = trtRows();
      const k = r.int(0, rows.length - 1);
      rows[k][1] = r.pick(['zzzz', '', '3c01 0a14', '0x3c010a14', '3c010a14ff', '-3c010a14', '1e3']);
      return { text: trt(rows), file: 'table.cache', what: `${rows[k][0]}: "${rows[k][1]}"` };
    },
  },
  {
    name: 'tensor named twice',
    expect: 'refuse',
    make(r) {
      const rows = trtRows();
      const k = r.int(0, rows.length - 1);
      rows.push([rows[k][0], hex(r.pick([0.5, 100]) / 127)]);
      return { text: trt(rows), file: 'table.cache', what: `${rows[k][0]} twice with different scales` };
    },
  },
  {
    name: 'unknown or missing tensors',
    expect: 'either',
    make(r) {
      const rows = trtRows().filter(() => r.bool(0.5));
      rows.push(['no_such_tensor', hex(0.01)]);
      return { text: trt(rows), file: 'table.cache', what: `${rows.length - 1} known tensors and one unknown` };
    },
  },
  {
    name: 'json ranges bad',
    expect: 'refuse',
    make(r) {
      const rows = RANGES.map(([n, a]) => [n, -a, a] as [string, unknown, unknown]);
      const k = r.int(0, rows.length - 1);
      const how = r.pick(['lo > hi', 'NaN string', 'null', 'string', 'huge exponent', 'one value']);
      if (how === 'lo > hi') rows[k] = [rows[k][0], 5, -5];
      else if (how === 'NaN string') rows[k] = [rows[k][0], 'NaN', 1];
      else if (how === 'null') rows[k] = [rows[k][0], null, 1];
      else if (how === 'string') rows[k] = [rows[k][0], '-1', '1'];
      else if (how === 'huge exponent') {
        const text = ortJson(rows).replace(`"${rows[k][0]}":[${rows[k][1]}`, `"${rows[k][0]}":[-1e999`);
        return { text, file: 'calibration.json', what: `${rows[k][0]} low -1e999` };
      } else
        return {
          text: JSON.stringify({ ...Object.fromEntries(rows.map(([n, lo, hi]) => [n, [lo, hi]])), [rows[k][0]]: [1] }),
          file: 'calibration.json',
          what: `${rows[k][0]} with one value`,
        };
      return { text: ortJson(rows), file: 'calibration.json', what: `${rows[k][0]}: ${how}` };
    },
  },
  {
    name: 'not a table',
    expect: 'refuse',
    make(r) {
      const how = r.pick(['empty', 'binary', 'truncated json', 'json array', 'header only', 'model file']);
      if (how === 'empty') return { text: '', file: 'table.cache', what: how };
      if (how === 'binary') return { text: String.fromCharCode(...Array.from({ length: 200 }, () => r.int(0, 255))), file: 'table.cache', what: how };
      if (how === 'truncated json') {
        const t = ortJson(RANGES.map(([n, a]) => [n, -a, a]));
        return { text: t.slice(0, r.int(1, t.length - 1)), file: 'calibration.json', what: how };
      }
      if (how === 'json array') return { text: '[1, 2, 3]', file: 'calibration.json', what: how };
      if (how === 'header only') return { text: 'TRT-8601-EntropyCalibration2\n', file: 'table.cache', what: how };
      return { text: undefined, file: 'model.onnx', what: 'the model itself' };
    },
  },
  {
    name: 'special file',
    expect: 'refuse',
    make(r) {
      const how = r.pick(['fifo', 'dir', 'missing', '/dev/zero']);
      if (how === 'fifo') return { special: { path: 'pipe.cache', kind: 'fifo' }, file: 'pipe.cache', what: 'a FIFO' };
      if (how === 'dir') return { special: { path: 'dir.cache', kind: 'dir' }, file: 'dir.cache', what: 'a folder' };
      if (how === 'missing') return { file: 'missing.cache', what: 'missing' };
      return { file: '/dev/zero', what: '/dev/zero' };
    },
  },
];

export const calibTables: Generator = {
  name: 'calib-table',
  group: 'paths and options',
  weight: 40,
  make(r: Rng, index: number): CaseDraft {
    const t = TABLES[index % TABLES.length];
    const b = baseModels().tiny;
    const made = t.make(r);
    const files: FileSpec[] = [file('model.onnx', b.bytes), file('data.npz', validNpz(b)), OUT_DIR];
    if (made.text !== undefined) files.push(file(made.file, new TextEncoder().encode(made.text)));
    if (made.special) files.push(made.special);
    const cmd = r.pick(['analyze', 'analyze', 'quantize', 'gate']);
    const tail =
      cmd === 'quantize'
        ? ['--out', 'out/q.onnx']
        : cmd === 'gate'
          ? ['--max-drop', '100', '--report', 'out/report.json']
          : ['--no-sensitivity', '--report', 'out/report.json'];
    return {
      kind: 'cli',
      title: `${cmd} --calibration-table: ${t.name}: ${made.what}`,
      expect: t.expect,
      files,
      args: [cmd, 'model.onnx', '--data', 'data.npz', '--samples', '2', '--quiet', '--calibration-table', made.file, ...tail],
      report: cmd === 'quantize' ? undefined : 'out/report.json',
      mentions: [made.file, '--calibration-table', 'calibration table'],
    };
  },
};
