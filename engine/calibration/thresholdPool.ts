/**
 * Every calibration method's thresholds for many tensors at once, on the main thread and the
 * statistics workers. The entropy search costs O(candidates x levels) per tensor (up to ~4,096
 * candidates x 256 levels on a widened histogram): 3 s for PaddleOCR's classifier on one core while
 * the others idled, ~1 s since levels are remembered (thresholds.ts). Each tensor goes to one
 * thread and runs the same function, so the thresholds do not depend on the split.
 */
import type { QuantConfig } from '../../protocol/report';
import { type TensorThresholds, computeThresholds } from './choose';
import type { ActivationStats } from './histogram';
import { strideFor } from './thresholds';
import { PoolWorker, assignThreads, poolThreads } from './statsPool';

/** Level evaluations below which a worker costs more to start than it saves (~10 ns each). */
export const THRESHOLD_POOL_MIN_WORK = 3e7;

/** Entropy-search work for one tensor: candidates (strided past 4,096) times quantized levels. */
export function thresholdWork(s: ActivationStats, config: QuantConfig): number {
  const n = s.pos.length;
  const candidates = n > 128 ? Math.floor((n - 128) / strideFor(n)) + 1 : 0;
  const levels = 2 ** (config.activations.bits - 1 + (config.activations.signed ? 0 : 1));
  return candidates * levels + n;
}

/** `items` [key, statistics, configuration] -> thresholds by key. */
export async function thresholdsOf(items: readonly [string, ActivationStats, QuantConfig][], threads?: number): Promise<Map<string, TensorThresholds>> {
  const work = new Map(items.map(([key, s, c]) => [key, thresholdWork(s, c)]));
  const total = [...work.values()].reduce((a, b) => a + b, 0);
  const n = threads ?? (total < THRESHOLD_POOL_MIN_WORK ? 0 : poolThreads(Number.POSITIVE_INFINITY));
  const out = new Map<string, TensorThresholds>();
  if (n === 0) {
    for (const [key, s, c] of items) out.set(key, computeThresholds(s, c));
    return out;
  }
  const owner = assignThreads(work, n);
  const workers = Array.from({ length: n }, () => new PoolWorker());
  try {
    const replies = workers.map((w, k) => w.request({ kind: 'thresholds', items: items.filter(([key]) => owner.get(key) === k + 1) }));
    for (const [key, s, c] of items) if (owner.get(key) === 0) out.set(key, computeThresholds(s, c));
    for (const r of await Promise.all(replies)) {
      if (r.kind !== 'thresholds') throw new Error(`statistics worker answered ${r.kind} to thresholds`);
      for (const [key, th] of r.thresholds) out.set(key, th);
    }
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
