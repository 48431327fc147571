/**
 * The code-level detail of an evaluation, on a bounded and stated number of samples (the first
 * ones): simulated vs integer codes per layer (mismatch, largest difference in LSB), the integer
 * execution's error in output LSB, and the bit-exact integer reference fed with onnxruntime's own
 * input codes. The comparison models expose those tensors (codes of QuantizeLinear outputs, which
 * does not stop fusion; float layer outputs in the simulated model only) and detail batches fetch
 * them; every other batch fetches only the reduced sums.
 */
import type * as ort from 'onnxruntime-node';
import type { QuantConfig, Warning } from '../../protocol/report';
import type { PlannedLayer } from '../quantize/plan';
import type { OutputTap } from '../quantize/qdqRewrite';
import type { Comparison, Evaluation } from './evaluation';
import { type LayerDiffFeed, feedBatch, layerDiffFeeds, macsPerSample, sliceSamples } from './integerDiffs';
import type { CodeView } from './layerCompare';
import type { EvaluateOptions, Prepared, Quantized } from './types';

/** Layer-output elements (over all detail samples) the detail may compare. */
const DETAIL_ELEMENTS = 4e7;
/** Multiply-accumulates the JS integer reference may spend (about a second of exact int32 work). */
const DIFF_MAC_BUDGET = 1e8;

/** Codes of a tap, as the comparison wants them (4-bit taps hold dequantized floats: re-derive codes). */
function codeView(t: ort.Tensor, tap: OutputTap): CodeView {
  const { scale, zeroPoint } = tap.params;
  const d = t.data as ArrayLike<number>;
  const codes = tap.isCodes ? d : Int32Array.from(d as Float32Array, (v) => Math.round(v / scale) + zeroPoint);
  return { codes, scale, zeroPoint };
}

export class DetailPass {
  /** Samples the detail covers: the first `limit` of the data. */
  readonly limit: number;
  samples = 0;
  diffSamples = 0;
  readonly diffFeeds: LayerDiffFeed[];
  private diffBudget = DIFF_MAC_BUDGET;
  private diffMacs = 0;

  constructor(
    p: Prepared, q: Quantized, enc: { config: QuantConfig; shift: number }, private readonly layers: PlannedLayer[],
    private readonly sim: Comparison, private readonly int: Comparison, opts: EvaluateOptions, warnings: Warning[],
  ) {
    const perSample = layers.reduce((a, l) => a + (p.tensorBytes.get(l.output) ?? 0) / 4, 0);
    this.limit = layers.length ? Math.min(p.data.samples, Math.max(1, Math.floor(DETAIL_ELEMENTS / Math.max(1, perSample)))) : 0;
    this.diffFeeds = opts.integerDiff === false ? [] : layerDiffFeeds(q.plan.layers, sim.qdq, int.qdq, enc.config,
      (node, message) => warnings.push({ code: 'no-integer-reference', node, message }));
  }

  /** Does the batch starting at `start` hold samples the detail covers? */
  wants(start: number): boolean {
    return start < this.limit;
  }

  /** One detail batch: `rs`/`ri` are the simulated/integer runs with the detail fetches. */
  add(rs: Record<string, ort.Tensor>, ri: Record<string, ort.Tensor>, start: number, count: number, e: Evaluation): void {
    const take = Math.min(count, this.limit - start);
    const qs = take < count ? sliceSamples(rs, take) : rs;
    const qi = take < count ? sliceSamples(ri, take) : ri;
    for (const l of this.layers) {
      const simTap = this.sim.qdq.taps.find((t) => t.layer === l.node.name);
      const intTap = this.int.qdq.taps.find((t) => t.layer === l.node.name);
      const x = qs[this.sim.floatName(l.output)];
      if (simTap && intTap && x && qs[simTap.tensor] && qi[intTap.tensor]) {
        e.layerAcc.get(l.node.name)!.addDetail(x.data as Float32Array, codeView(qs[simTap.tensor], simTap), codeView(qi[intTap.tensor], intTap));
      }
    }
    this.feedDiffs(qi, qs, take);
    this.samples += take;
  }

  /** The integer reference on as many of these samples as its multiply-accumulate budget allows. */
  private feedDiffs(qi: Record<string, ort.Tensor>, qs: Record<string, ort.Tensor>, count: number): void {
    if (!this.diffFeeds.length || this.diffBudget <= 0) return;
    this.diffMacs ||= macsPerSample(this.diffFeeds, qi);
    const take = Math.min(count, Math.floor(this.diffBudget / Math.max(1, this.diffMacs)) || (this.diffSamples === 0 ? 1 : 0));
    if (take > 0) {
      feedBatch(this.diffFeeds, sliceSamples(qi, take), sliceSamples(qs, take));
      this.diffSamples += take;
      this.diffBudget -= take * this.diffMacs;
    }
    if (take < count) this.diffBudget = 0;
  }
}
