/**
 * TensorRT's calibration cache, the text IInt8Calibrator::writeCalibrationCache produces:
 *
 *   TRT-8601-EntropyCalibration2
 *   input: 3c010a14
 *   conv1_out: 3d8a2ab5
 *
 * Each line after the header is `tensor name: hex`, the hex being the IEEE-754 float32 bit pattern
 * (most significant byte first) of the int8 SCALE, so amax = scale * 127. onnxruntime's TensorRT
 * execution provider reads the same file this way (split at ':', strtoul base 16, times 127).
 */
import type { Range } from '../../protocol/report';
import { amaxOf, type CalibrationTable, lineError, quoteName, tableError, textLines } from './calibrationTable';

/** The header written when none is given: TensorRT 8.6's entropy calibrator (IInt8EntropyCalibrator2). */
export const DEFAULT_TRT_HEADER = 'TRT-8601-EntropyCalibration2';

/** int8's largest code: the cache stores amax / INT8_QMAX. */
const INT8_QMAX = 127;

/** float32 bits (as an unsigned integer) -> value, and back. */
const bits = new DataView(new ArrayBuffer(4));

export function float32FromBits(u: number): number {
  bits.setUint32(0, u >>> 0);
  return bits.getFloat32(0);
}

export function float32Bits(x: number): number {
  bits.setFloat32(0, x);
  return bits.getUint32(0);
}

/**
 * Parse a TensorRT calibration cache. Blank lines and Windows line endings are fine; a name may
 * hold colons (the value follows the LAST one). Any other deviation is an InputError naming the
 * line. amax = scale * 127 is exact in float64, so writing the table back gives the same bits.
 */
export function parseTrtCache(text: string, file: string): CalibrationTable {
  const lines = textLines(text);
  const tensors = new Map<string, Range>();
  let header: string | undefined;
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l].trimEnd();
    if (line.trim() === '') continue;
    if (header === undefined) {
      header = line.trim();
      if (!/^TRT-\S+$/.test(header)) {
        throw lineError(file, l + 1, `expected a TensorRT cache header such as ${DEFAULT_TRT_HEADER}, found ${quoteName(header)}`);
      }
      continue;
    }
    const colon = line.lastIndexOf(':');
    if (colon < 0) throw lineError(file, l + 1, `expected "tensor name: hex scale", found ${quoteName(line)}`);
    const name = line.slice(0, colon);
    const hex = line.slice(colon + 1).trim();
    if (name.trim() === '') throw lineError(file, l + 1, 'the tensor name is empty');
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) throw lineError(file, l + 1, `the scale of ${quoteName(name)} is ${quoteName(hex)}, not 1 to 8 hex digits`);
    const scale = float32FromBits(parseInt(hex, 16));
    if (!Number.isFinite(scale) || scale < 0 || Object.is(scale, -0)) {
      throw lineError(file, l + 1, `the scale of ${quoteName(name)} (0x${hex}) is ${scale}, not a finite non-negative float32`);
    }
    if (tensors.has(name)) throw lineError(file, l + 1, `tensor ${quoteName(name)} appears twice`);
    const amax = scale * INT8_QMAX;
    tensors.set(name, { lo: -amax, hi: amax });
  }
  if (header === undefined) throw tableError(file, 'the file is empty (a TensorRT cache starts with a header such as TRT-8601-EntropyCalibration2)');
  return { format: 'tensorrt', tensors, header };
}

/**
 * Write ranges as a TensorRT calibration cache: scale = float32(max(|lo|, |hi|) / 127), eight
 * lower-case hex digits. `header` should name the TensorRT version and calibrator that will read
 * the file (a table read from a cache keeps its own).
 */
export function formatTrtCache(tensors: ReadonlyMap<string, Range>, header = DEFAULT_TRT_HEADER, file = 'output'): string {
  if (!/^TRT-\S+$/.test(header)) throw tableError(file, `header ${quoteName(header)} does not look like TRT-<version>-<calibrator>`);
  const out = [header];
  for (const [name, r] of tensors) {
    if (name === '' || /[\r\n]/.test(name)) throw tableError(file, `tensor name ${quoteName(name)} cannot be written on one line`);
    const scale = Math.fround(amaxOf(r) / INT8_QMAX);
    if (!Number.isFinite(scale)) throw tableError(file, `tensor ${quoteName(name)} has range [${r.lo}, ${r.hi}], which has no finite float32 scale`);
    out.push(`${name}: ${float32Bits(scale).toString(16).padStart(8, '0')}`);
  }
  return `${out.join('\n')}\n`;
}
