/**
 * Curves for plotting, made small enough for the report without losing their minima. The entropy
 * method's KL curve has ~2,000 candidate thresholds and its point is the MINIMUM: taking every
 * k-th point (the old downsample) can skip a narrow dip, and the chart then shows a minimum that
 * is neither where nor as low as the one entropy picked.
 */

export interface CurvePoint {
  threshold: number;
  value: number;
}

/**
 * At most `maxPoints` points of `curve`, in their original order: the first and last points, the
 * global minimum (the LAST one on ties, the one TensorRT's entropy search picks), the indices in
 * `keep`, and from each of equal-width buckets of the rest its lowest and its highest finite value
 * (min-max decimation). So every local minimum that is the lowest of its bucket stays, the lower
 * envelope of the curve is kept exactly at bucket resolution, and the spikes stay visible too.
 * Non-finite values (an empty quantized bin gives KL = Infinity) are not plotted; a bucket of only
 * non-finite values keeps its first point so the gap is not bridged silently.
 */
export function downsampleKeepingMinima<T extends CurvePoint>(curve: readonly T[], maxPoints: number, keep: readonly number[] = []): T[] {
  const n = curve.length;
  if (n <= maxPoints) return curve.slice();
  const chosen = new Set<number>([0, n - 1]);
  let best = -1;
  for (let i = 0; i < n; i++) {
    const v = curve[i].value;
    if (Number.isFinite(v) && (best < 0 || v <= curve[best].value)) best = i;
  }
  if (best >= 0) chosen.add(best);
  for (const k of keep) if (Number.isInteger(k) && k >= 0 && k < n) chosen.add(k);
  // Two points per bucket; what is left of the budget after the fixed points sets the bucket count.
  const buckets = Math.max(0, Math.floor((maxPoints - chosen.size) / 2));
  const interior = n - 2;
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * interior) / buckets);
    const end = 1 + Math.floor(((b + 1) * interior) / buckets);
    let lo = -1;
    let hi = -1;
    for (let i = start; i < end; i++) {
      const v = curve[i].value;
      if (!Number.isFinite(v)) continue;
      if (lo < 0 || v < curve[lo].value) lo = i;
      if (hi < 0 || v > curve[hi].value) hi = i;
    }
    if (lo >= 0) {
      chosen.add(lo);
      chosen.add(hi);
    } else if (end > start) {
      chosen.add(start);
    }
  }
  return [...chosen].sort((a, b) => a - b).map((i) => curve[i]);
}

/** Index of the point whose threshold is nearest to `x` (-1 for an empty curve). */
export function nearestIndex(curve: readonly CurvePoint[], x: number): number {
  let best = -1;
  for (let i = 0; i < curve.length; i++) {
    if (best < 0 || Math.abs(curve[i].threshold - x) < Math.abs(curve[best].threshold - x)) best = i;
  }
  return best;
}
