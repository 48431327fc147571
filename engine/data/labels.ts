/**
 * Labels: one non-negative integer class per sample (`labels.npy`, npz key `labels`), checked
 * when loaded; `checkLabels` checks them against the model's output width once that is known.
 */
import { InputError } from '../errors';
import { integers, isIntegerDtype } from './dtypes';
import { type NpyArray, fmtShape } from './npy';

/** Labels are read this many at a time (they are kept, but never read twice over in memory). */
const CHUNK = 1 << 16;

/** Check the labels' header: 1-D, one per sample, an integer dtype. */
export function checkLabelsHeader(arr: NpyArray, samples: number): void {
  const { where } = arr;
  const { shape, dtype } = arr.header;
  if (shape.length !== 1 || shape[0] !== samples) {
    throw new InputError(`${where}: labels must be a 1-D array with one integer per sample (${samples}), got shape ${fmtShape(shape)}`);
  }
  if (!isIntegerDtype(dtype)) {
    throw new InputError(`${where}: labels have dtype '${dtype.descr}'; class labels must be integers (save labels.astype(np.int64))`);
  }
}

/** Read and check the labels of a dataset of `samples` samples: non-negative, within int32. */
export function readLabels(arr: NpyArray, samples: number): Int32Array {
  checkLabelsHeader(arr, samples);
  const { where } = arr;
  const { dtype } = arr.header;
  const out = new Int32Array(samples);
  for (let start = 0; start < samples; start += CHUNK) {
    const count = Math.min(CHUNK, samples - start);
    const v = integers(arr.rows(start, count), dtype);
    for (let i = 0; i < count; i++) {
      const x = Number(v[i]);
      if (x < 0) throw new InputError(`${where}: label ${x} of sample ${start + i} is negative; classes are 0, 1, 2, ...`);
      if (x > 0x7fffffff) throw new InputError(`${where}: label ${String(v[i])} of sample ${start + i} is out of range`);
      out[start + i] = x;
    }
  }
  return out;
}

/**
 * Every label must name one of the model's `classes` outputs (0 .. classes-1): a label out of
 * range would silently count as a miss and make top-1 meaningless.
 */
export function checkLabels(labels: Int32Array, classes: number, where: string): void {
  if (!Number.isInteger(classes) || classes < 1) throw new Error(`checkLabels: classes must be a positive integer, got ${classes}`);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw new InputError(`${where}: label ${labels[i]} of sample ${i} is out of range for a model with ${classes} outputs (classes 0 to ${classes - 1})`);
    }
  }
}
