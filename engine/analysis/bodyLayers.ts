/**
 * Layers inside If / Loop / Scan bodies. Their tensors exist only while the body runs, so the
 * comparison models cannot reduce them in the main graph: they are LIFTED out (onnx/lift.ts) and
 * compared in JavaScript. The float values come from a float model with the tensors lifted; the
 * simulated and integer codes from the comparison models (the QDQ writer lifts body taps too);
 * isolated copies run per scope, only for batches where their branch produced inputs.
 */
import type * as ort from 'onnxruntime-node';
import type { QuantConfig } from '../../protocol/report';
import type { PlannedLayer } from '../quantize/plan';
import { type OutputTap, buildIsolatedModel } from '../quantize/qdqRewrite';
import type { QuantParams } from '../quantize/scheme';
import { createSession, runSession } from '../runtime/session';
import { sessionOnData } from './dataSession';
import type { Evaluation } from './evaluation';
import type { CodeView } from './layerCompare';
import { byTensor, tapModel } from './taps';
import type { Prepared, Quantized } from './types';
import { isolatedInputs } from '../quantize/qdqRewrite';
import { allInitializers } from '../onnx/scopes';

/** Isolated copies of the layers of one scope (one If branch, one loop body): they run together or not at all. */
interface IsolatedPart {
  sim: ort.InferenceSession;
  int: ort.InferenceSession;
}

function codeView(t: ort.Tensor, tap: OutputTap): CodeView {
  const { scale, zeroPoint } = tap.params;
  const d = t.data as ArrayLike<number>;
  const codes = tap.isCodes ? d : Int32Array.from(d as Float32Array, (v) => Math.round(v / scale) + zeroPoint);
  return { codes, scale, zeroPoint };
}

export class BodyLayers {
  private constructor(
    private readonly layers: PlannedLayer[],
    private readonly float: ort.InferenceSession,
    private readonly names: Map<string, string>,
    private readonly stacked: Map<string, number>,
    private readonly iso: IsolatedPart[],
    private readonly isoTaps: { sim: OutputTap[]; int: OutputTap[] },
    private readonly label: string,
  ) {}

  /** For the body layers among `measured` (null when there are none). */
  static async create(
    p: Prepared,
    q: Quantized,
    measured: PlannedLayer[],
    intParams: Map<string, QuantParams>,
    intConfig: QuantConfig,
    track: (s: ort.InferenceSession) => void,
  ): Promise<BodyLayers | null> {
    const layers = measured.filter((l) => l.scope.length > 0);
    if (layers.length === 0) return null;
    const inits = allInitializers(q.prepared);
    const tensors = [...new Set(layers.flatMap((l) => [...isolatedInputs(l, (x) => inits.has(x)), l.output]))];
    const { model, names, stacked } = tapModel(p, tensors);
    const float = await sessionOnData(p, model, 'float');
    track(float);
    const label = `quantized model of ${p.loaded.path}`;
    const byScope = new Map<string, PlannedLayer[]>();
    for (const l of layers) {
      const key = l.scope.map((s) => `${s.node}/${s.attr}`).join('|');
      byScope.set(key, [...(byScope.get(key) ?? []), l]);
    }
    const iso: IsolatedPart[] = [];
    const isoTaps = { sim: [] as OutputTap[], int: [] as OutputTap[] };
    for (const units of byScope.values()) {
      const isoS = buildIsolatedModel(q.prepared, p.loaded.dir, units, q.actParams, q.config, q.plan);
      const isoI = intParams === q.actParams ? isoS : buildIsolatedModel(q.prepared, p.loaded.dir, units, intParams, intConfig, q.plan);
      if (isoS.taps.length === 0) continue;
      const part = { sim: await createSession(isoS.model, 'simulated', { label }), int: await createSession(isoI.model, 'integer', { label }) };
      track(part.sim);
      track(part.int);
      iso.push(part);
      isoTaps.sim.push(...isoS.taps);
      isoTaps.int.push(...isoI.taps);
    }
    return new BodyLayers(layers, float, names, stacked, iso, isoTaps, label);
  }

