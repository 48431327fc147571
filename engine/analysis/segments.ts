/**
 * The float model cut into consecutive segments, so that a calibration pass whose taps do not fit
 * one run's byte budget still computes every node once per batch. Before, each group of taps ran
 * the whole model up to its last tensor: M-LSD at 512x512 paid about four float passes to
 * calibrate. Here group k's segment starts where group k-1's ended, and the tensors later
 * segments read (usually the last layer's output, plus skip connections) are carried between runs
 * of the same batch.
 *
 * Only main-graph taps qualify: a tensor inside an If/Loop/Scan body is fetched by lifting it out of
 * its body (onnx/lift.ts), which needs the whole model; such passes keep one full run per group.
 */
import type { ValueInfoProto } from 'onnx-buf';
import { type GraphProto, untypedValueInfo } from '../onnx/graph';
import { emptyClone, type ModelProto } from '../onnx/model';
import { nodeReads, typedValueInfo } from '../onnx/slice';

export interface Segment {
  model: ModelProto;
  /** Tensors of this segment's group (fetched for the caller). */
  taps: string[];
  /** Tensors it reads from earlier segments or the data (graph inputs of the segment model). */
  inputs: string[];
  /** Tensors it produces that later segments read: kept until the batch's last segment has run. */
  carried: string[];
}

/**
 * Cuts the float graph front to back: each `next` returns the stretch from where the previous
 * segment ended to the last producer of the given taps. Graph order is topological, so a segment
 * reads only the data, initializers and tensors produced before it.
 */
export class GraphCuts {
  private readonly g: GraphProto;
  private readonly pos = new Map<string, number>();
  private readonly constants: Set<string>;
  private readonly graphInputs: Map<string, ValueInfoProto>;
  private readonly outputs: Set<string>;
  /** Index of the last node already cut. */
  private end = -1;

  constructor(
    private readonly float: ModelProto,
    /** ONNX element type of a tensor, when known (a carried tensor becomes a typed graph input). */
    private readonly elemType: (tensor: string) => number | undefined,
  ) {
    this.g = float.graph!;
    this.g.node.forEach((n, i) => n.output.forEach((o) => o && this.pos.set(o, i)));
    this.constants = new Set(this.g.initializer.map((t) => t.name));
    this.graphInputs = new Map(this.g.input.map((i) => [i.name, i]));
    this.outputs = new Set(this.g.output.map((o) => o.name));
  }

  /** Is `t` produced by a main-graph node (not a graph input, an initializer or a body tensor)? */
  produces(t: string): boolean {
    return this.pos.has(t);
  }

  /** Position in graph order of the node producing `t` (-1: not a main-graph node's output). */
  position(t: string): number {
    return this.pos.get(t) ?? -1;
  }

  /**
   * The next segment: up to the last producer of `taps`, or to the graph's end when `last`. Null
   * when a tap lies before the cut, is not a main-graph tensor, or a carried type is unknown.
   */
  next(taps: readonly string[], last = false): Segment | null {
    if (taps.some((t) => !this.pos.has(t) || this.pos.get(t)! <= this.end)) return null;
    const end = last ? this.g.node.length - 1 : Math.max(...taps.map((t) => this.pos.get(t)!));
    if (end <= this.end) return null;
    const nodes = this.g.node.slice(this.end + 1, end + 1);
    const produced = new Set(nodes.flatMap((n) => n.output).filter(Boolean));
    const reads = new Set(nodes.flatMap(nodeReads).filter((r) => r && !produced.has(r)));
    const after = new Set(this.g.node.slice(end + 1).flatMap(nodeReads));
    const carried = [...produced].filter((t) => after.has(t));
    const inputs = [...reads].filter((r) => !this.constants.has(r));
    const types = inputs.map((t) => (this.graphInputs.has(t) ? 0 : this.elemType(t)));
    if (types.some((t) => t === undefined)) return null;
    const model = emptyClone(this.float);
    const mg = model.graph!;
    mg.node = nodes;
    mg.initializer = this.g.initializer.filter((t) => reads.has(t.name));
    mg.input = inputs.map((t, i) => this.graphInputs.get(t) ?? typedValueInfo(t, types[i]!));
    const outs = new Set([...taps, ...carried, ...[...produced].filter((t) => this.outputs.has(t))]);
    mg.output = [...outs].map((t) => this.g.output.find((o) => o.name === t) ?? untypedValueInfo(t));
    this.end = end;
    return { model, taps: [...taps], inputs, carried };
  }
}

/**
 * Segments for `groups` (tap groups in graph order) from a fresh `cuts`, or null when they cannot
 * be cut (see GraphCuts.next) or there is a single group. The last segment runs to the end of the
 * graph, so the model outputs come out of the chain too.
 */
export function segmentModels(cuts: GraphCuts, groups: readonly (readonly string[])[]): Segment[] | null {
  if (groups.length < 2) return null;
  const segments: Segment[] = [];
  for (const [k, taps] of groups.entries()) {
    const s = cuts.next(taps, k === groups.length - 1);
    if (!s) return null;
    segments.push(s);
  }
  return segments;
}
