/**
 * Stage 1, prepare: load the model and the data, and stream the float model over the data once,
 * turning every activation a configuration may quantize into statistics (min/max, per-batch
 * extremes, a TensorRT-style histogram) without keeping any activation. Configurations that need
 * tensors not calibrated yet (a sweep over placements) get them by `ensureStats`, which streams
 * only those.
 */
import type * as ort from 'onnxruntime-node';
import type { Placement, Warning } from '../../protocol/report';
import type { ActivationStats } from '../calibration/histogram';
import { batchRanges, fedInputs, inputNamesOf, modelInputs } from '../data/dataset';
import { checkLabels } from '../data/labels';
import { InputError } from '../errors';
import { type LoadedModel, cloneModel, loadModel } from '../onnx/model';
import { normalizeScopes } from '../onnx/scopes';
import { inferElementTypes } from '../onnx/typeInfer';
import { planQuantization } from '../quantize/plan';
import { StatsPool, assignThreads, poolThreads } from '../calibration/statsPool';
import { feedsFor, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import { checkCancel } from './cancel';
import { carryStates, inputSettings, loadInputData } from './inputData';
import { GraphCuts, type Segment, segmentModels } from './segments';
import { SegmentBatch, type TapGroup, byTensor, disposeAll, elemTypeOf, fixedBatchOf, groupByBytes, measureTensors, tapModel, workingSetBatch } from './taps';
import type { PrepareOptions, Prepared, RunOptions } from './types';

export function timer(): () => number {
  const t0 = performance.now();
  return () => Math.round(performance.now() - t0);
}

/** The tensors the first configuration's plan quantizes (compute placement unless told), plus BN outputs that folding exposes. */
function defaultTensors(p: Prepared, placement: Placement = 'compute'): string[] {
  const g = p.float.graph!;
  const set = new Set(planQuantization(g, placement, []).activations);
  for (const n of g.node) if (n.opType === 'BatchNormalization') set.add(n.output[0]);
  return [...set];
}

export async function prepareAnalysis(modelPath: string, opts: PrepareOptions = {}): Promise<Prepared> {
  const t = timer();
  const loaded = loadModel(modelPath);
  return prepareLoaded(loaded, opts, t);
}

export async function prepareLoaded(loaded: LoadedModel, opts: PrepareOptions, t = timer()): Promise<Prepared> {
  const warnings: Warning[] = loaded.warnings.map((message) => ({ code: 'model-warning', message }));
  const float = cloneModel(loaded.proto);
  // Constants hoisted and nodes named at every depth; body nodes get qualified names (If_0/then_branch/Conv_3).
  const nodeNames = normalizeScopes(float);
  const data = loadInputData(loaded, float, opts);
  const inputs = data.inputs;
  for (const message of data.notes ?? []) warnings.push({ code: 'data-arrays', message });
  if (data.synthetic) {
    warnings.push({
      code: 'synthetic-data',
      message: `No calibration data given: using ${data.samples} synthetic random samples. Thresholds and errors then say NOTHING about real activations; pass --data.`,
    });
    const set = inputSettings(loaded.path, opts.inputs);
    const dynamic = modelInputs(float).filter(
      (i) => !set[i.name]?.shape && inputs.some((s) => s.name === i.name && s.shape.length && i.dims.slice(1).some((d) => typeof d !== 'number')),
    );
    for (const i of dynamic) {
      const shape = inputs.find((s) => s.name === i.name)!.shape;
      warnings.push({
        code: 'synthetic-dims',
        tensor: i.name,
        message: `synthetic input "${i.name}" [${i.dims.map((d) => (typeof d === 'number' ? d : '?')).join(',')}]: dynamic dims set to give samples of shape [${shape.join(',')}]; set them with --input-shape ${i.name}=1x...`,
      });
    }
  }
  const sampleDims = modelInputs(float)
    .filter((i) => inputs.some((s) => s.name === i.name))
    .map((i) => i.dims[0]);
  // A state without a batch axis cannot stack samples: every pass then runs one sample at a time.
  const fixed = (data.states ?? []).some((s) => s.batchAxis === null) ? 1 : (sampleDims.find((d) => typeof d === 'number' && d > 0) as number | undefined);
  let samples = data.samples;
  if (fixed && fixed > 1 && samples % fixed !== 0) {
    // A model whose inputs fix the batch cannot run a partial batch: the remainder is left out.
    samples -= samples % fixed;
    if (samples === 0) throw new InputError(`${loaded.path}: its inputs fix the batch to ${fixed} samples but the data holds only ${data.samples}`);
    warnings.push({ code: 'samples-dropped', message: `the model's inputs fix the batch to ${fixed}: using ${samples} of ${data.samples} samples` });
  }
  // More samples asked for than the data holds: all of them are used, and the report says so
  // (a user sizing a run by --samples must not believe it rests on more than it does).
  if (!data.synthetic && opts.samples !== undefined && opts.samples > data.samples)
    warnings.push({ code: 'samples-capped', message: `--samples ${opts.samples}: the data holds ${data.samples} samples; every one of them is used` });
  data.samples = samples;
  const p: Prepared = {
    loaded,
    float,
    data,
    batchSize: fixed ?? opts.batchSize ?? 32,
    fixedBatch: fixed,
    tensorBytes: new Map(),
    tensorTypes: new Map(),
    tensorRanks: new Map(),
    stats: new Map(),
    floatTensors: new Set(),
    outputs: float.graph!.output.map((o) => o.name),
    warnings,
    thresholdCache: new Map(),
    timings: {},
    nodeNames,
    elemTypes: inferElementTypes(float),
    unreadable: new Map(),
  };
  for (const i of fedInputs(data)) {
    p.tensorTypes.set(i.name, ORT_NAME[i.dataType] ?? 'other');
    if (p.tensorTypes.get(i.name) === 'float32') p.floatTensors.add(i.name);
  }
  try {
    await carryStates(data, float, loaded.path, opts.signal);
    await ensureStats(p, defaultTensors(p, opts.placement), opts);
    // Calibration batches by the bytes it fetches (taps.ts); every later pass of the analysis, when
    // neither the user nor the model sets the batch, also by the bytes of activations a run touches.
    if (fixed === undefined && opts.batchSize === undefined) p.batchSize = workingSetBatch(p.batchSize, p.tensorBytes.values());
  } catch (e) {
    // A model that fails on synthetic inputs whose dynamic dims were guessed: say which flag fixes it.
    const guessed = warnings.filter((w) => w.code === 'synthetic-dims');
    if (e instanceof InputError && guessed.length) throw new InputError(`${e.message} (${guessed.map((w) => w.message).join('; ')})`);
    throw e;
  }
  p.timings.calibrateMs = t();
  return p;
}

const ORT_NAME: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 11: 'float64' };

