/**
 * Calibration-data files built byte by byte in the tests, following the .npy format description
 * (numpy.lib.format) and the zip specification directly, so the readers under test are checked
 * against bytes they did not produce.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump } from 'npyjs';

export interface NpySpec {
  descr: string;
  shape: number[];
  /** The data bytes that follow the header (may deliberately disagree with the shape). */
  data: Uint8Array;
  fortran?: boolean;
  /** Format version 1, 2 or 3 (header length in 2 or 4 bytes). */
  version?: number;
  /** Replace the whole header dict text. */
  dict?: string;
}

/** An .npy file as numpy writes it: magic, version, little-endian header length, dict padded to 64. */
export function npyBytes(s: NpySpec): Uint8Array {
  const version = s.version ?? 1;
  const shape = `(${s.shape.join(', ')}${s.shape.length === 1 ? ',' : ''})`;
  const dict = s.dict ?? `{'descr': '${s.descr}', 'fortran_order': ${s.fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const pre = version === 1 ? 10 : 12;
  const padded = dict + ' '.repeat(63 - ((pre + dict.length) % 64)) + '\n';
  const out = new Uint8Array(pre + padded.length + s.data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, padded.length, true);
  else v.setUint32(8, padded.length, true);
  out.set(Buffer.from(padded, 'latin1'), pre);
  out.set(s.data, pre + padded.length);
  return out;
}

/** The little-endian bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

/** Reverse each `size`-byte element (little-endian <-> big-endian). */
export function swapped(b: Uint8Array, size: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i += size) out.subarray(i, i + size).reverse();
  return out;
}

/** Write an array with npyjs (an independent .npy writer) as `folder/name.npy`. */
export function writeNpy(folder: string, name: string, data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Float64Array, shape: number[]): string {
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, `${name}.npy`);
  fs.writeFileSync(file, Buffer.from(dump(data, shape)));
  return file;
}

/** Offset of the central directory header (`central`) or local header of entry `name` in a zip. */
export function zipHeader(zip: Uint8Array, name: string, central: boolean): number {
  const sig = central ? 0x02014b50 : 0x04034b50;
  const nameAt = central ? 46 : 30;
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = 0; i + nameAt <= zip.length; i++) {
    if (v.getUint32(i, true) !== sig) continue;
    const len = v.getUint16(i + (central ? 28 : 26), true);
    if (Buffer.from(zip.subarray(i + nameAt, i + nameAt + len)).toString('latin1') === name) return i;
  }
  throw new Error(`no ${central ? 'central' : 'local'} header for ${name}`);
}

/** Set a little-endian uint32 field of a zip header. */
export function setU32(zip: Uint8Array, at: number, value: number): void {
  new DataView(zip.buffer, zip.byteOffset, zip.byteLength).setUint32(at, value >>> 0, true);
}

export function getU32(zip: Uint8Array, at: number): number {
  return new DataView(zip.buffer, zip.byteOffset, zip.byteLength).getUint32(at, true);
}

/** Central directory field offsets (zip specification 4.3.12). */
export const CD = { flags: 8, method: 10, crc: 16, compressedSize: 20, size: 24 } as const;
