/**
 * The randomness of a case: one mulberry32 stream per (seed, generator, index), so a case is
 * rebuilt exactly from those three values whatever else runs.
 */
import { mulberry32 } from '../helpers/rng';

export interface Rng {
  /** [0, 1) */
  next(): number;
  /** An integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  bool(p?: number): boolean;
  /** Standard normal. */
  normal(): number;
}

/** FNV-1a over the text: spreads (seed, generator, index) over 32 bits. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function rngFrom(seed: number): Rng {
  const next = mulberry32(seed);
  const r: Rng = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
    bool: (p = 0.5) => next() < p,
    normal: () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
  };
  return r;
}

export function caseRng(seed: number, generator: string, index: number): Rng {
  return rngFrom(hash32(`${seed}:${generator}:${index}`));
}
