/**
 * The exact-GELU pattern exporters write with Erf,
 *   x / sqrt2 (or x * 1/sqrt2) -> Erf -> + 1 -> * x -> * 0.5   (the last two in either order),
 * lowered to I-BERT i-GELU (`engine/integer/ibert.ts`) on the centred codes of x. Output on the
 * kernel's int32 grid; one rescale when the plan fixes the output's grid. The five nodes are
 * taken over (counted as run in integers); the reported kernel error is named after the Erf node.
 * The pattern is not matched when any of its nodes is forced to float.
 */
import type { NodeProto } from '../../onnx/graph';
import { geluPlan, iGelu } from '../../integer/ibert';
import { gelu } from '../../integer/ibertReference';
import type { LowerCtx, OpLowering } from '../context';
import { centredBound, int32Grid } from '../fixedPoint';
import { decline } from '../types';
import { codes } from '../values';

const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.abs(b);
const other = (n: NodeProto, t: string) => (n.input[0] === t ? n.input[1] : n.input[0]);

/** The GELU nodes starting at `start` (the Div/Mul by sqrt2), or undefined. */
export function matchGelu(start: NodeProto, ctx: LowerCtx): { x: string; erf: NodeProto; nodes: NodeProto[]; out: string } | undefined {
  let x: string | undefined;
  if (start.opType === 'Div' && near(ctx.scalar(start.input[1]), Math.SQRT2)) x = start.input[0];
  else if (start.opType === 'Mul') {
    if (near(ctx.scalar(start.input[1]), Math.SQRT1_2)) x = start.input[0];
    else if (near(ctx.scalar(start.input[0]), Math.SQRT1_2)) x = start.input[1];
  }
  if (!x) return undefined;
  const erf = ctx.onlyConsumer(start.output[0], 'Erf');
  const add = erf && ctx.onlyConsumer(erf.output[0], 'Add');
  if (!erf || !add || !near(ctx.scalar(other(add, erf.output[0])), 1)) return undefined;
  const m1 = ctx.onlyConsumer(add.output[0], 'Mul');
  const m2 = m1 && ctx.onlyConsumer(m1.output[0], 'Mul');
  if (!m1 || !m2) return undefined;
  const a = other(m1, add.output[0]);
  const b = other(m2, m1.output[0]);
  const ok = (a === x && near(ctx.scalar(b), 0.5)) || (b === x && near(ctx.scalar(a), 0.5));
  if (!ok) return undefined;
  const nodes = [start, erf, add, m1, m2];
  if (nodes.some((k) => ctx.forced(k))) return undefined;
  return { x, erf, nodes, out: m2.output[0] };
}

export const geluOps: OpLowering = {
  ops: ['Div', 'Mul'],
  lower(n, ctx) {
    const m = matchGelu(n, ctx);
    if (!m) return decline('not the start of an Erf GELU pattern');
    if (!ctx.isCodes(m.x)) return decline('GELU input is not a float activation');
    const gx = ctx.grid(m.x);
    const bound = centredBound(gx);
    const plan = geluPlan(gx.scale, bound);
    const name = m.erf.name || m.erf.output[0];
    ctx.consume(m.nodes.slice(1));
    ctx.kernel(name, 'i-GELU');
    const x = m.x;
    return ctx.finish(n, 'i-GELU', m.out, int32Grid(plan.outScale), (env) => {
      const v = ctx.codes(env, x);
      const c = new Int32Array(v.data.length);
      for (let i = 0; i < c.length; i++) c[i] = v.data[i] - gx.zeroPoint;
      const q = iGelu(c, gx.scale, { maxAbs: bound }).q;
      if (ctx.measuring && env.stats.kernelAcc) {
        const ref = new Float64Array(c.length);
        for (let i = 0; i < ref.length; i++) ref[i] = gelu(c[i] * gx.scale);
        ctx.measure(env, name, ref, q, plan.outScale);
      }
      env.values.set(m.out, codes(v.dims, q));
    });
  },
};
