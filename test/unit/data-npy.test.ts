/**
 * The .npy data layer: folders of .npy files and single .npy files written by an independent
 * writer (npyjs) or byte by byte from the format description, read back in batches and compared
 * with the arrays written; every malformed or unusable file refused with one line naming it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { InputError } from '../../engine/errors';
import { type ModelInput, checkLabels, loadDataset, syntheticShape } from '../../engine/data/dataset';
import { DT } from '../../engine/onnx/tensor';
import { bytesOf, npyBytes, swapped, writeNpy } from '../helpers/npyFiles';
import { rng, tempDir } from '../helpers/tinyModels';

const dir = tempDir('quantlens-data-npy-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const N = 37;
const S = [2, 3];
const PER = 6;
const r = rng(5);
const X = Float32Array.from({ length: N * PER }, () => r() * 4 - 2);
const LABELS = BigInt64Array.from({ length: N }, (_, i) => BigInt((i * 7) % 10));
const floatInput = (dims: (number | string)[] = ['N', ...S], name = 'x'): ModelInput => ({ name, dataType: DT.FLOAT, dims });

let k = 0;
/** A fresh data folder holding the given .npy files (raw bytes). */
function folder(files: Record<string, Uint8Array>): string {
  const d = path.join(dir, `d${k++}`);
  fs.mkdirSync(d);
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(d, name), bytes);
  return d;
}

const npy = (descr: string, shape: number[], data: Uint8Array, extra: { fortran?: boolean; version?: number } = {}) =>
  npyBytes({ descr, shape, data, ...extra });

