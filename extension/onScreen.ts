/**
 * One state: what the report panel shows, and the configuration every action acts on. Sweep,
 * Mixed Precision, Quantize and Export use the configuration ON SCREEN (the report's `config`, with
 * its overrides, or the sweep entry the user picked), never a quantlens.json behind it; quantlens.json
 * changes only when the user confirms. Pure (no vscode): unit tests import it.
 */
import type { ConfigSource, ModelSettings, SessionExport, ToWebview } from '../protocol/messages';
import type { CompareReport, MixedPrecisionResult, QuantConfig, Range, Report, SweepReport } from '../protocol/report';
import { REPORT_SCHEMA_VERSION } from '../protocol/report';
import { resolveConfig } from '../engine/quantize/presets';
export { settingsFromConfig } from '../engine/io/modelSettings';

export interface OnScreen {
  modelPath: string;
  config: QuantConfig;
  /** Where it came from, for messages: "the report" or "sweep #3 (W8/ch A8 sym mse)". */
  origin: string;
}

export class SessionState {
  report: { report: Report; sqnrWarningDb: number } | undefined;
  sweep: { sweep: SweepReport; dataPath?: string; samples?: number } | undefined;
  mixed: MixedPrecisionResult | undefined;
  compare: CompareReport | undefined;
  private picked: OnScreen | undefined;

  /** A report arrived: it is on screen now, with its configuration. */
  setReport(report: Report, sqnrWarningDb: number): void {
    this.report = { report, sqnrWarningDb };
    this.picked = undefined;
  }

  setSweep(sweep: SweepReport, dataPath?: string, samples?: number): void {
    this.sweep = { sweep, dataPath, samples };
    this.picked = undefined;
  }

  /** The user selected a sweep entry: commands act on it until another report or sweep arrives. */
  pickSweepEntry(id: number): OnScreen | undefined {
    const r = this.resolve({ kind: 'sweep', id });
    if (r) this.picked = r;
    return r;
  }

  /** The configuration a source names, from what this state sent to the webview. */
  resolve(source: ConfigSource): OnScreen | undefined {
    if (source.kind === 'report') {
      const r = this.report?.report;
      return r ? { modelPath: r.model.path, config: r.config, origin: 'the report on screen' } : undefined;
    }
    const s = this.sweep?.sweep;
    const e = s?.configs.find((c) => c.id === source.id);
    if (!s || !e || e.error) return undefined;
    return { modelPath: s.model.path, config: e.config, origin: `sweep #${e.id + 1} (${e.label})` };
  }

  /** What commands run on for this model: the picked sweep entry, else the report's configuration, else nothing (settings). */
  onScreenFor(modelPath: string): OnScreen | undefined {
    if (this.picked?.modelPath === modelPath) return this.picked;
    const r = this.resolve({ kind: 'report' });
    return r?.modelPath === modelPath ? r : undefined;
  }

  /** Every view, replayed to the webview (the report last: it is the one shown unless focus says otherwise). */
  views(): ToWebview[] {
    const v: ToWebview[] = [];
    if (this.sweep) v.push({ type: 'sweep', sweep: this.sweep.sweep });
    if (this.mixed) v.push({ type: 'mixedPrecision', result: this.mixed });
    if (this.compare) v.push({ type: 'compare', compare: this.compare });
    if (this.report) v.push({ type: 'report', report: this.report.report, sqnrWarningDb: this.report.sqnrWarningDb });
    return v;
  }

  /** Everything the session showed, for the JSON and HTML exports. */
  export(defaultSqnrWarningDb = 20): SessionExport {
    return {
      kind: 'quantlens-session',
      schemaVersion: REPORT_SCHEMA_VERSION,
      sqnrWarningDb: this.report?.sqnrWarningDb ?? defaultSqnrWarningDb,
      report: this.report?.report ?? null,
      sweep: this.sweep?.sweep ?? null,
      mixedPrecision: this.mixed ?? null,
      compare: this.compare ?? null,
    };
  }

  /** The model the session is about (the report's, else the sweep's, else the mixed-precision result's). */
  modelPath(): string | undefined {
    return this.report?.report.model.path ?? this.sweep?.sweep.model.path ?? this.mixed?.model.path ?? this.compare?.a.path;
  }
}

/** The configuration with `range` as the explicit range of one activation tensor (replacing its previous range or method, keeping its bits). */
export function withTensorRange(config: QuantConfig, tensor: string, range: Range): QuantConfig {
  const others = (config.tensorOverrides ?? []).filter((o) => o.tensor !== tensor);
  const previous = config.tensorOverrides?.find((o) => o.tensor === tensor);
  const override = { tensor, range: { lo: range.lo, hi: range.hi }, ...(previous?.bits ? { bits: previous.bits } : {}) };
  return { ...config, tensorOverrides: [...others, override] };
}

/** A configuration from per-model settings (VS Code settings merged with quantlens.json). */
export function configFromSettings(s: ModelSettings): QuantConfig {
  const symmetric = s.symmetric ?? undefined;
  const config = resolveConfig(s.preset ?? 'tensorrt', {
    calibration: s.calibration,
    percentile: s.percentile,
    exclude: s.exclude,
    weights: { bits: s.weightBits, perChannel: s.granularity ? s.granularity === 'per-channel' : undefined },
    activations: { bits: s.activationBits, symmetric, signed: symmetric },
  });
  if (s.tensorOverrides?.length) config.tensorOverrides = s.tensorOverrides;
  if (s.layerOverrides?.length) config.layerOverrides = s.layerOverrides;
  return config;
}

/** "tensorrt W8/ch A8 sym entropy + 2 overrides, 1 layer in float": one line naming a configuration in messages. */
export function describeConfig(c: QuantConfig): string {
  const cal = c.calibration === 'percentile' ? `percentile ${c.percentile}` : c.calibration;
  const over = (c.tensorOverrides?.length ?? 0) + (c.layerOverrides?.length ?? 0);
  const base = `${c.preset} W${c.weights.bits}/${c.weights.perChannel ? 'ch' : 't'} A${c.activations.bits} ${c.activations.symmetric ? 'sym' : 'asym'} ${cal}`;
  const extra: string[] = [];
  if (over) extra.push(`${over} override${over === 1 ? '' : 's'}`);
  if (c.exclude.length) extra.push(`${c.exclude.length} layer${c.exclude.length === 1 ? '' : 's'} in float`);
  return extra.length ? `${base} + ${extra.join(', ')}` : base;
}
