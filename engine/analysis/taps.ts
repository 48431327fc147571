/**
 * Fetching intermediate tensors ("taps") from onnxruntime without letting memory grow with the
 * model's resolution: every tensor's bytes per sample are measured once (small 1-sample probes),
 * then taps are split into groups whose batch stays under a byte budget. A model whose activations
 * are small gets one group and large batches; a 512x512 detector gets several groups at batch 1,
 * each a full pass, and never holds every layer's activation at once.
 */
import { batchWithin, inputNamesOf } from '../data/dataset';
import type * as ort from 'onnxruntime-node';
import { liftTensors } from '../onnx/lift';
import { cloneModel, type ModelProto } from '../onnx/model';
import { feedsFor, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { GraphCuts, type Segment } from './segments';
import { ELEM_TYPE } from '../onnx/slice';
import type { Prepared } from './types';

/** Bytes of fetched tensors one session run may return (all taps of one batch together). */
export const RUN_BYTES = 256 * 1024 * 1024;

/**
 * Bytes of activations per run (summed over the tensors calibration measured, per sample times the
 * batch) up to which a larger batch still pays, when neither the user nor the model sets the batch.
 * Beyond it onnxruntime CPU runs each sample slower: the PP-OCRv4 recogniser (45 MB of activations
 * per text line) ran 48 lines in 0.8-1.3 s at batch 2-4, 1.5-1.9 s at 12-16 and 4.3-6.1 s at 48;
 * PaddleOCR's classifier (13 MB) was fastest at 12-24, the demo CNN (0.3 MB) ran alike at 16-64
 * (docs/performance.md, eleventh round).
 */
export const WORKING_BYTES = 192 * 1024 * 1024;

/** The batch for activations of `perSample` bytes each: at most `max`, WORKING_BYTES per run, at least 1. */
export function workingSetBatch(max: number, perSample: Iterable<number>): number {
  let bytes = 0;
  for (const b of perSample) bytes += b;
  return batchWithin(WORKING_BYTES, bytes, max);
}

/** Tensors per probe run before anything is known about their size. */
const FIRST_PROBE = 64;

/**
 * The float model with `tensors` fetchable: main-graph tensors become outputs, tensors inside
 * If/Loop/Scan bodies are lifted (onnx/lift.ts). `names` maps each tensor to the output to read;
 * tensors that cannot be lifted are recorded once in `p.unreadable` with the reason.
 */
export function tapModel(p: Prepared, tensors: readonly string[]): { model: ModelProto; names: Map<string, string>; stacked: Map<string, number> } {
  const model = cloneModel(p.float);
  const { lifted, refused } = liftTensors(
    model,
    tensors.filter((t) => t && !p.unreadable.has(t)),
    p.elemTypes,
  );
  for (const [t, why] of refused) p.unreadable.set(t, why);
  return {
    model,
    names: new Map([...lifted].map(([t, l]) => [t, l.output])),
    // Loop/Scan body tensors come stacked: one leading axis per enclosing loop (iterations)
    stacked: new Map([...lifted].filter(([, l]) => l.stackedAxes > 0).map(([t, l]) => [t, l.stackedAxes])),
  };
}

/** A run's results keyed by tensor name (lifted outputs under their tensor's name), feeds included. */
export function byTensor(res: Record<string, ort.Tensor>, names: Map<string, string>, feeds: Record<string, ort.Tensor> = {}): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = { ...feeds, ...res };
  for (const [t, o] of names) if (res[o]) out[t] = res[o];
  return out;
}

/** Samples per batch that a fixed batch dimension imposes (undefined when the batch is free). */
export function fixedBatchOf(p: Prepared): number | undefined {
  return p.batchSize === p.fixedBatch ? p.fixedBatch : undefined;
}

/**
 * Measure bytes per sample (and element type) of `names` not measured yet, from runs of the
 * float model on the first batch with the tensors exposed a chunk at a time. Main-graph tensors
 * are probed front to back through graph segments (segments.ts), each computing only its stretch
 * of the graph; tensors inside If/Loop/Scan bodies need the whole model, lifted (tapModel).
 */
export async function measureTensors(p: Prepared, names: readonly string[], signal?: AbortSignal): Promise<void> {
  const inputs = inputNamesOf(p.data);
  const todo = [...new Set(names)].filter((n) => !p.tensorBytes.has(n) && !inputs.has(n));
  if (todo.length === 0) return;
  const count = p.fixedBatch ?? 1;
  const feeds = await feedsFor(p.data, 0, count);
  const cuts = new GraphCuts(p.float, elemTypeOf(p));
  const chained = todo.filter((t) => cuts.produces(t)).sort((a, b) => cuts.position(a) - cuts.position(b));
  const rest = await probeChained(p, cuts, chained, feeds, count, signal);
  await probeWhole(p, [...todo.filter((t) => !cuts.produces(t)), ...rest], feeds, count, signal);
}

/** A tensor's ONNX element type: as measured, else as inferred from the model. */
export function elemTypeOf(p: Prepared): (tensor: string) => number | undefined {
  return (t) => ELEM_TYPE[p.tensorTypes.get(t) ?? ''] ?? p.elemTypes.get(t);
}

/**
 * One batch through a chain of segments (segments.ts): the data, then what each segment carries to
 * later ones. `run` feeds a segment and keeps its carried results; `drop` frees the rest of them
 * once the caller is done; `release` frees the carried ones at the end of the batch.
 */
export class SegmentBatch {
  private readonly known: Record<string, ort.Tensor>;
  private readonly held: ort.Tensor[] = [];

  constructor(feeds: Record<string, ort.Tensor>) {
    this.known = { ...feeds };
  }

