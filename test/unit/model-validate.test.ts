/**
 * Malformed models end in one line naming the file and the node or tensor at fault: structural
 * errors from loadModel (engine/onnx/validate.ts), onnxruntime's own load and run errors through
 * createSession / runSession (real onnxruntime), and weights that would make every number
 * meaningless (NaN, infinities, negative BatchNormalization variance).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as ort from 'onnxruntime-node';
import { AttributeProtoSchema, AttributeProto_AttributeType as AT, GraphProtoSchema, type ModelProto, type NodeProto } from 'onnx-buf';
import { InputError } from '../../engine/errors';
import { loadModel } from '../../engine/onnx/model';
import { floatValues } from '../../engine/onnx/weightCheck';
import { ortDetail } from '../../engine/runtime/ortErrors';
import { createSession, runSession } from '../../engine/runtime/session';
import { DT, buildModel, makeNode, makeTensor, tempDir, valueInfo, writeModel } from '../helpers/tinyModels';

const dir = tempDir('quantlens-validate-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const x = valueInfo('x', [1, 4]);
const y = valueInfo('y', [1, 4]);
const w4 = () => makeTensor('w', DT.FLOAT, [1, 4], [1, 2, 3, 4]);
/** y = x + w */
const addModel = (w = w4()) => buildModel({ nodes: [makeNode('Add', ['x', 'w'], ['y'], 'add')], inputs: [x], outputs: [y], initializers: [w] });

let n = 0;
function save(m: ModelProto): string {
  return writeModel(dir, `m${n++}.onnx`, m);
}

