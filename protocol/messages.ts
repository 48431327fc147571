/**
 * Every message between the three QuantLens processes, declared once:
 *   host (extension/) <-> engine (engine/server.ts): LSP custom requests over IPC;
 *   host <-> webview (webview/): postMessage.
 * All three sides import these types; nothing here depends on vscode or the DOM.
 */
import { z } from 'zod';
import type { CompareReport, LayerOverride, MixedPrecisionResult, QuantConfig, Range, Report, SweepReport, TensorOverride } from './report';

/**
 * A typed JSON-RPC request: the method name, the schema its params must satisfy (the engine
 * validates every request against it before touching anything) and phantom param/result types.
 */
export interface RequestDef<P, R> {
  readonly method: string;
  readonly params: z.ZodType<P>;
  readonly __types?: [P, R];
}
const request = <P, R>(method: string, params: z.ZodType<P>): RequestDef<P, R> => ({ method, params });

// ---------------------------------------------------------------- request schemas

const scheme = {
  bits: z.union([z.literal(4), z.literal(8), z.literal(16)]),
  signed: z.boolean(),
  symmetric: z.boolean(),
  narrowRange: z.boolean(),
  powerOfTwo: z.boolean(),
};

/** QuantConfig as a schema; `satisfies` keeps it in step with the interface in report.ts. */
export const QuantConfigSchema = z.strictObject({
  preset: z.enum(['tensorrt', 'ort-cpu', 'qnn', 'power-of-two']),
  calibration: z.enum(['minmax', 'ema', 'percentile', 'entropy', 'mse']),
  percentile: z.number().gt(0).lte(100),
  weights: z.strictObject({ ...scheme, perChannel: z.boolean() }),
  activations: z.strictObject(scheme),
  placement: z.enum(['compute', 'extended']),
  exclude: z.array(z.string()).max(100_000),
  foldBatchNorm: z.boolean(),
  tensorOverrides: z
    .array(
      z.strictObject({
        tensor: z.string(),
        calibration: z.enum(['minmax', 'ema', 'percentile', 'entropy', 'mse']).optional(),
        percentile: z.number().gt(0).lte(100).optional(),
        range: z
          .strictObject({ lo: z.number(), hi: z.number() })
          .refine((r) => r.lo <= r.hi, 'lo must not exceed hi')
          .optional(),
        bits: scheme.bits.optional(),
      }),
    )
    .max(100_000)
    .optional(),
  layerOverrides: z
    .array(
      z.strictObject({
        node: z.string(),
        weightBits: scheme.bits.optional(),
        perChannel: z.boolean().optional(),
        activationBits: scheme.bits.optional(),
      }),
    )
    .max(100_000)
    .optional(),
}) satisfies z.ZodType<QuantConfig, unknown>;

const path = z.string().min(1).max(4096);
const progressToken = { workDoneToken: z.union([z.string(), z.number()]).optional() };

const RunParamsSchema = z.object({
  modelPath: path,
  dataPath: path.optional(),
  /** Use at most this many samples. */
  samples: z.number().int().positive().max(10_000_000).optional(),
  config: QuantConfigSchema as z.ZodType<QuantConfig>,
  ...progressToken,
});

// ---------------------------------------------------------------- host -> engine (requests)

export type RunParams = z.infer<typeof RunParamsSchema>;

const AnalyzeParamsSchema = RunParamsSchema.extend({
  sensitivity: z.boolean(),
  /** SQNR below which a layer gets a warning diagnostic in the Model Outline. */
  sqnrWarningDb: z.number().finite(),
  /** The deployment CPU for hazards that depend on it (u8 x s8 saturation needs x86 without VNNI); default this machine. */
  targetCpu: z.enum(['this', 'vnni', 'no-vnni']).optional(),
});
export type AnalyzeParams = z.infer<typeof AnalyzeParamsSchema>;

/** Analyze a model; reports work-done progress; cancellable. Result: the full report. */
export const AnalyzeRequest = request<AnalyzeParams, Report>('quantlens/analyze', AnalyzeParamsSchema);

