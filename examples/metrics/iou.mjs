// QuantLens metric: mean IoU of thresholded maps (segmentation masks, text-detection probability
// maps, heatmaps). Use: quantlens analyze model.onnx --data data/ --metric examples/metrics/iou.mjs
//
// The quantized model's masks are compared with the float model's: a pixel is "on" where the map
// exceeds THRESHOLD. One IoU per map (channel), averaged; a map that is empty in both counts as 1
// (they agree there is nothing). QuantLens also calls the function with the float outputs in both
// places (IoU 1 here), so the loss it reports is 1 - IoU, per sample, with a 95% interval.

export const name = 'mean IoU of thresholded maps';
export const higherIsBetter = true;

/** Output to read; null means the model's first output. */
const OUTPUT = null;
/** Binarization threshold: 0.5 for sigmoid masks; DB text detectors (PaddleOCR) use 0.3. */
const THRESHOLD = 0.5;

export default function meanIoU(float, quantized) {
  const output = OUTPUT ?? Object.keys(float)[0];
  const ref = float[output];
  const cand = quantized[output];
  if (!ref || !cand) throw new Error(`the model has no output named ${output}`);
  // dims are [1, K, H, W] (K maps) or [1, H, W] / [1, N] (one map)
  const maps = ref.dims.length >= 4 ? ref.dims[1] : 1;
  const size = ref.data.length / maps;
  let sum = 0;
  for (let k = 0; k < maps; k++) {
    let intersection = 0;
    let union = 0;
    for (let i = k * size; i < (k + 1) * size; i++) {
      const a = ref.data[i] > THRESHOLD;
      const b = cand.data[i] > THRESHOLD;
      if (a && b) intersection++;
      if (a || b) union++;
    }
    sum += union === 0 ? 1 : intersection / union;
  }
  return sum / maps;
}
