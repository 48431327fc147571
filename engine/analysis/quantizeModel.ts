/**
 * Writing the deployable QDQ model to a new file the user can see.
 */
import { encodeModel } from '../onnx/model';
import { restoreFileNames } from '../onnx/scopes';
import { type OutputTarget, writeOutput } from '../io/files';
import { buildQdqModel } from '../quantize/qdqRewrite';
import { activation4BitQuantize, ortVersion } from '../runtime/session';
import { biasSaturationWarnings, clippingWarnings } from './clipWarnings';
import type { Prepared, Quantized } from './analyze';

/** Write the QDQ model of `q` to `target` (never over the model or data it was made from). */
export function writeQuantizedModel(p: Prepared, q: Quantized, target: OutputTarget): { path: string; layers: number; sizeBytes: number; warnings: string[] } {
  const { model, weights } = buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, false);
  restoreFileNames(model, p.nodeNames);
  model.producerName = 'quantlens';
  model.producerVersion = '0.1.0';
  const bytes = encodeModel(model);
  const inputs = [...(target.inputs ?? []), p.loaded.path, p.data.synthetic ? undefined : p.data.source];
  const written = writeOutput({ ...target, inputs }, bytes);
  // What the written file does to the calibration data that a user must hear before deploying it.
  return {
    path: written,
    layers: q.plan.layers.length,
    sizeBytes: bytes.length,
    warnings: [...clippingWarnings(p, q), ...biasSaturationWarnings(weights)].map((w) => w.message).concat(fourBitActivations(model)),
  };
}

/** A file with 4-bit activations is for runtimes that have such kernels: onnxruntime aborts on it, and QuantLens cannot measure it there. */
function fourBitActivations(model: Parameters<typeof activation4BitQuantize>[0]): string[] {
  const q4 = activation4BitQuantize(model);
  return q4
    ? [
        `4-bit activations (QuantizeLinear ${q4}, ...): onnxruntime ${ortVersion} aborts on this file (its 4-bit QuantizeLinear corrupts memory), so QuantLens cannot measure it there either; deploy it on a runtime with 4-bit activation kernels, and check it with quantlens integer-only`,
      ]
    : [];
}
