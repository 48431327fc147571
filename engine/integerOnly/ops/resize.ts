/**
 * Resize with mode "nearest" (opset >= 11; half_pixel, pytorch_half_pixel, align_corners,
 * asymmetric, every nearest mode) and Upsample "nearest": each output element copies one input
 * element, so on codes it is exact data movement on the input's grid. Source coordinates are computed in
 * float32 as onnxruntime does, so ties fall the same way. Linear/cubic modes decline.
 */
import { attr, attrInts } from '../../onnx/graph';
import { InputError } from '../../errors';
import type { LowerCtx, OpLowering } from '../context';
import { type Env, decline } from '../types';
import { type Value, allocLike, intsOf, numel, stridesOf } from '../values';
import { movement } from './layout';

const f = Math.fround;

type Coord = 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric';
type Nearest = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';

function str(n: Parameters<typeof attr>[0], name: string, dflt: string): string {
  const a = attr(n, name);
  return a ? new TextDecoder().decode(a.s) : dflt;
}

function sourceOf(x: number, scale: number, inLen: number, outLen: number, coord: Coord): number {
  switch (coord) {
    case 'half_pixel':
      return f(f(f(x + 0.5) / scale) - 0.5);
    case 'pytorch_half_pixel':
      return outLen > 1 ? f(f(f(x + 0.5) / scale) - 0.5) : 0;
    case 'align_corners':
      return outLen === 1 ? 0 : f(f(x * (inLen - 1)) / (outLen - 1));
    case 'asymmetric':
      return f(x / scale);
  }
}

function nearest(v: number, mode: Nearest): number {
  switch (mode) {
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    case 'round_prefer_ceil':
      return Math.floor(v) === v - 0.5 ? Math.ceil(v) : Math.round(v);
    default:
      return Math.floor(v) === v - 0.5 ? Math.floor(v) : Math.round(v);
  }
}

/** out[i...] = in[map_0[i_0], map_1[i_1], ...]. */
function remap(v: Value, dims: number[], maps: Int32Array[]): Value {
  const st = stridesOf(v.dims);
  const out = allocLike(v.data, numel(dims)) as unknown as { [i: number]: number | bigint };
  const src = v.data as unknown as { [i: number]: number | bigint };
  const r = dims.length;
  const idx = new Int32Array(r);
  for (let o = 0, n = numel(dims); o < n; o++) {
    let off = 0;
    for (let a = 0; a < r; a++) off += maps[a][idx[a]] * st[a];
    out[o] = src[off];
    for (let a = r - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
  return { ...v, dims, data: out } as unknown as Value;
}

export function resizeNearest(v: Value, scales: number[] | null, sizes: number[] | null, coord: Coord, mode: Nearest, what: string): Value {
  const r = v.dims.length;
  const outDims = sizes ?? v.dims.map((d, a) => Math.floor(d * scales![a]));
  if (outDims.length !== r) throw new InputError(`${what}: ${outDims.length} sizes/scales for rank ${r}`);
  const sc = sizes ? v.dims.map((d, a) => f(sizes[a] / d)) : scales!.map(f);
  const maps = outDims.map((od, a) =>
    Int32Array.from({ length: od }, (_, x) => {
      const s = nearest(sourceOf(x, sc[a], v.dims[a], od, coord), mode);
      return Math.max(0, Math.min(v.dims[a] - 1, s));
    }),
  );
  return remap(v, outDims, maps);
}

function floatsInput(ctx: LowerCtx, t: string | undefined): ((env: Env) => number[] | null) | 'bad' {
  if (!t) return () => null;
  if (ctx.isConst(t)) {
    const d = Array.from(ctx.constHost(t).data as ArrayLike<number | bigint>, Number);
    return () => (d.length ? d : null);
  }
  if (ctx.isCodes(t)) return 'bad';
  return (env) => {
    const d = intsOf(ctx.value(env, t) as { data: ArrayLike<number | bigint> });
    return d.length ? d : null;
  };
}

export const resizeOps: OpLowering = {
  ops: ['Resize', 'Upsample'],
  lower(n, ctx) {
    if (str(n, 'mode', 'nearest') !== 'nearest') return decline(`mode ${str(n, 'mode', 'nearest')} is not lowered (only nearest)`);
    let coord: Coord = 'asymmetric';
    let mode: Nearest = 'floor';
    let scalesOf: ReturnType<typeof floatsInput>;
    let sizesOf: ReturnType<typeof floatsInput> = () => null;
    if (n.opType === 'Upsample') {
      const s = attr(n, 'scales');
      scalesOf = s ? () => s.floats : floatsInput(ctx, n.input[1]);
    } else {
      if (ctx.opset < 11) return decline('opset-10 Resize is not lowered');
      if (attrInts(n, 'axes') || str(n, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch') return decline('axes / keep_aspect_ratio_policy');
      coord = str(n, 'coordinate_transformation_mode', 'half_pixel') as Coord;
      mode = str(n, 'nearest_mode', 'round_prefer_floor') as Nearest;
      if (!['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric'].includes(coord)) return decline(`coordinate_transformation_mode ${coord}`);
      if (!['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'].includes(mode)) return decline(`nearest_mode ${mode}`);
      scalesOf = floatsInput(ctx, n.input[2]);
      sizesOf = floatsInput(ctx, n.input[3]);
    }
    if (scalesOf === 'bad' || sizesOf === 'bad') return decline('scales/sizes are activations');
    const sc = scalesOf,
      sz = sizesOf;
    return movement(n, ctx, 'Resize(nearest)', (v, env) => {
      const sizes = sz(env);
      const scales = sizes ? null : sc(env);
      if (!sizes && !scales) throw new InputError(`${n.name}: Resize without scales or sizes`);
      return resizeNearest(v, scales, sizes, coord, mode, n.name);
    });
  },
};
