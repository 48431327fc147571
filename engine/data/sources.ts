/**
 * What a data path holds: the arrays of a .npz file, of a folder of .npy files, or of one .npy
 * file, by key (file or entry name without `.npy`). Nothing is read until an array is opened;
 * `verify` is the expensive check (the CRC-32 of an .npz entry, streamed once).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors';
import { RegularFileReader } from '../io/files';
import { FileRegion } from './bytes';
import { crc32Of } from './crc32';
import { type NpyArray, openNpy } from './npy';
import { entryReader, readZipDirectory } from './zip';

export interface ArraySource {
  key: string;
  /** The file, or `archive.npz:entry.npy`, for messages. */
  where: string;
  /** Read and check the header. */
  open(): NpyArray;
  /** Check the whole content where the container allows it (zip CRC-32); memory stays flat. */
  verify(): void;
}

export interface Catalog {
  root: string;
  arrays: Map<string, ArraySource>;
  /** Close every file opened so far (they reopen on the next read). */
  release(): void;
}

const ROLE = 'calibration data';

/** The file (or archive entry) name an input's array may also have: its name with every character a file name may not safely hold as "_". */
export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

/** The arrays in `dataPath` (a .npz, a .npy, or a folder of .npy files). */
export function openCatalog(dataPath: string): Catalog {
  const root = path.resolve(dataPath);
  const files: RegularFileReader[] = [];
  const reader = (file: string) => {
    const r = new RegularFileReader(file, ROLE);
    files.push(r);
    return r;
  };
  const arrays = new Map<string, ArraySource>();
  const release = () => files.forEach((f) => f.release());
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new InputError(`${ROLE} ${root} does not exist`);
  }
  if (st.isDirectory()) {
    let names: string[];
    try {
      names = fs.readdirSync(root).sort();
    } catch (e) {
      throw new InputError(`cannot read ${ROLE} folder ${root}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    for (const f of names) {
      if (!f.endsWith('.npy')) continue;
      const where = path.join(root, f);
      arrays.set(f.slice(0, -4), npyFile(f.slice(0, -4), where, reader));
    }
  } else if (root.endsWith('.npz')) {
    const file = reader(root);
    try {
      const { entries, directoryOffset } = readZipDirectory(file, root);
      const seen = new Set<string>();
      for (const e of entries) {
        if (!e.name.endsWith('.npy')) continue;
        const key = e.name.slice(0, -4);
        const where = `${root}:${e.name}`;
        if (seen.has(key)) {
          arrays.set(key, {
            key,
            where,
            open: () => {
              throw new InputError(`${where}: the archive holds two entries of this name`);
            },
            verify: () => {},
          });
          continue;
        }
        seen.add(key);
        arrays.set(key, {
          key,
          where,
          open: () => openNpy(entryReader(file, e, directoryOffset, where), where, true),
          verify: () => {
            const crc = crc32Of(entryReader(file, e, directoryOffset, where));
            if (crc !== e.crc) {
              throw new InputError(`${where}: CRC-32 is ${hex(crc)} but the archive records ${hex(e.crc)}: the entry is corrupt`);
            }
          },
        });
      }
    } finally {
      file.release();
    }
  } else if (root.endsWith('.npy')) {
    arrays.set(path.basename(root, '.npy'), npyFile(path.basename(root, '.npy'), root, reader));
  } else {
    throw new InputError(`${ROLE} ${root} must be a .npz file, a .npy file or a folder of .npy files`);
  }
  return { root, arrays, release };
}

function npyFile(key: string, where: string, reader: (f: string) => RegularFileReader): ArraySource {
  return {
    key,
    where,
    open: () => {
      const file = reader(where);
      return openNpy(new FileRegion(file, 0, file.size, where), where);
    },
    verify: () => {},
  };
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, '0')}`;
}
