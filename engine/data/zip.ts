/**
 * The zip container of an .npz: the central directory (with ZIP64, which np.savez uses) gives each
 * entry's name, method, sizes and CRC; an entry's bytes are then read in place (STORED, as
 * np.savez writes them) or through a sequential inflater (DEFLATED, np.savez_compressed). Sizes
 * and CRCs are taken from the central directory: np.savez's local headers carry placeholder sizes.
 */
import type { RegularFileReader } from '../io/files';
import { InputError } from '../errors';
import { type ByteReader, FileRegion } from './bytes';
import { InflatingReader } from './inflate';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated (others are refused when the entry is used). */
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  /** Declared uncompressed size. */
  size: number;
  localOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;
const MAX_DIRECTORY = 64 << 20;

/** Read the central directory of the zip file `file` (named `where` in messages). */
export function readZipDirectory(file: RegularFileReader, where: string): { entries: ZipEntry[]; directoryOffset: number } {
  const bad = (what: string) => new InputError(`${where} is not a readable .npz (zip) file: ${what}`);
  const tailLen = Math.min(file.size, 22 + MAX_COMMENT);
  const tail = view(file.read(file.size - tailLen, tailLen));
  let at = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD && i + 22 + tail.getUint16(i + 20, true) <= tailLen) {
      at = i;
      break;
    }
  }
  if (at < 0) throw bad('no end of central directory record');
  const eocdPos = file.size - tailLen + at;
  if (tail.getUint16(at + 4, true) !== 0 || tail.getUint16(at + 6, true) !== 0) throw bad('split (multi-disk) archives are not supported');
  let count = tail.getUint16(at + 10, true);
  let dirSize = tail.getUint32(at + 12, true);
  let dirOffset = tail.getUint32(at + 16, true);
  let dirEnd = eocdPos;
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    if (eocdPos < 20) throw bad('ZIP64 locator missing');
    const loc = view(file.read(eocdPos - 20, 20));
    if (loc.getUint32(0, true) !== ZIP64_LOCATOR) throw bad('ZIP64 locator missing');
    const z64 = u64(loc, 8, bad);
    if (z64 + 56 > eocdPos - 20) throw bad('ZIP64 end record out of range');
    const rec = view(file.read(z64, 56));
    if (rec.getUint32(0, true) !== ZIP64_EOCD) throw bad('ZIP64 end record missing');
    count = u64(rec, 32, bad);
    dirSize = u64(rec, 40, bad);
    dirOffset = u64(rec, 48, bad);
    dirEnd = z64;
  }
  if (dirOffset + dirSize > dirEnd) throw bad(`central directory (${dirSize} bytes at ${dirOffset}) lies past its end`);
  if (dirSize > MAX_DIRECTORY) throw bad(`central directory of ${dirSize} bytes is too large`);
  const dir = view(file.read(dirOffset, dirSize));
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > dirSize || dir.getUint32(p, true) !== CENTRAL) throw bad(`central directory entry ${k} is malformed`);
    const nameLen = dir.getUint16(p + 28, true);
    const extraLen = dir.getUint16(p + 30, true);
    const commentLen = dir.getUint16(p + 32, true);
    const flags = dir.getUint16(p + 8, true);
    if (p + 46 + nameLen + extraLen + commentLen > dirSize) throw bad(`central directory entry ${k} is malformed`);
    const nameBytes = new Uint8Array(dir.buffer, dir.byteOffset + p + 46, nameLen);
    const e: ZipEntry = {
      name: new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(nameBytes),
      method: dir.getUint16(p + 10, true),
      flags,
      crc: dir.getUint32(p + 16, true),
      compressedSize: dir.getUint32(p + 20, true),
      size: dir.getUint32(p + 24, true),
      localOffset: dir.getUint32(p + 42, true),
    };
    applyZip64(e, new DataView(dir.buffer, dir.byteOffset + p + 46 + nameLen, extraLen), bad);
    entries.push(e);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, directoryOffset: dirOffset };
}

/** The ZIP64 extra field holds, in this order, the 64-bit values of the fields saturated at 0xFFFFFFFF. */
function applyZip64(e: ZipEntry, extra: DataView, bad: (w: string) => InputError): void {
  for (let q = 0; q + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(q, true);
    const len = extra.getUint16(q + 2, true);
    if (id === 0x0001) {
      let r = q + 4;
      const next = () => {
        if (r + 8 > q + 4 + len || r + 8 > extra.byteLength) throw bad(`ZIP64 field of ${e.name} is too short`);
        const v = u64(extra, r, bad);
        r += 8;
        return v;
      };
      if (e.size === 0xffffffff) e.size = next();
      if (e.compressedSize === 0xffffffff) e.compressedSize = next();
      if (e.localOffset === 0xffffffff) e.localOffset = next();
      return;
    }
    q += 4 + len;
  }
}

/**
 * The uncompressed bytes of `entry`, after checking what can be checked without inflating: not
 * encrypted, stored or deflated, a stored entry's two sizes equal, the local header and the data
 * inside the file before the central directory.
 */
export function entryReader(file: RegularFileReader, entry: ZipEntry, directoryOffset: number, where: string): ByteReader {
  if (entry.flags & 0x1) throw new InputError(`${where}: encrypted zip entries are not supported`);
  if (entry.method !== 0 && entry.method !== 8) {
    throw new InputError(`${where}: zip compression method ${entry.method} is not supported (np.savez stores, np.savez_compressed deflates)`);
  }
  if (entry.method === 0 && entry.compressedSize !== entry.size) {
    throw new InputError(`${where}: stored entry declares ${entry.size} bytes but occupies ${entry.compressedSize}`);
  }
  if (entry.localOffset + 30 > directoryOffset) throw new InputError(`${where}: local header offset ${entry.localOffset} lies outside the archive data`);
  const local = view(file.read(entry.localOffset, 30));
  if (local.getUint32(0, true) !== LOCAL) throw new InputError(`${where}: no local header at offset ${entry.localOffset}`);
  const dataOffset = entry.localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
  if (dataOffset + entry.compressedSize > directoryOffset) {
    throw new InputError(`${where}: its ${entry.compressedSize} bytes at offset ${dataOffset} run past the archive data (truncated archive?)`);
  }
  return entry.method === 0
    ? new FileRegion(file, dataOffset, entry.size, where)
    : new InflatingReader(file, dataOffset, entry.compressedSize, entry.size, where);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(v: DataView, at: number, bad: (w: string) => InputError): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('a 64-bit size or offset is out of range');
  return Number(x);
}
