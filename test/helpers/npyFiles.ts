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

/**
 * A zip in ZIP64 form, built by hand from the specification (4.3.14-4.3.16, 4.5.3): every
 * 32-bit size and offset saturated at 0xFFFFFFFF with the real values in ZIP64 extra fields, a
 * ZIP64 end of central directory record and its locator. Entries are STORED. Large archives
 * (over 4 GiB, or entries over 4 GiB) look like this.
 */
export function zip64Stored(files: Record<string, Uint8Array>, crc: (b: Uint8Array) => number): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(files)) {
    const n = Buffer.from(name, 'latin1');
    const sum = crc(data);
    const local = Buffer.alloc(30 + n.length + 20);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt32LE(sum, 14);
    local.writeUInt32LE(0xffffffff, 18);
    local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(n.length, 26);
    local.writeUInt16LE(20, 28);
    n.copy(local, 30);
    local.writeUInt16LE(1, 30 + n.length);
    local.writeUInt16LE(16, 32 + n.length);
    local.writeBigUInt64LE(BigInt(data.length), 34 + n.length);
    local.writeBigUInt64LE(BigInt(data.length), 42 + n.length);
    const cd = Buffer.alloc(46 + n.length + 28);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(45, 6);
    cd.writeUInt32LE(sum, 16);
    cd.writeUInt32LE(0xffffffff, 20);
    cd.writeUInt32LE(0xffffffff, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt16LE(28, 30);
    cd.writeUInt32LE(0xffffffff, 42);
    n.copy(cd, 46);
    const x = 46 + n.length;
    cd.writeUInt16LE(1, x);
    cd.writeUInt16LE(24, x + 2);
    cd.writeBigUInt64LE(BigInt(data.length), x + 4); // uncompressed
    cd.writeBigUInt64LE(BigInt(data.length), x + 12); // compressed
    cd.writeBigUInt64LE(BigInt(offset), x + 20); // local header offset
    central.push(cd);
    parts.push(local, Buffer.from(data));
    offset += local.length + data.length;
  }
  const dir = Buffer.concat(central);
  const count = BigInt(central.length);
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeUInt16LE(45, 12);
  rec.writeUInt16LE(45, 14);
  rec.writeBigUInt64LE(count, 24);
  rec.writeBigUInt64LE(count, 32);
  rec.writeBigUInt64LE(BigInt(dir.length), 40);
  rec.writeBigUInt64LE(BigInt(offset), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(offset + dir.length), 8);
  loc.writeUInt32LE(1, 16);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0xffff, 8);
  end.writeUInt16LE(0xffff, 10);
  end.writeUInt32LE(0xffffffff, 12);
  end.writeUInt32LE(0xffffffff, 16);
  return Buffer.concat([...parts, dir, rec, loc, end]);
}
