/**
 * Builds the integer-only reference comparison for each quantized Conv/Gemm/MatMul layer: the
 * layer spec (weights, bias, grids and attributes as the integer session ran them) and a
 * LayerDiff that each evaluation batch feeds with onnxruntime's own input codes.
 */
import type * as ort from 'onnxruntime-node';
import type { QuantConfig } from '../../protocol/report';
import { type Codes, type IntegerLayerSpec, LayerDiff } from '../integer/layerDiff';
import { attr } from '../onnx/graph';
import type { PlannedLayer } from '../quantize/plan';
import { type OutputTap, type QdqResult, gridType, weightScheme } from '../quantize/qdqRewrite';

type QType = IntegerLayerSpec['input']['type'];

function qtype(bits: number, signed: boolean): QType | null {
  if (bits === 8) return signed ? 'int8' : 'uint8';
  if (bits === 16) return signed ? 'int16' : 'uint16';
  return null; // 4-bit codes cannot be fetched from onnxruntime (see OutputTap)
}

function typedCodes(codes: Int32Array, t: QType) {
  switch (t) {
    case 'int8':
      return Int8Array.from(codes);
    case 'uint8':
      return Uint8Array.from(codes);
    case 'int16':
      return Int16Array.from(codes);
    case 'uint16':
      return Uint16Array.from(codes);
  }
}

/** ONNX attributes the integer kernels read, as plain values. */
function attrsOf(layer: PlannedLayer): IntegerLayerSpec['attrs'] {
  const out: IntegerLayerSpec['attrs'] = {};
  for (const name of ['pads', 'strides', 'dilations', 'kernel_shape', 'group', 'auto_pad', 'transA', 'transB', 'alpha', 'beta']) {
    const a = attr(layer.node, name);
    if (!a) continue;
    if (a.ints.length) out[name] = a.ints.map(Number);
    else if (a.s.length) out[name] = new TextDecoder().decode(a.s);
    else if (name === 'alpha' || name === 'beta')
      out[name] = a.f; // float attributes
    else out[name] = Number(a.i);
  }
  return out;
}

export interface LayerDiffFeed {
  layer: string;
  diff: LayerDiff;
  /** Multiply-accumulates per output element (the weight's elements per output channel). */
  reduction: number;
  /** Integer session: the layer's input codes and output codes; simulated session: output codes. */
  inputI: OutputTap;
  outputI: OutputTap;
  outputS: OutputTap;
}

/**
 * One LayerDiff per layer the reference can run: Conv/Gemm/MatMul with a constant weight as the
 * second input, one activation input, 8/16-bit grids. Others get no integer diff.
 */
export function layerDiffFeeds(
  layers: PlannedLayer[],
  sim: QdqResult,
  int: QdqResult,
  intConfig: QuantConfig,
  warn: (node: string, message: string) => void,
): LayerDiffFeed[] {
  const feeds: LayerDiffFeed[] = [];
  for (const l of layers) {
    const ws = weightScheme(intConfig, l.node.name);
    const wType = qtype(ws.bits, ws.signed);
    const op = l.node.opType;
    if (op !== 'Conv' && op !== 'Gemm' && op !== 'MatMul') continue;
    // Loop/Scan bodies stack iterations ahead of the samples: the per-sample slicing below does not apply.
    if (l.scope.some((s) => s.op !== 'If')) continue;
    if (l.roles[0]?.kind !== 'activation' || l.roles[1]?.kind !== 'weight') continue;
    const wq = int.weights.find((w) => w.layer === l.node.name && w.tensor === l.node.input[1]);
    const inputI = int.inputTaps.get(l.node.name)?.[0];
    const outputI = int.taps.find((t) => t.layer === l.node.name);
    const outputS = sim.taps.find((t) => t.layer === l.node.name);
    if (!wq || !inputI || !outputI || !outputS) continue;
    const inG = gridType(inputI.params);
    const outG = gridType(outputI.params);
    const aType = qtype(inG.bits, inG.signed);
    // One activation type per layer in the reference: mixed input/output grids get no diff.
    if (!wType || !aType || outG.bits !== inG.bits || outG.signed !== inG.signed) continue;
    const spec: IntegerLayerSpec = {
      op,
      attrs: attrsOf(l),
      weight: {
        codes: typedCodes(wq.codes, wType),
        dims: wq.dims,
        axis: wq.axis,
        scale: wq.params.map((p) => p.scale),
        zeroPoint: wq.params.map((p) => p.zeroPoint),
      },
      bias: wq.bias,
      input: { scale: inputI.params.scale, zeroPoint: inputI.params.zeroPoint, type: aType },
      output: { scale: outputI.params.scale, zeroPoint: outputI.params.zeroPoint, type: aType },
    };
    try {
      const channels = wq.axis === null ? 1 : wq.dims[wq.axis];
      const reduction = op === 'Conv' ? wq.codes.length / wq.dims[0] : wq.codes.length / Math.max(1, channels === 1 ? wq.dims[wq.dims.length - 1] : channels);
      feeds.push({ layer: l.node.name, diff: new LayerDiff(spec), reduction, inputI, outputI, outputS });
    } catch (e) {
      // A layer the reference cannot model (e.g. alpha != 1) gets no diff; the analysis goes on.
      warn(l.node.name, `no integer reference for ${op} ${l.node.name}: ${(e as Error).message}`);
    }
  }
  return feeds;
}

function codes(t: ort.Tensor, tap: OutputTap): Codes {
  return { codes: t.data as ArrayLike<number>, zeroPoint: tap.params.zeroPoint, dims: t.dims.map(Number) };
}

