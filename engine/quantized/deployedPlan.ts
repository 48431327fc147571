/**
 * The plan of a model that is already quantized: not what a configuration WOULD quantize, but what
 * the deployed model DOES quantize. Layers are the float operators of the reference graph that the
 * deployed model runs quantized; every activation with a deployed grid gets its Q/DQ pair; weights
 * carry their deployed codes; inputs the deployed model keeps float stay float.
 */
import { GraphIndex, type GraphProto, type NodeProto } from '../onnx/graph';
import { COMPUTE_OPS, type FixedCodes, type InputRole, type PlannedLayer, type QuantPlan, planQuantization } from '../quantize/plan';
import type { QuantParams } from '../quantize/scheme';

/** The deployed grids expressed on a reference graph's names (the twin's, or the user's float model's). */
export interface DeployedGrids {
  /** Activation tensor -> deployed grid. */
  activations: Map<string, QuantParams>;
  /** Layer node -> input index -> the deployed codes of that constant input. */
  fixed: Map<string, Map<number, FixedCodes>>;
  /** Layer node -> the tensor holding its deployed output grid, where that is not its own output. */
  layerOutput: Map<string, string>;
  /** Nodes a QOperator operator stood for (QDQ layers are recognised from their grids). */
  quantized: Set<string>;
  dynamicNodes: Set<string>;
  blockedNodes: Set<string>;
}

/** The nodes the deployed grids name as layers: QOperator nodes, nodes with codes, nodes with a separate output grid. */
export function layerNodesOf(d: Pick<DeployedGrids, 'quantized' | 'fixed' | 'layerOutput'>): Set<string> {
  return new Set([...d.quantized, ...d.fixed.keys(), ...d.layerOutput.keys()]);
}

/** Operators reported as layers when the deployed model quantizes them. */
const LAYER_OPS = new Set([...COMPUTE_OPS, 'Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool', 'Sigmoid', 'LeakyRelu', 'Softmax', 'ReduceMean']);

function defaultRoles(n: NodeProto, idx: GraphIndex): InputRole[] {
  return n.input.map((t) => (t && idx.isConstant(t) ? { kind: 'weight', axis: null } : { kind: 'activation' }));
}

/** Is `n` quantized in the deployed model: a QOperator node, or a float node with deployed grids or codes on its inputs or output. */
function isDeployed(n: NodeProto, d: DeployedGrids, idx: GraphIndex): boolean {
  if (d.quantized.has(n.name)) return true;
  if (d.fixed.has(n.name)) return true;
  const out = d.layerOutput.get(n.name) ?? n.output[0];
  return d.activations.has(out) || n.input.some((t) => t && !idx.isConstant(t) && d.activations.has(t));
}

export function deployedPlan(graph: GraphProto, d: DeployedGrids): QuantPlan {
  const idx = new GraphIndex(graph);
  const planned = planQuantization(graph, 'extended', []);
  const byNode = new Map(planned.layers.map((l) => [l.node, l]));
  const refused = new Map(planned.skipped.map((s) => [s.node, s.reason]));
  const layers: PlannedLayer[] = [];
  const skipped: QuantPlan['skipped'] = [];
  const skip = (n: NodeProto, reason: string) => skipped.push({ node: n.name, op: n.opType, reason });
  for (const n of graph.node) {
    if (!LAYER_OPS.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    if (!isDeployed(n, d, idx)) {
      if (COMPUTE_OPS.has(n.opType)) skip(n, 'the deployed model runs it in float');
      continue;
    }
    if (d.dynamicNodes.has(n.name)) {
      skip(
        n,
        'the deployed model quantizes its input at run time (DynamicQuantizeLinear: a new grid per batch), which a fixed Q/DQ cannot simulate; the analysis keeps its deployed weights and runs its activations in float',
      );
      continue;
    }
    if (d.blockedNodes.has(n.name)) {
      skip(n, 'block-quantized weights with float activations: the reference holds exactly the deployed weight values, so this layer adds no error against it');
      continue;
    }
    const base = byNode.get(n);
    if (!base && refused.has(n.name)) {
      skip(n, refused.get(n.name)!);
      continue;
    }
    const fixed = d.fixed.get(n.name) ?? new Map<number, FixedCodes>();
    const roles: InputRole[] = (base?.roles ?? defaultRoles(n, idx)).map((r, i) => {
      const t = n.input[i];
      if (r.kind === 'activation') return d.activations.has(t) ? r : { kind: 'float' };
      if (r.kind === 'weight' || r.kind === 'bias') return fixed.has(i) ? r : { kind: 'float' };
      return r;
    });
    // A bias is written at its deployed scale only beside its deployed weight.
    roles.forEach((r, i) => {
      if (r.kind === 'bias' && roles[r.weightInput]?.kind !== 'weight') roles[i] = { kind: 'float' };
    });
    const output = d.layerOutput.get(n.name) ?? n.output[0];
    if (!d.activations.has(output)) {
      skip(
        n,
        'its output is not quantized in the deployed model (it stays float); layers are measured at their quantized outputs, its effect is in the model outputs',
      );
      continue;
    }
    const kept = new Map([...fixed].filter(([i]) => roles[i]?.kind === 'weight' || roles[i]?.kind === 'bias'));
    // Deployed plans cover the main graph only (quantized bodies are not read back yet).
    layers.push({ node: n, roles, output, shareInputParams: false, scope: [], ...(kept.size ? { fixed: kept } : {}) });
  }
  return { layers, activations: inGraphOrder(graph, d.activations), skipped };
}

/** Every tensor with a deployed grid, graph inputs first, then in the order nodes produce them. */
function inGraphOrder(graph: GraphProto, grids: Map<string, QuantParams>): string[] {
  const order = new Set([...graph.input.map((i) => i.name), ...graph.node.flatMap((n) => n.output)]);
  return [...order].filter((t) => grids.has(t));
}
