/**
 * A deterministic speech-like signal at 16 kHz: voiced "syllables" (a glottal-like harmonic source
 * with a gliding pitch, shaped by vowel formants, with a syllabic amplitude envelope) separated by
 * pauses of faint noise, plus a little background noise throughout. Seeded: the same samples on
 * every machine, no audio tools needed.
 */
import { randn, rng } from './tinyModels';

export const SAMPLE_RATE = 16000;

/** Formant frequencies (Hz) of a few vowels (F1, F2, F3). */
const VOWELS = [
  [730, 1090, 2440],
  [270, 2290, 3010],
  [300, 870, 2240],
  [530, 1840, 2480],
  [570, 840, 2410],
];

/** Amplitude gain of harmonic `f` under formants `fs` (resonances of bandwidth ~90 Hz). */
function formantGain(f: number, fs: number[]): number {
  let g = 0;
  for (const [i, fc] of fs.entries()) g += 1 / (i + 1) / (1 + ((f - fc) / 90) ** 2);
  return g;
}

/**
 * `seconds` of signal: alternating speech segments (0.4-1.2 s of syllables) and pauses
 * (0.3-0.9 s), starting with a pause. Returns samples in [-1, 1] and, per sample, 1 inside speech.
 */
export function speechLike(seconds: number, seed = 7): { signal: Float32Array; voiced: Uint8Array } {
  const r = rng(seed);
  const n = Math.round(seconds * SAMPLE_RATE);
  const signal = new Float32Array(n);
  const voiced = new Uint8Array(n);
  let t = 0;
  let speaking = false;
  while (t < n) {
    const len = Math.round((speaking ? 0.4 + 0.8 * r() : 0.3 + 0.6 * r()) * SAMPLE_RATE);
    const end = Math.min(n, t + len);
    if (speaking) {
      // syllables of ~200 ms, each a vowel with its own pitch glide
      let s = t;
      while (s < end) {
        const syl = Math.min(end, s + Math.round((0.15 + 0.1 * r()) * SAMPLE_RATE));
        const vowel = VOWELS[Math.floor(r() * VOWELS.length)];
        const f0a = 100 + 120 * r();
        const f0b = f0a * (0.85 + 0.3 * r());
        let phase = 0;
        for (let i = s; i < syl; i++) {
          const u = (i - s) / (syl - s);
          const f0 = f0a + (f0b - f0a) * u;
          phase += (2 * Math.PI * f0) / SAMPLE_RATE;
          let v = 0;
          for (let h = 1; h * f0 < 4000; h++) v += (formantGain(h * f0, vowel) * Math.sin(h * phase)) / Math.sqrt(h);
          const env = Math.sin(Math.PI * u) ** 0.6; // syllabic envelope
          signal[i] = 0.25 * env * v + 0.01 * randn(r);
          voiced[i] = 1;
        }
        s = syl;
      }
    } else {
      for (let i = t; i < end; i++) signal[i] = 0.003 * randn(r);
    }
    t = end;
    speaking = !speaking;
  }
  let peak = 0;
  for (const v of signal) peak = Math.max(peak, Math.abs(v));
  for (let i = 0; i < n; i++) signal[i] = (signal[i] / peak) * 0.8;
  return { signal, voiced };
}

/** The signal cut into consecutive chunks of `size` samples ([chunks, size], row-major); the tail is dropped. */
export function chunks(signal: Float32Array, size: number): { data: Float32Array; count: number } {
  const count = Math.floor(signal.length / size);
  return { data: signal.slice(0, count * size), count };
}
