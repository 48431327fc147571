/**
 * Calibration statistics on every core. Binning each activation value into its histogram is the
 * largest piece of JavaScript in a calibration pass (the PP-OCRv4 recogniser bins 550 million
 * values for 48 text lines), and it ran on one core while the others waited. The pool gives each
 * tensor to ONE thread (the main thread or a worker, balanced by bytes), so every histogram sees
 * its batches in the same order as before and the statistics are identical to a single thread's.
 * A batch's tensors go to their worker by transfer (onnxruntime's output buffers move, no copy);
 * the main thread bins its own share meanwhile, then waits for the workers before the next run,
 * so no more than one batch of tensors is ever alive.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { QuantConfig } from '../../protocol/report';
import type { TensorThresholds } from './choose';
import { ActivationStats } from './histogram';

export type PoolRequest =
  | { kind: 'add'; items: [string, Float32Array][] }
  | { kind: 'collect' }
  | { kind: 'thresholds'; items: [string, ActivationStats, QuantConfig][] };
export type PoolReply =
  | { kind: 'added' }
  | { kind: 'stats'; stats: [string, ActivationStats][] }
  | { kind: 'thresholds'; thresholds: [string, TensorThresholds][] }
  | { kind: 'error'; message: string; stack?: string };

/**
 * Values to bin below which workers are not worth starting (a worker costs tens of milliseconds
 * to start; binning runs at roughly 10-20 ns per value on one core).
 */
export const POOL_MIN_VALUES = 32e6;

/** Worker threads for `values` values to bin: none for small jobs, one per spare core otherwise. */
export function poolThreads(values: number, cores = os.availableParallelism()): number {
  return values < POOL_MIN_VALUES ? 0 : Math.max(0, Math.min(cores - 1, 7));
}

/** Assign tensors to threads (0 = the main thread) largest first, each to the least-loaded thread. */
export function assignThreads(sizes: ReadonlyMap<string, number>, threads: number): Map<string, number> {
  const load = new Array<number>(threads + 1).fill(0);
  const owner = new Map<string, number>();
  for (const [name, size] of [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) {
    let best = 0;
    for (let k = 1; k < load.length; k++) if (load[k] < load[best]) best = k;
    owner.set(name, best);
    load[best] += size;
  }
  return owner;
}

/**
 * The worker: the bundle beside this one (out/histogramWorker.js), or, run from the sources (tests,
 * bench), the TypeScript file loaded through tsx's CommonJS hook (`--import tsx` does not reach
 * worker threads).
 */
function startWorker(): Worker {
  const bundled = path.join(__dirname, 'histogramWorker.js');
  if (fs.existsSync(bundled)) return new Worker(bundled);
  return new Worker(path.join(__dirname, 'histogramWorker.ts'), { execArgv: ['--require', 'tsx/cjs'] });
}

/** One worker thread of the pool, one request in flight at a time. */
export class PoolWorker {
  private readonly worker: Worker;
  private waiting: { resolve: (r: PoolReply) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor() {
    this.worker = startWorker();
    this.worker.on('message', (r: PoolReply) => this.settle(r.kind === 'error' ? workerError(r) : r));
    this.worker.on('error', (e) => this.settle(e));
    this.worker.on('exit', (code) => this.settle(new Error(`statistics worker exited with code ${code}`)));
  }

  private settle(r: PoolReply | Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (r instanceof Error) {
      this.failure ??= r;
      w?.reject(r);
    } else w?.resolve(r);
  }

  /** Send one request and wait for its reply (one request in flight at a time). */
  request(req: PoolRequest, transfer: ArrayBuffer[] = []): Promise<PoolReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.worker.postMessage(req, transfer);
    });
  }

  terminate(): Promise<number> {
    this.worker.removeAllListeners('exit');
    return this.worker.terminate();
  }
}

function workerError(r: { message: string; stack?: string }): Error {
  const e = new Error(`statistics worker: ${r.message}`);
  if (r.stack) e.stack = r.stack;
  return e;
}

/**
 * Statistics of a set of tensors, accumulated batch by batch on the main thread and `threads`
 * workers: `add` every tensor of a batch, then `endBatch` (the tensors are binned there; a tensor
 * given as `owned` must not be read after it); `close` returns every tensor's statistics.
 */
export class StatsPool {
  private readonly workers: PoolWorker[];
  private readonly local = new Map<string, ActivationStats>();
  private mine: [string, Float32Array][] = [];
  private queued: [string, Float32Array][][];
  private transfer: ArrayBuffer[][];
  private readonly sent = new Set<ArrayBufferLike>();

  constructor(
    private readonly owner: ReadonlyMap<string, number>,
    threads: number,
  ) {
    this.workers = Array.from({ length: threads }, () => new PoolWorker());
    this.queued = this.workers.map(() => []);
    this.transfer = this.workers.map(() => []);
  }

  /**
   * One batch of one tensor. `owned`: the caller gives the buffer up (an onnxruntime output it will
   * not read again), so a worker's tensor moves without a copy; otherwise it is copied.
   */
  add(name: string, data: Float32Array, owned: boolean): void {
    const k = Math.min(this.owner.get(name) ?? 0, this.workers.length);
    if (k === 0) {
      this.mine.push([name, data]);
      return;
    }
    // A buffer moves whole: only when the tensor is all of it, and only once per batch.
    const whole = owned && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !this.sent.has(data.buffer);
    const moved = whole && data.buffer instanceof ArrayBuffer ? data : data.slice();
    this.sent.add(moved.buffer);
    this.queued[k - 1].push([name, moved]);
    this.transfer[k - 1].push(moved.buffer as ArrayBuffer);
  }

  /** Bin the batch: the workers' tensors leave first, the main thread bins its share meanwhile. */
  async endBatch(): Promise<void> {
    const replies = this.workers.map((w, k) => (this.queued[k].length ? w.request({ kind: 'add', items: this.queued[k] }, this.transfer[k]) : undefined));
    this.queued = this.workers.map(() => []);
    this.transfer = this.workers.map(() => []);
    this.sent.clear();
    const mine = this.mine;
    this.mine = [];
    for (const [name, data] of mine) {
      let s = this.local.get(name);
      if (!s) this.local.set(name, (s = new ActivationStats()));
      s.add(data);
    }
    await Promise.all(replies);
  }

  /** Every tensor's statistics; the workers are stopped. */
  async close(): Promise<Map<string, ActivationStats>> {
    try {
      await this.endBatch();
      const out = new Map(this.local);
      for (const w of this.workers) {
        const r = await w.request({ kind: 'collect' });
        if (r.kind !== 'stats') throw new Error(`statistics worker answered ${r.kind} to collect`);
        for (const [name, s] of r.stats) out.set(name, ActivationStats.revive(s));
      }
      return out;
    } finally {
      await this.dispose();
    }
  }

  /** Stop the workers (after an error or a cancellation); safe to call twice. */
  async dispose(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }
}
