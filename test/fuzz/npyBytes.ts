/**
 * Byte-level writers for the data formats QuantLens reads, with every field open to lies: .npy
 * (magic, version, header length, header text, data) and zip archives (.npz: local headers and
 * central directory written from separate field values, so CRCs, sizes and names can disagree).
 */
import { deflateSync } from 'fflate';

// ------------------------------------------------------------------ .npy

/** Numeric values as the bytes of an .npy dtype (`descr` as numpy writes it). */
export function encodeValues(values: ArrayLike<number>, descr: string): Uint8Array {
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr);
  if (!m) throw new Error(`encodeValues: unsupported descr ${descr}`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  const little = order !== '>';
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const at = i * size;
    if (kind === 'f' && size === 4) dv.setFloat32(at, v, little);
    else if (kind === 'f' && size === 8) dv.setFloat64(at, v, little);
    else if (kind === 'f' && size === 2) dv.setUint16(at, toHalf(v), little);
    else if (kind === 'i' && size === 1) dv.setInt8(at, v);
    else if ((kind === 'u' || kind === 'b') && size === 1) dv.setUint8(at, v);
    else if (kind === 'i' && size === 2) dv.setInt16(at, v, little);
    else if (kind === 'i' && size === 4) dv.setInt32(at, v, little);
    else if (kind === 'u' && size === 4) dv.setUint32(at, v, little);
    else if (kind === 'i' && size === 8) dv.setBigInt64(at, BigInt(Math.trunc(v)), little);
    else if (kind === 'u' && size === 8) dv.setBigUint64(at, BigInt(Math.trunc(v)), little);
    else throw new Error(`encodeValues: unsupported descr ${descr}`);
  }
  return out;
}

/** IEEE half bits of a float (round toward zero is enough for test data; NaN and infinities kept). */
function toHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const s = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return s | 0x7c00;
  if (a < 2 ** -24) return s;
  if (a < 2 ** -14) return s | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  const mant = Math.round((a / 2 ** e - 1) * 1024);
  return s | ((e + 15) << 10) | Math.min(mant, 1023);
}

export interface NpyParts {
  descr: string;
  fortranOrder?: boolean;
  /** Entries as written in the tuple (strings allow "-1", "3.5", "2**40"). */
  shape: (number | string)[];
  data: Uint8Array;
  version?: [number, number];
  magic?: Uint8Array;
  /** Replace the whole header dict text. */
  headerText?: string;
  /** Write this header length instead of the true one. */
  headerLenOverride?: number;
}

const MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

