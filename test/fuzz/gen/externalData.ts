/**
 * Models whose weights live in an external data file beside them, with the tricks a hostile or
 * broken file can play: locations escaping the folder (../, absolute paths, symlinks), special
 * files as weights (FIFO, folder, /dev/zero), offsets and lengths that do not fit.
 */
import { clearField, create } from '@bufbuild/protobuf';
import { type ModelProto, StringStringEntryProtoSchema, type TensorProto, TensorProtoSchema, TensorProto_DataLocation } from 'onnx-buf';
import { encodeModel } from '../../../engine/onnx/model';
import { baseModels, protoOf } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { cliCase, file, pickCommand, validNpz } from './common';

const entry = (key: string, value: string) => create(StringStringEntryProtoSchema, { key, value });

interface External {
  model: ModelProto;
  weights: Uint8Array;
  /** The external tensors, in file order. */
  tensors: TensorProto[];
}

/** Every initializer of 16 bytes or more moved to `weights.bin`, each at a 16-byte aligned offset. */
function externalize(m: ModelProto): External {
  const tensors = m.graph!.initializer.filter((t) => t.rawData.length >= 16);
  let size = 0;
  const offsets = tensors.map((t) => {
    const at = size;
    size = Math.ceil((size + t.rawData.length) / 16) * 16;
    return at;
  });
  const weights = new Uint8Array(size);
  tensors.forEach((t, i) => {
    weights.set(t.rawData, offsets[i]);
    t.externalData = [entry('location', 'weights.bin'), entry('offset', String(offsets[i])), entry('length', String(t.rawData.length))];
    t.dataLocation = TensorProto_DataLocation.EXTERNAL;
    clearField(t, TensorProtoSchema.field.rawData);
  });
  return { model: m, weights, tensors };
}

const kv = (t: TensorProto, key: string) => t.externalData.find((e) => e.key === key)!;

interface Trick {
  name: string;
  expect: Expectation;
  /** Change the model or the files; return what was done. `files` holds m/weights.bin first. */
  apply(x: External, r: Rng, files: FileSpec[]): string;
}

const weightsFile = (files: FileSpec[]) => files.find((f) => f.path === 'm/weights.bin')!;
function replaceWeights(files: FileSpec[], spec: FileSpec) {
  files[files.indexOf(weightsFile(files))] = spec;
}

