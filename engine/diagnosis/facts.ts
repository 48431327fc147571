/**
 * What the diagnosis reads: a report (or a hand-built fragment of one) plus the graph facts a
 * report does not carry (which layers feed which, the ops between them, per-channel ranges of
 * weights quantized per tensor). Everything here is plain data: the diagnosis modules are pure.
 */
import type { LayerReport, Range, Report, TensorReport } from '../../protocol/report';

/** Graph facts around one layer. */
export interface LayerLinks {
  /** Layers whose output reaches this layer's activation inputs through non-layer ops only. */
  upstream: string[];
  /** The non-layer ops on those paths (e.g. a Softmax between two MatMuls), nearest first. */
  opsBefore: { node: string; op: string }[];
}

/** The report fields the diagnosis reads. */
export type ReportFacts = Pick<Report, 'layers' | 'tensors' | 'config' | 'accuracy'> &
  Partial<Pick<Report, 'platform' | 'integerKernels' | 'primaryMetric' | 'outputs' | 'samples'>>;

export interface DiagnosisFacts {
  report: ReportFacts;
  /** Per layer node; layers missing here have no known upstream. */
  links: Record<string, LayerLinks>;
  /** Per layer node: per-output-channel ranges of a weight quantized PER TENSOR (per-channel weights carry theirs in the report). */
  weightChannels?: Record<string, Range[]>;
}

/** Lookup helpers over the facts. */
export class FactIndex {
  readonly tensors: Map<string, TensorReport>;
  readonly layers: Map<string, LayerReport>;
  readonly order: Map<string, number>;

  constructor(readonly facts: DiagnosisFacts) {
    this.tensors = new Map(facts.report.tensors.map((t) => [t.name, t]));
    this.layers = new Map(facts.report.layers.map((l) => [l.node, l]));
    this.order = new Map(facts.report.layers.map((l, i) => [l.node, i]));
  }

  /** The layer's quantized activation tensors: its activation inputs, then its output. */
  activations(l: LayerReport): TensorReport[] {
    return [...l.inputs, l.output].map((n) => this.tensors.get(n)).filter((t): t is TensorReport => !!t && t.kind === 'activation');
  }

  /** The layer's weight tensor report (named "node:tensor"), if it has one. */
  weight(l: LayerReport): TensorReport | undefined {
    const prefix = `${l.node}:`;
    for (const t of this.facts.report.tensors) if (t.kind === 'weight' && t.name.startsWith(prefix)) return t;
    return undefined;
  }

  links(node: string): LayerLinks {
    return this.facts.links[node] ?? { upstream: [], opsBefore: [] };
  }

  /** Every layer upstream of `node` (transitively), nearest first. */
  ancestors(node: string): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    const queue = [...this.links(node).upstream];
    while (queue.length) {
      const n = queue.shift()!;
      if (seen.has(n)) continue;
      seen.add(n);
      out.push(n);
      queue.push(...this.links(n).upstream);
    }
    return out;
  }
}
