/**
 * The fuzz harness itself (test/fuzz): cases rebuild byte for byte from (seed, generator, index),
 * the file writers produce what independent readers (fflate, npyjs) read back, and the
 * classifier calls each kind of run what it is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync, unzipSync } from 'fflate';
import { parse as parseNpy } from 'npyjs';
import { classify } from '../fuzz/classify';
import { nonFinite } from '../fuzz/finite';
import { deflateBomb, npyBytes, npyF32, zipBytes } from '../fuzz/npyBytes';
import { GENERATORS, buildCase, shareCounts } from '../fuzz/suite';
import type { CliCase, FuzzCase, Observation } from '../fuzz/types';

const bytesOf = (c: FuzzCase) => c.files.map((f) => (f.kind === 'file' ? Buffer.from(f.bytes).toString('base64') : `${f.kind}:${f.path}`));

describe('fuzz cases are reproducible', () => {
  it('the same (seed, generator, index) gives the same case; another index another one', () => {
    for (const g of GENERATORS) {
      for (const index of [0, 7, 31]) {
        const a = buildCase(g, 99, index);
        const b = buildCase(g, 99, index);
        assert.equal(a.title, b.title);
        assert.deepEqual(bytesOf(a), bytesOf(b), `${g.name}#${index}`);
        assert.deepEqual(a.kind === 'cli' ? a.args : a.params, b.kind === 'cli' ? b.args : b.params);
      }
      const titles = new Set([0, 1, 2, 3].map((i) => buildCase(g, 99, i).title));
      assert.ok(titles.size > 1, `${g.name} varies`);
    }
  });

  it('counts are shared by weight and add up', () => {
    const shares = shareCounts(GENERATORS, 1000);
    assert.equal(
      [...shares.values()].reduce((a, b) => a + b, 0),
      1000,
    );
    const total = GENERATORS.reduce((a, g) => a + g.weight, 0);
    for (const g of GENERATORS) assert.ok(Math.abs(shares.get(g)! - (1000 * g.weight) / total) < 1);
  });
});

describe('fuzz file writers, read back by independent readers', () => {
  it('npyBytes: npyjs reads the shape and values; the data starts on a 64-byte boundary', () => {
    const bytes = npyF32([2, 3], [1, 2, 3, 4, 5, 6.5]);
    const arr = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    assert.deepEqual(arr.shape, [2, 3]);
    assert.deepEqual(Array.from(arr.data as Float32Array), [1, 2, 3, 4, 5, 6.5]);
    assert.equal((bytes.length - 24) % 64, 0);
    const v2 = npyBytes({ descr: '<f4', shape: [1], data: new Uint8Array(4), version: [2, 0] });
    assert.equal(v2[6], 2);
  });

  it('zipBytes: fflate unzips stored and deflated entries to the same bytes', () => {
    const a = Uint8Array.from({ length: 1000 }, (_, i) => i % 7);
    const out = unzipSync(
      zipBytes([
        { name: 'a.npy', data: a, method: 'deflate' },
        { name: 'b.npy', data: a.subarray(0, 10) },
      ]),
    );
    assert.deepEqual(Object.keys(out), ['a.npy', 'b.npy']);
    assert.deepEqual(out['a.npy'], a);
    assert.deepEqual(out['b.npy'], a.subarray(0, 10));
  });

  it('deflateBomb: a stream of about 13 bits per 258 bytes inflating to exactly the prefix and zeros', () => {
    const prefix = Uint8Array.from([0x93, 200, 1, 255]);
    const bomb = deflateBomb(prefix, 1_000_000);
    assert.ok(bomb.length < 1_000_000 / 150, `${bomb.length} bytes`);
    const out = inflateSync(bomb);
    assert.equal(out.length, 1_000_000);
    assert.deepEqual(out.subarray(0, 4), prefix);
    assert.ok(out.subarray(4).every((b) => b === 0));
  });
});

const cli = (over: Partial<CliCase> = {}): CliCase => ({
  kind: 'cli',
  generator: 'g',
  index: 0,
  title: 't',
  expect: 'either',
  files: [],
  args: ['analyze', 'model.onnx', '--data', 'd.npz', '--report', 'out/r.json'],
  report: 'out/r.json',
  ...over,
});
const obs = (over: Partial<Observation> = {}): Observation => ({
  exitCode: 0,
  signal: null,
  timedOut: false,
  peakRssBytes: 1e8,
  memoryKilled: false,
  stdout: 'ok',
  stderr: '',
  changed: [],
  ms: 1,
  json: { value: { samples: 2 } },
  ...over,
});
const kindOf = (c: FuzzCase, o: Observation) => {
  const r = classify(c, o);
  return r.kind === 'failure' ? r.failure : r.kind;
};

describe('fuzz outcome classification', () => {
  it('clean errors and successes', () => {
    assert.equal(kindOf(cli(), obs({ exitCode: 2, stderr: 'quantlens: /x/model.onnx is not an ONNX model\n', json: undefined })), 'clean-error');
    assert.equal(kindOf(cli(), obs()), 'success');
    // a gate over budget exits 1 by design
    const gate = cli({ args: ['gate', 'model.onnx', '--max-drop', '1'], report: undefined });
    assert.equal(kindOf(gate, obs({ exitCode: 1, stderr: 'quantlens gate: FAIL: tensorrt drops top-1 by 3 points\n' })), 'success');
  });

  it('failures, each called by its name', () => {
    assert.equal(kindOf(cli(), obs({ exitCode: 1, stderr: 'quantlens: internal error (a QuantLens bug): boom\n' })), 'crash');
    assert.equal(kindOf(cli(), obs({ exitCode: null, signal: 'SIGSEGV' })), 'crash');
    assert.equal(kindOf(cli(), obs({ exitCode: null, timedOut: true })), 'hang');
    assert.equal(kindOf(cli(), obs({ peakRssBytes: 3 * 1024 ** 3 })), 'memory');
    assert.equal(kindOf(cli(), obs({ changed: ['d.npz changed'] })), 'changed-input');
    assert.equal(kindOf(cli({ expect: 'refuse' }), obs()), 'silent-garbage');
    assert.equal(kindOf(cli(), obs({ json: { value: { layers: [{ integer: { sqnrDb: null } }] } } })), 'silent-garbage');
    assert.equal(kindOf(cli(), obs({ stdout: 'integer   NaN%' })), 'silent-garbage');
    assert.equal(kindOf(cli(), obs({ exitCode: 2, stderr: 'quantlens: bad\n    at foo (x.js:1:2)\n' })), 'unclear-error');
    assert.equal(kindOf(cli(), obs({ exitCode: 2, stderr: 'quantlens: something is wrong\n' })), 'unclear-error');
    assert.equal(kindOf(cli({ expect: 'accept' }), obs({ exitCode: 2, stderr: 'quantlens: model.onnx: refused\n' })), 'refused-valid');
  });

  it('non-finite numbers: NaN arrives as null where the schema allows none; infinities only where documented', () => {
    assert.deepEqual(nonFinite({ accuracy: { dropPoints: null, integer: { top1: null, outputSqnrDb: 'Infinity' } } }), []);
    assert.deepEqual(nonFinite({ tensors: [{ klCurve: [{ threshold: 1, value: 'Infinity' }] }] }), []);
    assert.deepEqual(
      nonFinite({ layers: [{ integer: { mse: 'Infinity' } }] }).map((i) => i.path),
      ['layers[0].integer.mse'],
    );
    assert.deepEqual(
      nonFinite({ primaryMetric: { value: { estimate: null } } }).map((i) => i.path),
      ['primaryMetric.value.estimate'],
    );
    // an interval over fewer than two values may be unbounded, its estimate may not be NaN
    assert.deepEqual(nonFinite({ m: { estimate: 3, low: '-Infinity', high: 'Infinity', n: 1 } }), []);
    assert.deepEqual(
      nonFinite({ m: { estimate: null, low: 1, high: 2, n: 5 } }).map((i) => i.path),
      ['m.estimate'],
    );
    // a sweep entry's own error may carry placeholders, but not a JavaScript bug
    assert.deepEqual(nonFinite({ configs: [{ drop: 'Infinity', error: 'onnxruntime cannot load it' }] }), []);
    assert.equal(nonFinite({ configs: [{ drop: 'Infinity', error: "Cannot read properties of undefined (reading 'x')" }] }).length, 1);
  });
});
