import { prepareAnalysis } from '../engine/analysis/analyze';
import { mixedPrecision } from '../engine/analysis/mixedPrecision';
import { resolveConfig } from '../engine/quantize/presets';
import { formatMixedPrecision } from '../engine/report/planSummary';
(async () => {
  const p = await prepareAnalysis('examples/mnist-cnn/model.onnx', { dataPath: 'examples/mnist-cnn/data' });
  const t0 = performance.now();
  const r = await mixedPrecision(p, resolveConfig('tensorrt', { calibration: (process.argv[2] ?? 'entropy') as any }), { maxDrop: Number(process.argv[3] ?? 1) });
  console.log(formatMixedPrecision(r), performance.now() - t0);
})();
