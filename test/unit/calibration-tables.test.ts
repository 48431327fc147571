import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Range } from '../../protocol/report';
import { matchTable } from '../../engine/calibration/calibrationTable';
import { InputError } from '../../engine/errors';
import { formatOrtJson, parseOrtJson, parseOrtText } from '../../engine/calibration/ortTable';
import { parseCalibrationTable, readCalibrationTable, writeCalibrationTable } from '../../engine/calibration/tables';
import { float32Bits, formatTrtCache, parseTrtCache } from '../../engine/calibration/trtCache';
import { mulberry32 } from '../helpers/rng';

const FILE = '/models/net/calibration.cache';

/** Assert `f` throws a one-line InputError naming the file (and `fragment`). */
function rejects(f: () => unknown, fragment: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InputError, `not an InputError: ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `several lines: ${e.message}`);
    assert.ok(e.message.includes(FILE), `file not named: ${e.message}`);
    assert.ok(e.message.includes(fragment), `"${fragment}" missing from: ${e.message}`);
    return true;
  });
}

describe('TensorRT calibration cache', () => {
  it('reads a hand-written cache (CRLF, blank lines, colons in names, short hex)', () => {
    // Scales, by hand from the float32 bit patterns (sign | 8-bit exponent | 23-bit mantissa):
    //   3c000000: exponent 0x78 = 120 -> 2^(120-127) = 2^-7     -> amax 127 * 2^-7 = 0.9921875
    //   3f800000: exponent 127 -> 1.0                           -> amax 127
    //   40400000: exponent 128, mantissa 0x400000 = 1/2 -> 1.5*2 = 3 -> amax 381
    //   42fe0000: exponent 133 -> 2^6, mantissa 0x7e0000 = 63/64 -> 64 * 127/64 = 127 -> amax 16129
    //   0 (Python's hex() drops leading zeros): 0.0            -> amax 0
    const text = [
      'TRT-8601-EntropyCalibration2',
      'input: 3c000000',
      '',
      'conv1/out:0: 3f800000',
      '(Unnamed Layer* 3) [Activation]_output: 40400000',
      'big:42FE0000',
      'dead: 0',
      '',
    ].join('\r\n');
    const t = parseTrtCache(text, FILE);
    assert.equal(t.format, 'tensorrt');
    assert.equal(t.header, 'TRT-8601-EntropyCalibration2');
    assert.deepEqual([...t.tensors.keys()], ['input', 'conv1/out:0', '(Unnamed Layer* 3) [Activation]_output', 'big', 'dead']);
    const amax = (name: string) => t.tensors.get(name)!.hi;
    assert.equal(amax('input'), 0.9921875);
    assert.equal(amax('conv1/out:0'), 127);
    assert.equal(amax('(Unnamed Layer* 3) [Activation]_output'), 381);
    assert.equal(amax('big'), 16129);
    assert.equal(amax('dead'), 0);
    assert.deepEqual(t.tensors.get('input'), { lo: -0.9921875, hi: 0.9921875 });
  });

  it('writes scales = float32(amax / 127) as eight hex digits (hand-computed)', () => {
    const tensors = new Map<string, Range>([
      ['a', { lo: -381, hi: 2 }], // amax 381 -> scale 3 -> 40400000
      ['relu', { lo: 0, hi: 0.9921875 }], // -> 2^-7 -> 3c000000
      ['zero', { lo: 0, hi: 0 }], // -> 00000000
      ['x:0', { lo: -127, hi: 127 }], // -> 1 -> 3f800000
    ]);
    assert.equal(
      formatTrtCache(tensors, 'TRT-8601-MinMaxCalibration'),
      'TRT-8601-MinMaxCalibration\na: 40400000\nrelu: 3c000000\nzero: 00000000\nx:0: 3f800000\n',
    );
  });

  it('round trip write -> read -> write keeps every scale bit for bit', () => {
    const r = mulberry32(42);
    const tensors = new Map<string, Range>();
    for (let k = 0; k < 200; k++) {
      const m = 10 ** (-6 + 10 * r());
      tensors.set(`t${k}:${k % 3}`, { lo: -m * r(), hi: m });
    }
    const text = formatTrtCache(tensors);
    const back = parseTrtCache(text, FILE);
    for (const [name, range] of tensors) {
      const want = float32Bits(Math.fround(Math.max(Math.abs(range.lo), Math.abs(range.hi)) / 127));
      assert.equal(float32Bits(Math.fround(back.tensors.get(name)!.hi / 127)), want, name);
    }
    assert.equal(formatTrtCache(back.tensors, back.header), text);
  });

  it('rejects malformed caches with one line naming the file and line', () => {
    const head = 'TRT-8601-EntropyCalibration2\n';
    rejects(() => parseTrtCache(`${head}input: 3c00000g\n`, FILE), 'line 2');
    rejects(() => parseTrtCache(`${head}\ninput 3c000000\n`, FILE), 'line 3');
    rejects(() => parseTrtCache(`${head}input: 123456789\n`, FILE), 'line 2');
    rejects(() => parseTrtCache(`${head}nan: 7fc00000\n`, FILE), 'not a finite non-negative float32');
    rejects(() => parseTrtCache(`${head}neg: bf800000\n`, FILE), 'line 2');
    rejects(() => parseTrtCache(`${head}: 3f800000\n`, FILE), 'name is empty');
    rejects(() => parseTrtCache(`${head}a: 3f800000\na: 3f800000\n`, FILE), 'line 3');
    rejects(() => parseTrtCache('input: 3c000000\n', FILE), 'line 1');
    rejects(() => parseTrtCache('\r\n\r\n', FILE), 'empty');
  });
});

describe('onnxruntime calibration tables', () => {
  it('reads the old {tensor: [min, max]} calibration.json', () => {
    const t = parseOrtJson('{"conv_out": [-0.5, 2.25], "relu_out": [0, 6]}', FILE);
    assert.equal(t.format, 'ort-json');
    assert.deepEqual(
      [...t.tensors],
      [
        ['conv_out', { lo: -0.5, hi: 2.25 }],
        ['relu_out', { lo: 0, hi: 6 }],
      ],
    );
  });

  it('reads the current TensorsData calibration.json (one-element and 0-d arrays, extra histogram fields)', () => {
    const array = (data: unknown) => ({ data, dtype: 'float32', CLS: 'numpy.array' });
    const json = JSON.stringify({
      CLS: 'TensorsData',
      data: {
        x: { lowest: array([-1.5]), highest: array([3]), CLS: 'TensorData' },
        y: { lowest: array(-0.25), highest: array(0.75), hist: array([1, 2]), bins: array([0, 1, 2]), CLS: 'TensorData' },
      },
      calibration_method: { CLS: 'CalibrationMethod', value: 'CalibrationMethod.Percentile' },
    });
    const t = parseCalibrationTable(json, FILE);
    assert.equal(t.format, 'ort-json');
    assert.equal(t.method, 'CalibrationMethod.Percentile');
    assert.deepEqual(t.tensors.get('x'), { lo: -1.5, hi: 3 });
    assert.deepEqual(t.tensors.get('y'), { lo: -0.25, hi: 0.75 });
  });

  it('writes the current shape; read back it gives the float32 values', () => {
    const tensors = new Map<string, Range>([
      ['a', { lo: -0.1, hi: 0.3 }],
      ['b/c:0', { lo: 0, hi: 6 }],
    ]);
    const text = formatOrtJson(tensors);
    const root = JSON.parse(text);
    assert.equal(root.CLS, 'TensorsData');
    assert.deepEqual(root.data['b/c:0'], {
      lowest: { data: [0], dtype: 'float32', CLS: 'numpy.array' },
      highest: { data: [6], dtype: 'float32', CLS: 'numpy.array' },
      CLS: 'TensorData',
    });
    const back = parseOrtJson(text, FILE);
    // 0.1 and 0.3 are not float32 values: onnxruntime stores float32, so do we.
    assert.deepEqual(back.tensors.get('a'), { lo: Math.fround(-0.1), hi: Math.fround(0.3) });
    assert.deepEqual(back.tensors.get('b/c:0'), { lo: 0, hi: 6 });
  });

  it("reads onnxruntime's plain-text calibration.cache as symmetric dynamic ranges", () => {
    const t = parseCalibrationTable('data_0 2.008338\r\nconv 1 out 0.5\n\n', FILE);
    assert.equal(t.format, 'ort-text');
    assert.deepEqual(
      [...t.tensors],
      [
        ['data_0', { lo: -2.008338, hi: 2.008338 }],
        ['conv 1 out', { lo: -0.5, hi: 0.5 }],
      ],
    );
    rejects(() => parseOrtText('a 1\nb nan\n', FILE), 'line 2');
    rejects(() => parseOrtText('a -1\n', FILE), 'line 1');
  });

  it('rejects malformed JSON tables with one line naming the file', () => {
    rejects(() => parseOrtJson('{"a": [0, 1],}', FILE), 'not valid JSON');
    rejects(() => parseOrtJson('{"a": [NaN, 1]}', FILE), 'NaN or Infinity');
    rejects(() => parseOrtJson('[1, 2]', FILE), 'JSON object');
    rejects(() => parseOrtJson('{"a": [0, 1, 2]}', FILE), '"a"');
    rejects(() => parseOrtJson('{"a": [2, 1]}', FILE), 'above max');
    rejects(() => parseOrtJson('{"a": {"lowest": {"data": [0, 0]}, "highest": {"data": [1, 1]}}}', FILE), 'per-channel');
    rejects(() => parseOrtJson('{"a": {"avg": 0, "std": 1}}', FILE), 'lowest');
    rejects(() => parseCalibrationTable('\0\0\u0001binary', FILE), 'flatbuffers');
    // a table with no entries at all would silently leave every range to QuantLens
    for (const empty of ['TRT-8601-EntropyCalibration2\n', '{}', '{"CLS": "TensorsData", "data": {}}']) {
      rejects(() => parseCalibrationTable(empty, FILE), 'holds no tensor ranges');
    }
  });
});

describe('table files and matching', () => {
  it('writes through the safe writer and reads back; never replaces a file without force', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-tables-'));
    try {
      const tensors = new Map<string, Range>([
        ['in', { lo: -1, hi: 1 }],
        ['out', { lo: 0, hi: 12.7 }],
      ]);
      const cache = path.join(dir, 'model.cache');
      writeCalibrationTable({ path: cache, role: 'calibration table' }, 'tensorrt', tensors);
      const t = readCalibrationTable(cache);
      assert.equal(t.format, 'tensorrt');
      assert.equal(float32Bits(Math.fround(t.tensors.get('out')!.hi / 127)), float32Bits(Math.fround(0.1)));
      assert.throws(() => writeCalibrationTable({ path: cache, role: 'calibration table' }, 'tensorrt', tensors), /already exists/);
      const json = path.join(dir, 'calibration.json');
      writeCalibrationTable({ path: json, role: 'calibration table' }, 'ort-json', tensors);
      assert.deepEqual(readCalibrationTable(json).tensors.get('in'), { lo: -1, hi: 1 });
      assert.throws(
        () => readCalibrationTable(path.join(dir, 'none.cache')),
        (e: unknown) => e instanceof InputError && /does not exist/.test(e.message),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('matches entries to activation names and lists what it could not match', () => {
    const table = parseTrtCache('TRT-8601-EntropyCalibration2\nconv1_out: 3f800000\n(Unnamed Layer* 3) [Activation]_output: 3c000000\nstale: 3c000000\n', FILE);
    const m = matchTable(table, ['input', 'conv1_out', 'relu_out']);
    assert.deepEqual([...m.ranges], [['conv1_out', { lo: -127, hi: 127 }]]);
    assert.deepEqual(m.unmatched, ['(Unnamed Layer* 3) [Activation]_output', 'stale']);
    assert.deepEqual(m.missing, ['input', 'relu_out']);
  });
});
