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
  /** Drop any state or buffered bytes kept between reads. */
  reset?(): void;
}

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
}
