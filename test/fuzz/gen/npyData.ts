/**
 * Calibration data as .npy arrays (a folder of .npy files, or one .npy file) with mutated
 * headers (magic, version, header length, descr, shape, fortran_order, byte order), dtypes,
 * non-finite values, truncation and trailing bytes, and odd files in the folder.
 */
import { type BaseModel, baseModels } from '../fixtures';
import { type NpyParts, encodeValues, npyBytes, npyHeaderText, npyI64 } from '../npyBytes';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { cliCase, file, pickCommand } from './common';

/** The base model's valid samples as .npy parts (float32, little endian, C order). */
function validParts(b: BaseModel): NpyParts {
  return { descr: '<f4', shape: [b.samples, ...b.sample], data: encodeValues(b.data, '<f4') };
}

interface NpyMutation {
  name: string;
  expect: Expectation;
  /** Return the input array's bytes (and extra files for the folder); `p` starts valid. */
  apply(p: NpyParts, r: Rng, b: BaseModel, extra: FileSpec[]): { bytes?: Uint8Array; what: string };
}

/** Values of `b` with some entries replaced. */
function valuesWith(b: BaseModel, r: Rng, values: number[], onlyIn?: number): { v: Float32Array; k: number } {
  const v = Float32Array.from(b.data);
  const per = v.length / b.samples;
  const k = r.int(1, 5);
  for (let i = 0; i < k; i++) v[r.int(0, (onlyIn ?? b.samples) * per - 1)] = r.pick(values);
  return { v, k };
}