/** The header dict as numpy writes it: keys sorted, shape as a tuple ("(3,)" for one axis). */
export function npyHeaderText(descr: string, fortranOrder: boolean, shape: (number | string)[]): string {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '${descr}', 'fortran_order': ${fortranOrder ? 'True' : 'False'}, 'shape': ${tuple}, }`;
}

export function npyBytes(p: NpyParts): Uint8Array {
  const [major, minor] = p.version ?? [1, 0];
  const text = p.headerText ?? npyHeaderText(p.descr, p.fortranOrder ?? false, p.shape);
  const lenBytes = major === 1 ? 2 : 4;
  const pre = 6 + 2 + lenBytes;
  // numpy pads the header with spaces and a newline so the data starts on a 64-byte boundary
  const unpadded = pre + text.length + 1;
  const pad = (64 - (unpadded % 64)) % 64;
  const header = new TextEncoder().encode(text + ' '.repeat(pad) + '\n');
  const out = new Uint8Array(pre + header.length + p.data.length);
  out.set(p.magic ?? MAGIC, 0);
  out[6] = major;
  out[7] = minor;
  const dv = new DataView(out.buffer);
  const hlen = p.headerLenOverride ?? header.length;
  if (lenBytes === 2) dv.setUint16(8, hlen & 0xffff, true);
  else dv.setUint32(8, hlen >>> 0, true);
  out.set(header, pre);
  out.set(p.data, pre + header.length);
  return out;
}

/** A well-formed little-endian float32 .npy of `values` with `shape`. */
export function npyF32(shape: number[], values: ArrayLike<number>): Uint8Array {
  return npyBytes({ descr: '<f4', shape, data: encodeValues(values, '<f4') });
}

export function npyI64(values: ArrayLike<number>): Uint8Array {
  return npyBytes({ descr: '<i8', shape: [values.length], data: encodeValues(values, '<i8') });
}

// ------------------------------------------------------------------ zip

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, as zip uses it). */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipEntry {
  name: string;
  /** The uncompressed bytes (used for the CRC and sizes unless overridden). */
  data: Uint8Array;
  method?: 'store' | 'deflate';
  /** Compressed bytes to write instead of compressing `data` (a bomb, a corrupt stream). */
  compressed?: Uint8Array;
  /** Field values written instead of the true ones, in both headers unless `centralOnly`/`localOnly`. */
  crc?: number;
  compressedSize?: number;
  uncompressedSize?: number;
  centralOnly?: boolean;
  localOnly?: boolean;
}

/** A zip archive of `entries` in order (duplicates allowed), central directory at the end. */
export function zipBytes(entries: ZipEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 'store';
    const body = e.compressed ?? (method === 'deflate' ? deflateSync(e.data, { level: 6 }) : e.data);
    const name = new TextEncoder().encode(e.name);
    const truth = { crc: crc32(e.data), csize: body.length, usize: e.data.length };
    const lie = { crc: e.crc ?? truth.crc, csize: e.compressedSize ?? truth.csize, usize: e.uncompressedSize ?? truth.usize };
    const local = e.centralOnly ? truth : lie;
    const cent = e.localOnly ? truth : lie;
    const methodCode = method === 'deflate' ? 8 : 0;

    const lh = new Uint8Array(30 + name.length);
    const lv = new DataView(lh.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, 0, true);
    lv.setUint16(8, methodCode, true);
    lv.setUint16(10, 0, true);
    lv.setUint16(12, 0x21, true);
    lv.setUint32(14, local.crc >>> 0, true);
    lv.setUint32(18, local.csize >>> 0, true);
    lv.setUint32(22, local.usize >>> 0, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, 0, true);
    lh.set(name, 30);

    const ch = new Uint8Array(46 + name.length);
    const cv = new DataView(ch.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, 0, true);
    cv.setUint16(10, methodCode, true);
    cv.setUint16(12, 0, true);
    cv.setUint16(14, 0x21, true);
    cv.setUint32(16, cent.crc >>> 0, true);
    cv.setUint32(20, cent.csize >>> 0, true);
    cv.setUint32(24, cent.usize >>> 0, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    ch.set(name, 46);

    parts.push(lh, body);
    central.push(ch);
    offset += lh.length + body.length;
  }
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return concat([...parts, ...central, eocd]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A raw deflate stream that inflates to `prefix` followed by zeros up to `total` bytes, written
 * by hand as one fixed-Huffman block of back-references (length 258, distance 1): about 13 bits
 * per 258 output bytes, so gigabytes come from a few megabytes without compressing anything.
 */
export function deflateBomb(prefix: Uint8Array, total: number): Uint8Array {
  const w = new BitWriter();
  w.bits(1, 1); // BFINAL
  w.bits(1, 2); // BTYPE = 01, fixed Huffman
  const literal = (b: number) => (b < 144 ? w.huff(0x30 + b, 8) : w.huff(0x190 + b - 144, 9));
  for (const b of prefix) literal(b);
  literal(0);
  let left = total - prefix.length - 1;
  while (left >= 258 + 3) {
    w.huff(0xc5, 8); // length code 285 = 258 (codes 280-287 are 8 bits from 0xc0)
    w.huff(0, 5); // distance code 0 = 1
    left -= 258;
  }
  while (left > 0) {
    literal(0);
    left--;
  }
  w.huff(0, 7); // end of block (256)
  return w.done();
}

class BitWriter {
  private buf = new Uint8Array(1 << 16);
  private n = 0;
  private acc = 0;
  private count = 0;

  /** `len` bits of `v`, least significant first (deflate's order for extra bits and headers). */
  bits(v: number, len: number): void {
    for (let i = 0; i < len; i++) this.bit((v >>> i) & 1);
  }

  /** A Huffman code of `len` bits, most significant first (deflate's order for codes). */
  huff(code: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) this.bit((code >>> i) & 1);
  }

  private bit(b: number): void {
    this.acc |= b << this.count;
    if (++this.count === 8) {
      if (this.n === this.buf.length) {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
      this.buf[this.n++] = this.acc;
      this.acc = 0;
      this.count = 0;
    }
  }

  done(): Uint8Array {
    if (this.count) this.bits(0, 8 - this.count);
    return this.buf.slice(0, this.n);
  }
}
