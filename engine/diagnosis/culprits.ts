/**
 * Culprits and victims. A layer's OWN damage is what it does when it is the only one quantized
 * (only-this sensitivity on the primary metric, with its interval) and its isolated error (its
 * quantized copy fed with float inputs); accumulated error is never used to rank, since a layer
 * late in the graph inherits everything upstream. Layers are ranked in tiers: sorted by only-this
 * loss, a tier holds the layers whose intervals overlap its leader's (the samples cannot order
 * them), unless the model is judged by SQNR and sensitivity found the layer's SQNR clearly above
 * that leader's on the same samples (`aboveLeader`, a paired comparison: the samples do order
 * them), and inside a tier the lower isolated SQNR comes first. A victim has a large accumulated
 * error, little of its own, and a culprit (or an integer divergence) upstream that explains it.
 */
import type { Interval, LayerReport } from '../../protocol/report';
import type { FactIndex } from './facts';
import { type Finding, ownDivergence } from './rules';

export const CULPRIT_THRESHOLDS = {
  /** Alone, the layer makes at least this share of the whole model's output noise power. */
  noiseShare: 0.1,
  /** Without sensitivity: an isolated SQNR under this many dB (noise above 10% of the signal's amplitude). */
  isolatedDb: 20,
  /** A victim's accumulated SQNR is this many dB under its isolated SQNR (>= 75% of its error arrives from upstream). */
  victimGapDb: 6,
} as const;

export interface RankedLayer {
  layer: LayerReport;
  /** Only-this damage, higher is worse: the primary loss, or the negated only-this output SQNR (dB) for SQNR-judged models. */
  key: Interval | null;
  /** Alone, the layer's share of the whole model's output noise power (null without sensitivity). */
  noiseShare: number | null;
  tier: number;
  rank: number;
}

const finiteOr = (x: number, v: number) => (Number.isFinite(x) ? x : Number.isNaN(x) ? v : x);

function damageKey(l: LayerReport): Interval | null {
  const p = l.sensitivity?.onlyThisPrimary;
  if (!p) return null;
  if (p.loss) return p.loss;
  const s = p.sqnrDb;
  return { ...s, estimate: -s.estimate, low: -s.high, high: -s.low };
}

/**
 * Sensitivity found `l`'s SQNR clearly above `lead`'s on the same samples, and the tiers are drawn
 * on that SQNR (no loss): a paired SQNR order says nothing about the order of a loss such as top-1.
 */
function pairedBelow(l: LayerReport, lead: LayerReport): boolean {
  return !l.sensitivity?.onlyThisPrimary?.loss && l.sensitivity?.aboveLeader?.leader === lead.node;
}

/** Rank layers by the damage they do themselves (see the file header). `modelSqnrDb`: the whole model's output SQNR. */
export function rankByOwnDamage(layers: readonly LayerReport[], modelSqnrDb: number): RankedLayer[] {
  const iso = (l: LayerReport) => finiteOr(l.isolated.integer.sqnrDb, Infinity);
  const share = (l: LayerReport) => {
    const only = l.sensitivity?.onlyThis.outputSqnrDb;
    if (only === undefined || !Number.isFinite(modelSqnrDb)) return null;
    return only === Infinity ? 0 : Math.min(1e6, 10 ** ((modelSqnrDb - only) / 10));
  };
  const rows = layers.map((layer) => ({ layer, key: damageKey(layer), noiseShare: share(layer), tier: 0, rank: 0 }));
  const keyed = rows.filter((r) => r.key).sort((a, b) => b.key!.estimate - a.key!.estimate || iso(a.layer) - iso(b.layer));
  const tiers: RankedLayer[][] = [];
  for (const r of keyed) {
    const t = tiers[tiers.length - 1];
    if (t && r.key!.high >= t[0].key!.low && !pairedBelow(r.layer, t[0].layer)) t.push(r);
    else tiers.push([r]);
  }
  const rest = rows.filter((r) => !r.key);
  if (rest.length) tiers.push(rest);
  const out: RankedLayer[] = [];
  tiers.forEach((t, i) => {
    for (const r of [...t].sort((a, b) => iso(a.layer) - iso(b.layer))) out.push({ ...r, tier: i + 1, rank: out.length + 1 });
  });
  return out;
}

/** Does the layer do significant damage by itself? Returns the reason, or null. */
export function culpritReason(r: RankedLayer): string | null {
  const l = r.layer;
  const loss = l.sensitivity?.onlyThisPrimary?.loss;
  if (loss && loss.low > 0) return 'alone it costs a loss whose interval excludes 0';
  if (r.noiseShare !== null && r.noiseShare >= CULPRIT_THRESHOLDS.noiseShare) {
    // Errors need not add up: alone a layer can make more noise than all layers together (other
    // layers' errors cancel part of it, or a saturating output hides it), and "100%" would hide that.
    if (r.noiseShare >= 1) return `alone it makes ${r.noiseShare.toPrecision(2)}x the output noise of the whole quantized model`;
    return `alone it makes ${(r.noiseShare * 100).toFixed(0)}% of the model's output noise`;
  }
  if (!l.sensitivity && l.isolated.integer.sqnrDb < CULPRIT_THRESHOLDS.isolatedDb) return `its isolated SQNR is under ${CULPRIT_THRESHOLDS.isolatedDb} dB`;
  if (ownDivergence(l)) return 'its own integer kernel departs from the simulation';
  return null;
}

export interface Victim {
  node: string;
  accumulatedSqnrDb: number;
  isolatedSqnrDb: number;
  from: string | null;
  cause?: Finding;
}

/** Non-culprit layers whose error comes from upstream: an upstream culprit, or an inherited integer divergence. */
export function findVictims(idx: FactIndex, culprits: readonly string[], findings: Map<string, Finding[]>): Victim[] {
  const rankOf = new Map(culprits.map((c, i) => [c, i]));
  const out: Victim[] = [];
  for (const l of idx.facts.report.layers) {
    if (rankOf.has(l.node)) continue;
    const acc = l.integer.sqnrDb;
    const iso = l.isolated.integer.sqnrDb;
    const inheritedCause = findings.get(l.node)?.find((f) => f.cause === 'inherited');
    const upstream = idx
      .ancestors(l.node)
      .filter((n) => rankOf.has(n))
      .sort((a, b) => rankOf.get(a)! - rankOf.get(b)!);
    const gap = Number.isFinite(iso) ? iso - acc : acc === Infinity ? 0 : Infinity;
    if (upstream.length && gap >= CULPRIT_THRESHOLDS.victimGapDb)
      out.push({ node: l.node, accumulatedSqnrDb: acc, isolatedSqnrDb: iso, from: upstream[0], cause: inheritedCause });
    else if (inheritedCause)
      out.push({ node: l.node, accumulatedSqnrDb: acc, isolatedSqnrDb: iso, from: String(inheritedCause.evidence.origin), cause: inheritedCause });
  }
  return out.sort((a, b) => a.accumulatedSqnrDb - b.accumulatedSqnrDb);
}
