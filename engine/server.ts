/**
 * The QuantLens engine as a language server (its own Node process; never imports vscode).
 * Custom requests (protocol/messages.ts) run the analysis with work-done progress and
 * cancellation; hover and diagnostics serve the Model Outline and Python sources.
 */
import {
  type CancellationToken,
  DiagnosticSeverity,
  ErrorCodes,
  type Hover,
  ProposedFeatures,
  ResponseError,
  TextDocumentSyncKind,
  TextDocuments,
  type WorkDoneProgressReporter,
  createConnection,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { z } from 'zod';
import {
  type AllowPathParams,
  AllowPathRequest,
  type AnalyzeParams,
  AnalyzeRequest,
  type CompareParams,
  CompareRequest,
  type MixedPrecisionParams,
  MixedPrecisionRequest,
  type SweepParams,
  SweepRequest,
  type OutlineParams,
  OutlineRequest,
  type OutlineResult,
  type QuantizeParams,
  QuantizeRequest,
  type QuantizeResult,
  type RequestDef,
  type RestoreReportParams,
  RestoreReportRequest,
} from '../protocol/messages';
import type { CompareReport, MixedPrecisionResult, Placement, Report, SweepReport } from '../protocol/report';
import { onTheWire, reviveNumbers } from '../protocol/wire';
import * as fs from 'node:fs';
import { CancelledError, type Prepared, type Progress, evaluate, prepareLoaded, quantizeWith, requireQuantizedLayers } from './analysis/analyze';
import { mixedPrecision } from './analysis/mixedPrecision';
import { runSweep } from './analysis/sweep';
import { writeQuantizedModel } from './analysis/quantizeModel';
import { InputError, loadModel } from './onnx/model';
import { type DeployedModel, deployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed, requireDeployed, requireFloat } from './quantized/deployed';
import { compareModels } from './quantized/compare';
import { PathPolicy } from './io/pathPolicy';
import { checkOutput } from './io/files';
import { modelCompanions } from './io/modelFiles';
import { type Outline, buildOutline, layerHover, layersForIdentifier, tensorHover, tokenAt } from './report/outline';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);

/** Last report per model path, and the one analysed most recently (for Python hovers). */
const reports = new Map<string, { report: Report; sqnrWarningDb: number }>();
let latest: { report: Report; sqnrWarningDb: number } | undefined;
/** Outline documents: URI -> model and line map. */
const outlines = new Map<string, { modelPath: string; outline: Outline }>();

/** The engine reads and writes only inside the workspace folders and what the user picked. */
const paths = new PathPolicy();

connection.onInitialize((init) => {
  const folders = init.workspaceFolders?.map((f) => f.uri) ?? (init.rootUri ? [init.rootUri] : []);
  paths.setWorkspaceFolders(folders);
  return {
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
    },
    serverInfo: { name: 'quantlens-engine', version: '0.1.0' },
  };
});

connection.onInitialized(() => {
  connection.workspace.onDidChangeWorkspaceFolders((e) => {
    for (const f of e.removed) paths.removeWorkspaceFolder(f.uri);
    for (const f of e.added) paths.addWorkspaceFolder(f.uri);
  });
});

/** Every `...Path` field of a request is a file the engine would touch: each must be allowed. */
function checkPaths(params: object): void {
  for (const [k, v] of Object.entries(params)) {
    if (k.endsWith('Path') && typeof v === 'string') paths.check(v, k === 'outPath' ? 'output' : k === 'dataPath' ? 'calibration data' : 'model');
  }
}

/** One line saying what is wrong with a request's params (the first few problems). */
function paramsError(method: string, issues: { path: PropertyKey[]; message: string }[]): string {
  const parts = issues.slice(0, 3).map((i) => `${i.path.length ? i.path.join('.') : 'params'}: ${i.message}`);
  return `invalid ${method} request: ${parts.join('; ')}${issues.length > 3 ? ` (+${issues.length - 3} more)` : ''}`;
}

/**
 * A result as JSON-RPC will carry it. JSON has no infinities: left alone, an exact match's
 * SQNR (Infinity) would arrive as null, like a NaN. Infinities go as "Infinity" strings, as in
 * report files (reportReplacer), which the webview revives. The cached reports keep numbers.
 */
function replyOf(result: unknown): unknown {
  return result === undefined ? null : onTheWire(result);
}

