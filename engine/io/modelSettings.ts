/**
 * `quantlens.json` beside a model: per-model settings that override the VS Code settings (the
 * extension reads it) and where the CLI records decisions the user asked it to keep
 * (`--write-config`). Written only on request, atomically, keeping every key it does not set.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelSettings } from '../../protocol/messages';
import { CALIBRATION_METHODS, type QuantConfig } from '../../protocol/report';
import { PRESET_NAMES } from '../quantize/presets';
import { InputError } from '../errors';
import { readRegularFile, writeOutput } from './files';

export const MODEL_SETTINGS_FILE = 'quantlens.json';

export function settingsPathFor(modelPath: string): string {
  return path.join(path.dirname(path.resolve(modelPath)), MODEL_SETTINGS_FILE);
}

/** The settings beside a model ({} when there is no file); a malformed file is a one-line error. */
export function readModelSettings(modelPath: string): { settings: ModelSettings; file?: string } {
  const file = settingsPathFor(modelPath);
  if (!fs.existsSync(file)) return { settings: {} };
  let value: unknown;
  try {
    value = JSON.parse(readRegularFile(file, 'settings file', 1 << 20).toString('utf8'));
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${file} must hold a JSON object`);
  const bad = settingsProblem(value as Record<string, unknown>);
  if (bad) throw new InputError(`${file}: ${bad}`);
  return { settings: value as ModelSettings, file };
}

const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const oneOf = (values: readonly unknown[]) => (v: unknown) => values.includes(v);

/** What each known key must hold, in words; unknown keys are left alone (a newer version's). */
const SETTING_CHECKS: Record<string, [(v: unknown) => boolean, string]> = {
  preset: [oneOf(PRESET_NAMES), `one of ${PRESET_NAMES.join(', ')}`],
  calibration: [oneOf(CALIBRATION_METHODS), `one of ${CALIBRATION_METHODS.join(', ')}`],
  percentile: [(v) => typeof v === 'number' && v > 0 && v <= 100, 'a number in (0, 100]'],
  weightBits: [oneOf([4, 8, 16]), '4, 8 or 16'],
  activationBits: [oneOf([4, 8, 16]), '4, 8 or 16'],
  granularity: [oneOf(['per-channel', 'per-tensor']), '"per-channel" or "per-tensor"'],
  symmetric: [(v) => typeof v === 'boolean' || v === null, 'true, false or null'],
  dataPath: [(v) => typeof v === 'string' && v.trim() !== '', 'a path (a non-empty string)'],
  samples: [(v) => Number.isInteger(v) && (v as number) > 0, 'a positive integer'],
  sqnrWarningDb: [(v) => typeof v === 'number' && Number.isFinite(v), 'a number (dB)'],
  targetCpu: [oneOf(['this', 'vnni', 'no-vnni']), '"this", "vnni" or "no-vnni"'],
  exclude: [(v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), 'a list of node names (strings)'],
  tensorOverrides: [(v) => Array.isArray(v) && v.every(isObject), 'a list of objects'],
  layerOverrides: [(v) => Array.isArray(v) && v.every(isObject), 'a list of objects'],
  inputs: [isObject, 'an object keyed by input name'],
};

/** Keys of a quantlens.json this version does not know (a typo, or a newer version's key): said, never silently ignored. */
export function unknownSettings(value: ModelSettings): string[] {
  return Object.keys(value).filter((k) => !(k in SETTING_CHECKS));
}

/** The first key of a quantlens.json whose value cannot mean anything, in one phrase; null when all can. */
export function settingsProblem(value: Record<string, unknown>): string | null {
  for (const [key, [ok, want]] of Object.entries(SETTING_CHECKS)) {
    if (key in value && value[key] !== undefined && !ok(value[key])) return `"${key}" must be ${want}, not ${JSON.stringify(value[key])}`;
  }
  return null;
}

/** Merge `changes` into the model's quantlens.json (other keys kept); returns the file written. */
export function updateModelSettings(modelPath: string, changes: Partial<ModelSettings>): string {
  const { settings } = readModelSettings(modelPath);
  const file = settingsPathFor(modelPath);
  return writeOutput({ path: file, role: 'settings file', force: true, inputs: [modelPath] }, JSON.stringify({ ...settings, ...changes }, null, 2) + '\n');
}

/** Keys `before` held that `after` gives another value, as 'key "old" -> "new"'. */
export function replacedSettings(before: ModelSettings, after: Partial<ModelSettings>): string[] {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  return Object.keys(a)
    .filter((k) => b[k] !== undefined && JSON.stringify(b[k]) !== JSON.stringify(a[k]))
    .map((k) => `${k} ${JSON.stringify(b[k])} -> ${JSON.stringify(a[k])}`);
}

/**
 * The quantlens.json keys that reproduce a configuration (the extension's configFromSettings of them
 * gives it back for every preset's own grid types): what the extension's "record in quantlens.json"
 * and the CLI's `--write-config` write, the whole configuration, so no key of an earlier one is left
 * to contradict it.
 */
export function settingsFromConfig(c: QuantConfig): ModelSettings {
  return {
    preset: c.preset,
    calibration: c.calibration,
    percentile: c.percentile,
    weightBits: c.weights.bits,
    activationBits: c.activations.bits,
    granularity: c.weights.perChannel ? 'per-channel' : 'per-tensor',
    symmetric: c.activations.symmetric,
    exclude: [...c.exclude],
    ...(c.tensorOverrides?.length ? { tensorOverrides: c.tensorOverrides } : {}),
    ...(c.layerOverrides?.length ? { layerOverrides: c.layerOverrides } : {}),
  };
}

/**
 * The keys of a quantlens.json that the CLI does not apply and that differ from what a run used,
 * as "key value (this run: other)". The CLI reads a quantlens.json's inputs only (the extension
 * reads all of it), so a user comparing a CLI run with the extension's must hear where they part.
 */
export function unappliedSettings(s: ModelSettings, run: { config: QuantConfig; dataPath?: string; modelPath: string }): string[] {
  const c = run.config;
  const out: string[] = [];
  const differ = (key: string, file: unknown, used: unknown) => {
    if (file !== undefined && file !== null && JSON.stringify(file) !== JSON.stringify(used))
      out.push(`${key} ${JSON.stringify(file)} (this run: ${JSON.stringify(used)})`);
  };
  differ('preset', s.preset, c.preset);
  differ('calibration', s.calibration, c.calibration);
  if (c.calibration === 'percentile' || s.calibration === 'percentile') differ('percentile', s.percentile, c.percentile);
  differ('weightBits', s.weightBits, c.weights.bits);
  differ('activationBits', s.activationBits, c.activations.bits);
  differ('granularity', s.granularity, c.weights.perChannel ? 'per-channel' : 'per-tensor');
  differ('symmetric', s.symmetric, c.activations.symmetric);
  differ('exclude', s.exclude?.length ? [...s.exclude].sort() : undefined, [...c.exclude].sort());
  if (s.tensorOverrides?.length && !c.tensorOverrides?.length) out.push(`tensorOverrides (${s.tensorOverrides.length}; this run: none)`);
  if (s.layerOverrides?.length && !c.layerOverrides?.length) out.push(`layerOverrides (${s.layerOverrides.length}; this run: none)`);
  if (s.dataPath !== undefined) {
    const file = path.resolve(path.dirname(path.resolve(run.modelPath)), s.dataPath);
    if (!run.dataPath || path.resolve(run.dataPath) !== file)
      out.push(`dataPath ${JSON.stringify(s.dataPath)} (this run: ${run.dataPath ? JSON.stringify(run.dataPath) : 'no data'})`);
  }
  return out;
}
