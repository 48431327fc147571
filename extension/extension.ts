/**
 * QuantLens extension host: commands, menus, status bar, the report panel and the Model Outline.
 * All numeric work happens in the engine process (engine/server.ts) behind EngineClient.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CompareRequest, OutlineRequest, type RestoreReportParams, RestoreReportRequest } from '../protocol/messages';
import type { Report } from '../protocol/report';
import { onTheWire, reviveNumbers } from '../protocol/wire';
import { agreementApplies, formatWithInterval } from '../protocol/format';
import { Actions } from './actions';
import { EngineClient } from './engineClient';
import { reportCsv, reportHtml, reportJson } from './export';
import { SessionState, withTensorRange } from './onScreen';
import { ReportPanel, type ReportSource, VIEW_TYPE } from './reportPanel';
import { analyzeParams } from './settings';
import { freshPath, writeOutput } from '../engine/io/files';
import { modelCompanions } from '../engine/io/modelFiles';

const OUTLINE_SCHEME = 'quantlens-outline';

let engine: EngineClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('QuantLens', { log: true });
  // A new engine (the first, or one restarted after a crash) is given the open outlines and the
  // report on screen, so the outline's hovers and warnings survive the engine.
  engine = new EngineClient(context, output, async (send) => {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme !== OUTLINE_SCHEME) continue;
      const modelPath = doc.uri.path.replace(/\.outline$/, '');
      // One outline that cannot be read again (its model deleted since) must not cost the others.
      await send(OutlineRequest, { modelPath, uri: doc.uri.toString() }).catch((e: Error) =>
        output.appendLine(`[engine] the outline of ${modelPath} was not restored: ${e.message}`),
      );
    }
    // The report this window holds, not the one cached on disk: loading that would put it on
    // screen, and commands act on the configuration on screen.
    const r = state.report;
    // As the engine sent it: JSON-RPC would turn an infinite SQNR into null (protocol/wire.ts).
    if (r) await send(RestoreReportRequest, { report: onTheWire(r.report) as RestoreReportParams['report'], sqnrWarningDb: r.sqnrWarningDb });
  });
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 10);
  status.command = 'quantlens.showReport';
  const lastFile = vscode.Uri.joinPath(context.globalStorageUri, 'last-report.json');
  const state = new SessionState();

  const source: ReportSource = {
    views: () => state.views(),
    onMessage: (m) => {
      switch (m.type) {
        case 'export':
          void vscode.commands.executeCommand('quantlens.exportReport', m.format);
          break;
        case 'revealLayer':
          void revealInOutline(m.node);
          break;
        case 'openSweepConfig': {
          const r = state.resolve({ kind: 'sweep', id: m.id });
          if (r) void actions.analyze(r.modelPath, r.config, r.origin);
          break;
        }
        case 'selectSweepConfig': {
          const r = state.pickSweepEntry(m.id);
          if (r) output.appendLine(`[on screen] ${r.origin}: commands on ${path.basename(r.modelPath)} act on it`);
          break;
        }
        case 'applyFix':
          void actions.applyFix();
          break;
        case 'whatIf': {
          const r = state.resolve({ kind: 'report' });
          if (r)
            void actions.analyze(r.modelPath, withTensorRange(r.config, m.tensor, m.range), `a what-if range [${m.range.lo}, ${m.range.hi}] for ${m.tensor}`);
          break;
        }
        case 'act': {
          const r = state.resolve(m.source);
          if (!r) break;
          if (m.action === 'sweep') void actions.sweep(r);
          else if (m.action === 'mixedPrecision') void actions.mixedPrecision(r);
          else void actions.quantize(r);
          break;
        }
      }
    },
  };

  /** Open the Model Outline of the last model at a layer's line. */
  const revealInOutline = async (node: string) => {
    const model = state.report?.report.model.path;
    if (!model) return;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.from({ scheme: OUTLINE_SCHEME, path: `${model}.outline` }));
    const line = doc
      .getText()
      .split('\n')
      .findIndex((l) => l.startsWith(`${node}  `));
    const pos = new vscode.Position(Math.max(0, line), 0);
    await vscode.window.showTextDocument(doc, { preview: false, selection: new vscode.Range(pos, pos) });
  };

  const restoreLast = () => {
    if (state.report || !fs.existsSync(lastFile.fsPath)) return;
    try {
      const last = reviveNumbers(JSON.parse(fs.readFileSync(lastFile.fsPath, 'utf8'))) as { report: Report; sqnrWarningDb: number };
      state.setReport(last.report, last.sqnrWarningDb);
      engine?.resync();
    } catch {
      /* a damaged cache is simply forgotten */
    }
  };

  const setStatus = () => {
    const r = state.report?.report;
    if (!r) return status.hide();
    const a = r.accuracy;
    const pm = r.primaryMetric;
    const text =
      a.dropPoints !== null
        ? `${formatWithInterval(a.dropPoints, a.dropInterval ?? null)} pt drop`
        : pm?.kind === 'sqnr' || !agreementApplies(r)
          ? `output SQNR ${(pm?.kind === 'sqnr' ? pm.value.estimate : a.integer.outputSqnrDb).toFixed(1)} dB`
          : `${(a.integer.agreement * 100).toFixed(1)}% agreement`;
    status.text = `$(graph) QuantLens: ${text}`;
    status.tooltip = `QuantLens: ${r.model.path}\n${a.dropInterval ? 'drop [95% interval]; ' : ''}click to show the report`;
    status.show();
  };

  const actions = new Actions({ context, engine, output, state, source, lastFile, onReport: setStatus });

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
    const pick = await vscode.window.showQuickPick(
      files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })),
      { placeHolder },
    );
    return pick?.uri.fsPath;
  };

  const register = (id: string, fn: (...args: never[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  register('quantlens.analyze', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (model) await actions.analyze(model);
  });

  // Sweep, mixed precision and quantize act on the configuration on screen for that model (the
  // report's, or the sweep entry picked), else on the settings and quantlens.json.
  register('quantlens.sweep', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (model) await actions.sweep(actions.base(model));
  });

  register('quantlens.mixedPrecision', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (model) await actions.mixedPrecision(actions.base(model));
  });

  register('quantlens.quantize', async (uri?: vscode.Uri) => {
    const model = await modelFor(uri);
    if (model) await actions.quantize(actions.base(model));
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
      const result = await engine!.request(
        CompareRequest,
        {
          modelPath: a,
          otherModelPath: b,
          dataPath: base.dataPath,
          samples: base.samples,
          sensitivity: true,
          userPicked: [...base.userPicked, b],
        },
        `QuantLens: comparing ${path.basename(a)} and ${path.basename(b)}`,
      );
      state.compare = result;
      output.appendLine(`[compare] done: differs most ${result.mostDifferent ?? '(none)'}`);
      ReportPanel.show(context, source, 'compare');
    } catch (e) {
      actions.fail('comparison', e);
    }
  });

  register('quantlens.showReport', () => {
    restoreLast();
    if (!state.report && !state.sweep && !state.mixed && !state.compare)
      return void vscode.window.showInformationMessage('QuantLens: no report yet. Right-click a .onnx file and choose Analyze Quantization.');
    ReportPanel.show(context, source, state.report ? 'report' : undefined);
  });

  // The export holds EVERY view of the session (report with its diagnosis, sweep, mixed
  // precision): JSON as a session document, HTML rendering them all offline; CSV is the layer table.
  register('quantlens.exportReport', async (format?: 'json' | 'csv' | 'html') => {
    restoreLast();
    const model = state.modelPath();
    if (!model) return void vscode.window.showInformationMessage('QuantLens: nothing to export yet.');
    const fmt =
      format ??
      ((await vscode.window.showQuickPick(state.report ? ['json', 'csv', 'html'] : ['json', 'html'], { placeHolder: 'Export format' })) as
        | 'json'
        | 'csv'
        | 'html'
        | undefined);
    if (!fmt) return;
    if (fmt === 'csv' && !state.report)
      return void vscode.window.showInformationMessage('QuantLens: the CSV export is the per-layer table of a report; analyze first.');
    const base = model.replace(/\.onnx$/i, '');
    const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(freshPath(`${base}.quantlens-report`, `.${fmt}`)) });
    if (!target) return;
    const out = context.asAbsolutePath('out');
    const session = state.export();
    const content =
      fmt === 'json'
        ? reportJson(session, 1)
        : fmt === 'csv'
          ? reportCsv(state.report!.report)
          : reportHtml(session, fs.readFileSync(path.join(out, 'webview.js'), 'utf8'), fs.readFileSync(path.join(out, 'webview.css'), 'utf8'));
    // The save dialog already asked before replacing a file; never replace the model or its data.
    const params = analyzeParams(model);
    writeOutput({ path: target.fsPath, role: 'export', force: true, inputs: [...modelCompanions(model), params.dataPath] }, content);
    output.appendLine(`[export] ${target.fsPath}`);
    void vscode.window.showInformationMessage(`QuantLens: exported ${path.basename(target.fsPath)}`);
  });

  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(OUTLINE_SCHEME, {
      provideTextDocumentContent: async (uri) => {
        try {
          const modelPath = uri.path.replace(/\.outline$/, '');
          return (await engine!.quickRequest(OutlineRequest, { modelPath, uri: uri.toString() }, [modelPath])).text;
        } catch (e) {
          actions.fail('outline', e);
          return `# QuantLens could not read this model: ${(e as Error).message}\n`;
        }
      },
    }),
  );

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