function handle<P, R>(
  def: RequestDef<P, R>,
  fn: (p: P, token: CancellationToken, progress: WorkDoneProgressReporter) => Promise<R>,
  opts: { checkPaths?: boolean } = {},
) {
  connection.onRequest(def.method, async (raw: unknown, token: CancellationToken): Promise<unknown> => {
    // Requests registered by method name get no reporter from the library: attach the one the
    // client asked for through params.workDoneToken (a no-op reporter when there is none).
    const tokenParam = raw && typeof raw === 'object' ? (raw as { workDoneToken?: unknown }).workDoneToken : undefined;
    const progress = connection.window.attachWorkDoneProgress(typeof tokenParam === 'string' || typeof tokenParam === 'number' ? tokenParam : undefined);
    try {
      const parsed = def.params.safeParse(raw);
      if (!parsed.success) return new ResponseError(ErrorCodes.InvalidParams, paramsError(def.method, parsed.error.issues));
      if (opts.checkPaths !== false) checkPaths(parsed.data as object);
      return replyOf(await fn(parsed.data, token, progress));
    } catch (e) {
      // User errors carry their message as is; anything else is a bug: its stack goes to the log.
      if (e instanceof InputError) return new ResponseError(1, e.message);
      if (e instanceof CancelledError) return new ResponseError(-32800, 'cancelled');
      connection.console.error(`${def.method} failed: ${(e as Error).stack ?? e}`);
      return new ResponseError(
        2,
        `internal error (a QuantLens bug): ${(e as Error).message}. The stack trace is in the QuantLens output channel; please report it.`,
      );
    } finally {
      progress.done();
    }
  });
}

/** Bridge an LSP cancellation token to the AbortSignal the pipeline checks between batches. */
function abortSignal(token: CancellationToken): AbortSignal {
  const ac = new AbortController();
  if (token.isCancellationRequested) ac.abort();
  token.onCancellationRequested(() => ac.abort());
  return ac.signal;
}

const STAGE_SHARE: Record<Progress['stage'], [number, number]> = {
  calibrate: [0, 30],
  evaluate: [30, 60],
  sensitivity: [60, 90],
  diagnose: [90, 99],
  sweep: [30, 99],
  write: [90, 99],
};
const STAGE_UNIT: Record<Progress['stage'], string> = {
  calibrate: 'samples',
  evaluate: 'samples',
  sensitivity: 'layers',
  diagnose: 'candidates',
  sweep: 'configurations',
  write: '',
};

function progressFn(reporter: WorkDoneProgressReporter, title: string) {
  reporter.begin(title, 0, 'loading model', true);
  return (p: Progress) => {
    const [a, b] = STAGE_SHARE[p.stage];
    reporter.report(
      Math.round(a + ((b - a) * p.done) / Math.max(1, p.total)),
      `${p.stage}: ${p.done}/${p.total} ${STAGE_UNIT[p.stage]}${p.message ? ` (${p.message})` : ''}`,
    );
  };
}

handle(AnalyzeRequest, async (params: AnalyzeParams, token, reporter): Promise<Report> => {
  const signal = abortSignal(token);
  const onProgress = progressFn(reporter, 'QuantLens: analyzing');
  connection.console.info(`analyze ${params.modelPath} (${params.config.preset}, ${params.config.calibration}, data ${params.dataPath ?? 'synthetic'})`);
  // An already-quantized model is analyzed as deployed: its own grids, its float twin as reference.
  const { prepared: p, deployed } = await preparedFor(params, onProgress, signal, true);
  const opts = { onProgress, signal, sensitivity: params.sensitivity, targetCpu: params.targetCpu };
  // The diagnosis (culprits, causes, a measured fix) rides on sensitivity, as in the CLI.
  const report = deployed
    ? await evaluateDeployed(p, deployed, await quantizeDeployed(p, deployed, opts), opts)
    : await evaluate(p, requireQuantizedLayers(await quantizeWith(p, params.config), p.loaded.path), {
        ...opts,
        diagnose: params.sensitivity ? {} : undefined,
      });
  keepReport(report, params.sqnrWarningDb);
  connection.console.info(`analyze done: ${report.layers.length} layers, integer top-1 ${report.accuracy.integer.top1}, ${JSON.stringify(report.timings)}`);
  return report;
});

