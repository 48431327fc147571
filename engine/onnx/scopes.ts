/**
 * Graphs inside graphs: the bodies of If (then_branch / else_branch), Loop and Scan (body), at any
 * depth, each with the chain of control-flow nodes that leads to it (its scope). The analysis
 * treats a layer in a body like a top-level one; these helpers give it what it needs:
 *   - `graphsOf`: every graph of a model with its scope, parents before children;
 *   - `normalizeScopes`: every node named, subgraph nodes renamed to a qualified name
 *     (`If_0/then_branch/Conv_3`), value names made unique model-wide (sibling branches may reuse a
 *     name; the analysis keys statistics by tensor name), Constant nodes hoisted into the
 *     initializers of the graph they sit in;
 *   - `ScopedIndex`: constants and initializers visible from a graph (its own and its ancestors').
 * Only the analysis's working copy is changed, never the user's model.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { GraphIndex, allocatorOver, collectNames, hoistGraphConstants } from './graph';
import { subgraphsOf } from './walk';

/** One step into a subgraph: the control-flow node (by its qualified name) and the attribute. */
export interface ScopeStep {
  node: string;
  op: string;
  attr: string;
}

export interface ScopedGraph {
  graph: GraphProto;
  /** Outermost first; empty for the main graph. */
  scope: ScopeStep[];
  /** The graph that holds the control-flow node (undefined for the main graph). */
  parent?: GraphProto;
  /** The control-flow node this graph belongs to. */
  owner?: NodeProto;
}

/** Every graph of `model` (main graph first, then each body, depth first) with its scope. */
export function graphsOf(model: ModelProto): ScopedGraph[] {
  return model.graph ? graphsIn(model.graph) : [];
}

/** `main` and every body inside it, at any depth, as `graphsOf`. */
export function graphsIn(main: GraphProto): ScopedGraph[] {
  const out: ScopedGraph[] = [];
  const visit = (sg: ScopedGraph) => {
    out.push(sg);
    for (const n of sg.graph.node) {
      for (const { attr: a, graph } of subgraphsOf(n))
        visit({ graph, scope: [...sg.scope, { node: n.name, op: n.opType, attr: a }], parent: sg.graph, owner: n });
    }
  };
  visit({ graph: main, scope: [] });
  return out;
}

/** `If_0/then_branch`: where a body sits (its owner's qualified name already holds the outer scopes). */
export function scopeLabel(scope: readonly ScopeStep[]): string {
  const last = scope[scope.length - 1];
  return last ? `${last.node}/${last.attr}` : 'main graph';
}

/** The prefix a body's nodes get: the owner's (qualified) name and the attribute. */
function prefixOf(owner: NodeProto, a: string): string {
  return `${owner.name}/${a}/`;
}

/**
 * Name every node, qualify subgraph node names, make value names unique model-wide and hoist
 * Constant nodes at every depth. Returns qualified name -> the node's name in the file ('' when
 * it had none), for messages and for exclusions given by the file's name.
 */
export function normalizeScopes(model: ModelProto): Map<string, string> {
  const original = new Map<string, string>();
  const g = model.graph!;
  hoistGraphConstants(g);
  const usedNodes = new Set<string>();
  const usedValues = new Set<string>();
  nameGraph(g, '', usedNodes, usedValues, original, new Map());
  return original;
}

function fresh(used: Set<string>, base: string): string {
  let name = base;
  for (let k = 1; used.has(name); k++) name = `${base}_${k}`;
  used.add(name);
  return name;
}

/**
 * Names nodes (qualified by `prefix`) and renames values that an earlier graph already defined
 * (only possible in sibling or nested bodies), rewriting reads in this graph and its bodies.
 */
function nameGraph(
  g: GraphProto,
  prefix: string,
  usedNodes: Set<string>,
  usedValues: Set<string>,
  original: Map<string, string>,
  renamed: Map<string, string>,
): void {
  const local = new Map(renamed);
  const define = (name: string): string => {
    if (!name) return name;
    if (!usedValues.has(name)) {
      usedValues.add(name);
      local.delete(name); // a local definition shadows an outer rename
      return name;
    }
    const n = fresh(usedValues, name);
    local.set(name, n);
    return n;
  };
  for (const i of g.input) i.name = define(i.name);
  for (const t of g.initializer) t.name = define(t.name);
  g.node.forEach((n, k) => {
    n.input = n.input.map((x) => (x ? (local.get(x) ?? x) : x));
    const file = n.name;
    const base = prefix + (n.name || `${n.opType}_${k}`);
    n.name = fresh(usedNodes, base);
    original.set(n.name, file);
    for (const { attr: a, graph } of subgraphsOf(n)) {
      hoistGraphConstants(graph);
      nameGraph(graph, prefixOf(n, a), usedNodes, usedValues, original, local);
    }
    n.output = n.output.map(define);
  });
  // graph outputs may name values defined above
  for (const o of g.output) o.name = local.get(o.name) ?? o.name;
}

/**
 * What a node in one graph can see: its graph's index, and the constants of every enclosing graph
 * (a body may read weights from the enclosing scope).
 */
export class ScopedIndex {
  readonly local: GraphIndex;
  constructor(
    graph: GraphProto,
    readonly outer: ScopedIndex | null = null,
  ) {
    this.local = new GraphIndex(graph);
  }

  /** Defined in this graph (input, initializer or node output)? Then outer names are shadowed. */
  private definesLocally(name: string): boolean {
    return this.local.initializers.has(name) || this.local.producer.has(name) || this.local.graph.input.some((i) => i.name === name);
  }

  isConstant(name: string): boolean {
    if (this.local.isConstant(name)) return true;
    if (this.definesLocally(name)) return false;
    return this.outer?.isConstant(name) ?? false;
  }

  initializer(name: string): TensorProto | undefined {
    return this.local.initializers.get(name) ?? (this.definesLocally(name) ? undefined : this.outer?.initializer(name));
  }
}

/** Every initializer at any depth, by name (names are unique model-wide after normalizeScopes). */
export function allInitializers(model: ModelProto): Map<string, TensorProto> {
  const out = new Map<string, TensorProto>();
  for (const { graph } of graphsOf(model)) for (const t of graph.initializer) if (!out.has(t.name)) out.set(t.name, t);
  return out;
}

/** Qualified node name -> the graph it is in, its scope, and the node. */
export function nodeSites(model: ModelProto): Map<string, { node: NodeProto; site: ScopedGraph }> {
  const out = new Map<string, { node: NodeProto; site: ScopedGraph }>();
  for (const site of graphsOf(model)) for (const node of site.graph.node) out.set(node.name, { node, site });
  return out;
}

/** Unique-name generator over every graph of the model (names added in a body must not shadow). */
export function modelNameAllocator(model: ModelProto): (base: string) => string {
  const used = new Set<string>();
  for (const { graph } of graphsOf(model)) collectNames(graph, used);
  return allocatorOver(used);
}

/**
 * Give a body's nodes back the names they have in the user's file (`normalizeScopes`' map), for a
 * model written from the analysis's working copy: a user who diffs the written file against the
 * original, or excludes a node by the name a viewer shows, finds it under its own name. Nodes the
 * file left unnamed keep the name the analysis gave them, and added nodes (Q/DQ) keep theirs.
 */
export function restoreFileNames(model: ModelProto, fileNames: ReadonlyMap<string, string>): void {
  for (const { graph, scope } of graphsOf(model)) {
    if (scope.length === 0) continue; // top-level names are never changed
    for (const n of graph.node) {
      const f = fileNames.get(n.name);
      if (f) n.name = f;
    }
  }
}