  /**
   * One batch: `rs`/`ri` hold the body layers' lifted codes from the comparison runs; the isolated
   * layers run only when `isolated` (the first samples, as the top-level ones).
   */
  async run(
    feeds: Record<string, ort.Tensor>,
    rs: Record<string, ort.Tensor>,
    ri: Record<string, ort.Tensor>,
    simTaps: OutputTap[],
    intTaps: OutputTap[],
    e: Evaluation,
    isolated: boolean,
  ): Promise<void> {
    const fr = await runSession(this.float, feeds, this.label);
    const floats = byTensor(fr, this.names, feeds);
    const iso = isolated ? await this.runIsolated(floats) : { sim: {}, int: {} };
    for (const l of this.layers) {
      const x = floats[l.output]?.data as Float32Array | undefined;
      if (!x || x.length === 0) continue; // its If branch did not run on this batch
      const acc = e.layerAcc.get(l.node.name)!;
      const simTap = simTaps.find((t) => t.layer === l.node.name);
      const intTap = intTaps.find((t) => t.layer === l.node.name);
      const s = simTap && rs[simTap.tensor];
      const i = intTap && ri[intTap.tensor];
      if (simTap && intTap && s && i && s.size === x.length && i.size === x.length) acc.addAccumulated(x, codeView(s, simTap), codeView(i, intTap));
      else if (simTap && intTap) branchDiverged(e, l);
      const k = this.isoTaps.sim.findIndex((t) => t.layer === l.node.name);
      const is = k >= 0 ? iso.sim[this.isoTaps.sim[k].tensor] : undefined;
      const ii = k >= 0 ? iso.int[this.isoTaps.int[k].tensor] : undefined;
      if (is && ii) acc.addIsolated(x, codeView(is, this.isoTaps.sim[k]), codeView(ii, this.isoTaps.int[k]));
    }
    for (const r of [fr, iso.sim, iso.int]) for (const t of Object.values(r)) t.dispose();
  }

  /** Every scope's isolated layers whose float inputs this batch produced (none empty). */
  private async runIsolated(floats: Record<string, ort.Tensor>) {
    const sim: Record<string, ort.Tensor> = {};
    const int: Record<string, ort.Tensor> = {};
    for (const part of this.iso) {
      const feeds: Record<string, ort.Tensor | undefined> = {};
      for (const name of part.sim.inputNames) feeds[name] = foldIterations(floats[name], this.stacked.get(name) ?? 0);
      if (Object.values(feeds).some((t) => !t || t.size === 0)) continue;
      const ready = feeds as Record<string, ort.Tensor>;
      Object.assign(sim, await runSession(part.sim, ready, 'isolated layers'));
      Object.assign(int, await runSession(part.int, ready, 'isolated layers'));
    }
    return { sim, int };
  }
}

/**
 * A tensor lifted out of a Loop body ([iterations, batch, ...]) fed to an isolated layer: the
 * iterations become more batch rows ([iterations x batch, ...]), the layout the stacked codes of
 * the QDQ model have too, so the comparison stays element by element.
 */
function foldIterations(t: ort.Tensor | undefined, axes: number): ort.Tensor | undefined {
  if (!t || axes === 0 || t.dims.length <= axes) return t;
  const lead = t.dims.slice(0, axes + 1).reduce((a, b) => a * b, 1);
  return t.reshape([lead, ...t.dims.slice(axes + 1)]);
}

/** The quantized run took another branch than the float run: this batch says nothing about the layer. */
function branchDiverged(e: Evaluation, l: PlannedLayer): void {
  if (e.warnings.some((w) => w.code === 'branch-diverged' && w.node === l.node.name)) return;
  e.warnings.push({
    code: 'branch-diverged',
    node: l.node.name,
    message: `${l.node.opType} ${l.node.name}: the quantized model took another If branch than the float model on some batches; those batches are left out of its accumulated error`,
  });
}
