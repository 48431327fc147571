/**
 * The .npy format (an .npy file, or one entry of an .npz): the header is read and checked on its
 * own, then samples (rows along axis 0) are read as byte ranges after it, never the whole array.
 *
 * The header is parsed here rather than by npyjs: npyjs drops the byte-order mark (and throws on
 * big-endian data), accepts negative or non-integer shape entries, and needs the data after the
 * header in the same buffer, aligned.
 */
import { InputError } from '../errors';
import type { ByteReader } from './bytes';
import { type NpyDtype, parseDescr } from './dtypes';

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  fortranOrder: boolean;
  /** Byte offset of the data (magic + version + length + header). */
  dataOffset: number;
}

/** numpy itself refuses headers over 10000 bytes unless told otherwise; this is generous. */
const MAX_HEADER = 1 << 20;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Read and check the header of the .npy bytes in `src`; its data must be exactly what the shape needs. */
export function readNpyHeader(src: ByteReader, where: string, declared = false): NpyHeader {
  const pre = src.read(0, Math.min(12, src.size));
  if (MAGIC.some((b, i) => pre[i] !== b)) throw new InputError(`${where} is not an .npy array (no \\x93NUMPY magic at its start)`);
  if (pre.length < 10) throw new InputError(`${where}: ends inside the .npy header (${src.size} bytes)`);
  const [major, minor] = [pre[6], pre[7]];
  if (major < 1 || major > 3) throw new InputError(`${where}: .npy format version ${major}.${minor} is not supported (1.0 to 3.0)`);
  const v = new DataView(pre.buffer, pre.byteOffset, pre.byteLength);
  if (major > 1 && pre.length < 12) throw new InputError(`${where}: file ends inside the .npy header`);
  const start = major === 1 ? 10 : 12;
  const headerLen = major === 1 ? v.getUint16(8, true) : v.getUint32(8, true);
  if (headerLen > MAX_HEADER) throw new InputError(`${where}: .npy header length ${headerLen} is implausible (over ${MAX_HEADER} bytes)`);
  const dataOffset = start + headerLen;
  if (dataOffset > src.size) throw new InputError(`${where}: .npy header length ${headerLen} runs past its end (${src.size} bytes)`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(src.read(start, headerLen));
  const { descr, fortranOrder, shape } = parseHeaderDict(text, where);
  const dtype = parseDescr(descr, where);
  const h: NpyHeader = { dtype, shape, fortranOrder, dataOffset };
  checkLayout(h, where);
  const need = shape.reduce((a, b) => a * b, 1) * dtype.size;
  if (!Number.isSafeInteger(need)) throw new InputError(`${where}: shape ${fmtShape(shape)} is implausibly large`);
  const have = src.size - dataOffset;
  if (have !== need) {
    const why = have < need ? `${need - have} bytes missing: truncated` : `${have - need} trailing bytes`;
    throw new InputError(
      `${where}: shape ${fmtShape(shape)} of ${descr} needs ${need} bytes of data but ${declared ? 'the entry declares' : 'it holds'} ${have} after its ${dataOffset}-byte header (${why})`,
    );
  }
  return h;
}

/** The header is a Python dict literal with exactly the keys descr, fortran_order and shape. */
function parseHeaderDict(text: string, where: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (what: string) => new InputError(`${where}: malformed .npy header (${what}): ${JSON.stringify(text.trim().slice(0, 120))}`);
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw bad('not a dict');
  if (/'descr'\s*:\s*\[/.test(t)) throw new InputError(`${where}: structured dtypes (records) are not supported; save one plain numeric array per input`);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(t)?.[1];
  if (descr === undefined) throw bad("no 'descr'");
  const fortran = /'fortran_order'\s*:\s*(True|False)\b/.exec(t)?.[1];
  if (fortran === undefined) throw bad("no 'fortran_order'");
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(t)?.[1];
  if (shapeText === undefined) throw bad("no 'shape' tuple");
  // numpy writes exactly these three keys and refuses any other set; a key given twice would mean
  // one thing here (the first) and another to Python (the last).
  const keys = [...t.matchAll(/'([^']*)'\s*:/g)].map((m) => m[1]);
  if (keys.length !== 3 || new Set(keys).size !== 3 || !['descr', 'fortran_order', 'shape'].every((k) => keys.includes(k))) {
    throw bad(`keys ${keys.map((k) => `'${k}'`).join(', ') || 'none'}; numpy writes exactly 'descr', 'fortran_order' and 'shape'`);
  }
  const parts = shapeText.split(',').map((s) => s.trim());
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  if (parts.length === 1 && parts[0] === '') parts.pop();
  const shape = parts.map((s) => {
    // Python 2 wrote longs as 3L.
    if (!/^\d+L?$/.test(s)) throw new InputError(`${where}: shape entry ${JSON.stringify(s)} in (${shapeText.trim()}) is not a non-negative integer`);
    return Number(s.replace('L', ''));
  });
  if (shape.some((d) => !Number.isSafeInteger(d))) throw bad('shape entry out of range');
  return { descr, fortranOrder: fortran === 'True', shape };
}

/** Samples are rows along axis 0 laid out one after another: anything else cannot be streamed. */
function checkLayout(h: NpyHeader, where: string): void {
  // A 0-d array (a scalar) is one value: a constant input's value (data/inputs.ts); it has no sample axis.
  if (h.shape.length === 0) return;
  if (h.shape[0] === 0) throw new InputError(`${where}: holds 0 samples (shape ${fmtShape(h.shape)})`);
  if (h.shape.includes(0)) throw new InputError(`${where}: shape ${fmtShape(h.shape)} holds no values`);
  // Column-major with at most one axis longer than 1 is the same layout as row-major.
  if (h.fortranOrder && h.shape.filter((d) => d > 1).length > 1) {
    throw new InputError(
      `${where}: fortran_order=True (column-major) data cannot be read sample by sample; save it with np.save(path, np.ascontiguousarray(a))`,
    );
  }
}

/** A shape as numpy prints it: (3,) or (2, 3). */
export function fmtShape(shape: number[]): string {
  return `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
}

/** An .npy array whose samples (rows along axis 0) are read on demand. */
export class NpyArray {
  readonly samples: number;
  /** Elements per sample. */
  readonly perSample: number;
  readonly rowBytes: number;

  constructor(
    readonly header: NpyHeader,
    readonly src: ByteReader,
    readonly where: string,
  ) {
    this.samples = header.shape.length ? header.shape[0] : 1;
    this.perSample = header.shape.slice(1).reduce((a, b) => a * b, 1);
    this.rowBytes = this.perSample * header.dtype.size;
  }

  /** Raw bytes of samples [start, start + count), in a fresh array. */
  rows(start: number, count: number): Uint8Array {
    return this.src.read(this.header.dataOffset + start * this.rowBytes, count * this.rowBytes);
  }

  /** Drop buffered bytes (a compressed entry's inflater). */
  reset(): void {
    this.src.reset?.();
  }
}

/** Open the .npy bytes in `src` (header checked; `declared`: src.size is a zip entry's declared size). */
export function openNpy(src: ByteReader, where: string, declared = false): NpyArray {
  return new NpyArray(readNpyHeader(src, where, declared), src, where);
}
