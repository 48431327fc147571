/**
 * Byte ranges of calibration data: an .npy file, or one entry of an .npz, seen as a sequence of
 * bytes that can be read piece by piece. Nothing here holds more than the piece asked for.
 */
import type { RegularFileReader } from '../io/files';
import { InputError } from '../errors';

/** The bytes of one .npy file or .npz entry (uncompressed). */
export interface ByteReader {
  /** Number of bytes. */
  readonly size: number;
  /** Exactly bytes [pos, pos + len), in a fresh array the caller owns. */
  read(pos: number, len: number): Uint8Array;
  /** Pass every byte, in order, to `fn` in pieces valid only during the call (one pass, no copies kept). */
  scan(fn: (piece: Uint8Array) => void): void;
  /** Drop any state or buffered bytes kept between reads. */
  reset?(): void;
}

const SCAN_PIECE = 1 << 20;

/** Bytes stored as they are in a file, from `offset` on (an .npy file, a STORED .npz entry). */
export class FileRegion implements ByteReader {
  constructor(
    private readonly file: RegularFileReader,
    private readonly offset: number,
    readonly size: number,
    private readonly where: string,
  ) {}

  read(pos: number, len: number): Uint8Array {
    if (pos < 0 || len < 0 || pos + len > this.size) {
      throw new InputError(`${this.where}: ${len} bytes at offset ${pos} lie past its end (${this.size} bytes)`);
    }
    return this.file.read(this.offset + pos, len);
  }

  scan(fn: (piece: Uint8Array) => void): void {
    const buf = new Uint8Array(Math.min(SCAN_PIECE, this.size));
    for (let pos = 0; pos < this.size; pos += buf.length) {
      const n = Math.min(buf.length, this.size - pos);
      fn(this.file.readInto(this.offset + pos, buf.subarray(0, n)));
    }
  }
}