const MUTATIONS: NpyMutation[] = [
  { name: 'control', expect: 'accept', apply: () => ({ what: 'valid float32 array' }) },
  {
    name: 'format version 2.0 / 3.0',
    expect: 'accept',
    apply(p, r) {
      p.version = r.pick([
        [2, 0],
        [3, 0],
      ] as [number, number][]);
      return { what: `version ${p.version.join('.')}` };
    },
  },
  {
    name: 'big endian',
    expect: 'either',
    apply(p, _r, b) {
      p.descr = '>f4';
      p.data = encodeValues(b.data, '>f4');
      return { what: 'descr >f4 with big-endian bytes' };
    },
  },
  {
    name: 'byte order lies',
    expect: 'either',
    apply(p) {
      // Little-endian bytes declared big endian: the values read are garbage, but finite or not.
      p.descr = '>f4';
      return { what: 'descr >f4 over little-endian bytes' };
    },
  },
  {
    name: 'other float widths',
    expect: 'either',
    apply(p, r, b) {
      p.descr = r.pick(['<f8', '<f2', '=f4', '|f4']);
      if (p.descr !== '|f4') p.data = encodeValues(b.data, p.descr.replace('=', '<'));
      return { what: `descr ${p.descr}` };
    },
  },
  {
    name: 'integer dtypes',
    expect: 'either',
    apply(p, r, b) {
      p.descr = r.pick(['<i4', '<i8', '|u1', '|i1', '<i2', '|b1']);
      const ints = Array.from(b.data, (x) =>
        p.descr === '|b1'
          ? x > 0
            ? 1
            : 0
          : p.descr === '|u1'
            ? Math.min(255, Math.max(0, Math.round(x * 50 + 100)))
            : Math.max(-100, Math.min(100, Math.round(x * 30))),
      );
      p.data = encodeValues(ints, p.descr);
      return { what: `descr ${p.descr}` };
    },
  },
  {
    name: 'unsupported dtypes',
    expect: 'refuse',
    apply(p, r, b) {
      const d = r.pick(['<c8', '<U1', '|O', '|V4', '<M8[s]', '|S4', '<u8', '>c16']);
      const size = d === '<c8' || d === '<M8[s]' || d === '<u8' ? 8 : d === '>c16' ? 16 : 4;
      const bytes = new Uint8Array(b.data.length * (d === '<U1' ? 4 : size));
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0x3f;
      p.descr = d;
      p.data = bytes;
      return { what: `descr ${d}` };
    },
  },
  {
    name: 'descr garbage',
    expect: 'refuse',
    apply(p, r) {
      p.descr = r.pick(['', 'f4', '<f3', '<f', "<f4', 'x': '", '<f4\n', '<f99999999999', 'float32']);
      return { what: `descr ${JSON.stringify(p.descr)}` };
    },
  },
  {
    name: 'magic',
    expect: 'refuse',
    apply(p, r) {
      const m = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
      m[r.int(0, 5)] ^= r.int(1, 255);
      p.magic = m;
      return { what: 'magic byte flipped' };
    },
  },
  {
    name: 'version unsupported',
    expect: 'refuse',
    apply(p, r) {
      p.version = r.pick([
        [0, 0],
        [4, 0],
        [255, 255],
        [0, 1],
      ] as [number, number][]);
      return { what: `version ${p.version.join('.')}` };
    },
  },
  {
    name: 'header length lies',
    expect: 'refuse',
    apply(p, r) {
      const whole = npyBytes(p);
      const true_ = new DataView(whole.buffer).getUint16(8, true);
      p.headerLenOverride = r.pick([0, 1, true_ - 1, true_ - 10, true_ + 1, true_ + 64, 65535, whole.length]);
      return { what: `header length ${true_} -> ${p.headerLenOverride}` };
    },
  },
  {
    name: 'header text garbage',
    expect: 'refuse',
    apply(p, r) {
      p.headerText = r.pick([
        '',
        'garbage',
        '{}',
        "{'descr': '<f4'}",
        `{'descr': '<f4', 'fortran_order': False}`,
        `{'descr': '<f4', 'fortran_order': False, 'shape': [6, 1, 6, 6], }`,
        `__import__('os').system('touch pwned')`,
        `{'descr': '<f4', 'fortran_order': 0, 'shape': (6, 1, 6, 6), }`,
        `{'descr': '<f4', 'fortran_order': False, 'shape': (6, 1, 6, 6), 'shape': (2,), }`,
        '\u0000'.repeat(40),
      ]);
      return { what: `header ${JSON.stringify(p.headerText).slice(0, 60)}` };
    },
  },
  {
    name: 'shape entries bad',
    expect: 'refuse',
    apply(p, r, b) {
      const bad = r.pick(['-1', '3.5', '2**40', '1e3', "'6'", 'None', '-6', '0x6', '']);
      const i = r.int(0, p.shape.length - 1);
      p.shape = p.shape.map((d, k) => (k === i ? bad : d));
      if (bad === '' && i === 0 && p.shape.length === 1) p.shape = [b.samples];
      return { what: `shape [${p.shape.join(', ')}]` };
    },
  },
  {
    name: 'shape huge',
    expect: 'refuse',
    apply(p, r) {
      p.shape = [r.pick([2 ** 31, 2 ** 40, 2 ** 53, 10 ** 12]), ...p.shape.slice(1)];
      return { what: `shape [${p.shape.join(', ')}], data for ${p.data.length} bytes` };
    },
  },
  {
    name: 'shape product beyond 2^53',
    expect: 'refuse',
    apply(p, _r) {
      // An enormous per-sample shape whose product overflows doubles' exact range.
      p.shape = [1, 2 ** 30, 2 ** 30, 2 ** 10];
      return { what: `shape [${p.shape.join(', ')}]` };
    },
  },
  {
    name: 'shape zero',
    expect: 'refuse',
    apply(p, r) {
      const i = r.int(0, p.shape.length - 1);
      p.shape = p.shape.map((d, k) => (k === i ? 0 : d));
      p.data = new Uint8Array(0);
      return { what: `shape [${p.shape.join(', ')}], no data` };
    },
  },
  {
    name: 'shape does not fit the model',
    expect: 'refuse',
    apply(p, r, b) {
      const n = b.samples;
      const per = b.sample.reduce((x, y) => x * y, 1);
      p.shape = r.pick([[n, per], [n * b.sample[0], ...b.sample.slice(1)], [n, ...b.sample, 1], [n / 2, 2, ...b.sample.slice(1)], [per * n]]);
      return { what: `shape [${p.shape.join(', ')}] (model: [N, ${b.sample.join(', ')}])` };
    },
  },
  {
    name: 'scalar',
    expect: 'refuse',
    apply(p) {
      p.shape = [];
      p.data = encodeValues([1.5], '<f4');
      return { what: '0-d array' };
    },
  },
  {
    name: 'fortran order',
    expect: 'refuse',
    apply(p, _r, b) {
      // Column-major bytes of the same array: reading them as rows would scramble every sample.
      p.fortranOrder = true;
      const shape = [b.samples, ...b.sample];
      const strides = shape.map((_, i) => shape.slice(0, i).reduce((x, y) => x * y, 1));
      const col = new Float32Array(b.data.length);
      const idx = new Array(shape.length).fill(0);
      for (let lin = 0; lin < b.data.length; lin++) {
        col[idx.reduce((a, v, k) => a + v * strides[k], 0)] = b.data[lin];
        for (let k = shape.length - 1; k >= 0; k--) {
          if (++idx[k] < shape[k]) break;
          idx[k] = 0;
        }
      }
      p.data = encodeValues(col, '<f4');
      return { what: 'fortran_order True, column-major bytes' };
    },
  },
  {
    name: 'truncated',
    expect: 'refuse',
    apply(p, r) {
      const whole = npyBytes(p);
      const keep = r.int(0, whole.length - 1);
      return { bytes: whole.slice(0, keep), what: `cut to ${keep} of ${whole.length} bytes` };
    },
  },
  {
    name: 'trailing bytes',
    expect: 'refuse',
    apply(p, r) {
      const n = r.pick([1, 3, 4, 144, 4096]);
      const more = new Uint8Array(p.data.length + n);
      more.set(p.data);
      p.data = more;
      return { what: `${n} trailing bytes` };
    },
  },
  {
    name: 'NaN inputs',
    expect: 'refuse',
    apply(p, r, b) {
      const { v, k } = valuesWith(b, r, [NaN]);
      p.data = encodeValues(v, '<f4');
      return { what: `${k} NaN value(s)` };
    },
  },
  {
    name: 'infinite inputs',
    expect: 'refuse',
    apply(p, r, b) {
      const { v, k } = valuesWith(b, r, [Infinity, -Infinity]);
      p.data = encodeValues(v, '<f4');
      return { what: `${k} infinite value(s)` };
    },
  },
  {
    name: 'huge inputs',
    expect: 'either',
    apply(p, r, b) {
      const { v, k } = valuesWith(b, r, [1e38, -3.4e38, 1e30, 65504]);
      p.data = encodeValues(v, '<f4');
      return { what: `${k} huge value(s)` };
    },
  },
  {
    name: 'constant inputs',
    expect: 'either',
    apply(p, r, b) {
      const c = r.pick([0, 1, -1e-30, 1e20]);
      p.data = encodeValues(new Float32Array(b.data.length).fill(c), '<f4');
      return { what: `every value ${c}` };
    },
  },
  {
    name: 'float64 NaN',
    expect: 'refuse',
    apply(p, r, b) {
      const { v } = valuesWith(b, r, [NaN]);
      p.descr = '<f8';
      p.data = encodeValues(v, '<f8');
      return { what: 'float64 data with NaN' };
    },
  },
  {
    name: 'float64 beyond float32',
    expect: 'either',
    apply(p, r, b) {
      // Finite doubles that become infinite as float32: must be refused or handled, never fed as Inf.
      const { v, k } = valuesWith(b, r, [1e300, -1e39, 5e38]);
      p.descr = '<f8';
      p.data = encodeValues(v, '<f8');
      return { what: `${k} float64 value(s) beyond float32's range` };
    },
  },
  {
    name: 'padded header',
    expect: 'either',
    apply(p) {
      p.headerText = npyHeaderText(p.descr, false, p.shape).replace('{', '{ ').replace(/, }$/, ' }') + ' '.repeat(300);
      return { what: 'header with extra spaces' };
    },
  },
  {
    name: 'odd files in the folder',
    expect: 'either',
    apply(p, r, _b, extra) {
      const what = r.pick(['other.npy garbage', 'notes.txt', 'sub.npy folder', 'x2.npy valid twin', 'empty.npy']);
      if (what === 'other.npy garbage') extra.push(file('data/other.npy', Uint8Array.from([1, 2, 3])));
      else if (what === 'notes.txt') extra.push(file('data/notes.txt', new TextEncoder().encode('hello')));
      else if (what === 'sub.npy folder') extra.push({ path: 'data/sub.npy', kind: 'dir' });
      else if (what === 'x2.npy valid twin') extra.push(file('data/twin.npy', npyBytes(p)));
      else extra.push(file('data/empty.npy', new Uint8Array(0)));
      return { what };
    },
  },
  {
    name: 'special file as the array',
    expect: 'refuse',
    apply(_p, r, b, extra) {
      const how = r.pick(['fifo', 'dir', '/dev/zero', '/dev/null', 'dangling', 'loop']);
      const at = `data/${b.input}.npy`;
      if (how === 'fifo') extra.push({ path: at, kind: 'fifo' });
      else if (how === 'dir') extra.push({ path: at, kind: 'dir' });
      else if (how === 'dangling') extra.push({ path: at, kind: 'symlink', target: 'nowhere.npy' });
      else if (how === 'loop') extra.push({ path: at, kind: 'symlink', target: `${b.input}.npy` });
      else extra.push({ path: at, kind: 'symlink', target: how });
      return { bytes: new Uint8Array(0), what: `${at} is ${how}` };
    },
  },
];

