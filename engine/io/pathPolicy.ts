/**
 * Where the engine server may read and write: inside the open workspace folders, and the files or
 * folders the user picked explicitly (the host announces those). Everything is compared after
 * resolving symlinks, so a link inside the workspace cannot point the engine elsewhere.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors';
import { isInside, realPathOrNull } from './files';

export class PathPolicy {
  private roots: string[] = [];
  private picked: string[] = [];

  /** Workspace folders as LSP gives them (file URIs; other schemes are ignored). */
  setWorkspaceFolders(uris: readonly string[]): void {
    this.roots = uris.flatMap((u) => {
      try {
        const p = fileURLToPath(u);
        return [realPathOrNull(p) ?? path.resolve(p)];
      } catch {
        return [];
      }
    });
  }

  addWorkspaceFolder(uri: string): void {
    this.setWorkspaceFolders([...this.roots.map((r) => `file://${r}`), uri]);
  }

  removeWorkspaceFolder(uri: string): void {
    try {
      const p = fileURLToPath(uri);
      const r = realPathOrNull(p) ?? path.resolve(p);
      this.roots = this.roots.filter((x) => x !== r);
    } catch {
      /* not a file URI: nothing to remove */
    }
  }

  /** The user picked this path explicitly (a dialog, the explorer): allow it and what is inside it. */
  allow(p: string): void {
    this.picked.push(realPathOrNull(p) ?? path.resolve(p));
  }

  allowed(p: string): boolean {
    return [...this.roots, ...this.picked].some((root) => isInside(root, p));
  }

  /** Throw a one-line error unless `p` may be touched; `role` names it in the message. */
  check(p: string, role: string): void {
    if (!path.isAbsolute(p)) throw new InputError(`${role} ${p} is not an absolute path`);
    // An output that does not exist yet is judged by its folder (symlinks resolved there).
    const probe = realPathOrNull(p) ?? path.join(realPathOrNull(path.dirname(p)) ?? path.dirname(p), path.basename(p));
    if (!this.allowed(probe)) {
      const where = this.roots.length ? `the workspace folders (${this.roots.join(', ')})` : 'no workspace folder (open a folder)';
      throw new InputError(`${role} ${p} is outside ${where} and was not picked by the user; QuantLens reads and writes only there`);
    }
  }
}
