/**
 * `npm run bench`: speed and memory, measured in ONE run so the ratios compare like with like.
 * Prints tables; asserts nothing (timings belong here, never in tests).
 *
 *   speed    analyze time / one plain float pass (onnxruntime, default options, warm session, the
 *            same samples, the fastest of batch sizes 1-32), without and with sensitivity, and the
 *            split per stage, each analysis timed in a process that has already run one (untimed);
 *            a cold pass (session creation included) is printed too, since small models are all
 *            fixed cost;
 *   floor    what the three passes any such analysis needs cost alone: the float pass
 *            (calibration), and the written QDQ model run plainly as fake quantization and as
 *            onnxruntime's integer kernels, warm, at the float pass's batch size; and the same with
 *            the creation of those three sessions, which an analysis also cannot skip (one each);
 *            and the floor of what the report needs (not on the 512x512 models): calibrating by
 *            histogram hands every calibrated activation to JavaScript (a float pass fetching them
 *            all, binning not counted), and the per-layer errors need the float activations again
 *            while the quantized model runs (holding them between the passes would grow with the
 *            samples), so that floor is the fetching pass plus the three passes;
 *   memory   peak RSS of a fresh process per analysis (VmHWM of the child's own address space): at N and
 *            10N samples, with what the process still holds after a garbage collection at the end
 *            (JS heap and array buffers), and the 512x512 models with sensitivity (under 2 GB);
 *   fixes    the diagnosis's fix search after the analysis with sensitivity (what `quantlens analyze`
 *            and the extension run next): its time / the float pass, candidates measured, and how
 *            many ran only downstream of their change (not on the 512x512 models);
 *   sweep    the cost of one more configuration once the calibration pass is done;
 *   cancel   how long a running analysis takes to stop after cancellation;
 *   data     peak RSS streaming an .npz 10x larger (bench/dataMemory.ts);
 *   integer  the bit-exact integer reference against onnxruntime's QLinearConv.
 * Options: --quick (skip the slow parts: 10N memory, data memory), --only <substring of a model name>.
 * `npm run bench` runs this file bundled with the engine (out/bench.js, scripts/build.mjs --bench),
 * as the CLI and the server ship; its child processes run the same bundle (child.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { diagnose } from '../engine/analysis/diagnose';
import { runSweep } from '../engine/analysis/sweep';
import { type Dataset, loadDataset, modelInputs } from '../engine/data/dataset';
import { loadModel } from '../engine/onnx/model';
import { gridConfigs } from '../engine/quantize/grid';
import { resolveConfig } from '../engine/quantize/presets';
import type { Prepared, Quantized } from '../engine/analysis/types';
import { encodeModel } from '../engine/onnx/model';
import { tapModel } from '../engine/analysis/taps';
import { buildQdqModel } from '../engine/quantize/qdqRewrite';
import { feedsFor } from '../engine/runtime/session';
import { selfArgs } from './child';
import { DATA_MEMORY_CHILD, dataMemoryBench, formatDataMemory } from './dataMemory';
import { integerReferenceVsOrt } from './integerReference';
import { type BenchModel, benchModels } from './models';
import { liveMb, peakRssMb } from './peakRss';

const CHILD = '--analyze-child';

/** Default session options but onnxruntime's warnings (e.g. M-LSD's unused initializers), which are not the bench's output. */
const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

/** Batch sizes a plain float pass is timed at: the fastest is the reference. */
const FLOAT_BATCHES = [1, 2, 4, 8, 16, 32];

/** One pass of `s` over every sample of `data`, in batches of `batch`. */
async function pass(s: ort.InferenceSession, data: Dataset, batch: number): Promise<void> {
  for (let i = 0; i < data.samples; i += batch) await s.run(await feedsFor(data, i, Math.min(batch, data.samples - i)));
}

/** The median time of three passes (the session already warm). */
async function medianPassMs(s: ort.InferenceSession, data: Dataset, batch: number): Promise<number> {
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    await pass(s, data, batch);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[1];
}

/**
 * One plain float pass over the samples, warm (session reused) at the FASTEST batch size, and cold
 * (creation included, at that batch). The fastest batch is model-dependent: the PP-OCRv4
 * recogniser runs 48 lines in about half the time at batch 2-4 as at batch 32, the classifier the
 * other way round; timing one batch size only would flatter the ratios of one model or the other.
 */
