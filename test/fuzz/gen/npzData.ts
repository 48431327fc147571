/**
 * Calibration data as .npz (zip) archives with the tricks a zip can play: CRCs that do not match,
 * declared sizes that lie, a zip bomb (a small deflated entry inflating far beyond its declared
 * size), duplicate and missing entries, unsupported methods, damaged directories; and labels that
 * cannot be class indices (float, negative, out of range, wrong count, NaN).
 */
import { type BaseModel, baseModels } from '../fixtures';
import { type ZipEntry, concat, crc32, deflateBomb, encodeValues, npyBytes, npyF32, npyI64, zipBytes } from '../npyBytes';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, Generator } from '../types';
import { cliCase, file, pickCommand } from './common';

interface ZipMutation {
  name: string;
  expect: Expectation;
  /** Build the archive from the valid entries (input first, labels second). */
  apply(entries: ZipEntry[], r: Rng, b: BaseModel): { bytes?: Uint8Array; what: string };
}

function validEntries(b: BaseModel, r: Rng): ZipEntry[] {
  const method = r.bool(0.5) ? 'deflate' : 'store';
  return [
    { name: `${b.input}.npy`, data: npyF32([b.samples, ...b.sample], b.data), method },
    { name: 'labels.npy', data: npyI64(b.labels), method },
  ];
}

const ZIP: ZipMutation[] = [
  { name: 'control', expect: 'accept', apply: (e) => ({ what: `valid (${e[0].method})` }) },
  {
    name: 'CRC field wrong',
    expect: 'refuse',
    apply(e, r) {
      const x = r.pick(e);
      const side = r.pick(['both', 'central']);
      x.crc = (crc32(x.data) ^ (1 + r.int(0, 2 ** 30))) >>> 0;
      if (side === 'central') x.centralOnly = true;
      return { what: `${x.name} CRC wrong in ${side} header(s)` };
    },
  },
  {
    name: 'CRC wrong in the local header only',
    expect: 'either',
    apply(e, r) {
      // Readers go by the central directory (Python's zipfile does): the data and its CRC there agree.
      const x = r.pick(e);
      x.crc = (crc32(x.data) ^ (1 + r.int(0, 2 ** 30))) >>> 0;
      x.localOnly = true;
      return { what: `${x.name} CRC wrong in the local header` };
    },
  },
  {
    name: 'stored data corrupted under its CRC',
    expect: 'refuse',
    apply(e, r) {
      // The bytes change, the recorded CRC is the original's: only the CRC can tell.
      const x = e[0];
      x.method = 'store';
      const data = x.data.slice();
      x.crc = crc32(x.data);
      const at = r.int(data.length - 4 * 36, data.length - 1);
      data[at] ^= 0x40;
      x.compressed = data;
      return { what: `${x.name} byte ${at} flipped, CRC of the original kept` };
    },
  },
  {
    name: 'declared sizes lie',
    expect: 'refuse',
    apply(e, r) {
      const x = r.pick(e);
      const field = r.pick(['uncompressedSize', 'compressedSize'] as const);
      const truth = field === 'uncompressedSize' ? x.data.length : x.method === 'deflate' ? undefined : x.data.length;
      const base = truth ?? 100;
      x[field] = r.pick([0, 1, base - 1, base + 1, base * 2, 0xffffffff, 2 ** 31]);
      if (r.bool(0.3)) x.centralOnly = true;
      return { what: `${x.name} ${field} ${x[field]}${x.centralOnly ? ' (central directory only)' : ''}` };
    },
  },
  {
    name: 'zip bomb',
    expect: 'refuse',
    apply(e, r, _b) {
      // The input entry declares its true small size, but its deflate stream inflates to gigabytes.
      const x = e[0];
      const total = r.pick([300e6, 1.2e9, 3e9]);
      x.method = 'deflate';
      x.compressed = deflateBomb(x.data, total);
      return { what: `${x.name}: ${x.data.length} bytes declared, deflate stream of ${x.compressed.length} bytes inflating to ${total / 1e9} GB` };
    },
  },
  {
    name: 'zip bomb declared',
    expect: 'refuse',
    apply(e, _r, b) {
      // The header says 3 GB too (as does the .npy header): a huge array nobody should inflate whole.
      const per = b.sample.reduce((x, y) => x * y, 1);
      const n = Math.ceil(2 ** 31 / (4 * per));
      const header = npyBytes({ descr: '<f4', shape: [n, ...b.sample], data: new Uint8Array(0) });
      const x = e[0];
      x.method = 'deflate';
      x.compressed = deflateBomb(header, header.length + n * per * 4);
      x.uncompressedSize = header.length + n * per * 4;
      x.crc = 0;
      return { what: `${x.name}: a 2 GiB array of zeros (${n} samples), ${x.compressed.length} bytes compressed, CRC wrong` };
    },
  },
  {
    name: 'duplicate entries',
    expect: 'refuse',
    apply(e, r, b) {
      const twin: ZipEntry = {
        name: e[0].name,
        data: npyF32(
          [b.samples, ...b.sample],
          b.data.map((v) => -v),
        ),
        method: e[0].method,
      };
      e.splice(r.int(0, e.length), 0, twin);
      return { what: `${e[0].name} twice with different data` };
    },
  },
  {
    name: 'missing arrays',
    expect: 'refuse',
    apply(e, r) {
      const how = r.pick(['labels only', 'empty archive', 'renamed', 'no .npy suffix']);
      if (how === 'labels only') e.splice(0, 1);
      else if (how === 'empty archive') e.splice(0, e.length);
      else if (how === 'renamed') {
        e[0].name = 'other.npy';
        e.push({ name: 'more.npy', data: e[0].data });
      } else e[0].name = e[0].name.replace('.npy', '');
      return { what: how };
    },
  },
  {
    name: 'unsupported method or flags',
    expect: 'refuse',
    apply(_e, r) {
      // Method numbers are patched into the bytes after writing (12 bzip2, 14 lzma, 99 AES).
      return { what: `method ${r.pick([12, 14, 99, 1])}` };
    },
  },
  {
    name: 'not a zip',
    expect: 'refuse',
    apply(e, r) {
      const how = r.pick(['random', 'npy', 'empty', 'truncated', 'no directory', 'gzip']);
      const good = zipBytes(e);
      if (how === 'random') return { bytes: Uint8Array.from({ length: r.int(1, 2000) }, () => r.int(0, 255)), what: 'random bytes' };
      if (how === 'npy') return { bytes: e[0].data, what: 'an .npy file named .npz' };
      if (how === 'empty') return { bytes: new Uint8Array(0), what: 'empty file' };
      if (how === 'truncated') {
        const keep = r.int(0, good.length - 1);
        return { bytes: good.slice(0, keep), what: `cut to ${keep} of ${good.length} bytes` };
      }
      if (how === 'no directory')
        return { bytes: good.slice(0, good.length - 22 - 46 * e.length - e.reduce((a, x) => a + x.name.length, 0)), what: 'central directory cut off' };
      return { bytes: concat([Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), good]), what: 'gzip magic in front' };
    },
  },
  {
    name: 'entry names odd',
    expect: 'either',
    apply(e, r, b) {
      const name = r.pick([`../${b.input}.npy`, `/tmp/${b.input}.npy`, `dir/${b.input}.npy`, `${b.input}.NPY`, `${b.input}.npy\0.txt`]);
      e[0].name = name;
      return { what: `input entry named ${JSON.stringify(name)}` };
    },
  },
  {
    name: 'extra entries',
    expect: 'either',
    apply(e, r) {
      e.push({ name: r.pick(['README.txt', 'meta.json', 'extra.npy']), data: new TextEncoder().encode('not an array') });
      return { what: `extra entry ${e[e.length - 1].name}` };
    },
  },
  {
    name: 'NaN inside the archive',
    expect: 'refuse',
    apply(e, r, b) {
      const v = Float32Array.from(b.data);
      v[r.int(0, v.length - 1)] = r.pick([NaN, Infinity]);
      e[0].data = npyF32([b.samples, ...b.sample], v);
      return { what: 'one non-finite input value' };
    },
  },
];

