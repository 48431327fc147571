/**
 * onnxruntime's calibration tables, as quantization/quant_utils.py write_calibration_table writes
 * them next to each other:
 *
 * - `calibration.json`, json.dumps of what the calibrator computed. Older onnxruntime: a dict
 *   `{tensor: [min, max]}`. Current onnxruntime: the TensorsData object through its encoder,
 *     {"CLS": "TensorsData",
 *      "data": {tensor: {"lowest": ARRAY, "highest": ARRAY, "CLS": "TensorData"}, ...},
 *      "calibration_method": {"CLS": "CalibrationMethod", "value": "CalibrationMethod.MinMax"}}
 *   with ARRAY = {"data": [x] or x, "dtype": "float32", "CLS": "numpy.array"} (MinMax gives one-element
 *   arrays, histogram methods 0-d ones; histogram methods add "hist"/"bins" entries). A dict of
 *   TensorData without the TensorsData wrapper, and plain numbers, are accepted too.
 * - `calibration.cache`, plain text `tensor value` per line, value = the dynamic range (older:
 *   max(|min|, |max|); newer: max(lowest, highest)), which onnxruntime's TensorRT provider uses as
 *   a symmetric [-value, value]. Read only: QuantLens writes TensorRT's own cache format instead.
 */
import type { Range } from '../../protocol/report';
import { type CalibrationTable, lineError, quoteName, tableError, textLines } from './calibrationTable';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: Json | undefined): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse onnxruntime's calibration.json in any shape onnxruntime has written. */
export function parseOrtJson(text: string, file: string): CalibrationTable {
  let root: Json;
  try {
    root = JSON.parse(text.replace(/^\uFEFF/, '')) as Json;
  } catch (e) {
    // Python's json.dumps writes NaN / Infinity (not JSON) for tensors that had no finite value.
    if (/(^|[^\w"])-?(NaN|Infinity)([^\w"]|$)/.test(text))
      throw tableError(file, 'holds NaN or Infinity ranges (onnxruntime writes them for tensors without a finite value); fix or drop those entries');
    throw tableError(file, `not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObject(root)) throw tableError(file, 'expected a JSON object of tensor ranges');
  let data: Json = root;
  let method: string | undefined;
  if (root.CLS === 'TensorsData') {
    data = root.data;
    if (!isObject(data)) throw tableError(file, 'TensorsData without a "data" object');
    const m = root.calibration_method;
    if (isObject(m) && typeof m.value === 'string') method = m.value;
    else if (typeof m === 'string') method = m;
  }
  const tensors = new Map<string, Range>();
  for (const [name, entry] of Object.entries(data as { [k: string]: Json })) {
    let lo: number;
    let hi: number;
    if (Array.isArray(entry) && entry.length === 2) {
      lo = scalar(entry[0], file, name, 'min');
      hi = scalar(entry[1], file, name, 'max');
    } else if (isObject(entry) && 'lowest' in entry && 'highest' in entry) {
      lo = scalar(entry.lowest, file, name, 'lowest');
      hi = scalar(entry.highest, file, name, 'highest');
    } else {
      throw tableError(file, `tensor ${quoteName(name)}: expected [min, max] or {"lowest", "highest"}, found ${short(entry)}`);
    }
    if (!(lo <= hi)) throw tableError(file, `tensor ${quoteName(name)}: min ${lo} is above max ${hi}`);
    tensors.set(name, { lo, hi });
  }
  return { format: 'ort-json', tensors, method };
}

/** A number from a JSON number, a one-element list, or a numpy.array object holding either. */
function scalar(v: Json | undefined, file: string, name: string, what: string): number {
  let x: Json | undefined = v;
  if (isObject(x) && 'data' in x) x = x.data;
  if (Array.isArray(x)) {
    if (x.length !== 1) throw tableError(file, `tensor ${quoteName(name)}: ${what} holds ${x.length} values (per-channel activation ranges are not supported)`);
    x = x[0];
  }
  if (typeof x !== 'number' || !Number.isFinite(x)) throw tableError(file, `tensor ${quoteName(name)}: ${what} is ${short(v)}, not a finite number`);
  return x;
}

function short(v: Json | undefined): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Write the current calibration.json shape (TensorsData of MinMax-style TensorData, float32 values
 * in one-element arrays, as onnxruntime's MinMax calibrator produces). Values are rounded to
 * float32 as onnxruntime stores them.
 */
export function formatOrtJson(tensors: ReadonlyMap<string, Range>, file = 'output'): string {
  const array = (x: number) => ({ data: [Math.fround(x)], dtype: 'float32', CLS: 'numpy.array' });
  const data: Record<string, unknown> = {};
  for (const [name, r] of tensors) {
    if (!Number.isFinite(Math.fround(r.lo)) || !Number.isFinite(Math.fround(r.hi))) {
      throw tableError(file, `tensor ${quoteName(name)} has range [${r.lo}, ${r.hi}], not finite in float32`);
    }
    data[name] = { lowest: array(r.lo), highest: array(r.hi), CLS: 'TensorData' };
  }
  const root = { CLS: 'TensorsData', data, calibration_method: { CLS: 'CalibrationMethod', value: 'CalibrationMethod.MinMax' } };
  return `${JSON.stringify(root)}\n`;
}

/** Parse onnxruntime's plain-text calibration.cache: `tensor value` lines (value after the last blank). */
export function parseOrtText(text: string, file: string): CalibrationTable {
  const tensors = new Map<string, Range>();
  const lines = textLines(text);
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l].trim();
    if (line === '') continue;
    const m = /^(.*\S)\s+(\S+)$/.exec(line);
    const value = m ? Number(m[2]) : NaN;
    if (!m || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(m[2])) {
      throw lineError(
        file,
        l + 1,
        `expected "tensor value" (onnxruntime calibration.cache) or a TensorRT cache starting with a TRT-... header, found ${quoteName(line)}`,
      );
    }
    const name = m[1];
    if (!(value >= 0) || !Number.isFinite(value)) throw lineError(file, l + 1, `the range of ${quoteName(name)} is ${m[2]}, not a finite non-negative number`);
    if (tensors.has(name)) throw lineError(file, l + 1, `tensor ${quoteName(name)} appears twice`);
    tensors.set(name, { lo: -value, hi: value });
  }
  if (tensors.size === 0) throw tableError(file, 'holds no tensor ranges');
  return { format: 'ort-text', tensors };
}
