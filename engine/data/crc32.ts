/**
 * CRC-32 (the zip checksum) of a byte stream read piece by piece. Node >= 20.15 computes it
 * natively (zlib.crc32); older runtimes (the VS Code extension host's Electron Node) use the
 * table-driven definition below, which the tests check against zlib.
 */
import * as zlib from 'node:zlib';
import type { ByteReader } from './bytes';

let table: Uint32Array | undefined;

/** CRC-32 (IEEE, reflected, polynomial 0xEDB88320) of `data` continuing from `crc`, in JavaScript. */
export function crc32Table(data: Uint8Array, crc = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data` continuing from `crc` (0 to start). */
export function crc32(data: Uint8Array, crc = 0): number {
  return native ? native(data, crc) >>> 0 : crc32Table(data, crc);
}

/** CRC-32 of every byte of `reader`, in one streamed pass (memory does not grow with the size). */
export function crc32Of(reader: ByteReader): number {
  let crc = 0;
  reader.scan((piece) => {
    crc = crc32(piece, crc);
  });
  return crc;
}