/** Patch the method field of every header of the first entry (local at 8, central after the data). */
function patchMethod(bytes: Uint8Array, method: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = dv.getUint32(i, true);
    if (sig === 0x04034b50) dv.setUint16(i + 8, method, true);
    if (sig === 0x02014b50) dv.setUint16(i + 10, method, true);
  }
  return out;
}

export const npzData: Generator = {
  name: 'data-npz',
  group: 'data',
  weight: 110,
  make(r: Rng, index: number): CaseDraft {
    const mut = ZIP[index % ZIP.length];
    const { demo, tiny } = baseModels();
    const b = r.bool(0.8) ? tiny : demo;
    const entries = validEntries(b, r);
    const { bytes, what } = mut.apply(entries, r, b);
    let npz = bytes ?? zipBytes(entries);
    if (mut.name === 'unsupported method or flags') npz = patchMethod(npz, Number(what.split(' ')[1]));
    return cliCase(
      { title: `${mut.name}: ${b.name}, ${what}`, expect: mut.expect, files: [file('model.onnx', b.bytes), file('data.npz', npz)] },
      pickCommand(r),
      'model.onnx',
      'data.npz',
      { samples: null },
    );
  },
};

// ------------------------------------------------------------------ labels

interface LabelMutation {
  name: string;
  expect: Expectation;
  /** The labels array's .npy bytes (undefined: no labels). */
  apply(b: BaseModel, r: Rng): { bytes?: Uint8Array; what: string };
}

const npyOf = (descr: string, values: number[], shape = [values.length]) => npyBytes({ descr, shape, data: encodeValues(values, descr) });

