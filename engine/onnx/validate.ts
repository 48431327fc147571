/**
 * Structural checks of a decoded model, before onnxruntime sees it, so a malformed file ends in one
 * line naming the file and the node or tensor at fault rather than in a stack trace: the graph has
 * outputs; every value read is defined (in this graph or, for subgraphs, an enclosing one); every
 * value is defined once (ONNX graphs are SSA); nodes form no cycle; each tensor's stored bytes or
 * typed values match its shape and type; graph inputs declare sane shapes. Pure: no file access.
 *
 * What onnxruntime checks well itself (unknown ops, attributes, type and shape inference) is left
 * to it; runtime/session.ts turns its errors into one line.
 */
import type { GraphProto, ModelProto, TensorProto } from 'onnx-buf';
import { TensorProto_DataLocation } from 'onnx-buf';
import { InputError } from '../errors';
import { elementCountOf, elementTypeName, isKnownElementType, rawBytesFor, typedEntries, typedFieldFor } from './elementTypes';
import { nodeLabel, subgraphScope, subgraphsOf, tensorSites } from './walk';

/** onnxruntime (and the typed arrays data is fed through) index a tensor with 32-bit sizes. */
export const MAX_INPUT_ELEMENTS = 2 ** 31;

/** Throw an InputError naming `file` and the culprit for the first structural problem found. */
export function validateModel(model: ModelProto, file: string): void {
  const g = model.graph;
  if (!g) throw new InputError(`${file} holds no graph`);
  if (g.output.length === 0) throw new InputError(`${file}: the graph declares no outputs, so there is nothing to compare; refused`);
  checkInputs(g, file);
  checkGraph(g, file, '', new Set());
  for (const { tensor, where } of tensorSites(model)) checkTensor(tensor, where, file);
}