export const npyData: Generator = {
  name: 'data-npy',
  group: 'data',
  weight: 160,
  make(r: Rng, index: number): CaseDraft {
    const mut = MUTATIONS[index % MUTATIONS.length];
    const { demo, tiny } = baseModels();
    const b = r.bool(0.8) ? tiny : demo;
    const p = validParts(b);
    const extra: FileSpec[] = [];
    const { bytes, what } = mut.apply(p, r, b, extra);
    const arr = bytes ?? npyBytes(p);
    // Usually a folder (input + labels); sometimes the one .npy file itself (no labels).
    const single = r.bool(0.2) && !extra.length;
    const files: FileSpec[] = single
      ? [file('model.onnx', b.bytes), file(`${b.input}.npy`, arr)]
      : [
          file('model.onnx', b.bytes),
          { path: 'data', kind: 'dir' },
          file('data/labels.npy', npyI64(b.labels)),
          ...(extra.some((f) => f.path === `data/${b.input}.npy`) ? [] : [file(`data/${b.input}.npy`, arr)]),
          ...extra,
        ];
    // All samples: a defect in any sample must be seen.
    return cliCase(
      { title: `${mut.name}: ${b.name}, ${what}${single ? ' (one .npy file)' : ''}`, expect: mut.expect, files },
      pickCommand(r),
      'model.onnx',
      single ? `${b.input}.npy` : 'data',
      { samples: null },
    );
  },
};
