/**
 * Fold BatchNormalization into the Conv that feeds it, as every int8 backend does before
 * quantizing: W' = W * g / sqrt(v + eps) per output channel, b' = (b - m) * g / sqrt(v + eps) + beta.
 * Folding first matters because BN can multiply a channel's weights by a large factor, and the
 * weight ranges that get quantized are the folded ones.
 */
import type { ModelProto, TensorProto } from 'onnx-buf';
import { GraphIndex, attrFloat, nameAllocator } from '../onnx/graph';
import { originOf, sameNumbersAs } from '../onnx/model';
import { DT, makeTensor, readFloatTensor, renamedTensor } from '../onnx/tensor';

export interface FoldRecord {
  conv: string;
  batchNorm: string;
  /** The weight initializer before folding (its per-channel ranges are reported). */
  originalWeight: string;
}

/** One Conv + BatchNorm folded: its sources (originals) and the first folded tensors made from them. */
interface Folded {
  sources: (TensorProto | null)[];
  eps: number;
  w: TensorProto;
  b: TensorProto;
}

/**
 * Folds by the original of the Conv's weight. Every configuration of a sweep or a diagnosis folds
 * its own clone of the model: the numbers are the same each time, so they are computed once, and
 * each fresh tensor is declared the same as the first (`sameNumbersAs`), so its quantized codes
 * are cached too (qdqRewrite.ts). Without it the recogniser's fix search re-read, folded and
 * re-quantized five Conv weights per candidate.
 */
const foldCache = new WeakMap<TensorProto, Folded[]>();

/** The fold of these sources' originals, if one was made. */
function cachedFold(origin: (TensorProto | null)[], eps: number): Folded | undefined {
  return foldCache.get(origin[0]!)?.find((f) => f.eps === eps && f.sources.every((t, i) => t === origin[i]));
}

/** Fold in place (call on a working copy). Returns what was folded. */
export function foldBatchNorms(model: ModelProto, modelDir: string): FoldRecord[] {
  const g = model.graph!;
  const idx = new GraphIndex(g);
  const fresh = nameAllocator(g);
  const folded: FoldRecord[] = [];
  const removed = new Set<object>();
  for (const conv of g.node) {
    if (conv.opType !== 'Conv' || conv.domain !== '') continue;
    const users = idx.consumers.get(conv.output[0]) ?? [];
    const bn = users[0];
    if (users.length !== 1 || bn.opType !== 'BatchNormalization' || (bn.output.length !== 1 && bn.output.slice(1).some(Boolean))) continue;
    if (idx.graphOutputs.has(conv.output[0])) continue;
    const consts = [conv.input[1], ...bn.input.slice(1, 5)];
    if (!consts.every((n) => idx.initializers.has(n)) || (conv.input[2] && !idx.initializers.has(conv.input[2]))) continue;
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const sources = [...consts, conv.input[2]].map((n) => (n ? idx.initializers.get(n)! : null));
    const wName = fresh(`${conv.input[1]}_bnfolded`);
    const bName = fresh(`${conv.name}_bias_bnfolded`);
    const origin = sources.map((t) => (t ? originOf(t) : null));
    const hit = cachedFold(origin, eps);
    if (hit) {
      const [wt, bt] = [renamedTensor(hit.w, wName), renamedTensor(hit.b, bName)];
      sameNumbersAs(wt, hit.w);
      sameNumbersAs(bt, hit.b);
      g.initializer.push(wt, bt);
    } else {
      const w = readFloatTensor(sources[0]!, modelDir);
      const [gamma, beta, mean, variance] = sources.slice(1, 5).map((t) => readFloatTensor(t!, modelDir).data);
      const cout = w.dims[0];
      const per = w.data.length / cout;
      const bias = sources[5] ? readFloatTensor(sources[5], modelDir).data : new Float32Array(cout);
      const w2 = new Float32Array(w.data.length);
      const b2 = new Float32Array(cout);
      for (let c = 0; c < cout; c++) {
        const f = gamma[c] / Math.sqrt(variance[c] + eps);
        for (let k = 0; k < per; k++) w2[c * per + k] = w.data[c * per + k] * f;
        b2[c] = (bias[c] - mean[c]) * f + beta[c];
      }
      const wt = makeTensor(wName, DT.FLOAT, w.dims, w2);
      const bt = makeTensor(bName, DT.FLOAT, [cout], b2);
      foldCache.set(origin[0]!, [...(foldCache.get(origin[0]!) ?? []), { sources: origin, eps, w: wt, b: bt }]);
      g.initializer.push(wt, bt);
    }
    folded.push({ conv: conv.name, batchNorm: bn.name, originalWeight: conv.input[1] });
    conv.input = [conv.input[0], wName, bName];
    conv.output = [bn.output[0]];
    removed.add(bn);
  }
  g.node = g.node.filter((n) => !removed.has(n));
  return folded;
}