const QuantizeParamsSchema = RunParamsSchema.extend({
  /** A NEW file; the engine refuses the model's own path and any existing file unless `force`. */
  outPath: path,
  /** The user confirmed replacing an existing file. */
  force: z.boolean().optional(),
});
export type QuantizeParams = z.infer<typeof QuantizeParamsSchema>;
export interface QuantizeResult {
  path: string;
  layers: number;
  sizeBytes: number;
  /** Activations whose written range clips 10% or more of its calibration values (one line each). */
  warnings: string[];
}
/** Write a deployable QDQ model to a new file. */
export const QuantizeRequest = request<QuantizeParams, QuantizeResult>('quantlens/quantize', QuantizeParamsSchema);

const SweepParamsSchema = z.object({
  modelPath: path,
  dataPath: path.optional(),
  samples: z.number().int().positive().max(10_000_000).optional(),
  /** Every configuration to evaluate (the host builds the grid from the user's picks). */
  configs: z
    .array(QuantConfigSchema as z.ZodType<QuantConfig>)
    .min(1)
    .max(1000),
  ...progressToken,
});
export type SweepParams = z.infer<typeof SweepParamsSchema>;
/** Evaluate many configurations from one float calibration pass; progress; cancellable. */
export const SweepRequest = request<SweepParams, SweepReport>('quantlens/sweep', SweepParamsSchema);

const MixedPrecisionParamsSchema = RunParamsSchema.extend({
  maxDrop: z.number().finite().nonnegative(),
});
export type MixedPrecisionParams = z.infer<typeof MixedPrecisionParamsSchema>;
/** Find layers to keep in float so the drop meets the budget; progress; cancellable. Writes nothing. */
export const MixedPrecisionRequest = request<MixedPrecisionParams, MixedPrecisionResult>('quantlens/mixedPrecision', MixedPrecisionParamsSchema);

const CompareParamsSchema = z.object({
  /** Version A: its float twin is the shared reference unless `floatModelPath` is given. */
  modelPath: path,
  /** Version B. */
  otherModelPath: path,
  /** The original float model, as the shared reference. */
  floatModelPath: path.optional(),
  dataPath: path.optional(),
  samples: z.number().int().positive().max(10_000_000).optional(),
  sensitivity: z.boolean(),
  ...progressToken,
});
export type CompareParams = z.infer<typeof CompareParamsSchema>;
/** Two quantized versions of one model, layer by layer against one reference; progress; cancellable. */
export const CompareRequest = request<CompareParams, CompareReport>('quantlens/compare', CompareParamsSchema);

const OutlineParamsSchema = z.object({
  modelPath: path,
  /** URI of the virtual document the outline will be shown in (hover/diagnostics key on it). */
  uri: z.string().min(1).max(8192),
});
export type OutlineParams = z.infer<typeof OutlineParamsSchema>;
export interface OutlineResult {
  text: string;
}
/** The model graph as text, one line per node: name, op, inputs, outputs. */
export const OutlineRequest = request<OutlineParams, OutlineResult>('quantlens/outline', OutlineParamsSchema);

const AllowPathParamsSchema = z.object({ path });
export type AllowPathParams = z.infer<typeof AllowPathParamsSchema>;
/**
 * Host -> engine: the user picked this file or folder explicitly (a dialog, a command argument)
 * although it lies outside the workspace folders; the engine may read it. Nothing else outside
 * the workspace folders is read or written.
 */
export const AllowPathRequest = request<AllowPathParams, null>('quantlens/allowPath', AllowPathParamsSchema);

const RestoreReportParamsSchema = z.object({
  /**
   * A report the engine itself sent (numbers as on the wire, protocol/wire.ts); checked only for
   * what the outline's hovers and warnings read.
   */
  report: z.looseObject({
    schemaVersion: z.number(),
    model: z.looseObject({ path }),
    layers: z.array(z.looseObject({ node: z.string() })),
    tensors: z.array(z.looseObject({ name: z.string() })),
  }),
  sqnrWarningDb: z.number().finite(),
});
export type RestoreReportParams = z.infer<typeof RestoreReportParamsSchema>;
/**
 * Host -> engine, when an engine (re)starts: the report on screen, so the Model Outline's hovers
 * and warnings keep showing it. An engine that died lost every report it had made; the host keeps
 * the one the user sees.
 */
