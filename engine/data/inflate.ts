/**
 * A DEFLATED .npz entry (np.savez_compressed) read sample range by sample range without ever
 * inflating it whole: a sequential inflater that runs only as far as a read needs, keeps the last
 * range it returned and the last piece it produced, and starts over from the beginning when a read
 * goes back before those (the pipeline reads batches in order, pass after pass, so that happens
 * once per pass).
 *
 * Zip bombs: the entry's declared size was checked against its .npy header before any of this
 * runs, and inflation stops with an error as soon as it produces more than that size. Compressed
 * input is pushed in pieces sized from the ratio seen so far (about 1 MiB of output per push), and
 * in pieces so small near the declared end that DEFLATE's maximal ratio (1032:1) cannot overshoot
 * it by more than about 1 MiB.
 */
import { Inflate } from 'fflate';
import type { RegularFileReader } from '../io/files';
import { InputError } from '../errors';
import type { ByteReader } from './bytes';

const MIN_PUSH = 1 << 10;
const MAX_PUSH = 1 << 16;
const TARGET_OUTPUT = 1 << 20;
/** DEFLATE cannot expand a byte of input into more than about 1032 bytes of output. */
const MAX_RATIO = 1032;
/** Reads up to this size are kept (copied) so that reading the same batch again does not restart. */
const KEEP_LIMIT = 32 << 20;
const EMPTY: Uint8Array = new Uint8Array(0);

export class InflatingReader implements ByteReader {
  private inflater: Inflate | null = null;
  private produced: Uint8Array[] = [];
  /** Compressed bytes pushed so far. */
  private inPos = 0;
  /** Uncompressed bytes produced so far. */
  private outPos = 0;
  private ended = false;
  /** The last piece produced: bytes [outPos - pending.length, outPos). */
  private pending = EMPTY;
  /** A copy of the last range returned: bytes [lastStart, lastStart + last.length). */
  private last = EMPTY;
  private lastStart = 0;

  constructor(
    private readonly file: RegularFileReader,
    private readonly offset: number,
    private readonly compressedSize: number,
    readonly size: number,
    private readonly where: string,
  ) {}

  read(pos: number, len: number): Uint8Array {
    if (pos < 0 || len < 0 || pos + len > this.size) {
      throw new InputError(`${this.where}: ${len} bytes at offset ${pos} lie past its end (${this.size} bytes)`);
    }
    const out = new Uint8Array(len);
    let filled = 0;
    while (filled < len) {
      const p = pos + filled;
      const n = copyFrom(this.last, this.lastStart, p, out, filled) || copyFrom(this.pending, this.outPos - this.pending.length, p, out, filled);
      if (n > 0) filled += n;
      else if (p < this.outPos || !this.inflater) this.restart();
      else this.pull();
    }
    if (len <= KEEP_LIMIT) {
      this.last = out.slice();
      this.lastStart = pos;
    }
    return out;
  }

  /**
   * Inflate the whole entry from its start, handing each piece to `fn` as it is produced (nothing
   * copied or kept); the entry must end exactly at its declared size.
   */
  scan(fn: (piece: Uint8Array) => void): void {
    this.restart();
    while (!this.ended) {
      this.pull();
      fn(this.pending);
    }
    if (this.outPos !== this.size) this.short();
    this.reset();
  }

  /** Drop the inflater and kept bytes (the next read starts over). */
  reset(): void {
    this.inflater = null;
    this.pending = EMPTY;
    this.last = EMPTY;
    this.produced = [];
  }

  private restart(): void {
    this.inflater = new Inflate((chunk) => {
      this.produced.push(chunk);
    });
    this.inPos = 0;
    this.outPos = 0;
    this.ended = false;
    this.pending = EMPTY;
    this.produced = [];
  }

  /** Push the next piece of compressed input; its output becomes `pending`. */
  private pull(): void {
    if (this.ended) this.short();
    const ratio = this.inPos > 0 ? Math.max(1, this.outPos / this.inPos) : MAX_RATIO;
    const nearEnd = Math.max(MIN_PUSH, Math.ceil((this.size - this.outPos) / MAX_RATIO));
    const k = Math.min(this.compressedSize - this.inPos, nearEnd, Math.max(MIN_PUSH, Math.min(MAX_PUSH, Math.ceil(TARGET_OUTPUT / ratio))));
    const chunk = this.file.read(this.offset + this.inPos, k);
    this.inPos += k;
    this.ended = this.inPos === this.compressedSize;
    this.produced = [];
    try {
      this.inflater!.push(chunk, this.ended);
    } catch (e) {
      this.reset();
      throw new InputError(`${this.where}: corrupt DEFLATE data (${(e as Error).message})`);
    }
    const piece = this.produced.length === 1 ? this.produced[0] : concat(this.produced);
    this.produced = [];
    if (this.outPos + piece.length > this.size) {
      this.reset();
      throw new InputError(`${this.where}: inflates to more than its declared ${this.size} bytes; refused (a zip bomb or a corrupt archive)`);
    }
    this.outPos += piece.length;
    this.pending = piece;
  }

  private short(): never {
    const got = this.outPos;
    this.reset();
    throw new InputError(`${this.where}: compressed data ends after ${got} bytes but the entry declares ${this.size} (truncated or corrupt archive)`);
  }
}

/** Copy the part of `src` (holding bytes from `srcStart` on) that starts at byte `p` into `out` at `at`. */
function copyFrom(src: Uint8Array, srcStart: number, p: number, out: Uint8Array, at: number): number {
  const i = p - srcStart;
  if (i < 0 || i >= src.length) return 0;
  const n = Math.min(src.length - i, out.length - at);
  out.set(src.subarray(i, i + n), at);
  return n;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
