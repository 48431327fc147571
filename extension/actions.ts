/**
 * What the commands and the report's buttons run: analyze, sweep, mixed precision, quantize, apply
 * a fix, re-measure a what-if. Each acts on an explicit configuration (the one on screen, see
 * onScreen.ts); new model files and quantlens.json are written only after the user confirms.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AnalyzeRequest, MixedPrecisionRequest, QuantizeRequest, type SweepParams, SweepRequest } from '../protocol/messages';
import type { Fix, MixedPrecisionResult, QuantConfig, Report } from '../protocol/report';
import { gridConfigs } from '../engine/quantize/grid';
import { freshPath } from '../engine/io/files';
import { updateModelSettings } from '../engine/io/modelSettings';
import type { EngineClient } from './engineClient';
import { reportJson } from './export';
import { describeConfig, type OnScreen, type SessionState, settingsFromConfig } from './onScreen';
import { ReportPanel, type ReportSource } from './reportPanel';
import { analyzeParams } from './settings';
import { pickSweepAxes } from './sweepPicks';

export interface ActionDeps {
  context: vscode.ExtensionContext;
  engine: EngineClient;
  output: vscode.LogOutputChannel;
  state: SessionState;
  source: ReportSource;
  /** Where the last report is kept across window reloads. */
  lastFile: vscode.Uri;
  onReport(): void;
}

const WRITE_MODEL = 'Write model';
const WRITE_BOTH = 'Write model and quantlens.json';

export class Actions {
  constructor(private readonly d: ActionDeps) {}

  fail(what: string, e: unknown): void {
    const msg = (e as Error).message ?? String(e);
    if (/cancel/i.test(msg)) {
      this.d.output.appendLine(`[${what}] cancelled`);
      void vscode.window.showInformationMessage(`QuantLens: ${what} cancelled.`);
      ReportPanel.post({ type: 'error', message: `${what} cancelled` });
      return;
    }
    this.d.output.appendLine(`[${what}] ${msg}`);
    void vscode.window.showErrorMessage(`QuantLens: ${what} failed: ${msg}`);
    // The panel keeps what it shows and re-enables the button that asked.
    ReportPanel.post({ type: 'error', message: `${what} failed: ${msg}` });
  }

  /** The configuration commands act on for this model: the one on screen, else the settings (and quantlens.json). */
  base(model: string): OnScreen {
    return this.d.state.onScreenFor(model) ?? { modelPath: model, config: analyzeParams(model).config, origin: 'settings and quantlens.json' };
  }

  /** Analyze with the settings, or with an explicit configuration (a sweep point, a fix, a what-if). */
  async analyze(model: string, config?: QuantConfig, origin = 'settings and quantlens.json'): Promise<Report | undefined> {
    try {
      const params = analyzeParams(model);
      if (config) params.config = config;
      this.d.output.appendLine(
        `[analyze] ${model}: ${describeConfig(params.config)} (from ${origin}), data ${params.dataPath ?? 'synthetic'}, target CPU ${params.targetCpu}`,
      );
      if (!params.dataPath) {
        void vscode.window.showWarningMessage(
          'QuantLens: no calibration data configured (quantlens.dataPath or quantlens.json); using synthetic inputs, so thresholds say nothing about real activations.',
        );
      }
      const report = await this.d.engine.request(AnalyzeRequest, params, `QuantLens: analyzing ${path.basename(model)}`);
      this.d.state.setReport(report, params.sqnrWarningDb);
      fs.mkdirSync(this.d.context.globalStorageUri.fsPath, { recursive: true });
      fs.writeFileSync(this.d.lastFile.fsPath, reportJson({ report, sqnrWarningDb: params.sqnrWarningDb }));
      this.d.onReport();
      this.d.output.appendLine(
        `[analyze] done: ${report.layers.length} layers, drop ${report.accuracy.dropPoints ?? 'n/a'} points${report.diagnosis ? `, diagnosis: ${report.diagnosis.drop.verdict}` : ''}`,
      );
      ReportPanel.show(this.d.context, this.d.source, 'report');
      return report;
    } catch (e) {
      this.fail('analysis', e);
      return undefined;
    }
  }

  /** Re-analyze with the diagnosis's fix, then offer to write the model (nothing written unasked). */
  async applyFix(): Promise<void> {
    const r = this.d.state.report?.report;
    const fix = r?.diagnosis?.fix;
    if (!r || !fix) return void vscode.window.showInformationMessage('QuantLens: the report on screen has no fix to apply.');
    this.d.output.appendLine(`[fix] ${fix.description}`);
    const after = await this.analyze(r.model.path, fix.config, `the diagnosis fix: ${fix.description}`);
    if (!after) return;
    const drop = after.diagnosis?.drop ?? null;
    const now = drop
      ? `${drop.value.toFixed(2)} ${drop.unit}`
      : after.accuracy.dropPoints !== null
        ? `${after.accuracy.dropPoints.toFixed(2)} points`
        : 'measured';
    await this.offerWrite(after.model.path, after.config, '.fixed.qdq.onnx', `QuantLens: with the fix the drop is ${now}. Write the fixed model`);
  }

