/**
 * QuantLens extension host: commands, menus, status bar, the report panel and the Model Outline.
 * All numeric work happens in the engine process (engine/server.ts) behind EngineClient.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalyzeRequest, CompareRequest, MixedPrecisionRequest, OutlineRequest, QuantizeRequest, type SweepParams, SweepRequest, type ToWebview } from '../protocol/messages';
import type { CompareReport, MixedPrecisionResult, QuantConfig, Report, SweepReport } from '../protocol/report';
import { gridConfigs } from '../engine/quantize/grid';
import { pickSweepAxes } from './sweepPicks';
import { EngineClient } from './engineClient';
import { reportCsv, reportHtml, reportJson } from './export';
import { ReportPanel, type ReportSource, VIEW_TYPE } from './reportPanel';
import { analyzeParams } from './settings';
import { freshPath, writeOutput } from '../engine/io/files';
import { updateModelSettings } from '../engine/io/modelSettings';

const OUTLINE_SCHEME = 'quantlens-outline';

let engine: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('QuantLens', { log: true });
  engine = new EngineClient(context, output);
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  status.command = 'quantlens.showReport';
  const lastFile = vscode.Uri.joinPath(context.globalStorageUri, 'last-report.json');
  let last: { report: Report; sqnrWarningDb: number } | undefined;
  let lastSweep: { sweep: SweepReport; params: SweepParams } | undefined;
  let lastMixed: MixedPrecisionResult | undefined;
  let lastCompare: CompareReport | undefined;

  const source: ReportSource = {
    views: () => {
      const v: ToWebview[] = [];
      if (lastSweep) v.push({ type: 'sweep', sweep: lastSweep.sweep });
      if (lastMixed) v.push({ type: 'mixedPrecision', result: lastMixed });
      if (lastCompare) v.push({ type: 'compare', compare: lastCompare });
      if (last) v.push({ type: 'report', report: last.report, sqnrWarningDb: last.sqnrWarningDb });
      return v;
    },
    onMessage: (m) => {
      if (m.type === 'export') void vscode.commands.executeCommand('quantlens.exportReport', m.format);
      else if (m.type === 'revealLayer') void revealInOutline(m.node);
      else if (m.type === 'openSweepConfig' && lastSweep) {
        const entry = lastSweep.sweep.configs[m.id];
        if (entry) void runAnalysis(lastSweep.params.modelPath, entry.config);
      }
    },
  };

  /** Open the Model Outline of the last model at a layer's line. */
  const revealInOutline = async (node: string) => {
    if (!last) return;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: OUTLINE_SCHEME, path: `${last.report.model.path}.outline` }));
    const line = doc.getText().split('\n').findIndex((l) => l.startsWith(`${node}  `));
    const pos = new vscode.Position(Math.max(0, line), 0);
    await vscode.window.showTextDocument(doc, { preview: false, selection: new vscode.Range(pos, pos) });
  };

  const restoreLast = () => {
    if (last || !fs.existsSync(lastFile.fsPath)) return;
    try {
      last = JSON.parse(fs.readFileSync(lastFile.fsPath, 'utf8'), (_k, v) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v));
    } catch {
      /* a damaged cache is simply forgotten */
    }
  };

  const setStatus = () => {
    if (!last) return status.hide();
    const a = last.report.accuracy;
    const text = a.dropPoints !== null ? `${a.dropPoints.toFixed(2)} pt drop` : `${(a.integer.agreement * 100).toFixed(1)}% agreement`;
    status.text = `$(graph) QuantLens: ${text}`;
    status.tooltip = `QuantLens: ${last.report.model.path}\nclick to show the report`;
    status.show();
  };

  /** The .onnx the command is about: the explorer selection, the active editor, or a picker. */
  const modelFor = async (uri?: vscode.Uri, placeHolder = 'Model to analyze'): Promise<string | undefined> => {
    if (uri instanceof vscode.Uri && uri.fsPath.endsWith('.onnx')) return uri.fsPath;
    const active = vscode.window.activeTextEditor?.document.uri;
    if (active?.scheme === OUTLINE_SCHEME) return active.path.replace(/\.outline$/, '');
    const files = await vscode.workspace.findFiles('**/*.onnx', '**/node_modules/**', 200);
    if (files.length === 0) {
      void vscode.window.showErrorMessage('QuantLens: no .onnx model in this workspace.');
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })), { placeHolder });
    return pick?.uri.fsPath;
  };

  const fail = (what: string, e: unknown) => {
    const msg = (e as Error).message ?? String(e);
    if (/cancel/i.test(msg)) {
      output.appendLine(`[${what}] cancelled`);
      void vscode.window.showInformationMessage(`QuantLens: ${what} cancelled.`);
      return;
    }
    output.appendLine(`[${what}] ${msg}`);
    void vscode.window.showErrorMessage(`QuantLens: ${what} failed: ${msg}`);
  };

  const register = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  /** Analyze a model with its settings, or with an explicit configuration (a sweep point). */
  const runAnalysis = async (model: string, config?: QuantConfig) => {
    try {
      const params = analyzeParams(model);
      if (config) params.config = config;
      output.appendLine(`[analyze] ${model} preset=${params.config.preset} calibration=${params.config.calibration} data=${params.dataPath ?? 'synthetic'}`);
      if (!params.dataPath) {
        void vscode.window.showWarningMessage('QuantLens: no calibration data configured (quantlens.dataPath or quantlens.json); using synthetic inputs, so thresholds say nothing about real activations.');
      }
      const report = await engine!.request(AnalyzeRequest, params, `QuantLens: analyzing ${path.basename(model)}`);
      last = { report, sqnrWarningDb: params.sqnrWarningDb };
      fs.mkdirSync(context.globalStorageUri.fsPath, { recursive: true });
      fs.writeFileSync(lastFile.fsPath, reportJson(last));
      setStatus();
      output.appendLine(`[analyze] done: ${report.layers.length} layers, float top-1 ${report.accuracy.float.top1}, integer top-1 ${report.accuracy.integer.top1}`);
      ReportPanel.show(context, source, 'report');
    } catch (e) {
      fail('analysis', e);
    }
  };

  register('quantlens.analyze', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (model) await runAnalysis(model);
  });

  register('quantlens.sweep', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (!model) return;
    try {
      const base = analyzeParams(model);
      const axes = await pickSweepAxes();
      if (!axes) return;
      const configs = gridConfigs(base.config, axes);
      const params: SweepParams = { modelPath: model, dataPath: base.dataPath, samples: base.samples, configs };
      output.appendLine(`[sweep] ${model}: ${configs.length} configurations`);
      const sweep = await engine!.request(SweepRequest, { ...params, userPicked: base.userPicked }, `QuantLens: sweeping ${configs.length} configurations`);
      lastSweep = { sweep, params };
      output.appendLine(`[sweep] done: first ${sweep.timings.firstConfigMs.toFixed(0)} ms, each further ${sweep.timings.meanExtraConfigMs.toFixed(0)} ms`);
      ReportPanel.show(context, source, 'sweep');
    } catch (e) {
      fail('sweep', e);
    }
  });

  register('quantlens.mixedPrecision', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (!model) return;
    const answer = await vscode.window.showInputBox({
      prompt: 'Maximum accuracy drop in points (float top-1 minus integer top-1; agreement when there are no labels)',
      value: '0.5',
      validateInput: (v) => (v.trim() !== '' && Number(v) >= 0 ? undefined : 'a non-negative number of points'),
    });
    if (answer === undefined) return;
    try {
      const params = analyzeParams(model);
      const result = await engine!.request(MixedPrecisionRequest, { ...params, maxDrop: Number(answer) }, 'QuantLens: mixed precision');
      lastMixed = result;
      ReportPanel.show(context, source, 'mixedPrecision');
      if (!result.met) {
        void vscode.window.showWarningMessage(`QuantLens: the budget of ${answer} points was not met even with ${result.exclude.length} layers in float. Nothing was written.`);
        return;
      }
      // Nothing is written without the user's word: a new model file and quantlens.json change what later analyses do.
      const outPath = freshPath(model.replace(/\.onnx$/i, ''), '.mixed.qdq.onnx');
      const choice = await vscode.window.showInformationMessage(
        `QuantLens: keeping ${result.exclude.length} layer(s) in float meets ${answer} points. Write ${path.basename(outPath)} and record the exclusions in quantlens.json?`,
        'Write model and quantlens.json', 'Write model only',
      );
      if (!choice) return;
      const plan = result.fix?.config ?? { ...params.config, exclude: result.exclude };
      const res = await engine!.request(QuantizeRequest, { ...params, config: plan, outPath }, 'QuantLens: writing the mixed-precision model');
      const written = [path.basename(res.path)];
      if (choice === 'Write model and quantlens.json') {
        written.push(path.basename(updateModelSettings(model, { exclude: plan.exclude, tensorOverrides: plan.tensorOverrides, layerOverrides: plan.layerOverrides })));
      }
      output.appendLine(`[mixed precision] wrote ${written.join(', ')}`);
      void vscode.window.showInformationMessage(`QuantLens: wrote ${written.join(' and ')}.`);
    } catch (e) {
      fail('mixed precision', e);
    }
  });

  register('quantlens.quantize', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (!model) return;
    try {
      const params = analyzeParams(model);
      const outPath = freshPath(model.replace(/\.onnx$/i, ''), '.qdq.onnx');
      const res = await engine!.request(QuantizeRequest, { ...params, outPath }, `QuantLens: quantizing ${path.basename(model)}`);
      output.appendLine(`[quantize] wrote ${res.path} (${res.layers} layers, ${res.sizeBytes} bytes)`);
      const choice = await vscode.window.showInformationMessage(`QuantLens: wrote ${path.basename(res.path)} (${res.layers} layers quantized).`, 'Reveal');
      if (choice === 'Reveal') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(res.path));
    } catch (e) {
      fail('quantization', e);
    }
  });

  /**
   * Two quantized versions of one model: the two .onnx files selected in the Explorer, or picked.
   * Data comes from A's settings (quantlens.dataPath / quantlens.json).
   */
  register('quantlens.compare', async (uri?: vscode.Uri, selected?: vscode.Uri[]) => {
    const chosen = (Array.isArray(selected) ? selected : []).filter((u) => u.fsPath.toLowerCase().endsWith('.onnx')).map((u) => u.fsPath);
    const a = chosen.length === 2 ? chosen[0] : await modelFor(uri, 'Quantized model A (its float twin is the reference)');
    if (!a) return;
    const b = chosen.length === 2 ? chosen[1] : await modelFor(undefined, `Quantized model B, compared with ${path.basename(a)}`);
    if (!b) return;
    try {
      const base = analyzeParams(a);
      output.appendLine(`[compare] ${a} vs ${b} data=${base.dataPath ?? 'synthetic'}`);
      const result = await engine!.request(CompareRequest, {
        modelPath: a, otherModelPath: b, dataPath: base.dataPath, samples: base.samples, sensitivity: true, userPicked: [...base.userPicked, b],
      }, `QuantLens: comparing ${path.basename(a)} and ${path.basename(b)}`);
      lastCompare = result;
      output.appendLine(`[compare] done: differs most ${result.mostDifferent ?? '(none)'}`);
      ReportPanel.show(context, source, 'compare');
    } catch (e) {
      fail('comparison', e);
    }
  });

  register('quantlens.showReport', () => {
    restoreLast();
    if (!last) return void vscode.window.showInformationMessage('QuantLens: no report yet. Right-click a .onnx file and choose Analyze Quantization.');
    ReportPanel.show(context, source, 'report');
  });

  register('quantlens.exportReport', async (format?: 'json' | 'csv' | 'html') => {
    restoreLast();
    if (!last) return void vscode.window.showInformationMessage('QuantLens: no report to export yet.');
    const fmt = format ?? (await vscode.window.showQuickPick(['json', 'csv', 'html'], { placeHolder: 'Export format' })) as 'json' | 'csv' | 'html' | undefined;
    if (!fmt) return;
    const base = last.report.model.path.replace(/\.onnx$/i, '');
    const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(freshPath(`${base}.quantlens-report`, `.${fmt}`)) });
    if (!target) return;
    const out = context.asAbsolutePath('out');
    const content = fmt === 'json' ? reportJson(last.report, 1)
      : fmt === 'csv' ? reportCsv(last.report)
      : reportHtml(last.report, last.sqnrWarningDb, fs.readFileSync(path.join(out, 'webview.js'), 'utf8'), fs.readFileSync(path.join(out, 'webview.css'), 'utf8'));
    // The save dialog already asked before replacing a file; never replace the model or its data.
    const params = analyzeParams(last.report.model.path);
    writeOutput({ path: target.fsPath, role: 'export', force: true, inputs: [last.report.model.path, params.dataPath] }, content);
    output.appendLine(`[export] ${target.fsPath}`);
    void vscode.window.showInformationMessage(`QuantLens: exported ${path.basename(target.fsPath)}`);
  });

  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(OUTLINE_SCHEME, {
    provideTextDocumentContent: async (uri) => {
      try {
        const modelPath = uri.path.replace(/\.outline$/, '');
        return (await engine!.quickRequest(OutlineRequest, { modelPath, uri: uri.toString() }, [modelPath])).text;
      } catch (e) {
        fail('outline', e);
        return `# QuantLens could not read this model: ${(e as Error).message}\n`;
      }
    },
  }));

  register('quantlens.openOutline', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (!model) return;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: OUTLINE_SCHEME, path: `${model}.outline` }));
    await vscode.window.showTextDocument(doc, { preview: false });
  });

  context.subscriptions.push(
    output,
    status,
    vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => {
        restoreLast();
        ReportPanel.restore(panel, context, source);
      },
    }),
  );
}

export async function deactivate(): Promise<void> {
  await engine?.dispose();
}
