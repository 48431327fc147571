/**
 * Stage 4, report: what the evaluation measured, as the report the CLI writes and the extension
 * shows (protocol/report.ts, documented in docs/report-schema.md).
 */
import { biasSaturationWarnings, clippingWarnings } from './clipWarnings';
import type { CalibrationMethod, LayerReport, ModelOutputMetrics, Platform, Range, Report, TensorReport, Warning } from '../../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../../protocol/report';
import { ActivationStats, displayHistogram } from '../calibration/histogram';
import { allInitializers } from '../onnx/scopes';
import { opsetOf } from '../onnx/model';
import { readFloatTensor } from '../onnx/tensor';
import type { WeightQuant } from '../quantize/qdqRewrite';
import { representableRange } from '../quantize/scheme';
import { ortVersion } from '../runtime/session';
import type { Evaluation } from './evaluation';
import { ERR_SPAN } from './layerCompare';
import { commonSamples, leastShare } from './integerDiffs';
import type { SensitivityResult } from './sensitivity';
import type { Prepared, Quantized } from './types';
import { choosePrimaryMetric } from './primaryMetric';
import { platform } from './platform';
import { type CurvePoint, downsampleKeepingMinima, nearestIndex } from './curveDownsample';
import { clipShare } from './clipRate';
import { gridUse } from './gridUse';
import { fedBackOutputs } from '../data/inputs';

export const TOOL_VERSION = '0.1.0';

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export function buildReport(p: Prepared, q: Quantized, e: Evaluation, sens: SensitivityResult | null, targetCpu: Platform['target'] = 'this'): Report {
  const { config, plan } = q;
  const labels = p.data.labels;
  const hasLabels = labels !== null;
  const summaries = { sim: e.out.sim.outputs.summaries(), int: e.out.int.outputs.summaries() };
  // Intervals come from the per-sample comparison of the first output when it holds class scores
  // (the same top-1 and agreement the counters give, now with their uncertainty).
  const classOf = (k: 'sim' | 'int') => summaries[k].find((o) => o.name === p.outputs[0])?.classifier ?? null;
  const outMetrics = (k: 'sim' | 'int'): ModelOutputMetrics => {
    const c = classOf(k);
    return {
      top1: e.out[k].top1.top1(hasLabels),
      agreement: e.out[k].top1.agreement(),
      outputSqnrDb: e.out[k].outputs.overallSqnrDb(),
      top1Interval: c?.labelled?.candidate ?? null,
      ...(c ? { agreementInterval: c.top1Agreement } : {}),
      samples: p.data.samples,
    };
  };
  const floatTop = e.floatTop1.top1(hasLabels);
  const integer = outMetrics('int');
  const labelledInt = classOf('int')?.labelled ?? null;
  const primaryMetric = summaries.int.length ? choosePrimaryMetric(summaries.int, e.out.int.user?.summary() ?? null, fedBackOutputs(p.data.states)) : null;
  const diffByLayer = new Map(
    e.diffFeeds.map((f) => [f.layer, { ...f.diff.result(), samples: e.diffSeen.get(f.layer) ?? 0, share: e.diffShares.get(f.layer) ?? 1 }]),
  );
  const layers: LayerReport[] = plan.layers.map((l) => {
    const a = e.layerAcc.get(l.node.name)!;
    return {
      node: l.node.name,
      op: l.node.opType,
      output: l.output,
      inputs: l.node.input.filter((_, i) => l.roles[i]?.kind === 'activation'),
      simulated: a.sim.result(),
      integer: a.int.result(),
      isolated: { simulated: a.isoSim.result(), integer: a.isoInt.result() },
      simVsIntMismatch: a.n ? a.mismatch / a.n : 0,
      simVsIntMaxLsb: a.maxLsb,
      errorHistogram: { lsb: Array.from(a.errHist, (_, i) => i - ERR_SPAN), counts: Array.from(a.errHist) },
      integerKernel: e.kernels.byLayer.get(l.node.name) ?? null,
      deployedKernel: e.deployed.byLayer.get(l.node.name) ?? null,
      integerDiff: diffByLayer.get(l.node.name) ?? null,
      sensitivity: sens?.layers.get(l.node.name) ?? null,
    };
  });
  const tensors = [...activationReports(p, q), ...weightReports(p, q, e.weights)];
  const warnings = [...p.warnings, ...planWarnings(q, layers, e.shift !== 0), ...clippingWarnings(p, q), ...biasSaturationWarnings(e.weights), ...e.warnings];
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    tool: { name: 'quantlens', version: TOOL_VERSION, onnxruntime: ortVersion },
    createdAt: new Date().toISOString(),
    model: {
      path: p.loaded.path,
      sha256: p.loaded.sha256,
      opset: opsetOf(p.loaded.proto),
      producer: `${p.loaded.proto.producerName} ${p.loaded.proto.producerVersion}`.trim(),
      nodes: p.float.graph!.node.length,
      quantization: q.quantization ?? { kind: 'float', ops: {}, reference: 'self', notes: [] },
    },
    data: {
      source: p.data.source,
      synthetic: p.data.synthetic,
      labels: hasLabels,
      inputs: p.data.description ?? p.data.inputs.map((i) => ({ name: i.name, shape: i.shape })),
      ...(p.data.states?.length ? { states: 'float-model' as const } : {}),
    },
    samples: p.data.samples,
    config,
    tensors,
    layers,
    accuracy: {
      float: { top1: floatTop, agreement: 1, top1Interval: labelledInt?.reference ?? null },
      simulated: outMetrics('sim'),
      integer,
      dropPoints: floatTop !== null && integer.top1 !== null ? round2((floatTop - integer.top1) * 100) : null,
      dropInterval: labelledInt?.dropPoints ?? null,
      mcnemarP: labelledInt?.mcnemarP ?? null,
    },
    outputs: summaries.int,
    primaryMetric,
    diagnosis: null,
    platform: platform(targetCpu),
    integerKernels: e.kernels.counts,
    deployedKernels: e.deployed.counts,
    integerEncoding: e.shift
      ? `the analysis ran activations as uint8 with zero point +${e.shift} (exactly equivalent to the signed symmetric grid) so onnxruntime's x86 integer kernels execute them; the written file keeps the configured grid (see deployedKernel per layer)`
      : 'as configured',
    integerDiffSamples: commonSamples(e.diffSeen),
    integerDiffShare: leastShare(e.diffShares),
    detailSamples: e.detailSamples,
    isolatedSamples: e.isolatedSamples,
    sensitivityInfo: sens ? { samples: sens.samples, method: sens.method, reason: sens.reason } : null,
    warnings,
    timings: e.timings,
  };
}

