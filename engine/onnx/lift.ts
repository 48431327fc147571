/**
 * Lifting tensors out of If / Loop / Scan bodies to main-graph outputs: onnxruntime returns only
 * main-graph outputs, and the analysis needs the values of layers that sit inside bodies.
 *
 *  - If: the tensor becomes an extra output of its branch and of the If node; the other branch
 *    outputs an empty tensor of the same element type (shape [0]). A run whose condition took the
 *    other branch returns that empty tensor: the layer simply contributes nothing for that batch.
 *  - Loop / Scan: the tensor becomes an extra scan output of the body (every iteration's value,
 *    stacked on a new leading axis) and an extra output of the node.
 * Nesting is handled one level at a time, up to the main graph. An If inside a Loop/Scan body is
 * refused (a branch that runs on some iterations only would give scan outputs of different
 * shapes), as are bodies of other ops; the reason comes back per tensor.
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { AttributeProto_AttributeType as AT } from 'onnx-buf';
import { makeNode, untypedValueInfo } from './graph';
import { type ScopedGraph, graphsOf, scopeLabel } from './scopes';
import { typedValueInfo } from './slice';
import { type DT, makeTensor } from './tensor';
import { inferElementTypes } from './typeInfer';

/** How a lifted tensor comes out of the main graph. */
export interface LiftedTensor {
  /** The main-graph output to fetch. */
  output: string;
  /** Inside an If branch: empty ([0]) in runs that took the other branch. */
  conditional: boolean;
  /** Leading axes the enclosing Loop/Scan bodies add (iterations), outermost first. */
  stackedAxes: number;
}

export interface LiftResult {
  lifted: Map<string, LiftedTensor>;
  /** Tensors that cannot be brought out, with the reason. */
  refused: Map<string, string>;
}

const LIFTABLE = new Set(['If', 'Loop', 'Scan']);

/**
 * Make each of `tensors` readable as a main-graph output of `model` (changed in place). Main-graph
 * values are added as outputs as they are. `types` gives element types (inferred when absent).
 */
export function liftTensors(model: ModelProto, tensors: readonly string[], types: Map<string, number> = inferElementTypes(model)): LiftResult {
  const sites = graphsOf(model);
  const definedIn = new Map<string, ScopedGraph>();
  const used = new Set<string>();
  for (const site of sites) {
    const g = site.graph;
    const defs = [...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output)];
    for (const d of defs) if (d && !definedIn.has(d)) definedIn.set(d, site);
    for (const n of g.node) {
      used.add(n.name);
      for (const x of [...n.input, ...n.output]) used.add(x);
    }
    for (const x of defs) used.add(x);
    for (const o of g.output) used.add(o.name);
  }
  const fresh = (base: string) => {
    let name = base;
    for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };
  const main = model.graph!;
  const mainOutputs = new Set(main.output.map((o) => o.name));
  const empties = new Map<string, string>(); // per (branch graph, type): one empty Constant shared
  const graphIds = new Map<GraphProto, number>();
  const result: LiftResult = { lifted: new Map(), refused: new Map() };

  for (const t of new Set(tensors)) {
    const site = definedIn.get(t);
    if (!site) {
      result.refused.set(t, `tensor ${t} is not defined in the model`);
      continue;
    }
    const why = refusal(site);
    if (why) {
      result.refused.set(t, `tensor ${t} ${why}`);
      continue;
    }
    const type = types.get(t);
    if (site.scope.some((s) => s.op === 'If') && !type) {
      result.refused.set(t, `tensor ${t} in ${scopeLabel(site.scope)}: its element type could not be inferred`);
      continue;
    }
    let name = t;
    let at = site;
    let stackedAxes = 0;
    while (at.owner && at.parent) {
      const owner = at.owner;
      exposeInBody(at.graph, name, type, fresh);
      if (owner.opType === 'If') {
        const other = owner.attribute.find((a) => a.type === AT.GRAPH && a.g && a.g !== at.graph)!.g!;
        if (!graphIds.has(other)) graphIds.set(other, graphIds.size);
        const key = `${graphIds.get(other)}|${type}`;
        let e = empties.get(key);
        if (!e) {
          e = fresh(`${name}__empty`);
          other.node.push(makeNode('Constant', [], [e], fresh(`${e}_Constant`), { value: makeTensor(e, type as DT, [0], []) }));
          empties.set(key, e);
        }
        other.output.push(typedValueInfo(e, type!));
      } else {
        stackedAxes++;
        if (owner.opType === 'Scan') appendScanAxis(owner);
      }
      name = fresh(`${t}__lifted`);
      owner.output.push(name);
      at = sites.find((s) => s.graph === at.parent)!;
    }
    if (!mainOutputs.has(name)) {
      main.output.push(untypedValueInfo(name));
      mainOutputs.add(name);
    }
    result.lifted.set(t, { output: name, conditional: site.scope.some((s) => s.op === 'If'), stackedAxes });
  }
  return result;
}

/** Why a tensor in this scope cannot be lifted, or null. */
function refusal(site: ScopedGraph): string | null {
  let loop: string | null = null;
  for (const s of site.scope) {
    if (!LIFTABLE.has(s.op)) return `is inside the ${s.attr} of ${s.op} node ${s.node}, whose bodies QuantLens cannot read out`;
    if (s.op === 'If' && loop)
      return `is inside ${s.node}/${s.attr}, a branch within the body of ${loop}: it may run on some iterations only, so its values cannot be stacked`;
    if (s.op !== 'If') loop = `${s.op} ${s.node}`;
  }
  return null;
}

/**
 * Add `name` as an output of body `g` and return the output's name. A value that is already an
 * output, an input or an initializer goes through an Identity first: a body listing one name twice
 * as an output crashes onnxruntime, and a graph input cannot be an output of the same graph.
 */
function exposeInBody(g: GraphProto, name: string, type: number | undefined, fresh: (b: string) => string): string {
  const direct = !g.output.some((o) => o.name === name) && !g.input.some((i) => i.name === name) && !g.initializer.some((x) => x.name === name);
  let out = name;
  if (!direct || !g.node.some((n) => n.output.includes(name))) {
    out = fresh(`${name}__out`);
    g.node.push(makeNode('Identity', [name], [out], fresh(`${out}_Identity`)));
  }
  g.output.push(type ? typedValueInfo(out, type) : untypedValueInfo(out));
  return out;
}

/** A Scan with explicit scan_output_axes / scan_output_directions needs one more entry each. */
function appendScanAxis(n: NodeProto): void {
  for (const a of n.attribute) {
    if ((a.name === 'scan_output_axes' || a.name === 'scan_output_directions') && a.type === AT.INTS) a.ints.push(0n);
  }
}
