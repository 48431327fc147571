/**
 * Which nodes get quantized, and how each of their inputs is treated (activation, weight, bias).
 * Pure: looks at the graph only. Types of intermediate tensors come from onnxruntime (a probe
 * run), and non-float tensors are filtered out afterwards with `dropNonFloat`.
 */
import type { Placement } from '../../protocol/report';
import { type GraphProto, type NodeProto, attrInt } from '../onnx/graph';
import { type ScopeStep, ScopedIndex } from '../onnx/scopes';
import { subgraphsOf } from '../onnx/walk';
import type { QuantParams } from './scheme';

export type InputRole =
  | { kind: 'activation' }
  | { kind: 'weight'; axis: number | null } // channel axis (negative from the end); null = always per tensor
  | { kind: 'bias'; activationInput: number; weightInput: number }
  | { kind: 'float' };

export interface PlannedLayer {
  node: NodeProto;
  /** Role per input index. */
  roles: InputRole[];
  /** The output tensor that is quantized and measured. */
  output: string;
  /** Output reuses the quantization params of input 0 (MaxPool: the range cannot grow). */
  shareInputParams: boolean;
  /** The If/Loop/Scan bodies the node sits in, outermost first (empty in the main graph). */
  scope: ScopeStep[];
  /**
   * Integer codes a model that is already quantized holds for some constant inputs (by input
   * index): the QDQ writer stores exactly these instead of quantizing the float values, so the
   * analysis runs the deployed weights and biases, not a re-quantization of them.
   */
  fixed?: Map<number, FixedCodes>;
}

/** A constant's deployed integer codes and their grid (weights: per channel along `axis`; biases: int32, zero point 0). */
export interface FixedCodes {
  /** Channel axis of `params` (non-negative), or null when one grid covers the whole tensor. */
  axis: number | null;
  params: QuantParams[];
  codes: Int32Array;
  dims: number[];
}

export interface QuantPlan {
  layers: PlannedLayer[];
  /** Activation tensors to quantize (each gets one Q/DQ pair), in graph order. */
  activations: string[];
  /** Nodes left in float and why, for the report (`code`: the warning's code, default layer-not-quantized). */
  skipped: { node: string; op: string; reason: string; code?: string }[];
  /**
   * Float layers an already-quantized source file itself leaves between DequantizeLinear and
   * QuantizeLinear, for onnxruntime to quantize: written as the file has them, without the float
   * guard (floatGuard.ts), because onnxruntime runs the file that way.
   */
  unguarded?: ReadonlySet<string>;
  /** Nodes an already-quantized source file keeps in float with the float guard: guarded here too. */
  guarded?: ReadonlySet<string>;
}

/** The reason a node the configuration excludes stays float (plan.skipped). */
export const EXCLUDED = 'excluded by configuration';

export const COMPUTE_OPS = new Set(['Conv', 'Gemm', 'MatMul']);
const EXTENDED_OPS = new Set(['Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool', 'GlobalAveragePool']);

function rolesFor(node: NodeProto, idx: ScopedIndex): InputRole[] | string {
  const isConst = (i: number) => node.input[i] !== undefined && node.input[i] !== '' && idx.isConstant(node.input[i]);
  switch (node.opType) {
    case 'Conv': {
      if (!isConst(1)) return 'weight is not a constant';
      const roles: InputRole[] = [{ kind: 'activation' }, { kind: 'weight', axis: 0 }];
      if (node.input[2]) roles.push(isConst(2) ? { kind: 'bias', activationInput: 0, weightInput: 1 } : { kind: 'float' });
      return roles;
    }
    case 'Gemm': {
      if (attrInt(node, 'transA', 0) !== 0) return 'Gemm with transA is not quantized';
      const roles: InputRole[] = [{ kind: 'activation' }];
      roles.push(isConst(1) ? { kind: 'weight', axis: attrInt(node, 'transB', 0) ? 0 : 1 } : { kind: 'activation' });
      if (node.input[2]) {
        // An int32 bias at scale S_a*S_b is only exact when alpha = beta = 1.
        const plainBias = isConst(2) && isConst(1) && attrFloatIsOne(node, 'alpha') && attrFloatIsOne(node, 'beta');
        roles.push(plainBias ? { kind: 'bias', activationInput: 0, weightInput: 1 } : { kind: 'float' });
      }
      return roles;
    }
    case 'MatMul': {
      // A constant B is a weight quantized per output column (last axis).
      return [isConst(0) ? { kind: 'weight', axis: -1 } : { kind: 'activation' }, isConst(1) ? { kind: 'weight', axis: -1 } : { kind: 'activation' }];
    }
    default:
      return node.input.map((_, i) => (isConst(i) ? { kind: 'weight', axis: null } : { kind: 'activation' }));
  }
}

