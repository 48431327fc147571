/**
 * The op table: every integer lowering, one module per op family. For an op type the lowerings
 * are tried in this order (the GELU pattern before plain Div/Mul); a node no lowering accepts
 * runs as a float fallback.
 */
import type { OpLowering } from '../context';
import { activationOps } from './activation';
import { arithOps } from './arith';
import { batchNormOps } from './batchNorm';
import { concatOps } from './concat';
import { geluOps } from './gelu';
import { gemmOps } from './gemm';
import { layerNormOps } from './layerNorm';
import { layoutOps } from './layout';
import { padOps } from './pad';
import { poolOps } from './pool';
import { reduceOps } from './reduce';
import { resizeOps } from './resize';
import { selectOps } from './select';
import { shapeOps } from './shape';
import { softmaxOps } from './softmax';
import { tableOps } from './table';

export const LOWERINGS: readonly OpLowering[] = [
  gemmOps,
  geluOps,
  arithOps,
  activationOps,
  tableOps,
  poolOps,
  batchNormOps,
  layoutOps,
  concatOps,
  selectOps,
  shapeOps,
  padOps,
  resizeOps,
  reduceOps,
  softmaxOps,
  layerNormOps,
];

const BY_OP = new Map<string, OpLowering[]>();
for (const l of LOWERINGS) for (const op of l.ops) BY_OP.set(op, [...(BY_OP.get(op) ?? []), l]);

/** The lowerings to try for an op type, in order. */
export function loweringsFor(opType: string): readonly OpLowering[] {
  return BY_OP.get(opType) ?? [];
}
