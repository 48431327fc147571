/**
 * Calibration tables other tools write and read: per-tensor activation ranges keyed by tensor name.
 * Pure: the formats live in trtCache.ts and ortTable.ts, file I/O in tables.ts.
 */
import type { Range } from '../../protocol/report';
import { InputError } from '../errors';

/**
 * - `tensorrt`: TensorRT's calibration cache (`TRT-<version>-<calibrator>` then `name: <hex>`
 *   lines, the hex being the float32 bits of the int8 scale amax / 127).
 * - `ort-json`: onnxruntime's `calibration.json` (write_calibration_table).
 * - `ort-text`: onnxruntime's plain-text `calibration.cache` (`name value` lines, value = the
 *   dynamic range onnxruntime's TensorRT execution provider uses). Read only.
 */
export type CalibrationTableFormat = 'tensorrt' | 'ort-json' | 'ort-text';

export interface CalibrationTable {
  format: CalibrationTableFormat;
  /** Range per tensor name, in file order. TensorRT and ort-text hold a symmetric amax: [-amax, amax]. */
  tensors: Map<string, Range>;
  /** TensorRT's header line (e.g. TRT-8601-EntropyCalibration2), kept so a table can be written back. */
  header?: string;
  /** onnxruntime's calibration method when the JSON names it (e.g. "CalibrationMethod.MinMax"). */
  method?: string;
}

export interface TableMatch {
  /** Model activation name -> the table's range, for every activation the table names. */
  ranges: Map<string, Range>;
  /** Table entries naming no activation of the model (TensorRT names tensors after its fusions). */
  unmatched: string[];
  /** Model activations the table has no entry for (they keep QuantLens's own calibration). */
  missing: string[];
}

/**
 * Match a table's entries to the model's activation tensor names. Names must be equal: a
 * TensorRT cache written after layer fusion names fused tensors ("(Unnamed Layer* 12)
 * [Activation]_output") that no ONNX tensor carries; those are listed in `unmatched`, never
 * silently dropped, so the caller can say which entries it ignored.
 */
export function matchTable(table: CalibrationTable, activations: Iterable<string>): TableMatch {
  const ranges = new Map<string, Range>();
  const missing: string[] = [];
  const known = new Set<string>();
  for (const name of activations) {
    known.add(name);
    const r = table.tensors.get(name);
    if (r) ranges.set(name, r);
    else missing.push(name);
  }
  const unmatched = [...table.tensors.keys()].filter((name) => !known.has(name));
  return { ranges, unmatched, missing };
}

/** Symmetric amax of a range, as TensorRT and onnxruntime's TensorRT provider take it. */
export function amaxOf(r: Range): number {
  return Math.max(Math.abs(r.lo), Math.abs(r.hi));
}

/** One-line error about line `line` (1-based) of `file`. */
export function lineError(file: string, line: number, problem: string): InputError {
  return new InputError(`calibration table ${file}: line ${line}: ${problem}`);
}

/** One-line error about `file` as a whole or one of its tensors. */
export function tableError(file: string, problem: string): InputError {
  return new InputError(`calibration table ${file}: ${problem}`);
}

/** Text lines without their terminators (\n, \r\n or \r) and without a leading byte-order mark. */
export function textLines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
}

/** A tensor name for messages: quoted, cut short, control characters shown as escapes. */
export function quoteName(name: string): string {
  const shown = name.length > 80 ? `${name.slice(0, 77)}...` : name;
  return JSON.stringify(shown);
}