/**
 * Stream the float model over the data for the tensors in `names` that have no statistics yet
 * (graph inputs come from the data itself). Model outputs are checked on the way: a float model
 * that produces NaN or Inf on the data is broken, and nothing measured against it would mean anything.
 */
export async function ensureStats(p: Prepared, names: readonly string[], opts: RunOptions = {}): Promise<void> {
  const inputNames = inputNamesOf(p.data);
  const todo = [...new Set(names)].filter((n) => !p.stats.has(n));
  if (todo.length === 0) return;
  await measureTensors(p, todo, opts.signal);
  // In graph order, so that consecutive groups are consecutive stretches of the graph (segments.ts).
  const cuts = new GraphCuts(p.float, elemTypeOf(p));
  const taps = todo.filter((n) => !inputNames.has(n) && p.floatTensors.has(n)).sort((a, b) => cuts.position(a) - cuts.position(b));
  const fromFeeds = todo.filter((n) => inputNames.has(n) && p.floatTensors.has(n));
  // Model outputs ride along with the first group for the NaN check.
  const groups = groupByBytes(
    taps.length ? taps : [''],
    (n) => (n ? [n] : []),
    (n) => p.tensorBytes.get(n) ?? 0,
    opts.batchSize ?? p.batchSize,
    fixedBatchOf(p),
    opts.runBytes,
  );
  // Binning runs on every core: each tapped tensor belongs to one thread (calibration/statsPool.ts).
  const sizes = new Map(taps.map((n) => [n, p.tensorBytes.get(n) ?? 0]));
  const threads = opts.threads ?? poolThreads(([...sizes.values()].reduce((a, b) => a + b, 0) / 4) * p.data.samples);
  const pool = new StatsPool(assignThreads(sizes, threads), threads);
  const segments = segmentModels(
    cuts,
    groups.map((gr) => gr.tensors),
  );
  try {
    if (segments) await chainedPass(p, segments, Math.min(...groups.map((gr) => gr.batch)), fromFeeds, pool, opts);
    else await groupPasses(p, groups, fromFeeds, pool, opts);
    for (const [name, s] of await pool.close()) p.stats.set(name, s);
  } finally {
    await pool.dispose();
  }
  for (const name of todo) {
    const s = p.stats.get(name);
    const d = s?.degenerate;
    if (s && d) p.warnings.push({ code: `degenerate-${d}`, tensor: name, message: degenerateMessage(name, s) });
  }
}