/** An InputError of one line that names the file and matches `pattern`. */
function oneLine(file: string, pattern: RegExp) {
  return (e: Error) => {
    assert.ok(e instanceof InputError, `${e.name}: ${e.message}`);
    assert.ok(!e.message.includes('\n'), `several lines: ${e.message}`);
    assert.ok(e.message.includes(file), `file not named: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  };
}

function refused(m: ModelProto, pattern: RegExp): void {
  const file = save(m);
  assert.throws(() => loadModel(file), oneLine(file, pattern));
}

function graphAttr(name: string, nodes: NodeProto[], outputs: string[]) {
  const g = create(GraphProtoSchema, { name, node: nodes, output: outputs.map((o) => valueInfo(o, [1, 4])) });
  return create(AttributeProtoSchema, { name, type: AT.GRAPH, g });
}

/** y = If(c) then (x + k, k a Constant) else x; the then-branch reads x from the outer graph. */
function ifModel(thenNodes: NodeProto[], thenOut = 't'): ModelProto {
  const node = makeNode('If', ['c'], ['y'], 'if1');
  node.attribute = [graphAttr('then_branch', thenNodes, [thenOut]), graphAttr('else_branch', [makeNode('Identity', ['x'], ['e'], 'id')], ['e'])];
  return buildModel({ nodes: [node], inputs: [x, valueInfo('c', [], DT.BOOL)], outputs: [y] });
}
const constK = (values: number[]) => makeNode('Constant', [], ['k'], 'const_k', { value: makeTensor('kv', DT.FLOAT, [1, 4], values) });

describe('a valid model', () => {
  it('loads without warnings and onnxruntime computes x + w from it', async () => {
    const file = save(addModel());
    const m = loadModel(file);
    assert.deepEqual(m.warnings, []);
    const s = await createSession(m.proto, 'float', { label: file });
    const out = await runSession(s, { x: new ort.Tensor('float32', Float32Array.from([10, 20, 30, 40]), [1, 4]) }, file);
    assert.deepEqual(Array.from(out.y.data as Float32Array), [11, 22, 33, 44]);
  });

  it('a subgraph may read values of the graph around it', async () => {
    const file = save(ifModel([constK([1, 1, 1, 1]), makeNode('Add', ['x', 'k'], ['t'], 'add_k')]));
    const s = await createSession(loadModel(file).proto, 'float', { label: file });
    const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]), c: new ort.Tensor('bool', Uint8Array.from([1]), []) });
    assert.deepEqual(Array.from(out.y.data as Float32Array), [2, 3, 4, 5]);
  });
});

describe('structural errors, caught before onnxruntime', () => {
  it('a node reading a value nothing produces', () => {
    refused(
      buildModel({ nodes: [makeNode('Add', ['x', 'z'], ['y'], 'add')], inputs: [x], outputs: [y] }),
      /node add \(Add\) reads z, which no node, initializer or graph input produces/,
    );
  });

  it('the same, inside an If branch (and an unnamed node is named by its op and output)', () => {
    refused(
      ifModel([makeNode('Add', ['x', 'zz'], ['t'], '')]),
      /Add node #0 \(no name, output t\) reads zz, which no node, initializer or input of this subgraph or an enclosing graph produces in subgraph then_branch of node if1 \(If\)/,
    );
  });

  it('a graph output nothing produces, and a graph with no outputs', () => {
    refused(
      buildModel({ nodes: [makeNode('Relu', ['x'], ['r'], 'relu')], inputs: [x], outputs: [y] }),
      /graph output y is produced by no node, initializer or graph input/,
    );
    refused(buildModel({ nodes: [makeNode('Relu', ['x'], ['y'], 'relu')], inputs: [x], outputs: [] }), /the graph declares no outputs/);
  });

  it('a value produced twice, and duplicate initializers or inputs', () => {
    refused(
      buildModel({ nodes: [makeNode('Relu', ['x'], ['y'], 'a'), makeNode('Neg', ['x'], ['y'], 'b')], inputs: [x], outputs: [y] }),
      /tensor y is produced twice, by node a \(Relu\) and by node b \(Neg\)/,
    );
    refused(
      buildModel({ nodes: [makeNode('Relu', ['x'], ['x'], 'a')], inputs: [x], outputs: [x] }),
      /node a \(Relu\) writes x, which is already a graph input/,
    );
    const m = addModel();
    m.graph!.initializer.push(w4());
    refused(m, /initializer w is defined twice/);
    const m2 = addModel();
    m2.graph!.input.push(valueInfo('x', [1, 4]));
    refused(m2, /graph input x is declared twice/);
    const nodes = [makeNode('Relu', ['x'], ['r'], 'same'), makeNode('Neg', ['r'], ['y'], 'same')];
    refused(buildModel({ nodes, inputs: [x], outputs: [y] }), /node name same is used by two nodes, #0 \(Relu\) and #1 \(Neg\)/);
  });

  it('a cycle names exactly the nodes on it, in data-flow order', () => {
    // n1: a = x + b;  n2: b = relu(a);  n3: y = relu(a) hangs off the cycle but is not on it.
    const nodes = [makeNode('Add', ['x', 'b'], ['a'], 'n1'), makeNode('Relu', ['a'], ['b'], 'n2'), makeNode('Relu', ['a'], ['y'], 'n3')];
    const file = save(buildModel({ nodes, inputs: [x], outputs: [y] }));
    assert.throws(
      () => loadModel(file),
      (e: Error) => {
        oneLine(file, /the graph has a cycle: node (n1 \(Add\) -> node n2 \(Relu\) -> node n1|n2 \(Relu\) -> node n1 \(Add\) -> node n2)\b/)(e);
        assert.ok(!e.message.includes('n3'), e.message);
        return true;
      },
    );
  });

  it('a subgraph reading a value produced after its node is a cycle too', () => {
    // if1's branch reads r; r = relu(y) needs if1's output first.
    const m = ifModel([makeNode('Add', ['x', 'r'], ['t'], 'add_r')]);
    m.graph!.node.push(makeNode('Relu', ['y'], ['r'], 'relu_r'));
    refused(m, /the graph has a cycle: node (if1 \(If\) -> node relu_r \(Relu\) -> node if1|relu_r \(Relu\) -> node if1 \(If\) -> node relu_r)\b/);
  });

  it('raw_data or typed values that do not fit the shape', () => {
    const short = w4();
    short.rawData = short.rawData.slice(0, 10);
    refused(addModel(short), /initializer w holds 10 bytes of raw_data, but its shape \[1,4\] of FLOAT needs 16/);
    const typed = makeTensor('w', DT.FLOAT, [1, 4], []);
    typed.floatData = [1, 2, 3];
    refused(addModel(typed), /initializer w holds 3 float_data values, but its shape \[1,4\] of FLOAT needs 4/);
    const empty = makeTensor('w', DT.FLOAT, [1, 4], []);
    refused(addModel(empty), /initializer w holds 0 float_data values, but its shape \[1,4\] of FLOAT needs 4/);
    const int4 = makeTensor('q', DT.INT8, [5], []);
    int4.dataType = DT.INT4;
    int4.rawData = new Uint8Array(2); // 5 int4 values take ceil(5 / 2) = 3 bytes
    const m = addModel();
    m.graph!.initializer.push(int4);
    refused(m, /initializer q holds 2 bytes of raw_data, but its shape \[5\] of INT4 needs 3/);
  });

  it('a Constant value that does not fit, at depth', () => {
    const k = constK([1, 2, 3, 4]);
    k.attribute[0].t!.rawData = new Uint8Array(8);
    refused(
      ifModel([k, makeNode('Add', ['x', 'k'], ['t'], 'add_k')]),
      /the value of node const_k \(Constant\) in subgraph then_branch of node if1 \(If\) holds 8 bytes of raw_data, but its shape \[1,4\] of FLOAT needs 16/,
    );
  });

  it('negative dims and unknown element types', () => {
    const neg = w4();
    neg.dims = [-1n, 4n];
    refused(addModel(neg), /initializer w has a negative dimension in its shape \[-1,4\]/);
    const odd = w4();
    odd.dataType = 99;
    refused(addModel(odd), /initializer w has element type 99 \(not an ONNX element type\)/);
  });

  it('a fixed input shape over 2^31 elements', () => {
    const big = valueInfo('x', [1000000000, 3, 224, 224]);
    refused(
      buildModel({ nodes: [makeNode('Relu', ['x'], ['y'], 'relu')], inputs: [big], outputs: [y] }),
      /input x declares shape \[1000000000,3,224,224\]: 1\.51e\+14 elements/,
    );
    // A symbolic batch does not count: N x 3 x 224 x 224 is fine.
    const file = save(
      buildModel({
        nodes: [makeNode('Relu', ['x'], ['y'], 'relu')],
        inputs: [valueInfo('x', ['N', 3, 224, 224])],
        outputs: [valueInfo('y', ['N', 3, 224, 224])],
      }),
    );
    assert.doesNotThrow(() => loadModel(file));
  });
});

describe('what onnxruntime finds, in one line', () => {
  async function ortRefuses(m: ModelProto, pattern: RegExp) {
    const file = save(m);
    const loaded = loadModel(file); // structurally fine: onnxruntime is the one to object
    await assert.rejects(createSession(loaded.proto, 'float', { label: file }), oneLine(file, pattern));
  }

  it('an unknown op', async () => {
    await ortRefuses(
      buildModel({ nodes: [makeNode('Foo', ['x'], ['y'], 'n1')], inputs: [x], outputs: [y] }),
      /onnxruntime cannot load it: node n1 \(Foo\): No Op registered for Foo/,
    );
  });

  it('a bad attribute value and an unknown attribute', async () => {
    await ortRefuses(
      buildModel({ nodes: [makeNode('Softmax', ['x'], ['y'], 'sm', { axis: 7 })], inputs: [x], outputs: [y] }),
      /node sm \(Softmax\): .*'axis' must be in \[-2 , 1\]/,
    );
    await ortRefuses(
      buildModel({ nodes: [makeNode('Relu', ['x'], ['y'], 'r', { alpha: 7 })], inputs: [x], outputs: [y] }),
      /node r \(Relu\): Unrecognized attribute: alpha/,
    );
  });

  it('a type error', async () => {
    await ortRefuses(addModel(makeTensor('w', DT.INT64, [1, 4], [1, 2, 3, 4])), /Type Error: .*\(Add\) bound to different types .* in node \(add\)/);
  });

  it('a Reshape to an impossible shape fails at run time, through runSession', async () => {
    const m = buildModel({
      nodes: [makeNode('Reshape', ['x', 's'], ['y'], 'rs')],
      inputs: [valueInfo('x', ['N', 4])],
      outputs: [valueInfo('y', ['N', 'M'])],
      initializers: [makeTensor('s', DT.INT64, [2], [3, 5])],
    });
    const file = save(m);
    const s = await createSession(loadModel(file).proto, 'float', { label: file });
    await assert.rejects(
      runSession(s, { x: new ort.Tensor('float32', new Float32Array(4), [1, 4]) }, `quantized model of ${file}`),
      oneLine(file, /^quantized model of .*: onnxruntime failed while running it: node rs \(Reshape\): .*cannot be reshaped to the requested shape/),
    );
  });

  it('keeps the reason and the node from the wrapped form other onnxruntime clients print', () => {
    const wrapped =
      '[ONNXRuntimeError] : 10 : INVALID_GRAPH : Load model from /m/x.onnx failed:This is an invalid model. In Node:(n1), Error Unrecognized attribute: foo\nmore';
    assert.equal(ortDetail(wrapped), 'node n1: Unrecognized attribute: foo');
  });
});

describe('weights that make every number meaningless', () => {
  it('NaN and infinite weights are counted and refused, at any depth', () => {
    const w = makeTensor('conv1.weight', DT.FLOAT, [2, 4], [0, NaN, 1, Infinity, NaN, -Infinity, NaN, 2]);
    const m = addModel();
    m.graph!.initializer.push(w);
    refused(m, /initializer conv1\.weight holds 3 NaN and 2 infinite values \(of 8\)/);
    refused(
      ifModel([constK([1, NaN, 1, 1]), makeNode('Add', ['x', 'k'], ['t'], 'add_k')]),
      /the value of node const_k \(Constant\) in subgraph then_branch of node if1 \(If\) holds 1 NaN values/,
    );
    const typed = makeTensor('w', DT.FLOAT, [1, 4], []);
    typed.floatData = [1, NaN, NaN, 3];
    refused(addModel(typed), /initializer w holds 2 NaN values/);
  });

  it('raw_data at an odd offset inside a Buffer (as protobuf decodes it) is read as its own values', () => {
    const values = [1.5, NaN, -2, Infinity];
    const file = Buffer.alloc(3 + 16);
    values.forEach((v, i) => file.writeFloatLE(v, 3 + 4 * i));
    const t = makeTensor('w', DT.FLOAT, [4], []);
    t.rawData = file.subarray(3) as unknown as Uint8Array<ArrayBuffer>; // byteOffset 3: not float-aligned
    assert.deepEqual(Array.from(floatValues(t)!), values);
  });

  it('float16 infinities are caught from their bits', () => {
    const h = makeTensor('h', DT.UINT16, [3], [0x3c00, 0x7c00, 0xfc00]); // 1, +Inf, -Inf
    h.dataType = DT.FLOAT16;
    const m = addModel();
    m.graph!.initializer.push(h);
    refused(m, /initializer h holds 2 infinite values \(of 3\)/);
  });

  it('finite but huge weights load with a warning naming the tensor', () => {
    const file = save(addModel(makeTensor('w', DT.FLOAT, [1, 4], [1, 1e38, -3e35, 1e29])));
    const { warnings } = loadModel(file);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /initializer w holds 2 values above 1e\+30 in magnitude \(largest 1\.00e\+38\)/);
    assert.ok(warnings[0].includes(file));
  });

  it('a BatchNormalization with a negative constant variance names the node', () => {
    const t = (name: string, v: number[]) => makeTensor(name, DT.FLOAT, [2], v);
    const m = buildModel({
      nodes: [makeNode('BatchNormalization', ['x', 'g', 'b', 'mu', 'var'], ['y'], 'bn1')],
      inputs: [valueInfo('x', [1, 2, 2, 2])],
      outputs: [valueInfo('y', [1, 2, 2, 2])],
      initializers: [t('g', [1, 1]), t('b', [0, 0]), t('mu', [0, 0]), t('var', [1, -0.5])],
    });
    refused(m, /node bn1 \(BatchNormalization\) has variance var with 1 negative values \(smallest -0\.5\)/);
  });
});

describe('files that are not models', () => {
  it('a device, a folder and bytes that do not decode are refused at once', () => {
    assert.throws(() => loadModel('/dev/zero'), oneLine('/dev/zero', /is a character device, not a regular file/));
    assert.throws(() => loadModel(dir), oneLine(dir, /is a folder/));
    const bad = path.join(dir, 'truncated.onnx');
    fs.writeFileSync(bad, Buffer.from([0x08, 0x07, 0x3a, 0xff, 0xff, 0x01]));
    assert.throws(() => loadModel(bad), oneLine(bad, /is not a valid ONNX model/));
  });
});