const LABELS: LabelMutation[] = [
  { name: 'control', expect: 'accept', apply: (b) => ({ bytes: npyI64(b.labels), what: 'int64 labels' }) },
  { name: 'no labels', expect: 'accept', apply: () => ({ what: 'no labels array' }) },
  {
    name: 'other integer dtypes',
    expect: 'accept',
    apply(b, r) {
      const d = r.pick(['<i4', '|u1', '<i2', '|i1', '>i8', '<u8', '<u4']);
      return { bytes: npyOf(d, b.labels), what: `labels ${d}` };
    },
  },
  {
    name: 'float labels',
    expect: 'refuse',
    apply(b, r) {
      const d = r.pick(['<f4', '<f8']);
      const frac = r.bool();
      return {
        bytes: npyOf(
          d,
          b.labels.map((l) => (frac ? l + 0.5 : l)),
        ),
        what: `labels ${d}${frac ? ' with fractions' : ' holding whole numbers'}`,
      };
    },
  },
  {
    name: 'NaN labels',
    expect: 'refuse',
    apply(b, r) {
      const v = b.labels.slice();
      v[r.int(0, v.length - 1)] = NaN;
      return { bytes: npyOf('<f4', v), what: 'float labels with a NaN' };
    },
  },
  {
    name: 'negative labels',
    expect: 'refuse',
    apply(b, r) {
      const v = b.labels.slice();
      v[r.int(0, v.length - 1)] = r.pick([-1, -100, -(2 ** 31)]);
      return { bytes: npyOf('<i8', v), what: `a label ${Math.min(...v)}` };
    },
  },
  {
    name: 'labels out of range',
    expect: 'refuse',
    apply(b, r) {
      const v = b.labels.slice();
      const bad = r.pick([b.classes, b.classes + 1, 1000, 2 ** 31, 2 ** 40]);
      v[r.int(0, v.length - 1)] = bad;
      return { bytes: npyOf('<i8', v), what: `a label ${bad} for ${b.classes} classes` };
    },
  },
  {
    name: 'wrong count',
    expect: 'refuse',
    apply(b, r) {
      const n = r.pick([0, 1, b.samples - 1, b.samples + 1, b.samples * 2]);
      return {
        bytes: npyOf(
          '<i8',
          Array.from({ length: n }, (_, i) => i % b.classes),
        ),
        what: `${n} labels for ${b.samples} samples`,
      };
    },
  },
  {
    name: 'labels not 1-D',
    expect: 'refuse',
    apply(b, r) {
      const how = r.pick(['one-hot', 'column', 'scalar']);
      if (how === 'one-hot')
        return {
          bytes: npyOf(
            '<i8',
            b.labels.flatMap((l) => Array.from({ length: b.classes }, (_, k) => (k === l ? 1 : 0))),
            [b.samples, b.classes],
          ),
          what: 'one-hot labels',
        };
      if (how === 'column') return { bytes: npyOf('<i8', b.labels, [b.samples, 1]), what: 'labels of shape (n, 1)' };
      return { bytes: npyOf('<i8', [1], []), what: '0-d labels' };
    },
  },
  {
    name: 'labels unreadable',
    expect: 'refuse',
    apply(b, r) {
      const good = npyI64(b.labels);
      const how = r.pick(['truncated', 'garbage', 'strings']);
      if (how === 'truncated') return { bytes: good.slice(0, good.length - r.int(1, 8)), what: 'labels.npy truncated' };
      if (how === 'garbage') return { bytes: Uint8Array.from([1, 2, 3, 4]), what: 'labels.npy garbage' };
      return { bytes: npyBytes({ descr: '<U1', shape: [b.samples], data: new Uint8Array(4 * b.samples).fill(0x41) }), what: 'labels as strings' };
    },
  },
  {
    name: 'bool labels',
    expect: 'either',
    apply(b) {
      return {
        bytes: npyOf(
          '|b1',
          b.labels.map((l) => (l ? 1 : 0)),
        ),
        what: 'labels as booleans',
      };
    },
  },
];

export const labelData: Generator = {
  name: 'data-labels',
  group: 'data',
  weight: 70,
  make(r: Rng, index: number): CaseDraft {
    const mut = LABELS[index % LABELS.length];
    const { demo, tiny } = baseModels();
    const b = r.bool(0.8) ? tiny : demo;
    const { bytes, what } = mut.apply(b, r);
    const input = npyF32([b.samples, ...b.sample], b.data);
    const asNpz = r.bool();
    const files = asNpz
      ? [
          file('model.onnx', b.bytes),
          file('data.npz', zipBytes([{ name: `${b.input}.npy`, data: input }, ...(bytes ? [{ name: 'labels.npy', data: bytes }] : [])])),
        ]
      : [
          file('model.onnx', b.bytes),
          { path: 'data', kind: 'dir' as const },
          file(`data/${b.input}.npy`, input),
          ...(bytes ? [file('data/labels.npy', bytes)] : []),
        ];
    return cliCase(
      { title: `${mut.name}: ${b.name}, ${what} (${asNpz ? '.npz' : 'folder'})`, expect: mut.expect, files },
      pickCommand(r),
      'model.onnx',
      asNpz ? 'data.npz' : 'data',
      { samples: null },
    );
  },
};
