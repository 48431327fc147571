/**
 * The configuration for one model: VS Code settings (`quantlens.*`), overridden by a
 * `quantlens.json` beside the model.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalyzeParams, ModelSettings } from '../protocol/messages';
import { configFromSettings } from './onScreen';
import { readModelSettings } from '../engine/io/modelSettings';

/**
 * The analysis parameters for a model, and the paths the USER pointed at (the model the command
 * runs on, a data path from VS Code settings): the engine may read those even outside the
 * workspace. A data path from a quantlens.json (a file in the repository) gets no such pass.
 */
export function analyzeParams(modelPath: string): AnalyzeParams & { userPicked: string[] } {
  const c = vscode.workspace.getConfiguration('quantlens', vscode.Uri.file(modelPath));
  const fromSettings: ModelSettings = {
    preset: c.get('preset'),
    calibration: c.get('calibration') || undefined,
    percentile: c.get('percentile') || undefined,
    weightBits: c.get('weightBits'),
    activationBits: c.get('activationBits'),
    granularity: c.get('granularity'),
    symmetric: c.get<boolean | null>('symmetric') ?? null,
    dataPath: c.get('dataPath') || undefined,
    samples: c.get('samples') || undefined,
    sqnrWarningDb: c.get('sqnrWarningDb'),
  };
  const { settings: local } = readModelSettings(modelPath);
  const s: ModelSettings = { ...fromSettings, ...Object.fromEntries(Object.entries(local).filter(([, v]) => v !== undefined)) };
  // A data path in quantlens.json is relative to the model; one in settings to the workspace folder.
  let dataPath = s.dataPath;
  if (dataPath && !path.isAbsolute(dataPath)) {
    const base = local.dataPath
      ? path.dirname(modelPath)
      : (vscode.workspace.getWorkspaceFolder(vscode.Uri.file(modelPath))?.uri.fsPath ?? path.dirname(modelPath));
    dataPath = path.resolve(base, dataPath);
  }
  const config = configFromSettings(s);
  const userPicked = [modelPath, ...(dataPath && !local.dataPath ? [dataPath] : [])];
  // quantlens.json beside the model overrides the setting, as for every other key
  const targetCpu = local.targetCpu ?? c.get<'this' | 'vnni' | 'no-vnni'>('targetCpu') ?? 'this';
  return { modelPath, dataPath, samples: s.samples, config, sensitivity: true, sqnrWarningDb: s.sqnrWarningDb ?? 20, targetCpu, userPicked };
}