function attrFloatIsOne(node: NodeProto, name: string): boolean {
  const a = node.attribute.find((x) => x.name === name);
  return !a || a.f === 1;
}

/**
 * Every eligible node of `graph` and, at the place of each If/Loop/Scan node, of its bodies at any
 * depth (weights may be constants of the body or of an enclosing graph).
 */
export function planQuantization(graph: GraphProto, placement: Placement, exclude: readonly string[]): QuantPlan {
  const excluded = new Set(exclude);
  const layers: PlannedLayer[] = [];
  const skipped: QuantPlan['skipped'] = [];
  const visit = (g: GraphProto, idx: ScopedIndex, scope: ScopeStep[]) => {
    for (const node of g.node) {
      const eligible = COMPUTE_OPS.has(node.opType) || (placement === 'extended' && EXTENDED_OPS.has(node.opType));
      if (eligible && node.domain === '') {
        const roles = excluded.has(node.name) ? EXCLUDED : rolesFor(node, idx);
        if (typeof roles === 'string') skipped.push({ node: node.name, op: node.opType, reason: roles });
        else layers.push({ node, roles, output: node.output[0], shareInputParams: node.opType === 'MaxPool', scope });
      }
      for (const { attr, graph: body } of subgraphsOf(node)) visit(body, new ScopedIndex(body, idx), [...scope, { node: node.name, op: node.opType, attr }]);
    }
  };
  visit(graph, new ScopedIndex(graph), []);
  return withActivations(layers, skipped);
}

function withActivations(layers: PlannedLayer[], skipped: QuantPlan['skipped'], from?: Pick<QuantPlan, 'unguarded' | 'guarded'>): QuantPlan {
  const seen = new Set<string>();
  const activations: string[] = [];
  const add = (t: string) => {
    if (t && !seen.has(t)) {
      seen.add(t);
      activations.push(t);
    }
  };
  for (const l of layers) {
    l.roles.forEach((r, i) => r.kind === 'activation' && add(l.node.input[i]));
    add(l.output);
  }
  return {
    layers,
    activations,
    skipped,
    ...(from?.unguarded ? { unguarded: from.unguarded } : {}),
    ...(from?.guarded ? { guarded: from.guarded } : {}),
  };
}

/** Remove layers touching tensors that turned out not to be float32 (e.g. int64 shape arithmetic). */
export function dropNonFloat(plan: QuantPlan, isFloat: (tensor: string) => boolean): QuantPlan {
  const keep: PlannedLayer[] = [];
  const skipped = [...plan.skipped];
  for (const l of plan.layers) {
    const tensors = [l.output, ...l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation')];
    const bad = tensors.find((t) => !isFloat(t));
    if (bad) skipped.push({ node: l.node.name, op: l.node.opType, reason: `tensor ${bad} is not float32` });
    else keep.push(l);
  }
  return withActivations(keep, skipped, plan);
}

/** Move layers for which `why` gives a reason to `skipped` (with its warning code). */
export function dropLayers(plan: QuantPlan, why: (l: PlannedLayer) => { code: string; reason: string } | null): QuantPlan {
  const keep: PlannedLayer[] = [];
  const skipped = [...plan.skipped];
  for (const l of plan.layers) {
    const w = why(l);
    if (w) skipped.push({ node: l.node.name, op: l.node.opType, ...w });
    else keep.push(l);
  }
  return withActivations(keep, skipped, plan);
}

/** The tensors whose values a layer's measurement needs: its activation inputs and its output. */
export function layerTensors(l: PlannedLayer): string[] {
  return [l.output, ...l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation')];
}

/** The same plan restricted to some layers (sensitivity, exclusions): activations recomputed. */
export function subsetPlan(plan: QuantPlan, keep: (l: PlannedLayer) => boolean): QuantPlan {
  return withActivations(plan.layers.filter(keep), plan.skipped, plan);
}