  async run(session: ort.InferenceSession, seg: Segment, label: string): Promise<Record<string, ort.Tensor>> {
    const res = await runSession(session, Object.fromEntries(seg.inputs.map((t) => [t, this.known[t]])), label);
    for (const t of seg.carried) {
      this.known[t] = res[t];
      this.held.push(res[t]);
    }
    return res;
  }

  /** Free a segment's results that no later segment reads. */
  drop(res: Record<string, ort.Tensor>, seg: Segment): void {
    const carried = new Set(seg.carried);
    for (const [name, t] of Object.entries(res)) if (!carried.has(name)) t.dispose();
  }

  release(): void {
    for (const t of this.held.splice(0)) t.dispose();
  }
}

/** Record what one probe run returned for `part`; returns the bytes per sample seen. */
function record(p: Prepared, part: readonly string[], res: Record<string, ort.Tensor>, count: number): number {
  let bytes = 0;
  for (const n of part) {
    const t = res[n];
    if (!t) continue;
    const b = (t.data as ArrayBufferView).byteLength / count;
    p.tensorBytes.set(n, b);
    p.tensorTypes.set(n, t.type);
    p.tensorRanks.set(n, t.dims.length);
    if (t.type === 'float32') p.floatTensors.add(n);
    bytes += b;
  }
  return bytes;
}

/** Size the next probe so that it stays within the budget at the average size seen so far. */
function nextChunk(bytes: number, tensors: number): number {
  return Math.max(1, Math.min(1024, Math.floor(RUN_BYTES / Math.max(1, bytes / tensors))));
}

/**
 * Probe `names` (main-graph tensors in graph order) segment by segment, carrying what later
 * segments read. Returns the tensors left unmeasured when the graph could not be cut there.
 */
async function probeChained(
  p: Prepared,
  cuts: GraphCuts,
  names: string[],
  feeds: Record<string, ort.Tensor>,
  count: number,
  signal?: AbortSignal,
): Promise<string[]> {
  const chain = new SegmentBatch(feeds);
  let chunk = FIRST_PROBE;
  try {
    for (let i = 0; i < names.length; ) {
      checkCancel(signal);
      // a chunk ends after the last tensor its last producer writes (a Split's outputs stay together)
      let to = Math.min(names.length, i + chunk);
      while (to < names.length && cuts.position(names[to]) === cuts.position(names[to - 1])) to++;
      const part = names.slice(i, to);
      const seg = cuts.next(part);
      if (!seg) return names.slice(i);
      const session = await sessionOnData(p, seg.model, 'float');
      try {
        const res = await chain.run(session, seg, p.loaded.path);
        chunk = nextChunk(record(p, part, res, count), part.length);
        chain.drop(res, seg);
      } finally {
        await session.release();
      }
      i = to;
    }
    return [];
  } finally {
    chain.release();
  }
}

/** Probe `names` with whole-model runs (body tensors lifted out of their If/Loop/Scan). */
async function probeWhole(p: Prepared, names: string[], feeds: Record<string, ort.Tensor>, count: number, signal?: AbortSignal): Promise<void> {
  let chunk = FIRST_PROBE;
  for (let i = 0; i < names.length; ) {
    checkCancel(signal);
    const part = names.slice(i, i + chunk);
    const { model, names: lifted } = tapModel(p, part);
    const session = await sessionOnData(p, model, 'float');
    try {
      const raw = await runSession(session, feeds, p.loaded.path);
      chunk = nextChunk(record(p, part, byTensor(raw, lifted), count), part.length);
      for (const t of Object.values(raw)) t.dispose();
    } finally {
      await session.release();
    }
    i += part.length;
  }
}

export interface TapGroup<T> {
  units: T[];
  /** Tensors to fetch for this group (deduplicated). */
  tensors: string[];
  /** Samples per batch for this group's runs. */
  batch: number;
}

/**
 * Split `units` (each needing some tensors) into groups whose fetched bytes per batch stay under
 * `budget`, in order (consecutive layers share tensors: a layer's output is the next one's input).
 */
export function groupByBytes<T>(
  units: readonly T[],
  tensorsOf: (u: T) => readonly string[],
  bytesOf: (t: string) => number,
  maxBatch: number,
  fixedBatch?: number,
  budget = RUN_BYTES,
): TapGroup<T>[] {
  const groups: TapGroup<T>[] = [];
  let cur: { units: T[]; tensors: Set<string>; bytes: number } = { units: [], tensors: new Set(), bytes: 0 };
  const perBatch = fixedBatch ?? 1; // the smallest batch a group can run at
  const close = () => {
    if (cur.units.length === 0) return;
    const batch = fixedBatch ?? batchWithin(budget, cur.bytes, maxBatch);
    groups.push({ units: cur.units, tensors: [...cur.tensors], batch });
    cur = { units: [], tensors: new Set(), bytes: 0 };
  };
  for (const u of units) {
    const extra = tensorsOf(u).filter((t) => !cur.tensors.has(t));
    const add = extra.reduce((a, t) => a + bytesOf(t), 0);
    if (cur.units.length > 0 && (cur.bytes + add) * perBatch > budget) close();
    cur.units.push(u);
    for (const t of tensorsOf(u)) {
      if (!cur.tensors.has(t)) {
        cur.tensors.add(t);
        cur.bytes += bytesOf(t);
      }
    }
  }
  close();
  return groups;
}

/** Dispose every tensor onnxruntime returned (their native memory goes now, not at GC). */
export function disposeAll(...results: (Record<string, ort.Tensor> | undefined)[]): void {
  for (const r of results) if (r) for (const t of Object.values(r)) t.dispose();
}
