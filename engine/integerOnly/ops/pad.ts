/**
 * Pad (constant, edge, reflect, wrap; negative pads crop) as data movement. On codes the constant
 * is quantize(value) on the input's grid: 0 is always exactly the zero point, so zero padding is
 * exact.
 */
import { attr, attrFloat, attrInts } from '../../onnx/graph';
import { InputError } from '../../errors';
import { quantize } from '../../quantize/scheme';
import type { LowerCtx, OpLowering } from '../context';
import { decline } from '../types';
import { type Value, allocLike, numel, stridesOf } from '../values';
import { intsInput, movement } from './layout';

type Mode = 'constant' | 'edge' | 'reflect' | 'wrap';

/** Source index along one axis for output position o (-1: the constant). */
function sourceIndex(o: number, before: number, d: number, mode: Mode): number {
  let i = o - before;
  if (i >= 0 && i < d) return i;
  if (mode === 'constant') return -1;
  if (mode === 'edge') return i < 0 ? 0 : d - 1;
  if (mode === 'wrap') return ((i % d) + d) % d;
  if (d === 1) return 0;
  const period = 2 * (d - 1);
  i = ((i % period) + period) % period;
  return i < d ? i : period - i;
}

export function padValue(v: Value, pads: number[], fill: number | bigint, mode: Mode, what: string): Value {
  const r = v.dims.length;
  if (pads.length !== 2 * r) throw new InputError(`${what}: ${pads.length} pads for rank ${r}`);
  const dims = v.dims.map((d, a) => d + pads[a] + pads[a + r]);
  if (dims.some((d) => d < 0)) throw new InputError(`${what}: pads crop [${v.dims}] below zero`);
  const maps = dims.map((od, a) => Int32Array.from({ length: od }, (_, o) => sourceIndex(o, pads[a], v.dims[a], mode)));
  const st = stridesOf(v.dims);
  const out = allocLike(v.data, numel(dims)) as unknown as { [i: number]: number | bigint };
  const src = v.data as unknown as { [i: number]: number | bigint };
  const idx = new Int32Array(r);
  for (let o = 0, n = numel(dims); o < n; o++) {
    let off = 0;
    let inside = true;
    for (let a = 0; a < r; a++) {
      const s = maps[a][idx[a]];
      if (s < 0) {
        inside = false;
        break;
      }
      off += s * st[a];
    }
    out[o] = inside ? src[off] : fill;
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
  return { ...v, dims, data: out } as unknown as Value;
}

export const padOps: OpLowering = {
  ops: ['Pad'],
  lower(n, ctx: LowerCtx) {
    const x = n.input[0];
    const a = attr(n, 'mode');
    const mode = (a ? new TextDecoder().decode(a.s) : 'constant') as Mode;
    if (!['constant', 'edge', 'reflect', 'wrap'].includes(mode)) return decline(`mode ${mode}`);
    let padsOf: ReturnType<typeof intsInput>;
    let fillReal = 0;
    if (ctx.opset < 11) {
      const p = attrInts(n, 'pads');
      padsOf = () => p;
      fillReal = attrFloat(n, 'value', 0);
    } else {
      padsOf = intsInput(n, ctx, 1);
      if (!padsOf) return decline('pads is a float tensor');
      if (n.input[3]) return decline('Pad axes input');
      if (n.input[2]) {
        if (!ctx.isConst(n.input[2])) return decline('constant_value is not a constant');
        fillReal = Number(ctx.constHost(n.input[2]).data[0]);
      }
    }
    const codesIn = ctx.isCodes(x);
    const fill = codesIn ? quantize(fillReal, ctx.grid(x)) : ctx.typeOf(x) === 'int64' ? BigInt(Math.trunc(fillReal)) : fillReal;
    return movement(n, ctx, `Pad(${mode})`, (v, env) => {
      const pads = padsOf!(env);
      if (!pads) throw new InputError(`${n.name}: Pad without pads`);
      return padValue(v, pads, fill, mode, n.name);
    });
  },
};
