/**
 * Two quantized versions of one model, layer by layer, against ONE shared float reference (the
 * twin of the first, or the user's float model): their grids, how many weight codes differ, their
 * clip rates, and the errors each does, ranked by how differently the two damage each layer.
 */
import type { CompareLayer, CompareReport, CompareSide, LayerReport, Report, TensorReport } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import type { EvaluateOptions, PrepareOptions, Quantized } from '../analysis/types';
import { type DeployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed, requireLoadable } from './deployed';

/** Error power over signal power from an SQNR in dB (0 for an exact match). */
export function relativeErrorPower(sqnrDb: number): number {
  return sqnrDb === Infinity ? 0 : 10 ** (-sqnrDb / 10);
}

const one = <T>(x: T | T[]) => (Array.isArray(x) && x.length === 1 ? x[0] : x);

function side(l: LayerReport, r: Report, q: Quantized): CompareSide {
  const tensor = (name: string) => r.tensors.find((t) => t.kind === 'activation' && t.name === name);
  const grid = (t: TensorReport | undefined) =>
    t?.chosen ? { tensor: t.name, scale: one(t.chosen.scale) as number, zeroPoint: one(t.chosen.zeroPoint) as number, clipRate: t.clipRate } : null;
  const out = grid(tensor(l.output));
  const planned = q.plan.layers.find((x) => x.node.name === l.node);
  const w = planned?.roles.findIndex((role, i) => role.kind === 'weight' && planned.fixed?.has(i)) ?? -1;
  const fixed = w >= 0 ? planned!.fixed!.get(w)! : null;
  return {
    output: out ? { ...out, unusedShare: tensor(l.output)?.grid?.unusedShare ?? null } : null,
    inputs: l.inputs.map((t) => grid(tensor(t))).filter((x) => x !== null),
    weightScale: fixed ? one(fixed.params.map((p) => p.scale)) : null,
    isolatedSqnrDb: l.isolated.integer.sqnrDb,
    accumulatedSqnrDb: l.integer.sqnrDb,
    onlyThisSqnrDb: l.sensitivity?.onlyThis.outputSqnrDb ?? null,
    onlyThisSamples: l.sensitivity?.onlyThis.samples ?? null,
  };
}

/**
 * Weight codes of a layer's (first) weight input in each version: how many differ. Only on the
 * same grid (scales and zero points): codes on different grids differ everywhere and say nothing.
 */
function weightCodes(node: string, qa: Quantized, qb: Quantized): CompareLayer['weightCodes'] {
  const fixedOf = (q: Quantized) => {
    const l = q.plan.layers.find((x) => x.node.name === node);
    const i = l?.roles.findIndex((r, k) => r.kind === 'weight' && l.fixed?.has(k)) ?? -1;
    return i >= 0 ? l!.fixed!.get(i)! : null;
  };
  const fa = fixedOf(qa);
  const fb = fixedOf(qb);
  const sameGrid =
    fa && fb && fa.params.length === fb.params.length && fa.params.every((p, k) => p.scale === fb.params[k].scale && p.zeroPoint === fb.params[k].zeroPoint);
  if (!sameGrid) return null;
  const a = fa.codes;
  const b = fb.codes;
  if (a.length !== b.length) return null;
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ++;
  return { differ, total: a.length };
}

/** Compare two reports of deployed versions measured against the same reference. Pure. */
export function compareReports(ra: Report, rb: Report, qa: Quantized, qb: Quantized, reference: CompareReport['reference']): CompareReport {
  const byA = new Map(ra.layers.map((l) => [l.node, l]));
  const byB = new Map(rb.layers.map((l) => [l.node, l]));
  const names = [...new Set([...byA.keys(), ...byB.keys()])];
  const layers: CompareLayer[] = names.map((node) => {
    const la = byA.get(node);
    const lb = byB.get(node);
    const a = la ? side(la, ra, qa) : null;
    const b = lb ? side(lb, rb, qb) : null;
    const err = (s: CompareSide | null) => (s ? relativeErrorPower(s.isolatedSqnrDb) : 0);
    return {
      node,
      op: (la ?? lb)!.op,
      a,
      b,
      weightCodes: weightCodes(node, qa, qb),
      isolatedErrorDiff: Math.abs(err(a) - err(b)),
      // Only on the same samples: sensitivity measures a layer its pilot cleared on 8 of them, a contender on all.
      onlyThisDiffDb:
        a?.onlyThisSqnrDb != null && b?.onlyThisSqnrDb != null && a.onlyThisSamples === b.onlyThisSamples ? a.onlyThisSqnrDb - b.onlyThisSqnrDb : null,
      rank: 0,
    };
  });
  layers.sort((x, y) => y.isolatedErrorDiff - x.isolatedErrorDiff);
  layers.forEach((l, i) => (l.rank = i + 1));
  const notes: string[] = [];
  if (reference.kind === 'twin-of-a')
    notes.push(
      "Both versions are measured against the float twin of A (A's dequantized weights): A's weight rounding adds no error there, B's does where its codes differ. Pass --float with the original float model for a neutral reference.",
    );
  const missing = [
    ...names.filter((n) => !byA.has(n)).map((n) => `${n} is quantized only in B`),
    ...names.filter((n) => !byB.has(n)).map((n) => `${n} is quantized only in A`),
  ];
  notes.push(...missing);
  for (const [label, r] of [
    ['A', ra],
    ['B', rb],
  ] as const) {
    const u = r.model.quantization?.unmatched;
    const all = u ? [...u.tensors, ...u.layers, ...u.weights] : [];
    if (all.length)
      notes.push(
        `${label}: ${all.length} tensors, layers or weights did not match the reference by name and stay float there: ${all.slice(0, 6).join(', ')}${all.length > 6 ? ', ...' : ''}`,
      );
  }
  const sideInfo = (r: Report) => ({ path: r.model.path, sha256: r.model.sha256, quantization: r.model.quantization ?? null, accuracy: r.accuracy });
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'compare',
    a: sideInfo(ra),
    b: sideInfo(rb),
    reference,
    data: { source: ra.data.source, synthetic: ra.data.synthetic, labels: ra.data.labels },
    samples: ra.samples,
    layers,
    mostDifferent: layers[0]?.isolatedErrorDiff > 0 ? layers[0].node : null,
    notes,
  };
}

/** Analyze both versions as deployed against one reference (A's twin, or `floatPath`) and compare them. */
export async function compareModels(
  a: DeployedModel,
  b: DeployedModel,
  opts: PrepareOptions & EvaluateOptions & { floatPath?: string } = {},
): Promise<CompareReport> {
  await requireLoadable(b);
  const p = await prepareDeployed(a, opts);
  const qa = await quantizeDeployed(p, a, opts);
  const ra = await evaluateDeployed(p, a, qa, opts);
  const qb = await quantizeDeployed(p, b, { ...opts, otherTwin: opts.floatPath ? undefined : a.loaded.path });
  const rb = await evaluateDeployed(p, b, qb, opts);
  const reference: CompareReport['reference'] = opts.floatPath ? { kind: 'user', path: p.loaded.path } : { kind: 'twin-of-a', path: a.loaded.path };
  return compareReports(ra, rb, qa, qb, reference);
}
