/**
 * The only way the engine touches the user's files. Reads refuse what is not a regular file (a FIFO
 * would hang, /dev/zero never ends, a folder is a mistake) and cap their size; writes never replace
 * an existing file unless the user said so, never replace an input in any case, and go through a
 * temporary file in the same folder so a crash leaves either the old file or the whole new one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';

const KIND: [(s: fs.Stats) => boolean, string][] = [
  [(s) => s.isDirectory(), 'a folder'],
  [(s) => s.isFIFO(), 'a FIFO (named pipe)'],
  [(s) => s.isCharacterDevice(), 'a character device'],
  [(s) => s.isBlockDevice(), 'a block device'],
  [(s) => s.isSocket(), 'a socket'],
];

function what(s: fs.Stats): string {
  return KIND.find(([test]) => test(s))?.[1] ?? 'not a regular file';
}

/** Stat a file the user named as `role` ("model", "calibration data"...); refuse anything but a regular file. */
export function statRegularFile(file: string, role: string): fs.Stats {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `${role} ${abs} does not exist` : `cannot read ${role} ${abs}: ${code ?? String(e)}`);
  }
  if (!st.isFile()) throw new InputError(`${role} ${abs} is ${what(st)}, not a regular file`);
  return st;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** Read a whole regular file of at most `maxBytes`. */
export function readRegularFile(file: string, role: string, maxBytes: number): Buffer {
  const abs = path.resolve(file);
  const st = statRegularFile(abs, role);
  if (st.size > maxBytes) throw new InputError(`${role} ${abs} is ${formatBytes(st.size)}, over the limit of ${formatBytes(maxBytes)}`);
  try {
    return fs.readFileSync(abs);
  } catch (e) {
    throw new InputError(`cannot read ${role} ${abs}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/**
 * Read `length` bytes at `offset` of a regular file (stat first: a FIFO or device is refused before
 * it is opened). The caller has checked the range against the size; a short read (the file shrank
 * meanwhile) is an error, never zeros.
 */
export function readFileRange(file: string, role: string, offset: number, length: number): Buffer {
  const abs = path.resolve(file);
  statRegularFile(abs, role);
  const buf = Buffer.alloc(length);
  let fd: number | undefined;
  try {
    fd = fs.openSync(abs, 'r');
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, buf, got, length - got, offset + got);
      if (n === 0) throw new InputError(`${role} ${abs} ended after ${offset + got} bytes, before the ${offset + length} it should hold`);
      got += n;
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot read ${role} ${abs}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return buf;
}

/** The real path of an existing file (symlinks resolved), or null. */
export function realPathOrNull(file: string): string | null {
  try {
    return fs.realpathSync(file);
  } catch {
    return null;
  }
}

/**
 * Where `file` is or would be, symlinks resolved: its real path, or for a file not there yet the
 * real path of its folder joined with its name (a link to a folder leads into that folder).
 */
export function realTarget(file: string): string {
  const abs = path.resolve(file);
  const real = realPathOrNull(abs);
  if (real) return real;
  const parent = realPathOrNull(path.dirname(abs));
  return parent ? path.join(parent, path.basename(abs)) : abs;
}

/** Is `file` (symlinks resolved) inside `dir` (symlinks resolved)? */
export function isInside(dir: string, file: string): boolean {
  const d = realPathOrNull(dir) ?? path.resolve(dir);
  const f = realTarget(file);
  const rel = path.relative(d, f);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export interface OutputTarget {
  /** Where to write. */
  path: string;
  /** What the file is, for messages ("report", "quantized model"). */
  role: string;
  /** The user asked to replace an existing file (CLI --force, a confirmation in VS Code). */
  force?: boolean;
  /** Files this run reads (model, data, ...): never written over, even with force. */
  inputs?: readonly (string | undefined)[];
  /** The option that names this output, for messages ("--report"). */
  option?: string;
}

/**
 * Check that an output can be written, BEFORE the long work that produces it: fails fast on an
 * empty path, a missing or non-folder parent, a folder at the path, an input, or an existing file
 * without force. Returns the absolute path.
 */
export function checkOutput(t: OutputTarget): string {
  const opt = t.option ? ` (${t.option})` : '';
  if (!t.path || !t.path.trim()) throw new InputError(`${t.role} path${opt} is empty`);
  const abs = path.resolve(t.path);
  const parent = path.dirname(abs);
  let pst: fs.Stats | undefined;
  try {
    pst = fs.statSync(parent);
  } catch {
    /* reported below */
  }
  if (!pst) throw new InputError(`cannot write ${t.role} ${abs}${opt}: folder ${parent} does not exist`);
  if (!pst.isDirectory()) throw new InputError(`cannot write ${t.role} ${abs}${opt}: ${parent} is not a folder`);
  // A folder the run cannot write in (permissions, a read-only mount) fails now, not after the work.
  try {
    fs.accessSync(parent, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new InputError(`cannot write ${t.role} ${abs}${opt}: ${FS_ERRORS[code] ?? code} in folder ${parent}`);
  }
  const real = realTarget(abs);
  for (const input of t.inputs ?? []) {
    if (!input) continue;
    const ri = realPathOrNull(input) ?? path.resolve(input);
    if (real === ri || abs === path.resolve(input)) {
      throw new InputError(`refusing to write ${t.role}${opt} over the input ${ri}; choose another path`);
    }
    // A data folder: nothing may be written inside it either (it would become a sample file).
    if (isDirectory(ri) && isInside(ri, abs)) throw new InputError(`refusing to write ${t.role}${opt} inside the input folder ${ri}`);
  }
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(abs);
  } catch (e) {
    // Not there is fine; anything else (a name too long for the file system, a component that is
    // not a folder, no permission) would only fail at the end of the work.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new InputError(`cannot write ${t.role} ${abs}${opt}: ${FS_ERRORS[code ?? ''] ?? code ?? String(e)}`);
  }
  if (st) {
    const target = st.isSymbolicLink() ? safeStat(abs) : st;
    if (target?.isDirectory()) throw new InputError(`cannot write ${t.role} ${abs}${opt}: it is a folder`);
    if (target && !target.isFile()) throw new InputError(`cannot write ${t.role} ${abs}${opt}: it is ${what(target)}`);
    if (!t.force) throw new InputError(`${abs}${opt} already exists; pass --force to replace it, or choose another path`);
  }
  return abs;
}

function isDirectory(p: string): boolean {
  return safeStat(p)?.isDirectory() ?? false;
}

function safeStat(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Write through a temporary file in the target's folder, then move it into place: without force
 * with a hard link (fails if the target appeared meanwhile: never clobbers), with force by rename
 * (atomic replace). The temporary file is removed on any failure.
 */
export function writeOutput(t: OutputTarget, data: string | Uint8Array): string {
  const abs = checkOutput(t);
  const tmp = tempPathFor(abs);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (t.force) {
      fs.renameSync(tmp, abs);
    } else {
      try {
        fs.linkSync(tmp, abs);
        fs.rmSync(tmp, { force: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new InputError(`${abs} appeared while QuantLens was working; not replacing it`);
        // Filesystems without hard links: check once more, then rename (a tiny race, never a half file).
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw e;
        if (fs.existsSync(abs)) throw new InputError(`${abs} appeared while QuantLens was working; not replacing it`);
        fs.renameSync(tmp, abs);
      }
    }
  } catch (e) {
    removeQuietly(tmp);
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot write ${t.role} ${abs}: ${(code && FS_ERRORS[code]) ?? code ?? (e as Error).message}`);
  }
  return abs;
}

