import { evaluate, prepareAnalysis, quantizeWith } from '../engine/analysis/analyze';
import { resolveConfig } from '../engine/quantize/presets';
import { formatDiagnosis } from '../engine/report/diagnosisSummary';
(async () => {
  const p = await prepareAnalysis('examples/mnist-cnn/model.onnx', { dataPath: 'examples/mnist-cnn/data' });
  const q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: (process.argv[2] ?? 'entropy') as any }));
  const t0 = performance.now();
  const r = await evaluate(p, q, { diagnose: {}, integerDiff: false, sensitivitySamples: Number(process.argv[3] ?? 0) || undefined, onProgress: (x) => { if (x.stage === 'diagnose') console.error(x.done, x.message); } });
  console.log(formatDiagnosis(r).join('\n'));
  console.log(r.diagnosis!.candidates.map((c) => `${c.measured.drop.toFixed(2)} ${c.description}`).join('\n'));
  console.log(r.timings, performance.now() - t0);
})();