function checkInputs(g: GraphProto, file: string): void {
  const inits = new Set(g.initializer.map((t) => t.name));
  for (const inp of g.input) {
    if (inits.has(inp.name)) continue; // IR < 4 lists weights as inputs too: they are not fed
    const tt = inp.type?.value.case === 'tensorType' ? inp.type.value.value : undefined;
    if (!tt) continue;
    if (tt.elemType !== 0 && !isKnownElementType(tt.elemType)) {
      throw new InputError(`${file}: input ${inp.name} has element type ${elementTypeName(tt.elemType)}`);
    }
    const dims = tt.shape?.dim ?? [];
    const shown = dims.map((d) => (d.value.case === 'dimValue' ? String(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '?'));
    let fixed = 1;
    for (const d of dims) {
      if (d.value.case !== 'dimValue') continue;
      const v = Number(d.value.value);
      if (v < 0) throw new InputError(`${file}: input ${inp.name} declares shape [${shown.join(',')}] with a negative dimension`);
      fixed *= v;
    }
    if (fixed > MAX_INPUT_ELEMENTS) {
      throw new InputError(
        `${file}: input ${inp.name} declares shape [${shown.join(',')}]: ${fixed.toExponential(2)} elements, over the 2^31 one tensor can hold; refused`,
      );
    }
  }
}

/** Names a graph defines itself (inputs, initializers, node outputs), each once; node names unique. */
function definitions(g: GraphProto, file: string, scope: string): { defined: Set<string>; producer: Map<string, number> } {
  const fail = (msg: string): never => {
    throw new InputError(`${file}: ${msg}${scope}`);
  };
  const inputs = new Set<string>();
  for (const i of g.input) {
    if (inputs.has(i.name)) fail(`graph input ${i.name} is declared twice`);
    inputs.add(i.name);
  }
  const inits = new Set<string>();
  const initNames = [...g.initializer.map((t) => t.name), ...g.sparseInitializer.map((s) => s.values?.name ?? '')];
  for (const name of initNames) {
    if (inits.has(name)) fail(`initializer ${name} is defined twice`);
    inits.add(name); // an initializer may also be listed as a graph input (IR < 4 did that)
  }
  const defined = new Set([...inputs, ...inits]);
  const producer = new Map<string, number>();
  const named = new Map<string, number>();
  g.node.forEach((n, i) => {
    // onnxruntime refuses these too; here the message names the file. Unnamed nodes are fine.
    const twin = n.name ? named.get(n.name) : undefined;
    if (twin !== undefined) fail(`node name ${n.name} is used by two nodes, #${twin} (${g.node[twin].opType}) and #${i} (${n.opType})`);
    if (n.name) named.set(n.name, i);
    for (const o of n.output) {
      if (!o) continue;
      const prev = producer.get(o);
      if (prev !== undefined) fail(`tensor ${o} is produced twice, by ${nodeLabel(g.node[prev], prev)} and by ${nodeLabel(n, i)}`);
      if (inputs.has(o)) fail(`${nodeLabel(n, i)} writes ${o}, which is already a graph input`);
      if (inits.has(o)) fail(`${nodeLabel(n, i)} writes ${o}, which is already an initializer`);
      producer.set(o, i);
      defined.add(o);
    }
  });
  return { defined, producer };
}

function checkGraph(g: GraphProto, file: string, scope: string, outer: ReadonlySet<string>): void {
  const { defined, producer } = definitions(g, file, scope);
  const known = (name: string) => defined.has(name) || outer.has(name);
  const source = scope ? 'no node, initializer or input of this subgraph or an enclosing graph' : 'no node, initializer or graph input';
  g.node.forEach((n, i) => {
    for (const name of n.input) {
      if (name && !known(name)) throw new InputError(`${file}: ${nodeLabel(n, i)} reads ${name}, which ${source} produces${scope}`);
    }
  });
  for (const o of g.output) {
    if (!o.name) throw new InputError(`${file}: a graph output has no name${scope}`);
    if (!known(o.name)) throw new InputError(`${file}: graph output ${o.name} is produced by ${source}${scope}`);
  }
  const visible = new Set([...outer, ...defined]);
  g.node.forEach((n, i) => {
    for (const { attr, graph } of subgraphsOf(n)) checkGraph(graph, file, subgraphScope(scope, attr, n, i), visible);
  });
  checkAcyclic(g, file, scope, producer);
}

/** Every value a subgraph reads anywhere inside it (its own definitions included: filtered later). */
function namesRead(g: GraphProto, into: Set<string>): Set<string> {
  for (const n of g.node) {
    for (const i of n.input) if (i) into.add(i);
    for (const { graph } of subgraphsOf(n)) namesRead(graph, into);
  }
  for (const o of g.output) into.add(o.name);
  return into;
}

/**
 * Kahn's algorithm over the nodes; what never becomes ready sits on or behind a cycle. A subgraph
 * that reads a value of this graph makes its node depend on that value's producer too.
 */
function checkAcyclic(g: GraphProto, file: string, scope: string, producer: Map<string, number>): void {
  const deps = g.node.map((n) => {
    const names = new Set(n.input);
    for (const { graph } of subgraphsOf(n)) namesRead(graph, names);
    const from = new Set<number>();
    for (const name of names) {
      const p = name ? producer.get(name) : undefined;
      if (p !== undefined) from.add(p);
    }
    return from;
  });
  const users: number[][] = g.node.map(() => []);
  const waiting = deps.map((d) => d.size);
  deps.forEach((d, i) => d.forEach((p) => users[p].push(i)));
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  let done = 0;
  while (ready.length) {
    const i = ready.pop()!;
    done++;
    for (const u of users[i]) if (--waiting[u] === 0) ready.push(u);
  }
  if (done === g.node.length) return;
  // Walk back from a stuck node through stuck producers until one repeats: that loop is a cycle.
  let at = waiting.findIndex((w) => w > 0);
  const seen = new Map<number, number>();
  const path: number[] = [];
  while (!seen.has(at)) {
    seen.set(at, path.length);
    path.push(at);
    at = [...deps[at]].find((p) => waiting[p] > 0)!;
  }
  const cycle = path.slice(seen.get(at)).reverse();
  const shown = [...cycle, cycle[0]].map((k) => nodeLabel(g.node[k], k)).join(' -> ');
  throw new InputError(`${file}: the graph has a cycle: ${shown}; ONNX graphs must be acyclic${scope}`);
}

function checkTensor(t: TensorProto, where: string, file: string): void {
  const fail = (msg: string): never => {
    throw new InputError(`${file}: ${where} ${msg}`);
  };
  if (!isKnownElementType(t.dataType)) fail(`has element type ${elementTypeName(t.dataType)}`);
  const dims = t.dims.map(Number);
  const shape = `[${dims.join(',')}]`;
  if (dims.some((d) => d < 0)) fail(`has a negative dimension in its shape ${shape}`);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) return; // checked against its file when loaded
  const n = elementCountOf(dims);
  if (t.rawData.length > 0) {
    const need = rawBytesFor(t.dataType, n);
    if (need === undefined) fail(`has element type ${elementTypeName(t.dataType)}, which has no raw_data form, but holds raw_data`);
    if (t.rawData.length !== need) {
      fail(`holds ${t.rawData.length} bytes of raw_data, but its shape ${shape} of ${elementTypeName(t.dataType)} needs ${need}`);
    }
    return;
  }
  const typed = typedFieldFor(t.dataType, n)!;
  const have = typedEntries(t);
  if (have !== typed.entries)
    fail(`holds ${have} ${snake(typed.field)} values, but its shape ${shape} of ${elementTypeName(t.dataType)} needs ${typed.entries}`);
}

/** floatData -> float_data: the field as the ONNX spec spells it. */
function snake(field: string): string {
  return field.replace(/Data$/, '_data');
}
