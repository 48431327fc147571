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
