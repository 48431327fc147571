/**
 * Every message between the three QuantLens processes, declared once:
 *   host (extension/) <-> engine (engine/server.ts): LSP custom requests over IPC;
 *   host <-> webview (webview/): postMessage.
 * All three sides import these types; nothing here depends on vscode or the DOM.
 */
import type { MixedPrecisionResult, QuantConfig, Report, SweepReport } from './report';

/** A typed JSON-RPC request: the method name plus phantom parameter/result types. */
export interface RequestDef<P, R> {
  readonly method: string;
  readonly __types?: [P, R];
}
const request = <P, R>(method: string): RequestDef<P, R> => ({ method });

// ---------------------------------------------------------------- host -> engine (requests)

export interface RunParams {
  modelPath: string;
  dataPath?: string;
  samples?: number;
  config: QuantConfig;
}

export interface AnalyzeParams extends RunParams {
  sensitivity: boolean;
  /** SQNR below which a layer gets a warning diagnostic in the Model Outline. */
  sqnrWarningDb: number;
}

/** Analyze a model; reports work-done progress; cancellable. Result: the full report. */
export const AnalyzeRequest = request<AnalyzeParams, Report>('quantlens/analyze');

export interface QuantizeParams extends RunParams {
  /** A NEW file; the engine refuses the model's own path. */
  outPath: string;
}
export interface QuantizeResult {
  path: string;
  layers: number;
  sizeBytes: number;
}
/** Write a deployable QDQ model to a new file. */
export const QuantizeRequest = request<QuantizeParams, QuantizeResult>('quantlens/quantize');

export interface SweepParams {
  modelPath: string;
  dataPath?: string;
  samples?: number;
  /** Every configuration to evaluate (the host builds the grid from the user's picks). */
  configs: QuantConfig[];
}
/** Evaluate many configurations from one float calibration pass; progress; cancellable. */
export const SweepRequest = request<SweepParams, SweepReport>('quantlens/sweep');

export interface MixedPrecisionParams extends RunParams {
  maxDrop: number;
  /** Write the QDQ model here (a NEW file) and the exclusion list into quantlens.json. */
  outPath?: string;
}
/** Find layers to keep in float so the drop meets the budget; progress; cancellable. */
export const MixedPrecisionRequest = request<MixedPrecisionParams, MixedPrecisionResult>('quantlens/mixedPrecision');

export interface OutlineParams {
  modelPath: string;
  /** URI of the virtual document the outline will be shown in (hover/diagnostics key on it). */
  uri: string;
}
export interface OutlineResult {
  text: string;
}
/** The model graph as text, one line per node: name, op, inputs, outputs. */
export const OutlineRequest = request<OutlineParams, OutlineResult>('quantlens/outline');

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
  | { type: 'busy'; message: string }
  | { type: 'error'; message: string };

/** Webview -> host. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'export'; format: 'json' | 'csv' | 'html' }
  | { type: 'revealLayer'; node: string }
  /** The user clicked a sweep point: open that configuration's full per-layer report. */
  | { type: 'openSweepConfig'; id: number };

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
  exclude?: string[];
}
