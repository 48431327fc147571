/**
 * Worker thread of the statistics pool (statsPool.ts): it owns the ActivationStats of the tensors
 * the main thread assigns to it, adds each batch it receives (the tensors' buffers are transferred,
 * not copied) and hands the finished statistics back when asked. It also computes thresholds for
 * statistics it is sent (thresholdPool.ts).
 */
import { parentPort } from 'node:worker_threads';
import { computeThresholds } from './choose';
import { ActivationStats } from './histogram';
import type { PoolReply, PoolRequest } from './statsPool';

const port = parentPort;
if (!port) throw new Error('histogramWorker.ts runs only as a worker thread');
const stats = new Map<string, ActivationStats>();

port.on('message', (m: PoolRequest) => {
  try {
    if (m.kind === 'add') {
      for (const [name, data] of m.items) {
        let s = stats.get(name);
        if (!s) stats.set(name, (s = new ActivationStats()));
        s.add(data);
      }
      port.postMessage({ kind: 'added' } satisfies PoolReply);
    } else if (m.kind === 'thresholds') {
      const thresholds = m.items.map(
        ([key, s, config]) => [key, computeThresholds(ActivationStats.revive(s), config)] as [string, ReturnType<typeof computeThresholds>],
      );
      port.postMessage({ kind: 'thresholds', thresholds } satisfies PoolReply);
    } else {
      port.postMessage({ kind: 'stats', stats: [...stats] } satisfies PoolReply);
      stats.clear();
    }
  } catch (e) {
    const err = e as Error;
    port.postMessage({ kind: 'error', message: err.message, stack: err.stack } satisfies PoolReply);
  }
});
