/**
 * The share of an activation's values that saturate its grid (more than half a step beyond it),
 * read from the calibration statistics of the same samples instead of counted again in every
 * evaluation run: counting in the comparison model cost five nodes and five passes over every
 * activation (on the OCR recogniser, 740 nodes, ~1.7 s of session creation and ~1.5 s of runs).
 *
 * The histogram answers exactly for every bin wholly inside or beyond the grid. Only the bin
 * holding each grid edge is split, in proportion to the part of it beyond the edge (values spread
 * evenly within a bin); `low` and `high` bound the true share by counting that bin as all inside or
 * all beyond. The exact min and max narrow the edge bins, so a grid that covers them (MinMax) gives
 * exactly 0. The heavy-clipping warning (clipWarnings.ts) reads the same share. (The what-if panel's
 * calibration/expectedError.ts interpolates on a display histogram up to the grid's ends; this reads
 * the raw bins, counts from half a step beyond the ends, where the code saturates, and bounds it.)
 */
import type { ActivationStats } from '../calibration/histogram';
import type { QuantParams } from '../quantize/scheme';

export interface ClipShare {
  /** Estimated share of values beyond the grid. */
  rate: number;
  /** The true share lies in [low, high]. */
  low: number;
  high: number;
}

/** Share of `stats`' values below (qmin - 0.5 - z) s or above (qmax + 0.5 - z) s; infinities always clip. */
export function clipShare(stats: ActivationStats, params: Pick<QuantParams, 'scale' | 'zeroPoint' | 'qmin' | 'qmax'>): ClipShare {
  const total = stats.count + stats.nanCount + stats.infCount;
  if (total === 0) return { rate: 0, low: 0, high: 0 };
  const lo = (params.qmin - 0.5 - params.zeroPoint) * params.scale;
  const hi = (params.qmax + 0.5 - params.zeroPoint) * params.scale;
  let sure = stats.infCount;
  let split = 0;
  let edge = 0;
  const w = stats.width;
  // Bin edges are k * w while values were binned by dividing by w: allow a rounding error's worth
  // of slack before calling a bin wholly beyond the grid.
  const slack = w * 1e-6;
  // One bin [a, b) of c values, clamped to the observed range.
  const bin = (a0: number, b0: number, c: number) => {
    if (c === 0) return;
    const a = Math.max(a0, stats.min);
    const b = Math.min(b0, stats.max);
    if (a > hi + slack || b < lo - slack) sure += c;
    else if (b > hi || a < lo) {
      // The edge bin: the part of [a, b] beyond the grid, as a share of its width.
      const beyond = Math.max(0, b - hi) + Math.max(0, lo - a);
      split += b > a ? (c * beyond) / (b - a) : c;
      edge += c;
    }
  };
  if (w === 0) bin(0, 0, stats.zeroCount);
  for (let k = 0; k < stats.pos.length; k++) bin(k * w, (k + 1) * w, stats.pos[k]);
  for (let k = 0; k < stats.neg.length; k++) bin(-(k + 1) * w, -k * w, stats.neg[k]);
  return { rate: (sure + split) / total, low: sure / total, high: (sure + edge) / total };
}