/** One full float run per group and batch (taps inside If/Loop/Scan bodies need the whole model). */
async function groupPasses(p: Prepared, groups: TapGroup<string>[], fromFeeds: string[], pool: StatsPool, opts: RunOptions): Promise<void> {
  const total = p.data.samples * groups.length;
  let done = 0;
  for (const [gi, group] of groups.entries()) {
    const { model, names } = tapModel(p, group.tensors);
    const session = await sessionOnData(p, model, 'float');
    const wanted = new Set([...group.tensors, ...(gi === 0 ? fromFeeds : [])]);
    try {
      for (const [start, count] of batchRanges(p.data.samples, group.batch)) {
        checkCancel(opts.signal);
        const feeds = await feedsFor(p.data, start, count);
        const res = await runSession(session, feeds, p.loaded.path);
        if (gi === 0) checkOutputs(p, res, start);
        for (const [name, tensor] of Object.entries(byTensor(res, names, feeds))) {
          // an empty tensor: lifted from an If branch this batch did not take
          if (!wanted.has(name) || tensor.type !== 'float32' || tensor.size === 0) continue;
          // onnxruntime's outputs are not read again and may move to a worker; feeds stay.
          pool.add(name, tensor.data as Float32Array, !(name in feeds));
        }
        await pool.endBatch();
        disposeAll(res);
        done += count;
        opts.onProgress?.({ stage: 'calibrate', done, total });
      }
    } finally {
      await session.release();
    }
  }
}

/**
 * Every batch through the segments in turn, each fed the data and what earlier segments carried:
 * every node runs once per batch whatever the number of groups. Each segment's taps are binned and
 * released before the next segment runs, so one group's taps (and the carried tensors) are alive
 * at a time, as with whole-model groups. All segment sessions live together; between them they
 * hold the model's weights once.
 */
async function chainedPass(p: Prepared, segments: Segment[], batch: number, fromFeeds: string[], pool: StatsPool, opts: RunOptions): Promise<void> {
  const sessions: ort.InferenceSession[] = [];
  try {
    for (const s of segments) sessions.push(await sessionOnData(p, s.model, 'float'));
    for (const [start, count] of batchRanges(p.data.samples, batch)) {
      const feeds = await feedsFor(p.data, start, count);
      const chain = new SegmentBatch(feeds);
      try {
        for (const t of fromFeeds) pool.add(t, feeds[t].data as Float32Array, false);
        for (const [k, s] of segments.entries()) {
          checkCancel(opts.signal);
          const res = await chain.run(sessions[k], s, p.loaded.path);
          try {
            checkOutputs(p, res, start); // before the pool may take the buffers
            // A carried buffer is read again by a later segment: the pool copies it instead of taking it.
            const carried = new Set(s.carried);
            for (const t of s.taps) if (res[t].size > 0) pool.add(t, res[t].data as Float32Array, !carried.has(t));
            // One add per tensor and batch either way: the statistics are those of whole-model groups.
            await pool.endBatch();
          } finally {
            chain.drop(res, s);
          }
        }
      } finally {
        chain.release();
      }
      opts.onProgress?.({ stage: 'calibrate', done: start + count, total: p.data.samples });
    }
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

function checkOutputs(p: Prepared, res: Record<string, ort.Tensor>, start: number): void {
  // Labels are class indices into the first output's scores: check their range once it is known.
  const first = res[p.outputs[0]];
  if (start === 0 && p.data.labels && first?.dims.length === 2 && Number(first.dims[1]) > 1) {
    checkLabels(p.data.labels, Number(first.dims[1]), p.data.labelsSource ?? p.data.source);
  }
  for (const o of p.outputs) {
    const t = res[o];
    if (!t || t.type !== 'float32') continue;
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        const per = d.length / Math.max(1, Number(t.dims[0] ?? 1));
        throw new InputError(
          `${p.loaded.path}: the FLOAT model outputs ${d[i]} in "${o}" at sample ${start + Math.floor(i / per)} of ${p.data.source}; ` +
            'check the weights (NaN/Inf, BatchNorm variance) and the data before quantizing',
        );
      }
    }
  }
}

function degenerateMessage(name: string, s: ActivationStats): string {
  switch (s.degenerate) {
    case 'non-finite':
      return `tensor ${name} holds ${s.nanCount} NaN and ${s.infCount} Inf values; they are left out of its range and of its error metrics`;
    case 'all-zero':
      return `tensor ${name} is all zeros on the calibration data; it is quantized with scale 1`;
    case 'constant':
      return `tensor ${name} is constant (${s.min}) on the calibration data`;
    default:
      return `tensor ${name} produced no values`;
  }
}
