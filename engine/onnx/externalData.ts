/**
 * ONNX external data: tensors whose bytes live in files beside the model (`location`, `offset`,
 * `length` in external_data). QuantLens loads those bytes into raw_data once, at load time, so every
 * consumer downstream (onnxruntime sessions built from bytes, which have no folder to resolve
 * locations against; the QDQ rewrite; the integer executor) sees an ordinary in-memory model.
 *
 * A location is untrusted input: it must be a relative path that stays inside the model's folder
 * both as written and after resolving symlinks, name a regular file, and the byte range must fit
 * the file and the tensor's shape and type exactly. Only the ranges the tensors name are read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type ModelProto, type TensorProto, TensorProto_DataLocation, TensorProto_DataType as DT } from 'onnx-buf';
import { InputError } from '../errors';
import { formatBytes, readFileRange, statRegularFile } from '../io/files';
import { elementCountOf, elementTypeName, rawBytesFor } from './elementTypes';
import { tensorSites } from './walk';

export interface ExternalSpan {
  /** Real path of the data file (symlinks resolved, inside the model's real folder). */
  file: string;
  offset: number;
  length: number;
}

function isInsideFolder(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realPath(p: string, what: () => string): string {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${what()} does not exist` : `${what()} cannot be read: ${code ?? String(e)}`);
  }
}

function nonNegativeInt(v: string | undefined, key: string, fail: (msg: string) => never): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) fail(`has external_data ${key} "${v}", not a non-negative integer`);
  return n;
}

/**
 * Check where an external tensor's bytes are and that they fit: `where` describes the tensor
 * ("initializer conv1.weight"), `modelPath` names the file in messages, `dir` is the model's folder.
 */
export function externalSpan(t: TensorProto, where: string, dir: string, modelPath: string): ExternalSpan {
  const fail = (msg: string): never => {
    throw new InputError(`${modelPath}: ${where} ${msg}`);
  };
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const loc = kv.get('location');
  if (!loc) fail('is stored as external data but names no location');
  const location = loc as string;
  if (location.includes('\0')) fail('has an external data location containing a NUL byte; refused');
  if (path.isAbsolute(location) || /^[A-Za-z]:[\\/]|^\\/.test(location)) {
    fail(`keeps its data at the absolute path "${location}"; external data must be a path relative to the model's folder, refused`);
  }
  const resolved = path.resolve(dir, location);
  if (!isInsideFolder(path.resolve(dir), resolved)) fail(`keeps its data at "${location}", outside the model's folder; refused`);
  const realDir = realPath(dir, () => `the model's folder ${dir}`);
  const real = realPath(resolved, () => `${modelPath}: external data file ${resolved} of ${where}`);
  if (!isInsideFolder(realDir, real)) {
    fail(`keeps its data at "${location}", which resolves (through a symlink) to ${real}, outside the model's folder; refused`);
  }
  const size = statRegularFile(real, `external data file (of ${where} in ${modelPath})`).size;

  const dims = t.dims.map(Number);
  if (dims.some((d) => d < 0)) fail(`has a negative dimension in its shape [${dims.join(',')}]`);
  const need = rawBytesFor(t.dataType, elementCountOf(dims));
  if (need === undefined) fail(`has element type ${elementTypeName(t.dataType)}, which cannot be stored as external data`);
  const offset = nonNegativeInt(kv.get('offset'), 'offset', fail) ?? 0;
  const length = nonNegativeInt(kv.get('length'), 'length', fail) ?? (need as number);
  const shape = `shape [${dims.join(',')}] of ${DT[t.dataType]} (${need} bytes)`;
  if (length !== need) fail(`declares external data length ${length} bytes, but its ${shape} needs exactly ${need}`);
  if (offset + length > size) {
    fail(`reads bytes ${offset}..${offset + length} of ${real}, beyond its end (${size} bytes)`);
  }
  return { file: real, offset, length };
}

/** The bytes of one external tensor, after every check of `externalSpan`. */
export function readExternalBytes(t: TensorProto, where: string, dir: string, modelPath: string): Uint8Array {
  const s = externalSpan(t, where, dir, modelPath);
  const buf = readFileRange(s.file, `external data file (of ${where} in ${modelPath})`, s.offset, s.length);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Move every external tensor's bytes (initializers, Constant values, sparse values, tensors in
 * subgraphs at any depth) into raw_data, so the model no longer depends on its folder. `budget` is
 * how many bytes may still be added (a model is one protobuf of at most 2 GiB once sessions are
 * built from bytes); `onBytes` sees each tensor's bytes in model order (the model hash covers them).
 * Returns the number of bytes loaded.
 */
export function inlineExternalData(model: ModelProto, modelPath: string, budget: number, onBytes?: (b: Uint8Array) => void): number {
  const dir = path.dirname(modelPath);
  let total = 0;
  for (const { tensor: t, where } of tensorSites(model)) {
    if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
    const span = externalSpan(t, where, dir, modelPath);
    if (total + span.length > budget) {
      throw new InputError(
        `${modelPath}: its external data (${formatBytes(total + span.length)} by ${where}) makes the model larger than the 2 GiB one ONNX protobuf can hold; QuantLens cannot load it`,
      );
    }
    const bytes = readExternalBytes(t, where, dir, modelPath);
    t.rawData = bytes as Uint8Array<ArrayBuffer>;
    t.dataLocation = TensorProto_DataLocation.DEFAULT;
    t.externalData = [];
    total += bytes.length;
    onBytes?.(bytes);
  }
  return total;
}
