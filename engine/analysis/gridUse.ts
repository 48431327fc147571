/**
 * How much of an activation's grid the data uses: which codes occur, and how much of the grid's
 * range the observed values span. A grid whose data spans a tenth of it wastes about 3 of its 8
 * bits, whatever the clip rate says.
 *
 * Read from the calibration statistics of the same samples (exact min and max, and the streamed
 * histogram): a code counts as used when a non-empty histogram bin reaches it. Bins are at least
 * 8 times narrower than an 8-bit step, so this can only over-count codes at bin edges, never miss
 * one that occurs.
 */
import type { GridUse } from '../../protocol/report';
import type { ActivationStats } from '../calibration/histogram';
import { type QuantParams, quantize, representableRange } from '../quantize/scheme';

/** Grids with more codes than this are not tracked code by code. */
const MAX_CODES = 1 << 16;

export function gridUse(stats: ActivationStats, params: QuantParams): GridUse | undefined {
  if (!stats.count) return undefined;
  const codes = params.qmax - params.qmin + 1;
  const r = representableRange(params);
  const span = Math.max(0, Math.min(stats.max, r.hi) - Math.max(stats.min, r.lo));
  let usedCodes = codes;
  if (codes <= MAX_CODES) {
    const used = new Uint8Array(codes);
    const mark = (lo: number, hi: number) => {
      const a = quantize(Math.max(lo, stats.min), params) - params.qmin;
      const b = quantize(Math.min(hi, stats.max), params) - params.qmin;
      for (let k = Math.min(a, b); k <= Math.max(a, b); k++) used[k] = 1;
    };
    const w = stats.width;
    if (w === 0) mark(0, 0); // only zeros seen
    for (let k = 0; k < stats.pos.length; k++) if (stats.pos[k] > 0) mark(k * w, (k + 1) * w);
    for (let k = 0; k < stats.neg.length; k++) if (stats.neg[k] > 0) mark(-(k + 1) * w, -k * w);
    usedCodes = used.reduce((a, b) => a + b, 0);
  }
  return {
    codes,
    usedCodes,
    unusedShare: 1 - usedCodes / codes,
    spanShare: r.hi > r.lo ? span / (r.hi - r.lo) : 0,
    observed: { lo: stats.min, hi: stats.max },
  };
}
