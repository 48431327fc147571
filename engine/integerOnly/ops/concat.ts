/**
 * Concat. Codes: every part onto the output grid (the plan's; else the parts' common grid when
 * they share one, which needs no arithmetic; else the free grid), a part on another grid by one
 * fixed-point rescale, a constant part quantized onto the output grid at compile time. Raw
 * tensors (shape vectors) are concatenated as they are.
 */
import type { OpLowering } from '../context';
import { attrInt } from '../../onnx/graph';
import { type QuantParams, quantize } from '../../quantize/scheme';
import { Multipliers, sameGrid, saturate } from '../fixedPoint';
import { decline } from '../types';
import { type Value, allocLike, axisOf, codes, numel } from '../values';

function concat(vals: Value[], axis: number, what: string, map: (k: number, c: number) => number): Value {
  const r = vals[0].dims.length;
  const ax = axisOf(axis, r, what);
  const dims = [...vals[0].dims];
  dims[ax] = vals.reduce((s, v) => s + v.dims[ax], 0);
  const outer = numel(dims.slice(0, ax));
  const rowOut = numel(dims.slice(ax));
  const out = allocLike(vals[0].data, numel(dims)) as unknown as { [i: number]: number | bigint };
  let off = 0;
  vals.forEach((v, k) => {
    const row = numel(v.dims.slice(ax));
    const src = v.data as unknown as { [i: number]: number | bigint };
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < row; i++) {
        const c = src[o * row + i];
        out[o * rowOut + off + i] = typeof c === 'number' ? map(k, c) : c;
      }
    }
    off += row;
  });
  return { ...vals[0], dims, data: out } as unknown as Value;
}

export const concatOps: OpLowering = {
  ops: ['Concat'],
  lower(n, ctx) {
    const axis = attrInt(n, 'axis', 0);
    const out = n.output[0];
    if (!ctx.isCodes(out)) {
      if (n.input.some((t) => ctx.isCodes(t))) return decline('activations concatenated into a non-float tensor');
      return ctx.step(n, 'Concat', (env) =>
        env.values.set(
          out,
          concat(
            n.input.map((t) => ctx.value(env, t)),
            axis,
            n.name,
            (_, c) => c,
          ),
        ),
      );
    }
    const parts: { name: string; grid?: QuantParams }[] = [];
    for (const t of n.input) {
      if (ctx.isCodes(t)) parts.push({ name: t, grid: ctx.grid(t) });
      else if (ctx.isConst(t) && ctx.typeOf(t) === 'float32') parts.push({ name: t });
      else return decline(`input ${t} is neither a float activation nor a float constant`);
    }
    const grids = parts.flatMap((p) => (p.grid ? [p.grid] : []));
    const common = parts.every((p) => p.grid) && grids.every((g) => sameGrid(g, grids[0])) ? grids[0] : undefined;
    const go = ctx.planned(out) ?? common ?? ctx.target(out);
    ctx.setGrid(out, go);
    const consts = parts.map((p) => {
      if (p.grid) return null;
      const c = ctx.constFloat(p.name);
      return { kind: 'codes' as const, dims: c.dims, data: Int32Array.from(c.data, (v) => quantize(v, go)) };
    });
    const mults = parts.map((p) => (p.grid && !sameGrid(p.grid, go) ? new Multipliers([p.grid.scale / go.scale], n.name) : null));
    return ctx.step(n, 'Concat', (env) => {
      const vals = parts.map((p, k) => consts[k] ?? ctx.codes(env, p.name));
      const v = concat(vals, axis, n.name, (k, c) => {
        const m = mults[k];
        return m ? saturate(go.zeroPoint + m.apply(c - parts[k].grid!.zeroPoint), go, env.stats) : c;
      });
      env.values.set(out, codes(v.dims, v.data as Int32Array));
    });
  },
};