async function floatPass(m: BenchModel): Promise<{ warm: number; cold: number; batch: number; created: number }> {
  const data = await loadDataset(m.data, modelInputs(loadModel(m.model).proto), { samples: m.samples });
  const fixed = modelInputs(loadModel(m.model).proto)[0]?.dims[0];
  const sizes = typeof fixed === 'number' && fixed > 0 ? [fixed] : FLOAT_BATCHES.filter((_, i) => i === 0 || FLOAT_BATCHES[i - 1] < m.samples);
  const s = await ort.InferenceSession.create(m.model, QUIET);
  await pass(s, data, sizes[0]); // warm-up
  let best = { warm: Infinity, batch: sizes[0] };
  for (const batch of sizes) {
    const warm = await medianPassMs(s, data, batch);
    if (warm < best.warm) best = { warm, batch };
  }
  await s.release();
  const t0 = performance.now();
  const c = await ort.InferenceSession.create(m.model, QUIET);
  const created = performance.now() - t0;
  await pass(c, data, best.batch);
  const cold = performance.now() - t0;
  await c.release();
  return { ...best, cold, created };
}

async function analyze(m: BenchModel, samples: number, sensitivity: boolean, batchSize?: number) {
  const t0 = performance.now();
  const config = resolveConfig(m.preset, { calibration: 'percentile' });
  // As the CLI and the extension do: the configuration's placement is calibrated in the first pass.
  const p = await prepareAnalysis(m.model, { dataPath: m.data, samples, batchSize, placement: config.placement });
  const q = await quantizeWith(p, config);
  const r = await evaluate(p, q, { sensitivity });
  return { ms: performance.now() - t0, report: r, p, q };
}

/**
 * The float model with every tensor the analysis calibrated as an output, run warm at `batch`: what
 * handing the calibrated activations to JavaScript costs before any statistic is taken of them.
 */
async function fetchPass(p: Prepared, batch: number): Promise<number> {
  const inputs = new Set(p.data.inputs.map((i) => i.name));
  const { model } = tapModel(
    p,
    [...p.stats.keys()].filter((t) => p.floatTensors.has(t) && !inputs.has(t)),
  );
  const s = await ort.InferenceSession.create(encodeModel(model), QUIET);
  await pass(s, p.data, batch); // warm-up
  const ms = await medianPassMs(s, p.data, batch);
  await s.release();
  return ms;
}

/**
 * The written QDQ model (what `quantize` writes for this configuration) run plainly over the same
 * samples, warm, at `batch`: once as fake quantization (Q/DQ kept as float ops, as the simulated
 * comparison runs it) and once as onnxruntime fuses it into integer kernels. With the float pass
 * these are the three passes an analysis cannot do without; their sum is the floor of its ratio.
 */
async function qdqPasses(p: Prepared, q: Quantized, batch: number): Promise<{ sim: number; int: number; created: number }> {
  const { model } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
  const bytes = encodeModel(model);
  let created = 0;
  const time = async (options: ort.InferenceSession.SessionOptions) => {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(bytes, { ...QUIET, ...options });
    created += performance.now() - t0;
    await pass(s, p.data, batch); // warm-up
    const ms = await medianPassMs(s, p.data, batch);
    await s.release();
    return ms;
  };
  return { sim: await time({ extra: { session: { disable_quant_qdq: '1' } } }), int: await time({}), created };
}

/** Child mode: analyze once and print timings and peak RSS. */
async function child(model: string, data: string, preset: string, samples: number, sensitivity: boolean, batchSize?: number) {
  const { ms, report } = await analyze({ name: '', model, data, samples, preset: preset as 'tensorrt' }, samples, sensitivity, batchSize);
  const maxRssMb = peakRssMb();
  // the report is still referenced here: what stays live includes it
  process.stdout.write(JSON.stringify({ ms, maxRssMb, liveMb: liveMb(), samples: report.samples }));
}

