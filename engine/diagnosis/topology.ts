/**
 * Which quantized layers feed which, read from the graph: walking back from each layer's
 * activation inputs through ops that are not layers (Relu, Softmax, Reshape...) until a layer's
 * output or a graph input. The diagnosis uses it to say where an error or a simulated-vs-integer
 * difference first appears. Pure: graph in, plain data out.
 */
import type { GraphProto } from '../onnx/graph';
import { GraphIndex } from '../onnx/graph';
import type { LayerLinks } from './facts';

/** Links of every layer (by node name); `layers` gives each layer's node, activation inputs and output. */
export function layerLinks(graph: GraphProto, layers: readonly { node: string; inputs: readonly string[]; output: string }[]): Record<string, LayerLinks> {
  const idx = new GraphIndex(graph);
  const layerOfOutput = new Map(layers.map((l) => [l.output, l.node]));
  const out: Record<string, LayerLinks> = {};
  for (const l of layers) {
    const upstream: string[] = [];
    const opsBefore: { node: string; op: string }[] = [];
    const seen = new Set<string>();
    const queue = [...l.inputs];
    while (queue.length) {
      const t = queue.shift()!;
      if (seen.has(t)) continue;
      seen.add(t);
      const layer = layerOfOutput.get(t);
      if (layer !== undefined && layer !== l.node) {
        if (!upstream.includes(layer)) upstream.push(layer);
        continue;
      }
      const producer = idx.producer.get(t);
      if (!producer || idx.isConstant(t)) continue;
      opsBefore.push({ node: producer.name, op: producer.opType });
      for (const i of producer.input) if (i && !idx.isConstant(i)) queue.push(i);
    }
    out[l.node] = { upstream, opsBefore };
  }
  return out;
}

/** Ops whose output is the same signal as their input, element for element or reshuffled (a clip on one is a clip on the other). */
const SAME_SIGNAL = new Set(['Relu', 'Clip', 'LeakyRelu', 'Identity', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Dropout']);

/**
 * Tensors carrying the same signal as `tensor` through ops of SAME_SIGNAL, both ways (a Conv output
 * and the ReLU output the next layer reads), limited to `keep`. Fixing one's calibration and not the
 * other leaves the signal clipped, so a calibration fix covers them together.
 */
export function sameSignal(graph: GraphProto, tensor: string, keep: (t: string) => boolean): string[] {
  const idx = new GraphIndex(graph);
  const seen = new Set([tensor]);
  const queue = [tensor];
  while (queue.length) {
    const t = queue.shift()!;
    const next: string[] = [];
    const p = idx.producer.get(t);
    if (p && SAME_SIGNAL.has(p.opType) && p.input[0]) next.push(p.input[0]);
    for (const c of idx.consumers.get(t) ?? []) if (SAME_SIGNAL.has(c.opType) && c.input[0] === t && c.output[0]) next.push(c.output[0]);
    for (const n of next) if (!seen.has(n)) seen.add(n), queue.push(n);
  }
  seen.delete(tensor);
  return [...seen].filter(keep);
}