  /** Ask, then write `config` as a QDQ model beside `model` (and optionally record it in quantlens.json). */
  async offerWrite(model: string, config: QuantConfig, suffix: string, question: string, offerSettings = true): Promise<void> {
    const outPath = freshPath(model.replace(/\.onnx$/i, ''), suffix);
    const buttons = offerSettings ? [WRITE_MODEL, WRITE_BOTH] : [WRITE_MODEL];
    const choice = await vscode.window.showInformationMessage(`${question} as ${path.basename(outPath)} (${describeConfig(config)})?`, ...buttons);
    if (!choice) {
      this.d.output.appendLine('[write] declined: nothing written');
      return;
    }
    try {
      const params = analyzeParams(model);
      const res = await this.d.engine.request(QuantizeRequest, { ...params, config, outPath }, `QuantLens: writing ${path.basename(outPath)}`);
      const written = [path.basename(res.path)];
      if (choice === WRITE_BOTH) written.push(path.basename(updateModelSettings(model, settingsFromConfig(config))));
      this.d.output.appendLine(`[write] wrote ${written.join(', ')} (${describeConfig(config)})`);
      for (const w of res.warnings) this.d.output.appendLine(`[write] WARNING: ${w}`);
      if (res.warnings.length) {
        void vscode.window.showWarningMessage(
          `QuantLens: ${res.warnings.length} activation range(s) of the written model clip 10% or more of their calibration values: ${res.warnings[0]}`,
        );
      }
      const reveal = await vscode.window.showInformationMessage(`QuantLens: wrote ${written.join(' and ')}.`, 'Reveal');
      if (reveal === 'Reveal') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(res.path));
    } catch (e) {
      this.fail('writing the model', e);
    }
  }

  async sweep(base: OnScreen): Promise<void> {
    try {
      const params = analyzeParams(base.modelPath);
      const axes = await pickSweepAxes();
      if (!axes) return;
      const configs = gridConfigs(base.config, axes);
      const sweepParams: SweepParams = { modelPath: base.modelPath, dataPath: params.dataPath, samples: params.samples, configs };
      this.d.output.appendLine(`[sweep] ${base.modelPath}: ${configs.length} configurations around ${describeConfig(base.config)} (from ${base.origin})`);
      const sweep = await this.d.engine.request(
        SweepRequest,
        { ...sweepParams, userPicked: params.userPicked },
        `QuantLens: sweeping ${configs.length} configurations`,
      );
      this.d.state.setSweep(sweep);
      this.d.output.appendLine(
        `[sweep] done: first ${sweep.timings.firstConfigMs.toFixed(0)} ms, each further ${sweep.timings.meanExtraConfigMs.toFixed(0)} ms`,
      );
      ReportPanel.show(this.d.context, this.d.source, 'sweep');
    } catch (e) {
      this.fail('sweep', e);
    }
  }

  async mixedPrecision(base: OnScreen): Promise<void> {
    const answer = await vscode.window.showInputBox({
      title: `Mixed precision from ${describeConfig(base.config)} (${base.origin})`,
      prompt: 'Maximum accuracy drop in points (float top-1 minus integer top-1; agreement when there are no labels)',
      value: String(this.d.state.report?.report.diagnosis?.budget ?? 0.5),
      validateInput: (v) => (v.trim() !== '' && Number(v) >= 0 ? undefined : 'a non-negative number of points'),
    });
    if (answer === undefined) return;
    try {
      const params = analyzeParams(base.modelPath);
      this.d.output.appendLine(`[mixed precision] ${base.modelPath}: budget ${answer} from ${describeConfig(base.config)} (from ${base.origin})`);
      const result = await this.d.engine.request(
        MixedPrecisionRequest,
        { ...params, config: base.config, maxDrop: Number(answer) },
        'QuantLens: mixed precision',
      );
      this.d.state.mixed = result;
      ReportPanel.show(this.d.context, this.d.source, 'mixedPrecision');
      if (!result.met) {
        void vscode.window.showWarningMessage(
          `QuantLens: the budget of ${answer} points was not met even with ${result.exclude.length} layers in float. Nothing was written.`,
        );
        return;
      }
      const final = result.steps[result.steps.length - 1];
      // The search's final plan when it reports one (it may change calibration or bits too);
      // else the exclusions on top of the configuration, whose own float layers stay in float.
      const plan = (result as MixedPrecisionResult & { fix?: Fix | null }).fix?.config;
      const config = plan ?? { ...base.config, exclude: [...new Set([...base.config.exclude, ...result.exclude])] };
      await this.offerWrite(
        base.modelPath,
        config,
        '.mixed.qdq.onnx',
        `QuantLens: the mixed-precision plan brings the drop to ${final.drop.toFixed(2)} points (budget ${answer}). Write the model`,
      );
    } catch (e) {
      this.fail('mixed precision', e);
    }
  }

  async quantize(base: OnScreen): Promise<void> {
    await this.offerWrite(base.modelPath, base.config, '.qdq.onnx', `QuantLens: quantize with the configuration from ${base.origin}`, false);
  }
}