const TRICKS: Trick[] = [
  { name: 'control', expect: 'accept', apply: () => 'valid external data' },
  {
    name: 'weights through a symlink inside the folder',
    expect: 'accept',
    apply(_x, _r, files) {
      const w = weightsFile(files) as { bytes: Uint8Array };
      replaceWeights(files, { path: 'm/weights.bin', kind: 'symlink', target: 'store/w.bin' });
      files.push({ path: 'm/store', kind: 'dir' }, file('m/store/w.bin', w.bytes));
      return 'm/weights.bin -> store/w.bin';
    },
  },
  {
    name: 'trailing bytes in the weights file',
    expect: 'accept',
    apply(_x, r, files) {
      const w = weightsFile(files) as { bytes: Uint8Array };
      const more = new Uint8Array(w.bytes.length + r.int(1, 4096));
      more.set(w.bytes);
      replaceWeights(files, file('m/weights.bin', more));
      return `${more.length - w.bytes.length} bytes appended to weights.bin`;
    },
  },
  {
    name: 'location escapes with ..',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      kv(t, 'location').value = r.pick(['../outside.bin', 'sub/../../outside.bin', './../outside.bin', '..\\outside.bin', '../m/../outside.bin']);
      return `${t.name} location ${kv(t, 'location').value}`;
    },
  },
  {
    name: 'absolute location',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      kv(t, 'location').value = r.pick(['/dev/zero', '/etc/passwd', '/proc/self/mem', '/dev/urandom', 'C:\\weights.bin', '\\\\server\\share\\w.bin']);
      return `${t.name} location ${kv(t, 'location').value}`;
    },
  },
  {
    name: 'symlink out of the folder',
    expect: 'refuse',
    apply(_x, r, files) {
      const target = r.pick(['../outside.bin', '{outside}/outside.bin', '/dev/zero', '/etc/passwd', '/proc/self/environ']);
      replaceWeights(files, { path: 'm/weights.bin', kind: 'symlink', target });
      return `m/weights.bin -> ${target}`;
    },
  },
  {
    name: 'folder symlinked out',
    expect: 'refuse',
    apply(x, _r, files) {
      // weights.bin inside a subfolder that is a symlink to a folder outside the model's
      const w = weightsFile(files) as { bytes: Uint8Array };
      files.splice(files.indexOf(weightsFile(files)), 1);
      files.push({ path: 'elsewhere', kind: 'dir' }, file('elsewhere/weights.bin', w.bytes), { path: 'm/sub', kind: 'symlink', target: '../elsewhere' });
      for (const t of x.tensors) kv(t, 'location').value = 'sub/weights.bin';
      return 'locations sub/weights.bin, m/sub -> ../elsewhere';
    },
  },
  {
    name: 'FIFO as weights file',
    expect: 'refuse',
    apply(_x, _r, files) {
      replaceWeights(files, { path: 'm/weights.bin', kind: 'fifo' });
      return 'm/weights.bin is a FIFO';
    },
  },
  {
    name: 'folder as weights file',
    expect: 'refuse',
    apply(_x, _r, files) {
      replaceWeights(files, { path: 'm/weights.bin', kind: 'dir' });
      return 'm/weights.bin is a folder';
    },
  },
  {
    name: 'missing weights file',
    expect: 'refuse',
    apply(_x, _r, files) {
      files.splice(files.indexOf(weightsFile(files)), 1);
      return 'no m/weights.bin';
    },
  },
  {
    name: 'offset past the end',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      const o = kv(t, 'offset');
      o.value = String(r.pick([x.weights.length, x.weights.length - 4, x.weights.length + 1000, 2 ** 40, Number(o.value) + x.weights.length]));
      return `${t.name} offset ${o.value} (file ${x.weights.length} bytes)`;
    },
  },
  {
    name: 'length wrong',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      const l = kv(t, 'length');
      const n = Number(l.value);
      l.value = String(r.pick([n - 4, n + 4, 0, 1, n * 2, 2 ** 33]));
      return `${t.name} length ${n} -> ${l.value}`;
    },
  },
  {
    name: 'offset or length not a number',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      const e = kv(t, r.pick(['offset', 'length']));
      e.value = r.pick(['-16', '1e3', '0x10', '', 'NaN', '99999999999999999999', '4.5', 'sixteen']);
      return `${t.name} ${e.key} "${e.value}"`;
    },
  },
  {
    name: 'offset or length spelled oddly',
    expect: 'either',
    apply(x, r) {
      // Python's int() (the onnx package) reads these as the number: accepting them is fine.
      const t = r.pick(x.tensors);
      const e = kv(t, r.pick(['offset', 'length']));
      e.value = r.pick([` ${e.value}`, `${e.value} `, `+${e.value}`, `0${e.value}`]);
      return `${t.name} ${e.key} "${e.value}"`;
    },
  },
  {
    name: 'offset moved within the file',
    expect: 'either',
    apply(x, r) {
      // Another tensor's bytes, or a misaligned window: well-formed, only the values change.
      const t = r.pick(x.tensors);
      const len = Number(kv(t, 'length').value);
      const to = r.int(0, x.weights.length - len);
      kv(t, 'offset').value = String(to);
      return `${t.name} offset -> ${to}`;
    },
  },
  {
    name: 'weights file truncated',
    expect: 'refuse',
    apply(_x, r, files) {
      const w = weightsFile(files) as { bytes: Uint8Array };
      const keep = r.int(0, w.bytes.length - 1);
      replaceWeights(files, file('m/weights.bin', w.bytes.slice(0, keep)));
      return `weights.bin cut to ${keep} of ${w.bytes.length} bytes`;
    },
  },
  {
    name: 'location odd',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      kv(t, 'location').value = r.pick(['', 'weights.bin\0.txt', 'no-such.bin', '.', 'm', 'weights.bin/']);
      return `${t.name} location ${JSON.stringify(kv(t, 'location').value)}`;
    },
  },
  {
    name: 'external without location',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      t.externalData = r.bool() ? [] : t.externalData.filter((e) => e.key !== 'location');
      return `${t.name} EXTERNAL with entries [${t.externalData.map((e) => e.key).join(',')}]`;
    },
  },
  {
    name: 'location is the model file',
    expect: 'either',
    apply(x, r) {
      const t = r.pick(x.tensors);
      kv(t, 'location').value = 'model.onnx';
      kv(t, 'offset').value = String(r.int(0, 64));
      return `${t.name} reads model.onnx at ${kv(t, 'offset').value}`;
    },
  },
  {
    name: 'extra keys',
    expect: 'either',
    apply(x, r) {
      const t = r.pick(x.tensors);
      t.externalData.push(entry(r.pick(['checksum', 'basepath', 'location']), r.pick(['abc', 'weights.bin', '../outside.bin'])));
      return `${t.name} extra entry ${t.externalData[t.externalData.length - 1].key}=${t.externalData[t.externalData.length - 1].value}`;
    },
  },
  {
    name: 'raw_data and external both',
    expect: 'either',
    apply(x, r) {
      const t = r.pick(x.tensors);
      t.rawData = new Uint8Array(Number(kv(t, 'length').value));
      return `${t.name} keeps zeros in raw_data and is EXTERNAL`;
    },
  },
  {
    name: 'huge declared tensor',
    expect: 'refuse',
    apply(x, r) {
      const t = r.pick(x.tensors);
      t.dims = [r.pick([2n ** 29n, 2n ** 31n, 2n ** 40n])];
      kv(t, 'length').value = String(Number(t.dims[0]) * 4);
      return `${t.name} dims [${t.dims[0]}], length ${kv(t, 'length').value}`;
    },
  },
  {
    name: 'NaN in the weights file',
    expect: 'refuse',
    apply(x, r, files) {
      const w = weightsFile(files) as { bytes: Uint8Array };
      const t = r.pick(x.tensors);
      const at = Number(kv(t, 'offset').value) + 4 * r.int(0, Number(kv(t, 'length').value) / 4 - 1);
      new DataView(w.bytes.buffer, w.bytes.byteOffset).setFloat32(at, r.pick([NaN, Infinity]), true);
      return `${t.name} holds a non-finite value at byte ${at} of weights.bin`;
    },
  },
];

export const modelExternal: Generator = {
  name: 'model-external',
  group: 'models',
  weight: 70,
  make(r: Rng, index: number): CaseDraft {
    const trick = TRICKS[index % TRICKS.length];
    const { demo, tiny } = baseModels();
    const b = r.bool(0.7) ? tiny : demo;
    const x = externalize(protoOf(b));
    const files: FileSpec[] = [
      { path: 'm', kind: 'dir' },
      file('m/weights.bin', x.weights.slice()),
      file('outside.bin', x.weights.slice()),
      file('data.npz', validNpz(b)),
    ];
    const what = trick.apply(x, r, files);
    files.splice(1, 0, file('m/model.onnx', encodeModel(x.model)));
    return cliCase({ title: `${trick.name}: ${b.name}, ${what}`, expect: trick.expect, files }, pickCommand(r), 'm/model.onnx', 'data.npz');
  },
};
