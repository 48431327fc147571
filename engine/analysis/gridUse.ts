/**
 * How much of an activation's grid the evaluation data uses: which codes ever occur, and how much
 * of the grid's range the observed values span. A grid whose data spans a tenth of it wastes about
 * 3 of its 8 bits, whatever the clip rate says.
 */
import type { GridUse } from '../../protocol/report';
import { type QuantParams, quantize, representableRange } from '../quantize/scheme';

/** Grids with more codes than this are not tracked code by code (32-bit accumulators). */
const MAX_CODES = 1 << 16;

interface Tally {
  params: QuantParams;
  used: Uint8Array;
  min: number;
  max: number;
}

export class GridUsage {
  private readonly tallies = new Map<string, Tally>();

  /** Count one batch of float values of `name` against its grid. */
  add(name: string, params: QuantParams, values: Float32Array): void {
    const codes = params.qmax - params.qmin + 1;
    if (codes > MAX_CODES) return;
    let t = this.tallies.get(name);
    if (!t) this.tallies.set(name, (t = { params, used: new Uint8Array(codes), min: Infinity, max: -Infinity }));
    const { used } = t;
    let min = t.min, max = t.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      used[quantize(v, params) - params.qmin] = 1;
    }
    t.min = min;
    t.max = max;
  }

  result(name: string): GridUse | undefined {
    const t = this.tallies.get(name);
    if (!t || t.min > t.max) return undefined;
    const usedCodes = t.used.reduce((a, b) => a + b, 0);
    const r = representableRange(t.params);
    const span = Math.max(0, Math.min(t.max, r.hi) - Math.max(t.min, r.lo));
    return {
      codes: t.used.length,
      usedCodes,
      unusedShare: 1 - usedCodes / t.used.length,
      spanShare: r.hi > r.lo ? span / (r.hi - r.lo) : 0,
      observed: { lo: t.min, hi: t.max },
    };
  }
}