function inChild(m: BenchModel, samples: number, sensitivity: boolean, batchSize?: number): { ms: number; maxRssMb: number; liveMb: number; samples: number } {
  const args = [CHILD, m.model, m.data, m.preset, String(samples), String(sensitivity), ...(batchSize ? [String(batchSize)] : [])];
  const r = spawnSync(process.execPath, [...selfArgs(__filename), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`${m.name}: ${r.stderr.split('\n').slice(-5).join(' ')}`);
  return JSON.parse(r.stdout);
}

const f0 = (x: number) => x.toFixed(0);
const f1 = (x: number) => x.toFixed(1);

async function speed(models: BenchModel[]): Promise<string[]> {
  const out = [
    'speed: analyze time / one plain float pass over the same samples (warm onnxruntime session, at its fastest batch size)',
    '',
    '  model                       samples  float ms (cold) batch   analyze ms  ratio   calibrate / evaluate   +sensitivity ms  ratio  (sens. samples)',
  ];
  const floors = [
    'floor: the three passes an analysis needs, alone (float; the written QDQ model as fake quantization; as integer kernels), warm, at that batch',
    '',
    '  model                       float ms  fake-quant ms  integer ms   floor = sum / float   analyze / floor   + creating the 3 sessions / float',
  ];
  const reportFloors = [
    "the report's floor: the float pass fetching every calibrated activation, then the three passes (float, fake-quant, integer), warm, at that batch",
    '',
    '  model                       fetch ms  report floor = (fetch + three) / float   analyze / report floor',
  ];
  const fixes = [
    "fixes: the diagnosis's fix search after the analysis with sensitivity (candidates measured on integer kernels)",
    '',
    '  model                       fix search ms  / float       listed  measured',
  ];
  // One untimed analysis first: the first one in a process also compiles the engine's JavaScript and
  // starts onnxruntime (0.4 s on the demo), which every later analysis in the engine is spared; the
  // float pass it is divided by is warm too.
  if (models[0]) await analyze(models[0], Math.min(models[0].samples, 16), false);
  for (const m of models) {
    const f = await floatPass(m);
    const a = await analyze(m, m.samples, false);
    const s = await analyze(m, m.samples, true);
    const t = a.report.timings;
    out.push(
      `  ${m.name.padEnd(26)}  ${String(m.samples).padStart(7)}  ${f0(f.warm).padStart(8)} (${f0(f.cold)}) ${String(f.batch).padStart(5)}  ${f0(a.ms).padStart(10)}  ${f1(a.ms / f.warm).padStart(5)}   ${f0(t.calibrateMs)} / ${f0(t.evaluateMs)}   ${f0(s.ms).padStart(15)}  ${f1(s.ms / f.warm).padStart(5)}  (${s.report.sensitivityInfo?.samples ?? '-'})`,
    );
    if (!m.name.includes('512')) {
      const t0 = performance.now();
      const d = await diagnose(s.p, s.q, s.report, {});
      const ms = performance.now() - t0;
      const reuse =
        d.notes.find((n) => n.includes('ran only from where')) ?? (d.culprits.length ? 'every candidate ran whole' : 'no culprit: nothing measured');
      // The fix search's look: candidates worse than the plan on their first samples stop there (search.ts).
      const looked = d.notes.find((n) => n.includes('stopped after the first'));
      const note = looked ? `${reuse}; ${looked.replace(/: worse than.*/, '')}` : reuse;
      fixes.push(`  ${m.name.padEnd(26)}  ${f0(ms).padStart(13)}  ${f1(ms / f.warm).padStart(7)}   ${String(d.candidates.length).padStart(10)}  ${note}`);
    }
    const qp = await qdqPasses(a.p, a.q, f.batch);
    const floor = f.warm + qp.sim + qp.int;
    floors.push(
      `  ${m.name.padEnd(26)}  ${f0(f.warm).padStart(8)}  ${f0(qp.sim).padStart(13)}  ${f0(qp.int).padStart(10)}   ${f1(floor / f.warm).padStart(19)}   ${f1(a.ms / floor).padStart(15)}   ${f1((floor + f.created + qp.created) / f.warm).padStart(33)}`,
    );
    // The 512x512 models' activations do not fit one run (the analysis fetches them in groups).
    if (!m.name.includes('512')) {
      const fetch = await fetchPass(a.p, f.batch);
      reportFloors.push(
        `  ${m.name.padEnd(26)}  ${f0(fetch).padStart(8)}  ${f1((fetch + floor) / f.warm).padStart(38)}   ${f1(a.ms / (fetch + floor)).padStart(22)}`,
      );
    }
  }
  return [...out, '', ...floors, '', ...reportFloors, '', ...fixes];
}

function memory(models: BenchModel[], quick: boolean): string[] {
  const out = ['memory: peak RSS of a fresh process analyzing (percentile calibration)', ''];
  for (const m of models) {
    if (m.name.includes('512')) {
      const r = inChild(m, m.samples, true);
      out.push(
        `  ${m.name.padEnd(26)}  ${m.samples} samples with sensitivity: ${f0(r.maxRssMb)} MB (${r.maxRssMb < 2048 ? 'under' : 'OVER'} 2 GB), ${f0(r.ms)} ms`,
      );
      continue;
    }
    if (quick) continue;
    // Batches of N in both runs: the number of samples is the only change (a larger batch holds more).
    const n = Math.max(2, Math.floor(m.samples / 10));
    const a = inChild(m, n, false, n);
    const b = inChild(m, 10 * n, false, n);
    out.push(
      `  ${m.name.padEnd(26)}  N = ${n}: ${f0(a.maxRssMb)} MB   10N = ${10 * n}: ${f0(b.maxRssMb)} MB   (batches of ${n})   ratio ${(b.maxRssMb / a.maxRssMb).toFixed(2)}` +
        `   live after GC ${f0(a.liveMb)} -> ${f0(b.liveMb)} MB (${(b.liveMb / a.liveMb).toFixed(2)})`,
    );
  }
  return out;
}

async function sweepCost(m: BenchModel): Promise<string> {
  const p = await prepareAnalysis(m.model, { dataPath: m.data, samples: m.samples });
  const configs = gridConfigs(resolveConfig(m.preset), {
    calibration: [{ method: 'percentile' }, { method: 'minmax' }, { method: 'mse' }, { method: 'entropy' }],
  });
  const sweep = await runSweep(p, configs);
  const first = sweep.timings.prepareMs + sweep.timings.firstConfigMs;
  return `  ${m.name.padEnd(26)}  calibration pass ${f0(sweep.timings.prepareMs)} ms, first configuration ${f0(sweep.timings.firstConfigMs)} ms, each further one ${f0(sweep.timings.meanExtraConfigMs)} ms (${(sweep.timings.meanExtraConfigMs / first).toFixed(2)} of the first incl. calibration)`;
}

/** Cancel a running analysis of `m` after `afterMs` and time how long it takes to stop. */
async function cancelLatency(m: BenchModel, afterMs: number): Promise<string> {
  const ac = new AbortController();
  let cancelledAt = 0;
  const t0 = performance.now();
  const run = (async () => {
    const p = await prepareAnalysis(m.model, { dataPath: m.data, samples: m.samples, signal: ac.signal });
    await evaluate(p, await quantizeWith(p, resolveConfig(m.preset), { signal: ac.signal }), { signal: ac.signal });
  })();
  setTimeout(() => {
    cancelledAt = performance.now();
    ac.abort();
  }, afterMs);
  try {
    await run;
    return `  ${m.name}: finished in ${f0(performance.now() - t0)} ms before the cancellation at ${afterMs} ms`;
  } catch (e) {
    const stop = performance.now() - cancelledAt;
    return `  ${m.name}: cancelled ${afterMs} ms into the analysis; stopped ${f0(stop)} ms later (${(e as Error).name})`;
  }
}

async function main() {
  const args = process.argv.slice(2);
  // a data-memory child (the same bundle): dataMemory.ts runs it
  if (args[0] === DATA_MEMORY_CHILD) return;
  if (args[0] === CHILD) return child(args[1], args[2], args[3], Number(args[4]), args[5] === 'true', args[6] ? Number(args[6]) : undefined);
  const quick = args.includes('--quick');
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  try {
    const { models: all, notes } = benchModels(tmp);
    const models = only ? all.filter((m) => m.name.toLowerCase().includes(only.toLowerCase())) : all;
    const print = (lines: string[]) => console.log(`${lines.join('\n')}\n`);
    print([
      `QuantLens benchmark  (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, node ${process.version}, onnxruntime ${ort.env.versions.common})`,
      ...notes,
    ]);
    print(await speed(models));
    print(memory(models, quick));
    // One sweep at a time: concurrent sweeps would share the two cores and blur both timings.
    const sweeps: string[] = [];
    for (const m of models.filter((x) => !x.name.includes('512')).slice(0, 2)) sweeps.push(await sweepCost(m));
    print(['sweep: one more configuration, from the same calibration pass', ...sweeps]);
    const big = models.find((m) => m.name.includes('512'));
    if (big) print(['cancel: time from cancellation to the analysis stopping', await cancelLatency(big, 1500)]);
    if (!quick)
      print(['data: peak RSS streaming an .npz of N and 10N samples, through onnxruntime and read alone', ...formatDataMemory(await dataMemoryBench())]);
    print(await integerReferenceVsOrt());
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
