/**
 * ONNX backend node tests of the quantized operators, run through the integer kernels
 * (engine/integer) and compared BIT-EXACTLY with the expected outputs: integer outputs
 * element-for-element, float outputs (DequantizeLinear, DynamicQuantizeLinear's scale) by their
 * float32 bit patterns.
 *
 * The test data is the Debian package libonnx-testdata. Its absence is a failure, not a skip: a
 * green run must mean the kernels were checked.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import { INTEGER_OPS, runIntegerNode } from '../../engine/integer/onnxNode';
import { loadModel } from '../../engine/onnx/model';
import { DT, type HostTensor, readTensor } from '../../engine/onnx/tensor';

const NODE_TESTS = process.env.QUANTLENS_ONNX_NODE_TESTS ?? '/usr/share/libonnx-testdata/data/node';
const PREFIXES = [
  'test_quantizelinear',
  'test_dequantizelinear',
  'test_qlinearconv',
  'test_qlinearmatmul',
  'test_matmulinteger',
  'test_convinteger',
  'test_basic_convinteger',
  'test_dynamicquantizelinear',
];

function readPb(file: string): HostTensor {
  return readTensor(fromBinary(TensorProtoSchema, fs.readFileSync(file)), path.dirname(file));
}

function bytesOf(t: HostTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function describeMismatch(name: string, got: HostTensor, want: HostTensor): string | undefined {
  if (got.dataType !== want.dataType) return `${name}: type ${DT[got.dataType]}, expected ${DT[want.dataType]}`;
  if (got.dims.join() !== want.dims.join()) return `${name}: shape [${got.dims}], expected [${want.dims}]`;
  if (bytesOf(got).equals(bytesOf(want))) return undefined;
  for (let i = 0; i < want.data.length; i++) {
    if (!Object.is(got.data[i], want.data[i])) return `${name}[${i}] = ${got.data[i]}, expected ${want.data[i]}`;
  }
  return `${name}: bytes differ`; // e.g. two NaN payloads
}

interface CaseResult {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
}

/** Run every test_data_set_* of one backend test folder; returns the first mismatch or undefined. */
function runCase(dir: string): string | undefined {
  const model = loadModel(path.join(dir, 'model.onnx'));
  const g = model.proto.graph!;
  const values = new Map<string, HostTensor>();
  for (const init of g.initializer) values.set(init.name, readTensor(init, model.dir));
  const inputNames = g.input.map((i) => i.name).filter((n) => !values.has(n));
  const sets = fs
    .readdirSync(dir)
    .filter((d) => d.startsWith('test_data_set_'))
    .sort();
  if (sets.length === 0) return 'no test_data_set_* folder';
  for (const set of sets) {
    const env = new Map(values);
    const setDir = path.join(dir, set);
    inputNames.forEach((name, k) => env.set(name, readPb(path.join(setDir, `input_${k}.pb`))));
    for (const node of g.node) {
      const inputs = node.input.map((n) => (n ? env.get(n) : undefined));
      node.input.forEach((n, i) => {
        if (n && !inputs[i]) throw new Error(`${node.opType}: input ${n} has no value`);
      });
      const { outputs } = runIntegerNode(node, inputs);
      node.output.forEach((n, i) => n && env.set(n, outputs[i]));
    }
    for (let k = 0; k < g.output.length; k++) {
      const name = g.output[k].name;
      const got = env.get(name);
      if (!got) return `${set}: output ${name} was not produced`;
      const bad = describeMismatch(`${set}/${name}`, got, readPb(path.join(setDir, `output_${k}.pb`)));
      if (bad) return bad;
    }
  }
  return undefined;
}

test('ONNX backend node tests of quantized ops are bit-exact through the integer kernels', async (t) => {
  assert.ok(fs.existsSync(NODE_TESTS), `ONNX backend test data not found at ${NODE_TESTS}. Install it with: sudo apt-get install libonnx-testdata`);
  const folders = fs
    .readdirSync(NODE_TESTS)
    .filter((d) => PREFIXES.some((p) => d.startsWith(p)))
    .sort();
  assert.ok(folders.length > 0, `no quantized-op tests under ${NODE_TESTS}; is libonnx-testdata complete?`);

  const results: CaseResult[] = [];
  const started = performance.now();
  for (const name of folders) {
    const dir = path.join(NODE_TESTS, name);
    const ops = [...new Set(loadModel(path.join(dir, 'model.onnx')).proto.graph!.node.map((n) => n.opType))];
    const unsupported = ops.filter((op) => !INTEGER_OPS.has(op));
    if (unsupported.length > 0 && name.endsWith('_expanded')) {
      // Function-expanded variants decompose the op into float graph ops (ReduceMin, Div, Round,
      // Cast...), which an integer executor does not implement.
      const reason = `expanded into ops outside the integer executor: ${unsupported.join(', ')}`;
      results.push({ name, status: 'skip', detail: reason });
      await t.test(name, { skip: reason }, () => {});
      continue;
    }
    let detail: string | undefined;
    try {
      detail = runCase(dir);
    } catch (e) {
      detail = `threw: ${(e as Error).message}`;
    }
    results.push({ name, status: detail ? 'fail' : 'pass', detail: detail ?? `bit-exact (${ops.join(', ')})` });
    await t.test(name, () => assert.equal(detail, undefined, detail));
  }
  const ms = performance.now() - started;

  const count = (s: CaseResult['status']) => results.filter((r) => r.status === s).length;
  const width = Math.max(...results.map((r) => r.name.length));
  const lines = results.map((r) => `  ${r.status.toUpperCase().padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}`);
  const summary =
    `ONNX quantized-op conformance (${NODE_TESTS}): ${results.length} tests found, ` +
    `${count('pass')} passed bit-exact, ${count('fail')} failed, ${count('skip')} skipped; ${ms.toFixed(1)} ms`;
  console.log([...lines, summary].join('\n'));
  t.diagnostic(summary);
  assert.equal(count('fail'), 0, summary);
});