/**
 * The float calibration pass is the expensive part and does not depend on the quantization
 * configuration: keep the last one per (model, data, samples) so sweeps and the analyses they
 * lead to reuse it. A changed model file (new hash) is prepared again.
 */
let preparedCache: { key: string; prepared: Prepared; deployed: DeployedModel | null } | undefined;

/** What identifies a file's content cheaply: a changed model or data file is prepared again. */
function fileStamp(p: string | undefined): string {
  if (!p) return '';
  try {
    const st = fs.statSync(p);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

/**
 * The prepared reference of a model: the model itself, or for an already-quantized one (only when
 * `deployedOk`: analyze) its float twin. Commands that quantize refuse quantized models.
 */
async function preparedFor(
  params: { modelPath: string; dataPath?: string; samples?: number; config?: { placement: Placement } },
  onProgress: (p: Progress) => void,
  signal: AbortSignal,
  deployedOk = false,
): Promise<{ prepared: Prepared; deployed: DeployedModel | null }> {
  // The model's hash covers its external data too; loading is cheap next to calibrating.
  const loaded = loadModel(params.modelPath);
  const key = JSON.stringify([loaded.path, loaded.sha256, params.dataPath ?? null, params.samples ?? null, fileStamp(params.dataPath)]);
  if (!deployedOk) requireFloat(loaded, 'this command');
  if (preparedCache?.key === key) return preparedCache;
  const old = preparedCache;
  preparedCache = undefined;
  await old?.prepared.data.close();
  const deployed = deployedModel(loaded);
  // The configuration's placement is calibrated in the first pass (later ones add what they need).
  const opts = { dataPath: params.dataPath, samples: params.samples, onProgress, signal, placement: params.config?.placement };
  const prepared = deployed ? await prepareDeployed(deployed, opts) : await prepareLoaded(loaded, opts);
  preparedCache = { key, prepared, deployed };
  return preparedCache;
}

handle(SweepRequest, async (params: SweepParams, token, reporter): Promise<SweepReport> => {
  const signal = abortSignal(token);
  const onProgress = progressFn(reporter, 'QuantLens: sweeping');
  const { prepared: p } = await preparedFor(params, onProgress, signal);
  return runSweep(p, params.configs, { signal, onProgress });
});

handle(MixedPrecisionRequest, async (params: MixedPrecisionParams, token, reporter): Promise<MixedPrecisionResult> => {
  const signal = abortSignal(token);
  const onProgress = progressFn(reporter, 'QuantLens: mixed precision');
  const { prepared: p } = await preparedFor(params, onProgress, signal);
  // Writes nothing: the host asks the user, then sends a Quantize request for the chosen plan.
  return mixedPrecision(p, params.config, { maxDrop: params.maxDrop, onProgress, signal });
});

handle(QuantizeRequest, async (params: QuantizeParams, token, reporter): Promise<QuantizeResult> => {
  const signal = abortSignal(token);
  const target = { path: params.outPath, role: 'quantized model', force: params.force, inputs: [...modelCompanions(params.modelPath), params.dataPath] };
  checkOutput(target); // before the long work: fail fast
  const onProgress = progressFn(reporter, 'QuantLens: quantizing');
  const { prepared: p } = await preparedFor(params, onProgress, signal);
  return writeQuantizedModel(p, requireQuantizedLayers(await quantizeWith(p, params.config), p.loaded.path), target);
});

handle(CompareRequest, async (params: CompareParams, token, reporter): Promise<CompareReport> => {
  const signal = abortSignal(token);
  const onProgress = progressFn(reporter, 'QuantLens: comparing');
  const a = requireDeployed(loadModel(params.modelPath));
  const b = requireDeployed(loadModel(params.otherModelPath));
  connection.console.info(`compare ${a.loaded.path} with ${b.loaded.path} (data ${params.dataPath ?? 'synthetic'})`);
  return compareModels(a, b, {
    dataPath: params.dataPath,
    samples: params.samples,
    floatPath: params.floatModelPath,
    onProgress,
    signal,
    sensitivity: params.sensitivity,
  });
});

/** The report the outline's hovers and warnings show for its model, from now on. */
function keepReport(report: Report, sqnrWarningDb: number): void {
  latest = { report, sqnrWarningDb };
  reports.set(report.model.path, latest);
  for (const [uri, o] of outlines) if (o.modelPath === report.model.path) publishDiagnostics(uri);
}

// Reads nothing: the report's model path is a key for the outlines, not a file to open.
handle(RestoreReportRequest, async (params: RestoreReportParams) => {
  keepReport(reviveNumbers(params.report) as Report, params.sqnrWarningDb);
  return null;
});

handle(
  AllowPathRequest,
  async (params: AllowPathParams) => {
    paths.allow(params.path);
    return null;
  },
  { checkPaths: false },
);

handle(OutlineRequest, async (params: OutlineParams): Promise<OutlineResult> => {
  const m = loadModel(params.modelPath);
  const outline = buildOutline(m.proto, m.path);
  outlines.set(params.uri, { modelPath: m.path, outline });
  publishDiagnostics(params.uri);
  return { text: outline.text };
});

/** Layers whose OWN error (isolated SQNR) is below the threshold get a warning on their outline line; a victim of upstream error does not. */
function publishDiagnostics(uri: string) {
  const o = outlines.get(uri);
  const r = o && reports.get(o.modelPath);
  if (!o || !r) return;
  const diagnostics = r.report.layers
    .filter((l) => l.isolated.integer.sqnrDb < r.sqnrWarningDb && o.outline.nodeLines.has(l.node))
    .map((l) => {
      const line = o.outline.nodeLines.get(l.node)!;
      return {
        severity: DiagnosticSeverity.Warning,
        range: { start: { line, character: 0 }, end: { line, character: l.node.length } },
        message: `${l.op} ${l.node}: its own integer SQNR (only this layer quantized) ${Number(l.isolated.integer.sqnrDb).toFixed(1)} dB is below ${r.sqnrWarningDb} dB (accumulated ${Number(l.integer.sqnrDb).toFixed(1)} dB)`,
        source: 'quantlens',
      };
    });
  connection.sendDiagnostics({ uri, diagnostics });
}

/** Hover params as LSP defines them; anything else gets InvalidParams rather than a TypeError. */
const HoverParamsSchema = z.object({
  textDocument: z.object({ uri: z.string() }),
  position: z.object({ line: z.number().int().nonnegative(), character: z.number().int().nonnegative() }),
});

connection.onHover((raw): Hover | null | ResponseError<void> => {
  const parsed = HoverParamsSchema.safeParse(raw);
  if (!parsed.success) return new ResponseError(ErrorCodes.InvalidParams, paramsError('textDocument/hover', parsed.error.issues));
  const { textDocument, position } = parsed.data;
  const doc = documents.get(textDocument.uri);
  if (!doc) return null;
  const line = doc.getText({ start: { line: position.line, character: 0 }, end: { line: position.line, character: 100000 } });
  const o = outlines.get(textDocument.uri);
  if (o) {
    const word = tokenAt(line, position.character);
    const r = reports.get(o.modelPath);
    if (!word) return null;
    const layer = r?.report.layers.find((l) => l.node === word);
    if (layer) return markdown(layerHover(layer, r!.report, r!.sqnrWarningDb));
    const tensor = r?.report.tensors.find((t) => t.name === word);
    if (tensor) return markdown(tensorHover(tensor));
    if (o.outline.nodes.has(word) || o.outline.tensors.has(word)) {
      return markdown(
        r ? `\`${word}\`: not quantized in the last analysis` : `\`${word}\`: run **QuantLens: Analyze Quantization** on this model to see its stats`,
      );
    }
    return null;
  }
  if (doc.languageId === 'python' && latest) {
    const word = tokenAt(line, position.character, /[A-Za-z_][A-Za-z0-9_]*/g);
    if (!word) return null;
    const layers = layersForIdentifier(latest.report, word).slice(0, 4);
    if (layers.length === 0) return null;
    return markdown(layers.map((l) => layerHover(l, latest!.report, latest!.sqnrWarningDb)).join('\n\n---\n\n'));
  }
  return null;
});

function markdown(value: string): Hover {
  return { contents: { kind: 'markdown', value } };
}

documents.onDidClose((e) => outlines.delete(e.document.uri));
// A bug in one request must not take the engine down with every other request: log and go on.
process.on('uncaughtException', (e) => connection.console.error(`uncaught: ${e.stack ?? e}`));
process.on('unhandledRejection', (e) => connection.console.error(`unhandled rejection: ${(e as Error)?.stack ?? e}`));
documents.listen(connection);
connection.listen();
