/**
 * Writing the deployable QDQ model to a new file the user can see.
 */
import * as fs from 'node:fs';
import { saveModel } from '../onnx/model';
import { buildQdqModel } from '../quantize/qdqRewrite';
import type { Prepared, Quantized } from './analyze';

export function writeQuantizedModel(p: Prepared, q: Quantized, out: string): { path: string; layers: number; sizeBytes: number } {
  const { model } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
  model.producerName = 'quantlens';
  model.producerVersion = '0.1.0';
  const written = saveModel(model, out, p.loaded.path);
  return { path: written, layers: q.plan.layers.length, sizeBytes: fs.statSync(written).size };
}
