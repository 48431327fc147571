/**
 * How many samples each layer's sensitivity needs. After a pilot, every layer has a per-sample
 * output SQNR (dB); its mean's 95% interval (Student t: a pilot is a few samples) says how well it
 * is known.
 *
 * The question sensitivity answers is which layers do the most damage alone. A layer whose interval
 * lies wholly above the most damaging layer's interval cannot be the most damaging one, so it stops
 * at the pilot: more samples would narrow an interval that no ranking decision depends on. The
 * others (the contenders) go on until each mean is pinned to +-`targetDb`, up to what is available.
 * One decision, after the pilot, so the intervals are not looked at repeatedly.
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
export function meanDb(layer: SampledLayer): MeanDb {
  const v = layer.perSampleDb.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) {
    const exact = layer.perSampleDb.length > 0 && layer.perSampleDb.every((x) => x === Infinity);
    return exact ? { n, mean: Infinity, half: 0, sd: 0 } : { n, mean: Number.NaN, half: Infinity, sd: Number.NaN };
  }
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, half: Infinity, sd: Number.NaN };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  return { n, mean, half: (studentTQuantile(0.975, n - 1) * sd) / Math.sqrt(n), sd };
}

/** Samples that pin a mean with this spread to +-targetDb at 95% (normal: they are many). */
export function samplesFor(sd: number, targetDb: number): number {
  return Number.isFinite(sd) ? Math.ceil(((Z95 * sd) / targetDb) ** 2) : 0;
}

export interface SamplingPlan {
  /** Indices of the layers that stop at the pilot: their interval lies above the leader's. */
  settled: Set<number>;
  /** Samples the contenders need (0 when nothing is known about their spread). */
  need: number;
  /** The most damaging layer after the pilot (lowest mean SQNR), or -1. */
  leader: number;
}

/** The plan after the pilot (see the file header). */
export function planAfterPilot(layers: readonly SampledLayer[], targetDb: number): SamplingPlan {
  const m = layers.map(meanDb);
  let leader = -1;
  for (let i = 0; i < m.length; i++) if (Number.isFinite(m[i].mean) && (leader < 0 || m[i].mean < m[leader].mean)) leader = i;
  const settled = new Set<number>();
  if (leader < 0) return { settled, need: 0, leader };
  const ceiling = m[leader].mean + m[leader].half;
  let need = 0;
  for (let i = 0; i < m.length; i++) {
    if (i !== leader && !Number.isNaN(m[i].mean) && m[i].mean - m[i].half > ceiling) settled.add(i);
    else need = Math.max(need, samplesFor(m[i].sd, targetDb));
  }
  return { settled, need, leader };
}