/** Errors of the file system in words (the code stays in the message for searching). */
const FS_ERRORS: Record<string, string> = {
  ENAMETOOLONG: 'the name is too long for the file system (ENAMETOOLONG)',
  ENOTDIR: 'a part of the path is not a folder (ENOTDIR)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  EROFS: 'the file system is read-only (EROFS)',
  ENOSPC: 'no space left on the device (ENOSPC)',
  EDQUOT: 'the disk quota is exhausted (EDQUOT)',
  EIO: 'an input/output error of the device (EIO)',
  ELOOP: 'too many levels of symbolic links (ELOOP)',
};

/**
 * The temporary file beside `abs`: hidden, unique to this process and moment, and never longer
 * than a name the target itself may have (its base is shortened: a 250-character target name is
 * legal, 35 more characters would not be).
 */
export function tempPathFor(abs: string): string {
  const tag = `.quantlens-${process.pid}-${Date.now()}.tmp`;
  const base = path.basename(abs).slice(0, Math.max(1, 255 - tag.length - 1 - 8));
  return path.join(path.dirname(abs), `.${base}${tag}`);
}

/** Remove a temporary file, never throwing: a failed clean-up must not hide the error being reported. */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { force: true });
  } catch {
    /* nothing more to do */
  }
}

/** `base + suffix`, or `base-2 + suffix`, ...: a name no existing file has. */
export function freshPath(base: string, suffix: string): string {
  let p = `${base}${suffix}`;
  for (let k = 2; fs.existsSync(p); k++) p = `${base}-${k}${suffix}`;
  return p;
}

/**
 * Positional reads of one regular file, for data read piece by piece (calibration data). The file
 * is checked when constructed (statRegularFile), opened only while reads happen (`release` closes
 * it, so nothing stays open between batches), opened non-blocking (a FIFO swapped in after the
 * check cannot hang the open) and refused if it is no longer the file first checked.
 */
export class RegularFileReader {
  readonly path: string;
  readonly size: number;
  private readonly stat: fs.Stats;
  private fd: number | null = null;

  constructor(
    file: string,
    readonly role: string,
  ) {
    this.path = path.resolve(file);
    this.stat = statRegularFile(this.path, role);
    this.size = this.stat.size;
  }

  /** Exactly `length` bytes at `position`, in a fresh array. */
  read(position: number, length: number): Uint8Array {
    return this.readInto(position, new Uint8Array(length));
  }

  /** Fill `target` with the bytes at `position` (a buffer reused across reads allocates nothing). */
  readInto(position: number, target: Uint8Array): Uint8Array {
    const length = target.length;
    if (!(position >= 0 && position + length <= this.size)) {
      throw new InputError(`${this.role} ${this.path}: ${length} bytes at offset ${position} lie past its end (${this.size} bytes)`);
    }
    const fd = this.open();
    let done = 0;
    try {
      while (done < length) {
        const n = fs.readSync(fd, target, done, length - done, position + done);
        if (n === 0) throw new InputError(`${this.role} ${this.path} shrank while QuantLens was reading it`);
        done += n;
      }
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`cannot read ${this.role} ${this.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    return target;
  }

  /** Close the file until the next read. */
  release(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
  }

  private open(): number {
    if (this.fd !== null) return this.fd;
    let fd: number;
    try {
      fd = fs.openSync(this.path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    } catch (e) {
      throw new InputError(`cannot read ${this.role} ${this.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const now = fs.fstatSync(fd);
    const s = this.stat;
    if (!now.isFile() || now.ino !== s.ino || now.dev !== s.dev || now.size !== s.size || now.mtimeMs !== s.mtimeMs) {
      fs.closeSync(fd);
      throw new InputError(`${this.role} ${this.path} changed while QuantLens was using it; run again`);
    }
    this.fd = fd;
    return fd;
  }
}