/** Assert that `fn` throws an InputError whose single-line message matches every pattern. */
function refuses(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${e}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

async function rejects(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${e}`);
    for (const q of patterns) assert.match(e.message, q);
    return true;
  });
}

describe('reading .npy data in batches', () => {
  const d = path.join(dir, 'good');
  writeNpy(d, 'x', X, [N, ...S]);
  writeNpy(d, 'labels', LABELS, [N]);

  for (const batch of [1, 4, 10, N]) {
    it(`batches of ${batch} reproduce the array written, sample for sample`, async () => {
      const ds = loadDataset(d, [floatInput()]);
      assert.equal(ds.samples, N);
      assert.deepEqual(ds.inputs, [{ name: 'x', dataType: DT.FLOAT, shape: S }]);
      assert.deepEqual(Array.from(ds.labels!), Array.from(LABELS, Number));
      for (let start = 0; start < N; start += batch) {
        const count = Math.min(batch, N - start);
        const [x] = await ds.read(start, count);
        assert.ok(x instanceof Float32Array);
        assert.deepEqual(x, X.slice(start * PER, (start + count) * PER));
      }
      await ds.close();
    });
  }

  it('reads go backwards and repeat freely, and return arrays the caller owns', async () => {
    const ds = loadDataset(d, [floatInput()]);
    for (const [start, count] of [
      [30, 7],
      [0, 2],
      [30, 7],
      [11, 13],
      [0, N],
    ]) {
      const [x] = await ds.read(start, count);
      assert.deepEqual(x, X.slice(start * PER, (start + count) * PER));
      x.fill(0);
    }
    const [again] = await ds.read(0, 3);
    assert.deepEqual(again, X.slice(0, 3 * PER));
  });

  it('a single .npy file is a dataset of one input (no labels)', async () => {
    const ds = loadDataset(path.join(d, 'x.npy'), [floatInput(['N', ...S], 'pixel_values')]);
    assert.equal(ds.labels, null);
    assert.deepEqual((await ds.read(5, 2))[0], X.slice(5 * PER, 7 * PER));
  });

  it('inputs are matched by name (also a file-safe name) and must agree on the sample count', async () => {
    const ids = BigInt64Array.from({ length: N * 4 }, (_, i) => BigInt(i * 3 - 50));
    const two = path.join(dir, 'two');
    writeNpy(two, 'x', X, [N, ...S]);
    writeNpy(two, 'input_ids', ids, [N, 4]);
    const ds = loadDataset(two, [floatInput(), { name: 'input:ids', dataType: DT.INT64, dims: ['batch', 4] }]);
    const [x, t] = await ds.read(35, 2);
    assert.deepEqual(x, X.slice(35 * PER));
    assert.deepEqual(t, ids.slice(35 * 4));
    writeNpy(two, 'input_ids', ids.slice(0, 36 * 4), [36, 4]);
    refuses(
      () => loadDataset(two, [floatInput(), { name: 'input_ids', dataType: DT.INT64, dims: ['N', 4] }]),
      /disagree on the number of samples/,
      /x\.npy: 37/,
      /input_ids\.npy: 36/,
    );
  });

  it('samples: a positive integer; more than the data holds uses all of it', async () => {
    assert.equal(loadDataset(d, [floatInput()], { samples: 10 }).samples, 10);
    assert.equal(loadDataset(d, [floatInput()], { samples: 10 }).labels!.length, 10);
    assert.equal(loadDataset(d, [floatInput()], { samples: 1000 }).samples, N);
    for (const bad of [0, -3, 2.5, Number.NaN]) refuses(() => loadDataset(d, [floatInput()], { samples: bad }), /samples must be a positive whole number/);
    refuses(() => loadDataset(undefined, [floatInput()], { samples: 0 }), /samples must be a positive whole number/);
  });

  it('a fixed batch dimension larger than the samples is refused', () => {
    refuses(() => loadDataset(d, [floatInput([64, ...S])]), /fixed batch size of 64/, /only 37 samples/);
    refuses(() => loadDataset(d, [floatInput([16, ...S])], { samples: 8 }), /fixed batch size of 16/, /only 8 samples/);
    assert.equal(loadDataset(d, [floatInput([1, ...S])]).samples, N);
  });

  it("per-sample shapes must match the model's declared dims", () => {
    refuses(() => loadDataset(d, [floatInput(['N', 3, 2])]), /input "x"/, /\[37,2,3\]/, /\[N,3,2\]/);
  });
});

describe('dtypes: converted to the model input type, or refused', () => {
  it('f8 and f2 become float32; i4 becomes int64 for an int64 input', async () => {
    const f8 = Float64Array.from({ length: 4 * 2 }, (_, i) => i / 3 - 1);
    // float16 bit patterns: 1.0, -2.0, 0.5, 65504 (largest), 2^-24 (smallest subnormal), -0, 0.099975586, 3.0
    const h = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x2e66, 0x4200]);
    const hv = [1, -2, 0.5, 65504, 2 ** -24, -0, 0.0999755859375, 3];
    const i4 = Int32Array.from([-2147483648, -1, 0, 1, 2147483647, 7, 8, 9]);
    const d1 = folder({ 'a.npy': npy('<f8', [4, 2], bytesOf(f8)), 'b.npy': npy('<f2', [4, 2], bytesOf(h)), 'c.npy': npy('<i4', [4, 2], bytesOf(i4)) });
    const ds = loadDataset(d1, [
      { name: 'a', dataType: DT.FLOAT, dims: ['N', 2] },
      { name: 'b', dataType: DT.FLOAT, dims: ['N', 2] },
      { name: 'c', dataType: DT.INT64, dims: ['N', 2] },
    ]);
    const [a, b, c] = await ds.read(0, 4);
    assert.deepEqual(a, Float32Array.from(f8));
    assert.deepEqual(Array.from(b as Float32Array), hv);
    assert.deepEqual(
      c,
      BigInt64Array.from(i4, (v) => BigInt(v)),
    );
  });

  it('big-endian data is byte-swapped into the same values', async () => {
    const f4 = Float32Array.from([1.5, -2.25, 3e-8, 1e20, 0, -7]);
    const i8 = BigInt64Array.from([-1n, 2n ** 40n + 5n, 0n]);
    const d1 = folder({ 'x.npy': npy('>f4', [3, 2], swapped(bytesOf(f4), 4)), 't.npy': npy('>i8', [3, 1], swapped(bytesOf(i8), 8)) });
    const [x, t] = await loadDataset(d1, [floatInput(['N', 2]), { name: 't', dataType: DT.INT64, dims: ['N', 1] }]).read(0, 3);
    assert.deepEqual(x, f4);
    assert.deepEqual(t, i8);
  });

  it('dtypes the model input cannot take, and non-numeric dtypes, are refused naming both', () => {
    const cases: [string, number, RegExp][] = [
      ['|u1', 1, /dtype '\|u1' does not fit model input "x" of type FLOAT/],
      ['<i8', 8, /dtype '<i8' does not fit model input "x" of type FLOAT/],
      ['|b1', 1, /dtype '\|b1' does not fit/],
      ['<c8', 8, /dtype '<c8' is not supported/],
      ['<U5', 20, /dtype '<U5' is not supported/],
      ['|O', 8, /dtype '\|O' is not supported/],
      ['=f4', 4, /does not say its byte order/],
    ];
    for (const [descr, size, re] of cases) {
      const d1 = folder({ 'x.npy': npy(descr, [2, 2], new Uint8Array(4 * size)) });
      refuses(() => loadDataset(d1, [floatInput(['N', 2])]), re, new RegExp(`${d1}/x\\.npy`));
    }
    const structured = folder({
      'x.npy': npyBytes({
        descr: '',
        shape: [2],
        data: new Uint8Array(16),
        dict: "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }",
      }),
    });
    refuses(() => loadDataset(structured, [floatInput(['N'])]), /structured dtypes/);
  });

  it('a model input of a type no data file can feed (STRING, undefined) is refused naming the data file', () => {
    const d1 = folder({ 'x.npy': npy('<f4', [2, 2], new Uint8Array(16)) });
    for (const dataType of [DT.STRING, DT.UNDEFINED]) {
      refuses(
        () => loadDataset(d1, [{ name: 'x', dataType, dims: ['N', 2] }]),
        new RegExp(`^${d1}/x\\.npy: model input "x" has type ${DT[dataType]}, which QuantLens cannot feed from data files$`),
      );
    }
  });
});

describe('.npy headers and sizes', () => {
  const data = bytesOf(X.subarray(0, 4 * PER));
  const load = (bytes: Uint8Array) => loadDataset(folder({ 'x.npy': bytes }), [floatInput()]);

  it('formats 2.0 and 3.0 (4-byte header length) read like 1.0', async () => {
    for (const version of [2, 3]) {
      const [x] = await load(npy('<f4', [4, ...S], data, { version })).read(1, 2);
      assert.deepEqual(x, X.slice(PER, 3 * PER));
    }
  });

  it('a truncated file and trailing bytes are refused naming both byte counts', () => {
    refuses(() => load(npy('<f4', [4, ...S], data.subarray(0, data.length - 3))), /needs 96 bytes of data but it holds 93/, /truncated/, /x\.npy/);
    refuses(() => load(npy('<f4', [4, ...S], Buffer.concat([data, new Uint8Array(5)]))), /needs 96 bytes of data but it holds 101/, /5 trailing bytes/);
  });

  it('shape entries must be non-negative integers; no samples, no values and 0-d arrays are refused', () => {
    refuses(() => load(npy('<f4', [-1, ...S], data)), /shape entry "-1" in \(-1, 2, 3\) is not a non-negative integer/);
    refuses(
      () => load(npyBytes({ descr: '<f4', shape: [], data, dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2.5), }" })),
      /shape entry "2\.5"/,
    );
    refuses(() => load(npy('<f4', [0, ...S], new Uint8Array(0))), /holds 0 samples/);
    refuses(() => load(npy('<f4', [4, 0, 3], new Uint8Array(0))), /holds no values/);
    refuses(() => loadDataset(folder({ 'x.npy': npy('<f4', [], new Uint8Array(4)) }), [floatInput([])]), /0-d array/);
  });

  it('fortran_order=True is refused with the fix, unless the layouts coincide', async () => {
    refuses(() => load(npy('<f4', [4, ...S], data, { fortran: true })), /fortran_order=True/, /np\.ascontiguousarray/);
    const [x] = await loadDataset(folder({ 'x.npy': npy('<f4', [24, 1], data, { fortran: true }) }), [floatInput(['N', 1])]).read(3, 2);
    assert.deepEqual(x, X.slice(3, 5));
  });

  it('bad magic, unknown versions, header lengths past the end and malformed dicts are refused', () => {
    const good = npy('<f4', [4, ...S], data);
    const magic = good.slice();
    magic[1] = 0x4d;
    refuses(() => load(magic), /is not an \.npy array/);
    const v9 = good.slice();
    v9[6] = 9;
    refuses(() => load(v9), /version 9\.0 is not supported/);
    const long = good.slice(0, 40);
    refuses(() => load(long), /header length 118 runs past its end \(40 bytes\)/);
    refuses(
      () => load(npyBytes({ descr: '', shape: [], data, dict: "{'descr': '<f4', 'shape': (4, 2, 3), }" })),
      /malformed \.npy header \(no 'fortran_order'\)/,
    );
    refuses(() => load(new Uint8Array(0)), /is not an \.npy array/);
    // Python's dict keeps the LAST of two equal keys (here shape (2,), which the data does not fit);
    // a reader taking the first would read a different array than numpy
    const twice = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 3), 'shape': (2,), }";
    refuses(
      () => load(npyBytes({ descr: '', shape: [], data, dict: twice })),
      /malformed \.npy header \(keys 'descr', 'fortran_order', 'shape', 'shape'; numpy writes exactly/,
    );
    const extra = "{'descr': '<f4', 'x': '', 'fortran_order': False, 'shape': (4, 2, 3), }";
    refuses(() => load(npyBytes({ descr: '', shape: [], data, dict: extra })), /keys 'descr', 'x', 'fortran_order', 'shape'/);
  });
});

describe('files that are not regular files are refused without blocking', () => {
  it('a FIFO, as the data path or as an input file, is refused at once', { timeout: 20000 }, () => {
    const d1 = folder({});
    execFileSync('mkfifo', [path.join(d1, 'x.npy')]);
    refuses(() => loadDataset(d1, [floatInput()]), /x\.npy is a FIFO/);
    const fifo = path.join(dir, 'pipe.npz');
    execFileSync('mkfifo', [fifo]);
    refuses(() => loadDataset(fifo, [floatInput()]), /pipe\.npz is a FIFO/);
  });

  it('/dev/zero (directly or behind a .npz name) and a folder named .npy are refused', () => {
    refuses(() => loadDataset('/dev/zero', [floatInput()]), /\/dev\/zero must be a \.npz file, a \.npy file or a folder/);
    const link = path.join(dir, 'zero.npz');
    fs.symlinkSync('/dev/zero', link);
    refuses(() => loadDataset(link, [floatInput()]), /zero\.npz is a character device/);
    const d1 = folder({});
    fs.mkdirSync(path.join(d1, 'x.npy'));
    refuses(() => loadDataset(d1, [floatInput()]), /x\.npy is a folder/);
    refuses(() => loadDataset(path.join(dir, 'missing'), [floatInput()]), /does not exist/);
  });

  it('a file changed after loading is refused, not read as something else', async () => {
    const d1 = path.join(dir, 'changing');
    const f = writeNpy(d1, 'x', X, [N, ...S]);
    const ds = loadDataset(d1, [floatInput()]);
    fs.utimesSync(f, new Date(2000, 1, 1), new Date(2000, 1, 1));
    await rejects(ds.read(0, 2), /changed while QuantLens was using it/);
  });
});

describe('NaN and Inf in float inputs', () => {
  it('are refused when read, naming the file, the input and the first offending sample', async () => {
    const bad = X.slice();
    bad[5 * PER + 2] = Number.NaN;
    bad[9 * PER] = Number.POSITIVE_INFINITY;
    const d1 = folder({ 'x.npy': npy('<f4', [N, ...S], bytesOf(bad)) });
    const ds = loadDataset(d1, [floatInput()]);
    assert.deepEqual((await ds.read(0, 5))[0], X.slice(0, 5 * PER));
    await rejects(ds.read(0, 10), /x\.npy: input "x" holds NaN in sample 5/);
    await rejects(ds.read(6, 10), /holds Infinity in sample 9/);
  });

  it('a float64 value beyond float32 range is refused too', async () => {
    const f8 = Float64Array.from([1, 2, 1e300, 4]);
    const ds = loadDataset(folder({ 'x.npy': npy('<f8', [4, 1], bytesOf(f8)) }), [floatInput(['N', 1])]);
    await rejects(ds.read(0, 4), /holds Infinity in sample 2/);
  });
});

describe('labels', () => {
  const x = bytesOf(X.subarray(0, 4 * PER));
  const withLabels = (labels: Uint8Array, opts = {}) => loadDataset(folder({ 'x.npy': npy('<f4', [4, ...S], x), 'labels.npy': labels }), [floatInput()], opts);

  it('any integer dtype and byte order is read as the same classes', () => {
    const want = [3, 0, 9, 1];
    assert.deepEqual(Array.from(withLabels(npy('|u1', [4], Uint8Array.from(want))).labels!), want);
    assert.deepEqual(Array.from(withLabels(npy('<i4', [4], bytesOf(Int32Array.from(want)))).labels!), want);
    assert.deepEqual(Array.from(withLabels(npy('>i8', [4], swapped(bytesOf(BigInt64Array.from(want, BigInt)), 8))).labels!), want);
    assert.deepEqual(Array.from(withLabels(npy('<u2', [4], bytesOf(Uint16Array.from(want))), { outputWidth: 10 }).labels!), want);
  });

  it('float labels are refused even when integral, with the cast to use', () => {
    refuses(() => withLabels(npy('<f4', [4], bytesOf(Float32Array.from([1, 2, 3, 4])))), /labels\.npy: labels have dtype '<f4'/, /astype\(np\.int64\)/);
    refuses(() => withLabels(npy('<f8', [4], bytesOf(Float64Array.from([1, 2, Number.NaN, 4])))), /must be integers/);
  });

  it('negative labels, a wrong count or a wrong rank are refused', () => {
    refuses(() => withLabels(npy('<i8', [4], bytesOf(BigInt64Array.from([1n, -1n, 2n, 3n])))), /label -1 of sample 1 is negative/);
    refuses(() => withLabels(npy('<i8', [3], bytesOf(BigInt64Array.from([1n, 1n, 2n])))), /one integer per sample \(4\), got shape \(3,\)/);
    refuses(() => withLabels(npy('<i8', [5], bytesOf(BigInt64Array.from([1n, 1n, 2n, 0n, 0n])))), /one integer per sample \(4\), got shape \(5,\)/);
    refuses(() => withLabels(npy('<i8', [4, 1], bytesOf(BigInt64Array.from([1n, 1n, 2n, 0n])))), /got shape \(4, 1\)/);
    refuses(() => withLabels(npy('<i8', [4], bytesOf(BigInt64Array.from([1n, 2n ** 40n, 2n, 0n])))), /label 1099511627776 of sample 1 is out of range/);
  });

  it("labels beyond the model's output width are refused (outputWidth option and checkLabels)", () => {
    const labels = npy('<i8', [4], bytesOf(BigInt64Array.from([0n, 2n, 4n, 1n])));
    refuses(() => withLabels(labels, { outputWidth: 4 }), /labels\.npy: label 4 of sample 2 is out of range for a model with 4 outputs \(classes 0 to 3\)/);
    assert.equal(withLabels(labels, { outputWidth: 5 }).labels!.length, 4);
    // Only the samples the run uses count.
    assert.deepEqual(Array.from(withLabels(labels, { outputWidth: 3, samples: 2 }).labels!), [0, 2]);
    checkLabels(Int32Array.from([0, 9, 5]), 10, 'l');
    refuses(() => checkLabels(Int32Array.from([0, 10, 5]), 10, 'somewhere'), /^somewhere: label 10 of sample 1 is out of range/);
  });
});

describe('synthetic data', () => {
  it('is refused before any allocation when a fixed input shape would need more than 1 GiB', () => {
    // 30000 x 30000 float32 = 3.35 GiB per sample: the old generator spent minutes filling it
    refuses(
      () => loadDataset(undefined, [{ name: 'x', dataType: DT.FLOAT, dims: ['N', 1, 30000, 30000] }], { samples: 2 }),
      /^synthetic data for input "x" of shape \[1,30000,30000\] takes 3\.4 GiB per sample, 6\.7 GiB for 2 samples, over the 1\.0 GiB QuantLens makes up; pass --data with real samples, or fewer --samples$/,
    );
    // a 1 GiB + 4 bytes request is refused, a small one made
    refuses(() => loadDataset(undefined, [{ name: 'x', dataType: DT.FLOAT, dims: ['N', 2 ** 28 + 1] }], { samples: 1 }), /takes 1\.0 GiB per sample/);
    const d = loadDataset(undefined, [{ name: 'x', dataType: DT.FLOAT, dims: ['N', 3] }], { samples: 4 });
    assert.equal(d.samples, 4);
  });

  it('never gives a dynamic dim the size 1 (an image collapsed to a point): 64, or the largest fixed dim', () => {
    assert.deepEqual(syntheticShape(['N', 3, '?', '?']), [3, 64, 64]); // a detector
    assert.deepEqual(syntheticShape(['N', 3, 48, 'W']), [3, 48, 64]); // a text-line recogniser
    assert.deepEqual(syntheticShape(['N', 3, 224, 'W']), [3, 224, 224]);
    assert.deepEqual(syntheticShape(['N', 'T']), [64]); // an audio frame, token ids
    assert.deepEqual(syntheticShape(['N', 1, 28, 28]), [1, 28, 28]); // fixed dims stay
    const d = loadDataset(undefined, [{ name: 'x', dataType: DT.FLOAT, dims: ['N', 3, 48, ''] }], { samples: 2 });
    assert.deepEqual(d.inputs[0].shape, [3, 48, 64]);
  });
});

describe('a shape mismatch names where the expected shape came from', () => {
  it('the model, or the shape the user gave', () => {
    const d = folder({ 'x.npy': npy('<f4', [N, ...S], bytesOf(X)) });
    refuses(() => loadDataset(d, [floatInput(['N', 3, 2])]), /x\.npy has shape \[37,2,3\] but the model expects \[N,3,2\]/);
    refuses(
      () => loadDataset(d, [{ ...floatInput(['N', 3, 2]), userShape: true }]),
      /x\.npy has shape \[37,2,3\] but the shape given for it \(--input-shape or quantlens\.json "inputs"\) is \[N,3,2\]/,
    );
  });
});

describe('arrays matched by position or left unused are said', () => {
  it('an only array under another name, and arrays no input reads', () => {
    const one = folder({ 'pixels.npy': npy('<f4', [N, ...S], bytesOf(X)) });
    assert.deepEqual(loadDataset(one, [floatInput()]).notes, [
      `${path.join(one, 'pixels.npy')} is read as model input "x": it is the only array besides labels, under another name`,
    ]);
    const extra = folder({ 'x.npy': npy('<f4', [N, ...S], bytesOf(X)), 'old.npy': npy('<f4', [N, ...S], bytesOf(X)) });
    assert.deepEqual(loadDataset(extra, [floatInput()]).notes, [
      `calibration data ${extra}: "old" not used (no model input of that name; the inputs read are "x")`,
    ]);
    assert.equal(loadDataset(extra, [floatInput()], { readElsewhere: ['old'] }).notes, undefined, 'read as a constant: used');
    const exact = folder({ 'x.npy': npy('<f4', [N, ...S], bytesOf(X)) });
    assert.equal(loadDataset(exact, [floatInput()]).notes, undefined);
  });
});
