/**
 * Automatic mixed precision: find a small set of layers to keep in float so the quantized model
 * meets an accuracy-drop budget. Greedy by sensitivity with re-evaluation: rank layers by the
 * damage each does when quantized alone, then keep the most damaging in float one at a time,
 * re-measuring the integer model after each, until the drop is within budget.
 */
import type { MixedPrecisionResult, MixedPrecisionStep, QuantConfig } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { InputError } from '../onnx/model';
import { subsetPlan } from '../quantize/plan';
import { buildQdqModel } from '../quantize/qdqRewrite';
import { type Prepared, type Progress, quantizeWith } from './analyze';
import { FloatReference, dropPoints } from './outputs';
import { writeQuantizedModel } from './quantizeModel';
import type { OutputTarget } from '../io/files';

export interface MixedPrecisionOptions {
  maxDrop: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

export async function mixedPrecision(p: Prepared, config: QuantConfig, opts: MixedPrecisionOptions): Promise<MixedPrecisionResult> {
  if (!(opts.maxDrop >= 0)) throw new InputError(`--max-drop must be a non-negative number of points, got ${opts.maxDrop}`);
  const q = await quantizeWith(p, config);
  const ref = await FloatReference.create(p);
  const floatTop1 = await ref.floatTop1();
  const layers = q.plan.layers;
  const build = (keep: Set<string>) =>
    buildQdqModel(q.prepared, p.loaded.dir, subsetPlan(q.plan, (l) => !keep.has(l.node.name)), q.actParams, config, false).model;
  const total = layers.length * 2 + 1;
  let done = 0;
  const tick = (message: string) => opts.onProgress?.({ stage: 'sensitivity', done: ++done, total, message });
  try {
    const step = async (kept: string[]): Promise<MixedPrecisionStep> => {
      const m = await ref.measure(build(new Set(kept)), 'integer', opts.signal);
      tick(`${kept.length} layers in float`);
      return { kept, drop: dropPoints(floatTop1, m), agreement: m.agreement, outputSqnrDb: m.outputSqnrDb };
    };
    const steps: MixedPrecisionStep[] = [await step([])];
    const ranking: MixedPrecisionResult['ranking'] = [];
    if (steps[0].drop > opts.maxDrop) {
      // Damage of each layer alone (integer execution), most damaging first.
      for (const l of layers) {
        const only = subsetPlan(q.plan, (x) => x === l);
        const m = await ref.measure(buildQdqModel(q.prepared, p.loaded.dir, only, q.actParams, config, false).model, 'integer', opts.signal);
        ranking.push({ node: l.node.name, drop: dropPoints(floatTop1, m), outputSqnrDb: m.outputSqnrDb });
        tick(l.node.name);
      }
      ranking.sort((a, b) => b.drop - a.drop || a.outputSqnrDb - b.outputSqnrDb);
      const kept: string[] = [];
      for (const r of ranking) {
        kept.push(r.node);
        const s = await step([...kept]);
        steps.push(s);
        if (s.drop <= opts.maxDrop) break;
      }
    }
    const last = steps[steps.length - 1];
    return {
      schemaVersion: REPORT_SCHEMA_VERSION,
      kind: 'mixed-precision',
      model: { path: p.loaded.path, sha256: p.loaded.sha256 },
      config,
      maxDrop: opts.maxDrop,
      dropBasis: floatTop1 !== null ? 'top1' : 'agreement',
      steps,
      exclude: last.kept,
      met: last.drop <= opts.maxDrop,
      ranking,
    };
  } finally {
    await ref.release();
  }
}

/** Write the result's QDQ model (its exclusions applied) to `target`; quantlens.json is not touched. */
export async function writeMixedPrecision(p: Prepared, result: MixedPrecisionResult, target: OutputTarget): Promise<string> {
  const config = { ...result.config, exclude: result.exclude };
  return writeQuantizedModel(p, await quantizeWith(p, config), target).path;
}