export const RestoreReportRequest = request<RestoreReportParams, null>('quantlens/restoreReport', RestoreReportParamsSchema);

/** Work-done progress payload the engine reports for long requests. */
export interface ProgressReport {
  message: string;
  /** 0..100 */
  percentage: number;
}

// ---------------------------------------------------------------- host <-> webview

/** Host -> webview. */
export type ToWebview =
  | { type: 'report'; report: Report; sqnrWarningDb: number }
  | { type: 'sweep'; sweep: SweepReport }
  | { type: 'mixedPrecision'; result: MixedPrecisionResult }
  | { type: 'compare'; compare: CompareReport }
  | { type: 'busy'; message: string }
  | { type: 'error'; message: string };

/** Which configuration on screen an action is about: the report's, or a sweep entry the user picked. */
export type ConfigSource = { kind: 'report' } | { kind: 'sweep'; id: number };

/**
 * Webview -> host. Actions name the configuration they act on (ConfigSource); the host resolves it
 * from what it sent, so what runs is exactly what the user sees, never quantlens.json behind it.
 */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'export'; format: 'json' | 'csv' | 'html' }
  | { type: 'revealLayer'; node: string }
  /** The user clicked a sweep point: open that configuration's full per-layer report. */
  | { type: 'openSweepConfig'; id: number }
  /** The user selected a sweep entry: the configuration commands act on from now on. */
  | { type: 'selectSweepConfig'; id: number }
  /** Re-analyze with the report's diagnosis fix (its `config`); the host asks before writing anything. */
  | { type: 'applyFix' }
  /** Re-analyze with this range for one activation tensor (a what-if threshold), on top of the report's configuration. */
  | { type: 'whatIf'; tensor: string; range: Range }
  /** Sweep around, search mixed precision for, or write the quantized model of a configuration on screen. */
  | { type: 'act'; action: 'sweep' | 'mixedPrecision' | 'quantize'; source: ConfigSource };

/**
 * Everything one session showed, as the JSON and HTML exports carry it: the report (with its
 * diagnosis), the sweep, the mixed-precision result and the comparison. Any of them may be absent.
 */
export interface SessionExport {
  kind: 'quantlens-session';
  schemaVersion: number;
  sqnrWarningDb: number;
  report: Report | null;
  sweep: SweepReport | null;
  mixedPrecision: MixedPrecisionResult | null;
  compare: CompareReport | null;
}

/** UI state the webview keeps through reloads (vscode.setState). */
export interface WebviewState {
  selectedLayer?: string;
  sortKey?: string;
  sortDescending?: boolean;
}

/** The VS Code setting names and the quantlens.json keys that override them. */
export interface ModelSettings {
  preset?: QuantConfig['preset'];
  calibration?: QuantConfig['calibration'];
  percentile?: number;
  weightBits?: 4 | 8 | 16;
  activationBits?: 4 | 8 | 16;
  granularity?: 'per-channel' | 'per-tensor';
  symmetric?: boolean | null;
  dataPath?: string;
  samples?: number;
  sqnrWarningDb?: number;
  /** The CPU the model will run on (u8s8 saturation is a hazard on x86 without VNNI only). */
  targetCpu?: 'this' | 'vnni' | 'no-vnni';
  exclude?: string[];
  /** Per-tensor and per-layer changes (a fix or a what-if the user chose to keep). */
  tensorOverrides?: TensorOverride[];
  layerOverrides?: LayerOverride[];
  /**
   * How model inputs are fed (read by the engine itself, beside the model): `sample` (data rows),
   * `constant` with `value`, `state` carried `from` an output; `shape` sets dims the model leaves dynamic.
   */
  inputs?: Record<string, { kind?: 'sample' | 'constant' | 'state'; value?: number | number[]; from?: string; shape?: number[] }>;
}
