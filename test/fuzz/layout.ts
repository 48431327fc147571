/**
 * Laying a case out on disk and telling afterwards whether any file changed. A case folder is
 * ROOT/ws/NAME (inside the engine's workspace for server cases) with ROOT/outside/NAME beside the
 * workspace; file paths and symlink targets may use {case}, {outside} and {name}.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FileSpec, FuzzCase } from './types';

export interface CaseDirs {
  name: string;
  dir: string;
  outside: string;
}

export function caseDirs(root: string, c: FuzzCase): CaseDirs {
  const name = `${c.generator}-${c.index}`;
  return { name, dir: path.join(root, 'ws', name), outside: path.join(root, 'outside', name) };
}

/** Replace {case}, {outside} and {name} in a string. */
export function expand(s: string, d: CaseDirs): string {
  return s.replaceAll('{case}', d.dir).replaceAll('{outside}', d.outside).replaceAll('{name}', d.name);
}

/** Where a FileSpec path lands: relative to the case folder, or absolute after expansion. */
export function placeOf(p: string, d: CaseDirs): string {
  const e = expand(p, d);
  return path.isAbsolute(e) ? e : path.join(d.dir, e);
}

export function materialize(c: FuzzCase, d: CaseDirs): void {
  fs.rmSync(d.dir, { recursive: true, force: true });
  fs.rmSync(d.outside, { recursive: true, force: true });
  fs.mkdirSync(d.dir, { recursive: true });
  fs.mkdirSync(d.outside, { recursive: true });
  for (const f of c.files) place(f, d);
}

function place(f: FileSpec, d: CaseDirs): void {
  const at = placeOf(f.path, d);
  fs.mkdirSync(path.dirname(at), { recursive: true });
  if (f.kind === 'dir') fs.mkdirSync(at, { recursive: true });
  else if (f.kind === 'file') fs.writeFileSync(at, f.bytes);
  else if (f.kind === 'symlink') fs.symlinkSync(expand(f.target, d), at);
  else execFileSync('mkfifo', [at]);
}

/** sha256 of every regular file under the case and outside folders (symlinks not followed). */
export function snapshot(d: CaseDirs): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.set(p, createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  walk(d.dir);
  walk(d.outside);
  return out;
}

/** Files of `before` that changed or vanished (except `mayChange`), and `mustNotExist` paths that exist. */
export function changedFiles(c: FuzzCase, d: CaseDirs, before: Map<string, string>): string[] {
  const after = snapshot(d);
  const may = new Set((c.mayChange ?? []).map((p) => placeOf(p, d)));
  const changed: string[] = [];
  for (const [p, h] of before) {
    if (may.has(p)) continue;
    const now = after.get(p);
    if (now === undefined) changed.push(`${rel(p, d)} vanished`);
    else if (now !== h) changed.push(`${rel(p, d)} changed`);
  }
  for (const p of c.mustNotExist ?? []) {
    const at = placeOf(p, d);
    if (fs.lstatSync(at, { throwIfNoEntry: false })) changed.push(`${rel(at, d)} was created`);
  }
  return changed;
}

function rel(p: string, d: CaseDirs): string {
  if (p.startsWith(d.outside)) return `{outside}${p.slice(d.outside.length)}`;
  return path.relative(d.dir, p);
}
