/**
 * Reading and writing ONNX model files.
 *
 * Decoding uses the ONNX 1.20 schema (onnx-buf on @bufbuild/protobuf), which keeps every field on
 * a decode/encode round trip, so a model we rewrite loses nothing we did not mean to change.
 * QuantLens never writes over the model it was given: `saveModel` refuses that path.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clone, fromBinary, toBinary } from '@bufbuild/protobuf';
import { InputError } from '../errors';
import { ModelProtoSchema, type ModelProto, type TensorProto, TensorProto_DataLocation } from 'onnx-buf';

export type { ModelProto };

export { InputError };

export interface LoadedModel {
  /** Absolute path of the file the model came from. */
  path: string;
  /** Folder that external-data locations are resolved against (and may not escape). */
  dir: string;
  sha256: string;
  sizeBytes: number;
  proto: ModelProto;
}

export function loadModel(file: string): LoadedModel {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(abs);
  } catch (e) {
    throw new InputError(`cannot read model ${abs}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return decodeModel(bytes, abs);
}

/** Decode model bytes; `abs` names the file in error messages and anchors external data. */
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
    throw new InputError(`${abs} is not a valid ONNX model: ${(e as Error).message}`);
  }
  if (!proto.graph || proto.graph.node.length === 0) {
    throw new InputError(`${abs} has no graph nodes`);
  }
  const dir = path.dirname(abs);
  for (const t of allTensors(proto)) checkExternalLocation(t, dir, abs);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path: abs, dir, sha256, sizeBytes: bytes.length, proto };
}

/** Every TensorProto held by the main graph: initializers and Constant node values. */
function* allTensors(model: ModelProto): Generator<TensorProto> {
  const g = model.graph!;
  yield* g.initializer;
  for (const n of g.node) for (const a of n.attribute) if (a.t) yield a.t;
}

/** External data must live inside the model's folder: `../` or absolute paths are refused. */
export function checkExternalLocation(t: TensorProto, dir: string, modelPath: string): void {
  if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) return;
  const loc = t.externalData.find((e) => e.key === 'location')?.value;
  if (!loc) throw new InputError(`${modelPath}: tensor ${t.name} is external but names no location`);
  const resolved = path.resolve(dir, loc);
  const rel = path.relative(dir, resolved);
  if (path.isAbsolute(loc) || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new InputError(
      `${modelPath}: tensor ${t.name} points its external data at "${loc}", outside the model's folder; refused`,
    );
  }
}

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function cloneModel(model: ModelProto): ModelProto {
  return clone(ModelProtoSchema, model);
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
