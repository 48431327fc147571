/**
 * Reading and writing ONNX model files.
 *
 * Decoding uses the ONNX 1.20 schema (onnx-buf on @bufbuild/protobuf), which keeps every field on
 * a decode/encode round trip, so a model we rewrite loses nothing we did not mean to change.
 * Loading is where untrusted bytes become a model: the file is read through engine/io/files.ts
 * (regular files only, 2 GiB cap), external data is checked and loaded into memory, the structure
 * is validated (validate.ts) and weights are checked (weightCheck.ts), so everything downstream
 * works on a self-contained, well-formed model. QuantLens never writes over the model it was given.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clone, fromBinary, toBinary } from '@bufbuild/protobuf';
import { InputError } from '../errors';
import { readRegularFile } from '../io/files';
import { type GraphProto, ModelProtoSchema, type ModelProto, type TensorProto, TensorProto_DataLocation } from 'onnx-buf';
import { externalSpan, inlineExternalData } from './externalData';
import { validateModel } from './validate';
import { subgraphsOf, tensorSites } from './walk';
import { checkWeights } from './weightCheck';

export type { ModelProto };

export { InputError };

/** Protobuf cannot hold a message of 2 GiB or more: the model with all its data must fit below. */
export const MAX_MODEL_BYTES = 2 ** 31 - 1;

export interface LoadedModel {
  /** Absolute path of the file the model came from. */
  path: string;
  /** The model's folder (external data was resolved against it, and may not escape it). */
  dir: string;
  /** Hash of the model file followed by the external data bytes it reads, in model order. */
  sha256: string;
  /** Size of the model file itself. */
  sizeBytes: number;
  /** The model, with external data already loaded into raw_data: it depends on no other file. */
  proto: ModelProto;
  /** Problems that do not stop the analysis but make its numbers suspect (huge weights). */
  warnings: string[];
}

/**
 * Load, check and make self-contained a model file. Every problem is an InputError of one line
 * naming the file (and the node or tensor at fault).
 */
export function loadModel(file: string): LoadedModel {
  const abs = path.resolve(file);
  const bytes = readRegularFile(abs, 'model', MAX_MODEL_BYTES);
  const proto = decodeModel(bytes, abs).proto;
  const hash = createHash('sha256').update(bytes);
  inlineExternalData(proto, abs, MAX_MODEL_BYTES - bytes.length, (b) => hash.update(b));
  validateModel(proto, abs);
  const warnings = checkWeights(proto, abs);
  return { path: abs, dir: path.dirname(abs), sha256: hash.digest('hex'), sizeBytes: bytes.length, proto, warnings };
}

/**
 * The external data files a model file names (real paths), so that no output is ever written over
 * one. Only the locations that pass loadModel's checks count; a model that cannot be read names
 * none here (loading it reports why).
 */
export function externalDataFiles(file: string): string[] {
  const abs = path.resolve(file);
  let proto: ModelProto;
  try {
    proto = decodeModel(readRegularFile(abs, 'model', MAX_MODEL_BYTES), abs).proto;
  } catch {
    return [];
  }
  const files = new Set<string>();
  for (const { tensor, where } of tensorSites(proto)) {
    if (tensor.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    try {
      files.add(externalSpan(tensor, where, path.dirname(abs), abs).file);
    } catch {
      /* a location loadModel refuses: nothing there to protect */
    }
  }
  return [...files];
}

/**
 * Decode model bytes; `abs` names the file in error messages. Only decodes: external data stays
 * external and nothing is validated (use `loadModel` for a file the user gave).
 */
export function decodeModel(bytes: Uint8Array, abs: string): LoadedModel {
  // A ModelProto starts with a varint field (ir_version = field 1, tag 0x08) in every exporter we
  // know; checking first avoids protobuf's unhelpful errors on e.g. an HTML error page or a zip.
  if (bytes.length < 2 || bytes[0] !== 0x08) {
    throw new InputError(`${abs} is not an ONNX model (it does not start like a ModelProto)`);
  }
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, bytes);
  } catch (e) {
    // Any failure here (truncation, bad wire type, nesting so deep the stack overflows) is the file's.
    const why = String((e as Error)?.message ?? e).split('\n')[0];
    throw new InputError(`${abs} is not a valid ONNX model: ${why}`);
  }
  if (!proto.graph || proto.graph.node.length === 0) {
    throw new InputError(`${abs} has no graph nodes`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path: abs, dir: path.dirname(abs), sha256, sizeBytes: bytes.length, proto, warnings: [] };
}

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function cloneModel(model: ModelProto): ModelProto {
  const copy = clone(ModelProtoSchema, model);
  if (model.graph && copy.graph) pairInitializers(model.graph, copy.graph);
  return copy;
}

/**
 * A copy of `model` without its main graph's nodes, initializers and value infos, for a part of the
 * model that takes the original's node and initializer objects (encoding never changes them)
 * instead of deep-copying every weight.
 */
export function emptyClone(model: ModelProto): ModelProto {
  const g = model.graph!;
  const { node, initializer, valueInfo } = g;
  try {
    g.node = [];
    g.initializer = [];
    g.valueInfo = [];
    return cloneModel(model);
  } finally {
    Object.assign(g, { node, initializer, valueInfo });
  }
}

/**
 * Each cloned initializer's original. Nothing rewrites an initializer's values once loaded (names
 * change, contents do not), so a clone holds the same numbers as the tensor it came from, and what
 * is computed from those numbers can be cached on the original: quantizeWith clones the model for
 * every configuration, and a diagnosis measuring 48 candidates quantized every weight 48 times.
 */
const origins = new WeakMap<TensorProto, TensorProto>();

/** The tensor `t` was cloned from (through any number of clones), or `t` itself. */
export function originOf(t: TensorProto): TensorProto {
  return origins.get(t) ?? t;
}

/**
 * Declare that `t`, made afresh, holds the same numbers as `source` (BatchNorm folding computes
 * the same folded weight for every configuration's clone): what is cached on `source`'s original
 * then serves `t` too.
 */
export function sameNumbersAs(t: TensorProto, source: TensorProto): void {
  origins.set(t, originOf(source));
}

function pairInitializers(from: GraphProto, to: GraphProto): void {
  from.initializer.forEach((t, i) => origins.set(to.initializer[i], originOf(t)));
  from.node.forEach((n, i) => {
    const copies = subgraphsOf(to.node[i]);
    subgraphsOf(n).forEach((s, k) => pairInitializers(s.graph, copies[k].graph));
  });
}

/**
 * Write a model to a NEW file. Refuses the path of the model it derives from, and writes through a
 * temporary file so a crash never leaves a half-written model behind.
 */
export function saveModel(model: ModelProto, out: string, sourcePath: string): string {
  const abs = path.resolve(out);
  if (abs === path.resolve(sourcePath)) {
    throw new InputError(`refusing to overwrite the input model ${abs}; choose another --out`);
  }
  const tmp = `${abs}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, encodeModel(model));
  fs.renameSync(tmp, abs);
  return abs;
}

/** Opset version the model imports for a domain ('' = the default ONNX domain). */
export function opsetOf(model: ModelProto, domain = ''): number {
  const d = domain === 'ai.onnx' ? '' : domain;
  const imp = model.opsetImport.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d);
  return imp ? Number(imp.version) : 0;
}
