// QuantLens metric: character error rate of a CTC text recognizer (CRNN, PaddleOCR rec), the
// quantized model's greedy decoding against the float model's. Lower is better.
// Use: quantlens analyze rec.onnx --data lines/ --metric examples/metrics/cer.mjs
//
// The output is [1, T, C]: T time steps of C class scores (probabilities or logits; greedy
// decoding only needs the argmax), class BLANK being the CTC blank. Decoding takes the best class
// per step, merges repeats and drops blanks. CER = edit distance / length of the float text
// (an empty float text: 0 if the quantized text is empty too, else 1 per extra character).

export const name = 'character error rate vs float (greedy CTC)';
export const higherIsBetter = false;

const OUTPUT = null;
const BLANK = 0;

function greedyDecode({ data, dims }) {
  const classes = dims[dims.length - 1];
  const steps = data.length / classes;
  const text = [];
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[t * classes + c] > data[t * classes + best]) best = c;
    if (best !== previous && best !== BLANK) text.push(best);
    previous = best;
  }
  return text;
}

function editDistance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

export default function characterErrorRate(float, quantized) {
  const output = OUTPUT ?? Object.keys(float)[0];
  if (!float[output] || !quantized[output]) throw new Error(`the model has no output named ${output}`);
  const reference = greedyDecode(float[output]);
  const candidate = greedyDecode(quantized[output]);
  return editDistance(reference, candidate) / Math.max(1, reference.length);
}