function planWarnings(q: Quantized, layers: LayerReport[], transformed: boolean): Warning[] {
  const w: Warning[] = q.plan.skipped.map((s) => ({
    code: s.code ?? 'layer-not-quantized',
    node: s.node,
    message: `${s.op} ${s.node} stays float: ${s.reason}`,
  }));
  for (const l of layers) {
    if (!l.integerKernel) {
      w.push({
        code: 'no-integer-kernel',
        node: l.node,
        message: `onnxruntime ran ${l.op} ${l.node} in float between Q/DQ (no fused integer kernel) in the integer session`,
      });
    } else if (transformed && !l.deployedKernel) {
      w.push({
        code: 'not-fused-in-written-file',
        node: l.node,
        message: `${l.op} ${l.node}: in ${q.quantization ? 'this file' : 'the file quantize writes'} (${q.config.activations.signed ? 'int8' : 'uint8'} activations) onnxruntime CPU runs it in float between Q/DQ; the analysis measured integer kernels on the equivalent uint8 grid. A ${q.config.preset} deployment fuses it.`,
      });
    }
  }
  return w;
}

function activationReports(p: Prepared, q: Quantized): TensorReport[] {
  return q.plan.activations.flatMap((name) => {
    const s = p.stats.get(name);
    const th = q.thresholds.get(name);
    const params = q.actParams.get(name);
    if (!s || !th || !params) return [];
    const clip = clipShare(s, params);
    return [
      {
        name,
        kind: 'activation' as const,
        min: s.count ? s.min : 0,
        max: s.count ? s.max : 0,
        count: s.count,
        degenerate: s.degenerate,
        nanCount: s.nanCount,
        infCount: s.infCount,
        histogram: displayHistogram(s),
        thresholds: th.thresholds,
        klCurve: klForReport(th.klCurve, th.thresholds.entropy),
        chosen: {
          method: q.config.tensorOverrides?.find((o) => o.tensor === name)?.calibration ?? q.config.calibration,
          range: representableRange(params),
          scale: params.scale,
          zeroPoint: params.zeroPoint,
        },
        clipRate: clip.rate,
        clipRateBounds: { low: clip.low, high: clip.high },
        grid: gridUse(s, params),
      },
    ];
  });
}

/** Points of the KL curve the report carries (the search evaluates ~2,000). */
export const KL_CURVE_POINTS = 512;

/** The KL curve, downsampled keeping its minima and the point at the entropy threshold (amax = max |range|). */
function klForReport(curve: CurvePoint[], entropy: Range | undefined): CurvePoint[] {
  const keep = entropy ? [nearestIndex(curve, Math.max(Math.abs(entropy.lo), Math.abs(entropy.hi)))] : [];
  return downsampleKeepingMinima(curve, KL_CURVE_POINTS, keep);
}

function weightReports(p: Prepared, q: Quantized, weights: WeightQuant[]): TensorReport[] {
  // weights of layers inside If/Loop/Scan bodies live in their bodies
  const prepInits = allInitializers(q.prepared);
  const floatInits = allInitializers(p.float);
  return weights.map((wq) => {
    const w = readFloatTensor(prepInits.get(wq.tensor)!, p.loaded.dir);
    const s = new ActivationStats();
    s.add(w.data);
    const fold = q.folds.find((f) => f.conv === wq.layer);
    let before: { lo: number; hi: number }[] | undefined;
    if (fold && wq.axis !== null) {
      const orig = readFloatTensor(floatInits.get(fold.originalWeight)!, p.loaded.dir);
      const per = orig.data.length / orig.dims[0];
      before = Array.from({ length: orig.dims[0] }, (_, c) => {
        let lo = Infinity,
          hi = -Infinity;
        for (let k = c * per; k < (c + 1) * per; k++) {
          lo = Math.min(lo, orig.data[k]);
          hi = Math.max(hi, orig.data[k]);
        }
        return { lo, hi };
      });
    }
    return {
      name: `${wq.layer}:${wq.tensor}`,
      kind: 'weight' as const,
      min: s.min,
      max: s.max,
      count: s.count,
      degenerate: s.degenerate,
      nanCount: s.nanCount,
      infCount: s.infCount,
      histogram: displayHistogram(s),
      thresholds: { minmax: { lo: s.min, hi: s.max } } as Partial<Record<CalibrationMethod, { lo: number; hi: number }>>,
      chosen: {
        method: 'minmax' as const,
        range: { lo: s.min, hi: s.max },
        scale: wq.axis === null ? wq.params[0].scale : wq.params.map((x) => x.scale),
        zeroPoint: wq.axis === null ? wq.params[0].zeroPoint : wq.params.map((x) => x.zeroPoint),
      },
      clipRate: wq.clipRate,
      channelRanges: wq.axis === null ? undefined : wq.ranges,
      channelRangesBeforeFold: before,
    };
  });
}
