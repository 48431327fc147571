/**
 * Calibration tables in and out: recognise the format of a table file, read it, write one. The
 * formats are in trtCache.ts (TensorRT) and ortTable.ts (onnxruntime); matching a table to a
 * model's tensors is matchTable in calibrationTable.ts.
 */
import type { Range } from '../../protocol/report';
import { type OutputTarget, readRegularFile, writeOutput } from '../io/files';
import { type CalibrationTable, type CalibrationTableFormat, tableError } from './calibrationTable';
import { formatOrtJson, parseOrtJson, parseOrtText } from './ortTable';
import { DEFAULT_TRT_HEADER, formatTrtCache, parseTrtCache } from './trtCache';

export type { CalibrationTable, CalibrationTableFormat, TableMatch } from './calibrationTable';
export { matchTable } from './calibrationTable';
export { DEFAULT_TRT_HEADER } from './trtCache';

/** Tables name every activation once: even huge models stay far below this. */
const MAX_TABLE_BYTES = 64 * 2 ** 20;

/**
 * Parse a table, recognising its format from the content: JSON (onnxruntime calibration.json),
 * a first line starting with TRT- (TensorRT cache), else onnxruntime's plain-text calibration.cache.
 */
export function parseCalibrationTable(text: string, file: string): CalibrationTable {
  const body = text.replace(/^\uFEFF/, '');
  if (body.includes('\0')) throw tableError(file, 'is binary, not a text table (onnxruntime calibration.flatbuffers is not read: use calibration.json)');
  const start = body.trimStart();
  if (start === '') throw tableError(file, 'is empty');
  const table = start.startsWith('{') ? parseOrtJson(body, file) : start.startsWith('TRT-') ? parseTrtCache(body, file) : parseOrtText(body, file);
  // A header with no entries would leave every range to QuantLens while the user believes the table's are used.
  if (table.tensors.size === 0) throw tableError(file, `holds no tensor ranges (${table.format}); nothing to take from it`);
  return table;
}

/** Read a calibration table file (TensorRT cache, onnxruntime calibration.json or calibration.cache). */
export function readCalibrationTable(file: string): CalibrationTable {
  const buf = readRegularFile(file, 'calibration table', MAX_TABLE_BYTES);
  return parseCalibrationTable(buf.toString('utf8'), file);
}

/** The text of a table in `format` (TensorRT cache or onnxruntime calibration.json). */
export function formatCalibrationTable(
  format: Exclude<CalibrationTableFormat, 'ort-text'>,
  tensors: ReadonlyMap<string, Range>,
  header = DEFAULT_TRT_HEADER,
  file = 'output',
): string {
  return format === 'tensorrt' ? formatTrtCache(tensors, header, file) : formatOrtJson(tensors, file);
}

/**
 * Write per-tensor ranges as a table through the safe writer (never over an existing file
 * without `force`, never over an input). Returns the absolute path written.
 */
export function writeCalibrationTable(
  target: OutputTarget,
  format: Exclude<CalibrationTableFormat, 'ort-text'>,
  tensors: ReadonlyMap<string, Range>,
  header = DEFAULT_TRT_HEADER,
): string {
  return writeOutput(target, formatCalibrationTable(format, tensors, header, target.path));
}
