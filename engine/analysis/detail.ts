/**
 * The code-level detail of an evaluation, on a bounded and stated number of samples (the first
 * ones): simulated vs integer codes per layer (mismatch, largest difference in LSB), the integer
 * execution's error in output LSB, and the bit-exact integer reference fed with onnxruntime's own
 * input codes. It needs the codes themselves (QuantizeLinear outputs: fetching them does not stop
 * fusion) and the float layer outputs.
 *
 * Two ways to get them, by size: when they are small, the comparison models expose them and detail
 * batches fetch them along with the sums (no extra session); when they are large (a 512x512
 * model), exposing them would keep every one alive through every run (onnxruntime holds a graph's
 * outputs to the end of the run, fetched or not), so the detail runs its own sessions, on its
 * samples only.
 */
import type * as ort from 'onnxruntime-node';
import type { QuantConfig, Warning } from '../../protocol/report';
import type { PlannedLayer } from '../quantize/plan';
import { type OutputTap, type QdqResult, buildQdqModel } from '../quantize/qdqRewrite';
import type { QuantParams } from '../quantize/scheme';
import { createSession, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import type { Comparison, Evaluation } from './evaluation';
import { type LayerDiffFeed, type ReferencePlan, elementsPerSample, feedBatch, layerDiffFeeds, referenceQuotas, sliceSamples } from './integerDiffs';
import { rawBytesFor } from '../onnx/elementTypes';
import { DT } from '../onnx/tensor';
import { ELEM_TYPE } from '../onnx/slice';
import type { CodeView } from './layerCompare';
import { byTensor, disposeAll, groupByBytes, tapModel } from './taps';
import type { EvaluateOptions, Prepared, Quantized } from './types';

/** Layer-output elements (over all detail samples) the detail may compare. */
const DETAIL_ELEMENTS = 4e7;
/** Multiply-accumulates the JS integer reference may spend (root-cause attribution re-runs dot products: about 0.5 s). */
const DIFF_MAC_BUDGET = 2e7;
/** Above this many fetched bytes per batch, the detail runs its own sessions instead of exposing taps. */
export const EXPOSE_BYTES = 128 * 1024 * 1024;

/** Codes of a tap, as the comparison wants them (4-bit taps hold dequantized floats: re-derive codes). */
function codeView(t: ort.Tensor, tap: OutputTap): CodeView {
  const { scale, zeroPoint } = tap.params;
  const d = t.data as ArrayLike<number>;
  const codes = tap.isCodes ? d : Int32Array.from(d as Float32Array, (v) => Math.round(v / scale) + zeroPoint);
  return { codes, scale, zeroPoint };
}

/**
 * The detail's own sessions (large models), per group of layers whose taps fit one run's budget:
 * QDQ with that group's codes exposed, simulated and integer, and the float model with its outputs.
 */
interface OwnGroup {
  layers: Set<string>;
  simQdq: QdqResult;
  intQdq: QdqResult;
  float: ReturnType<typeof tapModel>;
  /** Kept between detail batches when there is a single group (no memory to win by dropping them). */
  sessions?: ort.InferenceSession[];
}

export class DetailPass {
  /** Samples the detail covers: the first `limit` of the data. */
  readonly limit: number;
  samples = 0;
  readonly diffFeeds: LayerDiffFeed[];
  /** Multiply-accumulates per sample of each layer's reference (0: unknown until its codes are seen). */
  private diffCosts = new Map<string, number>();
  /** Samples per layer, planned when the first detail batch arrives. */
  private diffPlan: ReferencePlan | null = null;
  /** Samples each layer's reference has seen. */
  readonly diffSeen = new Map<string, number>();
  private own: OwnGroup[] | null = null;
  private floatLabel = '';
  /** The analysis its sessions are fed by (sessionOnData pins the data's dims). */
  private on!: Pick<Prepared, 'data' | 'loaded'>;

  private constructor(
    limit: number,
    private readonly layers: PlannedLayer[],
    private readonly simQdq: QdqResult,
    private readonly intQdq: QdqResult,
    diffFeeds: LayerDiffFeed[],
    private readonly label: string,
  ) {
    this.limit = limit;
    this.diffFeeds = diffFeeds;
  }

  /** Samples the detail covers for these layers: as many as the element budget allows, at least one. */
  static limitFor(p: Prepared, layers: readonly PlannedLayer[]): number {
    const perSample = layers.reduce((a, l) => a + (p.tensorBytes.get(l.output) ?? 0) / 4, 0);
    return layers.length ? Math.min(p.data.samples, Math.max(1, Math.floor(DETAIL_ELEMENTS / Math.max(1, perSample)))) : 0;
  }

  /**
   * `exposed`: the comparison models `sim`/`int` expose the taps (detail batches fetch them);
   * otherwise the detail builds its own sessions on models with the taps exposed.
   */
  static async create(
    p: Prepared,
    q: Quantized,
    enc: { config: QuantConfig; shift: number },
    intParams: Map<string, QuantParams>,
    layers: PlannedLayer[],
    exposed: { sim: Comparison; int: Comparison } | null,
    opts: EvaluateOptions,
    warnings: Warning[],
  ): Promise<DetailPass> {
    const label = `quantized model of ${p.loaded.path}`;
    const build = (expose: boolean | ((t: OutputTap) => boolean)) => ({
      sim: buildQdqModel(q.prepared, p.loaded.dir, q.plan, q.actParams, q.config, expose),
      int: buildQdqModel(q.prepared, p.loaded.dir, q.plan, enc.shift ? intParams : q.actParams, enc.shift ? enc.config : q.config, expose),
    });
    const all = exposed ? { sim: exposed.sim.qdq, int: exposed.int.qdq } : build(false);
    const diffFeeds =
      opts.integerDiff === false
        ? []
        : layerDiffFeeds(q.plan.layers, all.sim, all.int, enc.config, (node, message) => warnings.push({ code: 'no-integer-reference', node, message }));
    const detail = new DetailPass(DetailPass.limitFor(p, layers), layers, all.sim, all.int, diffFeeds, label);
    detail.on = p;
    // The reference's cost per sample over ALL its layers, from the measured output sizes: a run of
    // the own sessions exposes one group's codes only, and its sizes would understate it.
    const outputOf = new Map(q.plan.layers.map((l) => [l.node.name, l.output]));
    for (const f of diffFeeds) {
      const t = outputOf.get(f.layer);
      const elements = t ? (p.tensorBytes.get(t) ?? 0) / (rawBytesFor(ELEM_TYPE[p.tensorTypes.get(t) ?? 'float32'] ?? DT.FLOAT, 1) ?? 4) : 0;
      detail.diffCosts.set(f.layer, elements * f.reduction);
    }
    if (!exposed && layers.length) {
      // Each group's float outputs, codes and the integer reference's input codes within one run's budget.
      const groups = groupByBytes(
        layers,
        (l) => [l.output],
        (t) => (p.tensorBytes.get(t) ?? 0) * 1.5,
        1,
        undefined,
        opts.detailBytes ?? EXPOSE_BYTES,
      );
      // Sessions are created per group when a detail batch runs and released right after: a large
      // model's detail is a sample or two, and dozens of idle sessions would each hold its weights.
      detail.own = groups.map((g) => {
        const names = new Set(g.units.map((l) => l.node.name));
        const qdq = build((t) => names.has(t.layer));
        return {
          layers: names,
          simQdq: qdq.sim,
          intQdq: qdq.int,
          float: tapModel(
            p,
            g.units.map((l) => l.output),
          ),
        };
      });
      detail.floatLabel = p.loaded.path;
    }
    return detail;
  }

  /** Does the batch starting at `start` hold samples the detail covers? */
  wants(start: number): boolean {
    return start < this.limit;
  }

  /** Own sessions only: run them on the detail's share of this batch. */
  async run(feeds: Record<string, ort.Tensor>, start: number, count: number, e: Evaluation): Promise<void> {
    if (!this.own) return;
    // The whole batch runs (a state input may carry its batch on another axis than 0), and the
    // detail keeps its first samples.
    const take = Math.min(count, this.limit - start);
    const cut = (r: Record<string, ort.Tensor>) => (take < count ? sliceSamples(r, take) : r);
    const keep = this.own.length === 1 && start + take < this.limit;
    for (const g of this.own) {
      const sessions = g.sessions ?? [
        await sessionOnData(this.on, g.simQdq.model, 'simulated', this.label),
        await createSession(g.intQdq.model, 'integer', { label: this.label }),
        await sessionOnData(this.on, g.float.model, 'float', this.floatLabel),
      ];
      g.sessions = keep ? sessions : undefined;
      try {
        const [qs, qi, fr] = [
          await runSession(sessions[0], feeds, this.label),
          await runSession(sessions[1], feeds, this.label),
          await runSession(sessions[2], feeds, this.floatLabel),
        ];
        const floats = cut(byTensor(fr, g.float.names, feeds));
        this.compareLayers(cut(qs), cut(qi), (t) => floats[t], e, g);
        this.feedDiffs(cut(qi), cut(qs), take, g.layers);
        disposeAll(qs, qi, fr);
      } finally {
        if (!keep) await Promise.all(sessions.map((s) => s.release()));
      }
    }
    this.samples += take;
  }

  /** Exposed taps: `rs`/`ri` are the comparison runs with the detail fetches. */
  add(rs: Record<string, ort.Tensor>, ri: Record<string, ort.Tensor>, sim: Comparison, start: number, count: number, e: Evaluation): void {
    const take = Math.min(count, this.limit - start);
    const qs = take < count ? sliceSamples(rs, take) : rs;
    const qi = take < count ? sliceSamples(ri, take) : ri;
    this.compare(qs, qi, (t) => qs[sim.floatName(t)], take, e);
  }

  private compare(
    qs: Record<string, ort.Tensor>,
    qi: Record<string, ort.Tensor>,
    float: (tensor: string) => ort.Tensor | undefined,
    take: number,
    e: Evaluation,
  ): void {
    this.compareLayers(qs, qi, float, e, { simQdq: this.simQdq, intQdq: this.intQdq, layers: null });
    this.feedDiffs(qi, qs, take, null);
    this.samples += take;
  }

  private compareLayers(
    qs: Record<string, ort.Tensor>,
    qi: Record<string, ort.Tensor>,
    float: (tensor: string) => ort.Tensor | undefined,
    e: Evaluation,
    src: { simQdq: QdqResult; intQdq: QdqResult; layers: Set<string> | null },
  ): void {
    for (const l of this.layers) {
      if (src.layers && !src.layers.has(l.node.name)) continue;
      const simTap = src.simQdq.taps.find((t) => t.layer === l.node.name);
      const intTap = src.intQdq.taps.find((t) => t.layer === l.node.name);
      const x = float(l.output);
      if (simTap && intTap && x && qs[simTap.tensor] && qi[intTap.tensor]) {
        e.layerAcc.get(l.node.name)!.addDetail(x.data as Float32Array, codeView(qs[simTap.tensor], simTap), codeView(qi[intTap.tensor], intTap));
      }
    }
  }

  /**
   * The integer reference on as many of these samples as each layer's share of the
   * multiply-accumulate budget allows (`layers`: only these layers' feeds, when the run exposed a
   * group's codes only).
   */
  private feedDiffs(qi: Record<string, ort.Tensor>, qs: Record<string, ort.Tensor>, count: number, layers: Set<string> | null): void {
    const feeds = layers ? this.diffFeeds.filter((f) => layers.has(f.layer)) : this.diffFeeds;
    if (feeds.length === 0) return;
    if (!this.diffPlan) {
      // A layer whose size calibration did not record (never reached): its codes say it now.
      for (const f of feeds) if (!this.diffCosts.get(f.layer)) this.diffCosts.set(f.layer, elementsPerSample(qi[f.outputI.tensor]) * f.reduction);
      this.diffPlan = referenceQuotas(this.diffCosts, DIFF_MAC_BUDGET, this.limit);
    }
    // Layers taking the same samples at the same share are fed together (one slice of the batch).
    const groups = new Map<string, { take: number; share: number; feeds: LayerDiffFeed[] }>();
    for (const f of feeds) {
      const take = Math.min(count, (this.diffPlan.samples.get(f.layer) ?? 0) - (this.diffSeen.get(f.layer) ?? 0));
      const share = this.diffPlan.share.get(f.layer) ?? 1;
      if (take <= 0) continue;
      const key = `${take} ${share}`;
      const g = groups.get(key) ?? { take, share, feeds: [] };
      g.feeds.push(f);
      groups.set(key, g);
    }
    for (const { take, share, feeds: group } of groups.values()) {
      // A layer in an If branch that did not run has no codes: those samples do not count for it.
      for (const f of feedBatch(group, sliceSamples(qi, take), sliceSamples(qs, take), share)) {
        this.diffSeen.set(f.layer, (this.diffSeen.get(f.layer) ?? 0) + take);
      }
    }
  }

  /** Each layer's share of its samples' output rows. */
  get diffShares(): ReadonlyMap<string, number> {
    return this.diffPlan?.share ?? new Map();
  }
}
