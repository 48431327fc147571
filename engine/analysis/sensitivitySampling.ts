/**
 * How many samples each layer's sensitivity needs. After a pilot, every layer has a per-sample
 * output SQNR (dB) on the same samples; its mean's 95% interval (Student t: a pilot is a few
 * samples) says how well it is known.
 *
 * The question sensitivity answers is which layers do the most damage alone. A layer that does
 * clearly less damage than the most damaging one (the leader) on the same samples cannot be the
 * most damaging, so it stops at the pilot: more samples would narrow an interval that no ranking
 * decision depends on. "Clearly" is a paired comparison: the 95% interval of the mean of its
 * per-sample SQNR minus the leader's lies wholly above MARGIN_DB (3 dB: at most half the leader's
 * noise). Pairing matters because the samples differ far more than the layers do: on PaddleOCR's
 * direction classifier (a 2-class softmax, some samples near saturation) every layer's per-sample
 * SQNR spreads over 110-140 dB, so the layers' own intervals all overlap, while the same sample
 * is easy or hard for every layer and the differences spread little. The others (the contenders) go on until each mean is pinned
 * to +-`targetDb`, up to what is available. The caller decides at a few fixed looks, each at a
 * level that splits 5% between them (Bonferroni), so that looking more than once does not stop
 * layers wrongly more often than one look at 95% would.
 */
import { studentTQuantile } from './distributions';

export interface SampledLayer {
  /**
   * Per-sample output SQNR (dB) measured so far: +Infinity for a sample reproduced exactly, NaN
   * for one that cannot be compared.
   */
  perSampleDb: readonly number[];
}

export interface MeanDb {
  n: number;
  mean: number;
  /** Half-width of the 95% Student-t interval on the mean (Infinity with fewer than two samples). */
  half: number;
  sd: number;
}

const Z95 = 1.96;

/** One sample's SQNR from its sums: +Infinity when reproduced exactly, NaN when not comparable. */
export function sampleDb(sx2: number, sd2: number): number {
  if (Number.isNaN(sx2)) return Number.NaN;
  return sd2 === 0 ? Infinity : 10 * Math.log10(sx2 / sd2);
}

/**
 * The mean over the finite samples, as the report's per-sample SQNR takes it: samples reproduced
 * exactly are left out (counting them at some large finite dB would make the spread of a layer
 * that is exact on most samples look huge, and keep it running for nothing). A layer exact on
 * every sample has mean +Infinity, known exactly.
 */
export function meanDb(layer: SampledLayer, level = 0.95): MeanDb {
  const v = layer.perSampleDb.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) {
    const exact = layer.perSampleDb.length > 0 && layer.perSampleDb.every((x) => x === Infinity);
    return exact ? { n, mean: Infinity, half: 0, sd: 0 } : { n, mean: Number.NaN, half: Infinity, sd: Number.NaN };
  }
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, half: Infinity, sd: Number.NaN };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, mean, half: (studentTQuantile(1 - (1 - level) / 2, n - 1) * sd) / Math.sqrt(n), sd };
}

/** Samples that pin a mean with this spread to +-targetDb at 95% (normal: they are many). */
export function samplesFor(sd: number, targetDb: number): number {
  return Number.isFinite(sd) ? Math.ceil(((Z95 * sd) / targetDb) ** 2) : 0;
}

/**
 * The paired difference layer - leader over the samples both measured with a finite SQNR (as the
 * means leave samples reproduced exactly out), with its 95% Student-t interval.
 */
export function pairedDiffDb(layer: SampledLayer, leader: SampledLayer, level = 0.95): MeanDb {
  const d: number[] = [];
  const n = Math.min(layer.perSampleDb.length, leader.perSampleDb.length);
  for (let k = 0; k < n; k++) {
    const a = layer.perSampleDb[k];
    const b = leader.perSampleDb[k];
    if (Number.isFinite(a) && Number.isFinite(b)) d.push(a - b);
  }
  return meanDb({ perSampleDb: d }, level);
}

/**
 * How far above the leader (dB, the paired interval's lower end) a layer must be to stop: 3 dB, so
 * that alone it makes at most half the leader's output noise power. Near-ties keep running: the
 * diagnosis ranks culprits by their own loss (e.g. top-1 points), and on the demo's entropy grid
 * the two worst layers, 0.2 dB apart in SQNR but both costing 63-65 points, would otherwise stop
 * one of them at 8 samples with a loss interval of [17, 86] points.
 */
export const MARGIN_DB = 3;

export interface SamplingPlan {
  /**
   * The layers that stop at the pilot, each with its paired difference to the leader (its lower
   * end above MARGIN_DB), or with mean +Infinity when it reproduced every sample exactly.
   */
  settled: Map<number, MeanDb>;
  /** Samples the contenders need (0 when nothing is known about their spread). */
  need: number;
  /** The most damaging layer after the pilot (lowest mean SQNR), or -1. */
  leader: number;
}

/** The plan after the pilot (see the file header). */
export function planAfterPilot(layers: readonly SampledLayer[], targetDb: number, level = 0.95): SamplingPlan {
  const m = layers.map((l) => meanDb(l, level));
  let leader = -1;
  for (let i = 0; i < m.length; i++) if (Number.isFinite(m[i].mean) && (leader < 0 || m[i].mean < m[leader].mean)) leader = i;
  const settled = new Map<number, MeanDb>();
  if (leader < 0) return { settled, need: 0, leader };
  let need = 0;
  for (let i = 0; i < m.length; i++) {
    if (i === leader || Number.isNaN(m[i].mean)) {
      need = Math.max(need, samplesFor(m[i].sd, targetDb));
      continue;
    }
    const d = m[i].mean === Infinity ? m[i] : pairedDiffDb(layers[i], layers[leader], level);
    if (d.mean - d.half > MARGIN_DB) settled.set(i, d);
    else need = Math.max(need, samplesFor(m[i].sd, targetDb));
  }
  return { settled, need, leader };
}
