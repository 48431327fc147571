/**
 * The .npz data layer: archives written by numpy itself (np.savez: STORED with ZIP64 local
 * headers; np.savez_compressed: DEFLATED) and by fflate (levels 0 and 6), read back in batches of
 * several sizes and orders and compared with the arrays written; zip damage (CRC, sizes, bombs,
 * truncation) refused naming the entry; batches fed through a real onnxruntime session.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { after, describe, it } from 'node:test';
import { Zip, ZipDeflate, ZipPassThrough, zipSync } from 'fflate';
import { dump } from 'npyjs';
import * as ort from 'onnxruntime-node';
import { InputError } from '../../engine/errors';
import { crc32, crc32Table } from '../../engine/data/crc32';
import { type ModelInput, loadDataset } from '../../engine/data/dataset';
import { encodeModel } from '../../engine/onnx/model';
import { DT } from '../../engine/onnx/tensor';
import { feedsFor } from '../../engine/runtime/session';
import { CD, getU32, npyBytes, setU32, zip64Stored, zipHeader } from '../helpers/npyFiles';
import { buildModel, makeNode, rng, tempDir, valueInfo } from '../helpers/tinyModels';

const dir = tempDir('quantlens-data-npz-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const FIXTURES = path.resolve(__dirname, '../fixtures/data/npz');

const floatInput = (dims: (number | string)[], name = 'x'): ModelInput => ({ name, dataType: DT.FLOAT, dims });

let k = 0;
function writeZip(files: Record<string, Uint8Array>, level: 0 | 6): string {
  const f = path.join(dir, `z${k++}.npz`);
  fs.writeFileSync(f, zipSync(Object.fromEntries(Object.entries(files).map(([n, b]) => [n, [b, { level }]]))));
  return f;
}

function refuses(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${e}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

describe('archives written by numpy (np.savez, np.savez_compressed)', () => {
  // The formulas of fixtures/data/npz/make.py.
  const n = 23;
  const x = Float32Array.from({ length: n * 6 }, (_, i) => i * 0.25 - 3);
  const ids = BigInt64Array.from({ length: n * 4 }, (_, i) => BigInt(i * 7 - 40));
  const labels = Array.from({ length: n }, (_, i) => i % 5);
  const inputs: ModelInput[] = [floatInput(['N', 2, 3]), { name: 'ids', dataType: DT.INT64, dims: ['N', 4] }];

  for (const file of ['savez.npz', 'savez_compressed.npz']) {
    for (const batch of [1, 5, 23]) {
      it(`${file} in batches of ${batch} holds the arrays numpy wrote`, async () => {
        const ds = loadDataset(path.join(FIXTURES, file), inputs, { outputWidth: 5 });
        assert.equal(ds.samples, n);
        assert.deepEqual(Array.from(ds.labels!), labels);
        assert.match(ds.labelsSource!, /npz:labels\.npy$/);
        for (let start = 0; start < n; start += batch) {
          const count = Math.min(batch, n - start);
          const [a, b] = await ds.read(start, count);
          assert.deepEqual(a, x.slice(start * 6, (start + count) * 6));
          assert.deepEqual(b, ids.slice(start * 4, (start + count) * 4));
        }
        await ds.close();
      });
    }
  }
});

describe('larger archives, stored and deflated, read in any order', () => {
  const N = 3000;
  const PER = 40;
  const r = rng(9);
  // Half exact zeros (compressible, as images are), half noise: many DEFLATE pushes per read.
  const X = Float32Array.from({ length: N * PER }, (_, i) => (i % PER < 20 ? 0 : r() * 2 - 1));
  const L = BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 10));
  const files = { 'x.npy': new Uint8Array(dump(X, [N, PER])), 'labels.npy': new Uint8Array(dump(L, [N])) };
  const expect = (start: number, count: number) => X.slice(start * PER, (start + count) * PER);

  for (const level of [0, 6] as const) {
    const file = writeZip(files, level);
    it(`level ${level}: sequential batches of 1, 64 and 1000 samples`, async () => {
      const ds = loadDataset(file, [floatInput(['N', PER])]);
      assert.deepEqual(Array.from(ds.labels!), Array.from(L, Number));
      for (const batch of [1, 64, 1000]) {
        for (let start = 0; start < N; start += batch) {
          const count = Math.min(batch, N - start);
          assert.deepEqual((await ds.read(start, count))[0], expect(start, count));
        }
      }
    });

    it(`level ${level}: repeated, backward and random reads; the caller owns what it gets`, async () => {
      const ds = loadDataset(file, [floatInput(['N', PER])]);
      const order: [number, number][] = [
        [0, 1],
        [0, 32],
        [32, 32],
        [32, 32],
        [2990, 10],
        [5, 3],
        [1500, 700],
        [1499, 2],
        [0, N],
      ];
      const r2 = rng(3);
      for (let i = 0; i < 20; i++) {
        const start = Math.floor(r2() * N);
        order.push([start, 1 + Math.floor(r2() * Math.min(300, N - start - 1))]);
      }
      for (const [start, count] of order) {
        const [a] = await ds.read(start, count);
        assert.deepEqual(a, expect(start, count), `[${start}, +${count})`);
        a.fill(7);
      }
    });
  }

  it('batches go through feedsFor into a real onnxruntime session unchanged', async () => {
    const model = buildModel({
      nodes: [makeNode('Identity', ['x'], ['y'], 'id')],
      inputs: [valueInfo('x', ['N', PER])],
      outputs: [valueInfo('y', ['N', PER])],
    });
    const session = await ort.InferenceSession.create(encodeModel(model));
    const ds = loadDataset(writeZip(files, 6), [floatInput(['N', PER])]);
    for (const [start, count] of [
      [0, 100],
      [100, 257],
      [357, 2643],
    ]) {
      const out = await session.run(await feedsFor(ds, start, count));
      assert.deepEqual(out.y.dims, [count, PER]);
      assert.deepEqual(out.y.data, expect(start, count));
    }
    await session.release();
  });
});

describe('other zip layouts', () => {
  const x = Float32Array.from({ length: 30 * 4 }, (_, i) => Math.cos(i) * 3);
  const labels = BigInt64Array.from({ length: 30 }, (_, i) => BigInt(i % 4));
  const files = { 'x.npy': new Uint8Array(dump(x, [30, 4])), 'labels.npy': new Uint8Array(dump(labels, [30])) };

  it('streamed archives (sizes only in data descriptors after the data), stored and deflated', async () => {
    for (const deflated of [false, true]) {
      const chunks: Uint8Array[] = [];
      const zip = new Zip((err, chunk) => {
        if (err) throw err;
        chunks.push(chunk);
      });
      for (const [name, bytes] of Object.entries(files)) {
        const e = deflated ? new ZipDeflate(name, { level: 6 }) : new ZipPassThrough(name);
        zip.add(e);
        e.push(bytes.subarray(0, 100));
        e.push(bytes.subarray(100), true);
      }
      zip.end();
      const f = path.join(dir, `streamed-${deflated}.npz`);
      fs.writeFileSync(f, Buffer.concat(chunks));
      assert.ok(getU32(fs.readFileSync(f), 6) & 0x8, 'data descriptor flag set');
      const ds = loadDataset(f, [floatInput(['N', 4])], { outputWidth: 4 });
      assert.deepEqual(Array.from(ds.labels!), Array.from(labels, Number));
      assert.deepEqual((await ds.read(7, 20))[0], x.slice(28, 108));
    }
  });

  it('ZIP64 archives (end record, locator and per-entry extra fields) read like any other', async () => {
    const f = path.join(dir, 'zip64.npz');
    fs.writeFileSync(
      f,
      zip64Stored(files, (b) => crc32Table(b)),
    );
    const ds = loadDataset(f, [floatInput(['N', 4])]);
    assert.deepEqual(Array.from(ds.labels!), Array.from(labels, Number));
    assert.deepEqual((await ds.read(0, 30))[0], x);
    const bad = fs.readFileSync(f);
    bad.writeUInt32LE(0, bad.length - 22 - 20); // the locator's signature
    refuses(() => loadDataset(writeBytes(bad), [floatInput(['N', 4])]), /ZIP64 locator missing/);
  });
});

function writeBytes(b: Uint8Array): string {
  const f = path.join(dir, `raw${k++}.npz`);
  fs.writeFileSync(f, b);
  return f;
}

describe('zip damage is refused naming the entry', () => {
  const x = Float32Array.from({ length: 50 * 8 }, (_, i) => Math.sin(i));
  const npy = new Uint8Array(dump(x, [50, 8]));
  const load = (bytes: Uint8Array) => {
    const f = path.join(dir, `bad${k++}.npz`);
    fs.writeFileSync(f, bytes);
    return loadDataset(f, [floatInput(['N', 8])]);
  };
  const zip = (level: 0 | 6) => zipSync({ 'x.npy': [npy, { level }] });

  it('a data byte changed in a stored entry: CRC mismatch', () => {
    const z = zip(0);
    const at = zipHeader(z, 'x.npy', false) + 30 + 5 + npy.length - 9;
    z[at] ^= 0x40;
    refuses(() => load(z), /\.npz:x\.npy: CRC-32 is 0x[0-9a-f]{8} but the archive records 0x[0-9a-f]{8}/);
  });

  it('a flipped CRC of a deflated entry: CRC mismatch', () => {
    const z = zip(6);
    const cd = zipHeader(z, 'x.npy', true);
    setU32(z, cd + CD.crc, getU32(z, cd + CD.crc) ^ 1);
    refuses(() => load(z), /x\.npy: CRC-32 is/);
  });

  it('a declared size that disagrees with the .npy header is refused before inflating', () => {
    for (const level of [0, 6] as const) {
      const z = zip(level);
      const cd = zipHeader(z, 'x.npy', true);
      setU32(z, cd + CD.size, npy.length + 64);
      if (level === 0) setU32(z, cd + CD.compressedSize, npy.length + 64);
      refuses(
        () => load(z),
        level === 0
          ? /its 1728 bytes at offset \d+ run past the archive data/
          : /x\.npy: shape \(50, 8\) of <f4 needs 1600 bytes of data but the entry declares 1664/,
      );
    }
    const z = zip(0);
    setU32(z, zipHeader(z, 'x.npy', true) + CD.size, npy.length - 4);
    refuses(() => load(z), /stored entry declares \d+ bytes but occupies \d+/);
  });

  it('a zip bomb (inflates past its declared size) is stopped', () => {
    // A header for 4x5 float32 (80 bytes) followed by 64 MiB of zeros: about 64 KiB deflated.
    const head = npyBytes({ descr: '<f4', shape: [4, 5], data: new Uint8Array(0) });
    const bomb = new Uint8Array(head.length + (64 << 20));
    bomb.set(head);
    const z = zipSync({ 'x.npy': [bomb, { level: 6 }] });
    assert.ok(z.length < 200_000, `compressed to ${z.length}`);
    const cd = zipHeader(z, 'x.npy', true);
    setU32(z, cd + CD.size, head.length + 80);
    const f = path.join(dir, 'bomb.npz');
    fs.writeFileSync(f, z);
    refuses(() => loadDataset(f, [floatInput(['N', 5])]), /x\.npy: inflates to more than its declared \d+ bytes; refused/);
  });

  it('a truncated archive, corrupt DEFLATE data, encryption and unknown methods are refused', () => {
    const z = zip(6);
    refuses(() => load(z.subarray(0, z.length - 30)), /is not a readable \.npz \(zip\) file: no end of central directory record/);
    const corrupt = zip(6);
    const data = zipHeader(corrupt, 'x.npy', false) + 30 + 5;
    corrupt.fill(0xff, data + 10, data + 40);
    refuses(() => load(corrupt), /x\.npy: (corrupt DEFLATE data|CRC-32|compressed data ends|inflates to more)/);
    const enc = zip(0);
    const cd = zipHeader(enc, 'x.npy', true);
    enc[cd + CD.flags] |= 1;
    refuses(() => load(enc), /x\.npy: encrypted zip entries are not supported/);
    const m = zip(0);
    m[zipHeader(m, 'x.npy', true) + CD.method] = 12;
    refuses(() => load(m), /x\.npy: zip compression method 12 is not supported/);
  });

  it('an archive without the input names what it holds', () => {
    refuses(() => loadDataset(writeZip({ 'a.npy': npy, 'b.npy': npy }, 0), [floatInput(['N', 8], 'input')]), /no array for model input "input".*found: a, b/);
  });
});

describe('CRC-32', () => {
  it('the JavaScript fallback matches the check value and zlib, in one piece or many', () => {
    assert.equal(crc32Table(Buffer.from('123456789')), 0xcbf43926);
    const r = rng(4);
    const b = Uint8Array.from({ length: 100_000 }, () => Math.floor(r() * 256));
    const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    const whole = crc32Table(b);
    if (native) assert.equal(whole, native(b) >>> 0);
    assert.equal(crc32Table(b.subarray(40_000), crc32Table(b.subarray(0, 40_000))), whole);
    assert.equal(crc32(b), whole);
  });
});
