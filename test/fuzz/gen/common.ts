/**
 * Pieces every generator uses: the valid data of a base model as .npz / .npy files, and the
 * command line of a cheap run on it.
 */
import type { BaseModel } from '../fixtures';
import { npyF32, npyI64, zipBytes } from '../npyBytes';
import type { Rng } from '../random';
import type { CaseDraft, CliCase, FileSpec } from '../types';

export type Command = 'analyze' | 'quantize' | 'sweep' | 'gate' | 'mixed-precision' | 'integer-only';

/** The base model's valid samples and labels as one .npz (stored entries, as np.savez writes). */
export function validNpz(b: BaseModel): Uint8Array {
  return zipBytes([
    { name: `${b.input}.npy`, data: npyF32([b.samples, ...b.sample], b.data) },
    { name: 'labels.npy', data: npyI64(b.labels) },
  ]);
}

export function validInputNpy(b: BaseModel): Uint8Array {
  return npyF32([b.samples, ...b.sample], b.data);
}

/**
 * The arguments of a cheap run: 2 samples where the point is the model, no sensitivity, a report
 * written to out/ (checked for non-finite numbers after a success). Most runs analyze; a few use
 * the other commands, which load models and data the same way.
 */
export function cheapRun(cmd: Command, model: string, data: string | undefined, opts: { samples?: number | null } = {}): { args: string[]; report?: string } {
  const args: string[] = [cmd, model];
  if (data !== undefined) args.push('--data', data);
  const samples = opts.samples === undefined ? 2 : opts.samples;
  if (samples !== null) args.push('--samples', String(samples));
  args.push('--quiet');
  const report = 'out/report.json';
  switch (cmd) {
    case 'analyze':
      return { args: [...args, '--no-sensitivity', '--report', report], report };
    case 'quantize':
      return { args: [...args, '--out', 'out/q.onnx'] };
    case 'sweep':
      return { args: [...args, '--axes', 'wbits=8,4;calibration=minmax,percentile', '--report', report], report };
    case 'gate':
      return { args: [...args, '--max-drop', '100', '--report', report], report };
    case 'mixed-precision':
      return { args: [...args, '--max-drop', '100', '--report', report], report };
    case 'integer-only':
      return { args: [...args, '--report', report], report };
  }
}

/** Mostly analyze, sometimes another command (they share model and data loading). */
export function pickCommand(r: Rng): Command {
  return r.bool(0.75) ? 'analyze' : r.pick(['quantize', 'sweep', 'gate', 'mixed-precision', 'integer-only'] as const);
}

export const OUT_DIR: FileSpec = { path: 'out', kind: 'dir' };

/** A CLI case on `files`, running `cmd` on model `model` with data `data`. */
export function cliCase(
  base: Omit<CliCase, 'kind' | 'args' | 'report' | 'generator' | 'index'>,
  cmd: Command,
  model: string,
  data: string | undefined,
  opts: { samples?: number | null } = {},
): CaseDraft {
  const run = cheapRun(cmd, model, data, opts);
  return { kind: 'cli', ...base, files: [...base.files, OUT_DIR], args: run.args, report: run.report };
}

export function file(path: string, bytes: Uint8Array): FileSpec {
  return { path, kind: 'file', bytes };
}