/**
 * Feed one batch: onnxruntime's integer-session tensors `qi` and simulated-session tensors `qs`;
 * `share` of each layer's output rows (LayerDiff.add). Returns the feeds that had codes to compare.
 */
export function feedBatch(feeds: LayerDiffFeed[], qi: Record<string, ort.Tensor>, qs: Record<string, ort.Tensor>, share = 1): LayerDiffFeed[] {
  const fed: LayerDiffFeed[] = [];
  for (const f of feeds) {
    const t = [qi[f.inputI.tensor], qi[f.outputI.tensor], qs[f.outputS.tensor]];
    if (t.some((x) => !x || x.size === 0)) continue; // an If branch that did not run on this batch
    f.diff.add(codes(qi[f.inputI.tensor], f.inputI), codes(qi[f.outputI.tensor], f.outputI), codes(qs[f.outputS.tensor], f.outputS), share);
    fed.push(f);
  }
  return fed;
}

/** The first `count` samples of every tensor in a session's results (views, no copies). */
export function sliceSamples(res: Record<string, ort.Tensor>, count: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(res)) {
    const n = Number(t.dims[0] ?? 1);
    if (count >= n || t.dims.length === 0) {
      out[name] = t;
      continue;
    }
    const per = (t.data as ArrayLike<number>).length / n;
    const data = (t.data as Uint8Array).subarray(0, count * per);
    out[name] = { ...t, data, dims: [count, ...t.dims.slice(1)] } as unknown as ort.Tensor;
  }
  return out;
}

/** Elements per sample of a batch-first tensor (0 when absent: a layer whose codes this run did not expose). */
export function elementsPerSample(t: ort.Tensor | undefined): number {
  return t ? (t.data as ArrayLike<number>).length / Math.max(1, Number(t.dims[0] ?? 1)) : 0;
}

/** How much of the detail samples the integer reference checks per layer (referenceQuotas). */
export interface ReferencePlan {
  /** Samples per layer. */
  samples: Map<string, number>;
  /** Share of those samples' output rows per layer: below 1 for a layer of which one sample is over its part of the budget. */
  share: Map<string, number>;
}

/**
 * The bit-exact integer reference's part of the detail samples per layer, within `budget`
 * multiply-accumulates (`costs`: per sample per layer; 0 when unknown). A small layer (a
 * squeeze-and-excitation 1x1 Conv on a pooled vector: a few hundred multiply-accumulates a sample)
 * gets every detail sample while a large one keeps its part: the pair saturation that changes a
 * small layer's codes can show on some samples only, and one sample of a large layer can be all
 * a budget pays for.
 *  - When a sample of every layer fits, every layer gets the whole samples the budget pays for
 *    all of them alike (at most `limit`); what is left goes to the cheaper layers, cheapest first,
 *    each taking at most an equal part of the remainder, up to `limit`.
 *  - When it does not (a 512x512 model), half the budget checks the cheap layers on whole
 *    samples, cheapest first, each taking at most an equal part of that half; the rest checks one
 *    sample of every other layer, the same share of its output rows for each.
 */
export function referenceQuotas(costs: ReadonlyMap<string, number>, budget: number, limit: number): ReferencePlan {
  const samples = new Map<string, number>();
  const share = new Map<string, number>();
  /** `worth` samples: whole ones, or below 1 a share of one sample's rows. */
  const set = (layer: string, worth: number) => {
    samples.set(layer, worth >= 1 ? worth : worth > 0 ? 1 : 0);
    share.set(layer, worth >= 1 || worth === 0 ? 1 : worth);
  };
  const known = [...costs].filter(([, c]) => c > 0).sort((a, b) => a[1] - b[1]);
  const total = known.reduce((a, [, c]) => a + c, 0);
  const all = (worth: number) => {
    for (const k of costs.keys()) set(k, worth);
  };
  if (limit <= 0 || budget <= 0) all(0);
  else if (total === 0) all(limit);
  else if (budget >= total) {
    const common = Math.min(limit, Math.floor(budget / total));
    all(common);
    let left = budget - common * total;
    known.forEach(([layer, cost], i) => {
      const extra = Math.min(limit - common, Math.floor(left / (known.length - i) / cost));
      set(layer, common + extra);
      left -= extra * cost;
    });
  } else {
    let reserve = budget / 2;
    const rest: [string, number][] = [];
    known.forEach(([layer, cost], i) => {
      const whole = Math.min(limit, Math.floor(reserve / (known.length - i) / cost));
      if (whole < 1) {
        rest.push([layer, cost]);
        return;
      }
      set(layer, whole);
      reserve -= whole * cost;
    });
    const restTotal = rest.reduce((a, [, c]) => a + c, 0);
    const part = restTotal > 0 ? Math.min(1, (budget / 2 + reserve) / restTotal) : 1;
    for (const [layer] of rest) set(layer, part);
    for (const [layer, cost] of costs) if (cost <= 0) set(layer, part);
  }
  return { samples, share };
}

/**
 * The report's integerDiffSamples: the fewest samples any layer that had codes saw (a layer in an
 * If branch the data never takes sees none and does not count).
 */
export function commonSamples(seen: ReadonlyMap<string, number>): number {
  const counts = [...seen.values()].filter((n) => n > 0);
  return counts.length ? Math.min(...counts) : 0;
}

/** The report's integerDiffShare: the smallest share of output rows any layer was compared on. */
export function leastShare(shares: ReadonlyMap<string, number>): number {
  return shares.size ? Math.min(...shares.values()) : 1;
}
