/**
 * The analysis pipeline, in four stages, each its own module:
 *   prepare.ts   load the model and data, one streaming float pass -> activation statistics;
 *   quantize.ts  a configuration -> plan, thresholds, scales and zero points (no inference);
 *   evaluate.ts  float / simulated / integer runs of that configuration, compared layer by layer;
 *   report.ts    the report.
 * `prepareAnalysis` runs once per model and data; sweeps and follow-up analyses reuse it.
 */
import type { QuantConfig, Report } from '../../protocol/report';
import { evaluate } from './evaluate';
import { prepareAnalysis } from './prepare';
import { quantizeWith } from './quantize';
import type { EvaluateOptions, PrepareOptions } from './types';

export { CancelledError } from './cancel';
export { evaluate } from './evaluate';
export { ensureStats, prepareAnalysis, prepareLoaded } from './prepare';
export { quantizeWith } from './quantize';
export { integerEncoding } from './kernels';
export { TOOL_VERSION } from './report';
export type { EvaluateOptions, PrepareOptions, Prepared, Progress, Quantized, RunOptions } from './types';

/** One call: prepare + quantize + evaluate. */
export async function analyzeModel(modelPath: string, config: QuantConfig, opts: PrepareOptions & EvaluateOptions = {}): Promise<Report> {
  const p = await prepareAnalysis(modelPath, opts);
  return evaluate(p, await quantizeWith(p, config, opts), opts);
}
