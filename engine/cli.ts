/**
 * `quantlens` command line: analyze, quantize. Bad input exits 2 with one line on stderr;
 * progress bars go to stderr so stdout stays clean for pipes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MultiBar, Presets } from 'cli-progress';
import type {
  CalibrationMethod,
  CompareReport,
  GateResult,
  MixedPrecisionResult,
  PresetName,
  QuantConfig,
  Report,
  SweepReport,
  Warning,
} from '../protocol/report';
import { QuantConfigSchema } from '../protocol/messages';
import { CALIBRATION_METHODS, REPORT_SCHEMA_VERSION } from '../protocol/report';
import { reportReplacer } from '../protocol/wire';
import { formatRate } from '../protocol/format';
import type { Interval } from '../protocol/metrics';
import {
  CancelledError,
  type EvaluateOptions,
  type Prepared,
  type Progress,
  evaluate,
  prepareLoaded,
  quantizeWith,
  requireQuantizedLayers,
} from './analysis/analyze';
import { type DeployedModel, deployedModel, evaluateDeployed, prepareDeployed, quantizeDeployed, requireDeployed, requireFloat } from './quantized/deployed';
import { compareModels } from './quantized/compare';
import { formatCompare } from './report/compareSummary';
import { writeQuantizedModel } from './analysis/quantizeModel';
import { runSweep } from './analysis/sweep';
import { DEFAULT_AXES, configLabel, gridConfigs, parseAxes } from './quantize/grid';
import { mixedPrecision, writeMixedPrecision } from './analysis/mixedPrecision';
import { gateFromReport, gateOutcome, runGate } from './analysis/gate';
import { InputError, loadModel } from './onnx/model';
import { modelCompanions } from './io/modelFiles';
import { type InputSetting, parseShapeArg, parseStateArg, parseValueArg } from './data/inputs';
import { type IntegerOnlyResult, runIntegerOnly } from './integerOnly';
import { type ConfigOverrides, PRESETS, PRESET_NAMES, resolveConfig } from './quantize/presets';
import { formatSummary } from './report/summary';
import { formatMixedPrecision, formatSweep } from './report/planSummary';
import { applyCalibrationTable, exportCalibrationTable } from './analysis/calibrationTables';
import { loadUserMetric } from './analysis/userMetric';
import { type OutputTarget, checkOutput, readRegularFile, realPathOrNull, realTarget, writeOutput } from './io/files';
import {
  readModelSettings,
  replacedSettings,
  settingsFromConfig,
  settingsPathFor,
  unappliedSettings,
  unknownSettings,
  updateModelSettings,
} from './io/modelSettings';

/** Number(v), except that an empty or blank value is no number (Number('') is 0). */
function numeric(v: string): number {
  return v.trim() === '' ? NaN : Number(v);
}

function intArg(v: string): number {
  const n = numeric(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function bitsArg(v: string): 4 | 8 | 16 {
  if (v !== '4' && v !== '8' && v !== '16') throw new InvalidArgumentError('must be 4, 8 or 16');
  return Number(v) as 4 | 8 | 16;
}

function percentileArg(v: string): number {
  const n = numeric(v);
  if (!(n > 0 && n <= 100)) throw new InvalidArgumentError('must be in (0, 100]');
  return n;
}

/**
 * --act-bits for commands that measure by running the model in onnxruntime: 4 is refused before
 * any work (the session would refuse it only after calibration, session.ts says why).
 */
function measuredActBitsArg(v: string): 4 | 8 | 16 {
  if (v === '4')
    throw new InvalidArgumentError(
      "4-bit activations cannot be measured: onnxruntime's 4-bit QuantizeLinear corrupts memory; use 8 or 16 (quantize writes 4-bit activations)",
    );
  if (v !== '8' && v !== '16') throw new InvalidArgumentError('must be 8 or 16');
  return Number(v) as 8 | 16;
}

/** Options shared by every command that quantizes; `runs`: the command measures in onnxruntime (every one but quantize and integer-only). */
function withQuantOptions(cmd: Command, runs = true): Command {
  return cmd
    .option('--data <path>', 'calibration data: a .npz file or a folder of .npy files named after the inputs (+ labels.npy)')
    .option('--samples <n>', 'use at most this many samples', intArg)
    .addOption(new Option('--preset <name>', 'backend preset').choices(PRESET_NAMES).default('tensorrt'))
    .addOption(new Option('--calibration <method>', "activation calibration method (default: the preset's)").choices(CALIBRATION_METHODS as string[]))
    .option('--percentile <p>', 'percentile for --calibration percentile', percentileArg)
    .option('--weight-bits <bits>', 'weight bits: 4, 8 or 16', bitsArg)
    .option('--act-bits <bits>', runs ? 'activation bits: 8 or 16' : 'activation bits: 4, 8 or 16', runs ? measuredActBitsArg : bitsArg)
    .option('--per-tensor', 'quantize weights per tensor instead of per channel')
    .option('--per-channel', 'quantize weights per output channel')
    .option('--symmetric', 'symmetric activations (zero point at the grid centre)')
    .option('--asymmetric', 'asymmetric activations')
    .addOption(new Option('--placement <policy>', 'compute: only Conv/Gemm/MatMul; extended: also Add/Mul/Concat/pooling').choices(['compute', 'extended']))
    .option('--exclude <nodes>', 'comma-separated node names kept in float', (v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .option('--no-fold-bn', 'do not fold BatchNormalization into the preceding Conv')
    .option(
      '--batch-size <n>',
      "samples per inference batch; also the calibration's: histogram methods (percentile, entropy, mse) fix their bin width on the first batch and ema averages per-batch ranges, as TensorRT's and onnxruntime's calibrators do, so their thresholds depend on it (minmax does not)",
      intArg,
    )
    .option(
      '--input <name=value>',
      'a constant input, the same value for every sample (repeatable; a comma list for several values), e.g. --input sr=16000',
      collect,
      [],
    )
    .option(
      '--state <input=output>',
      'a recurrent input fed from a model output of the previous sample (zeros first; samples in order), e.g. --state state=stateN',
      collect,
      [],
    )
    .option(
      '--input-shape <name=AxB>',
      'the full shape of an input whose dims the model leaves dynamic (synthetic data, states, constants), e.g. --input-shape input=1x512',
      collect,
      [],
    )
    .option('--calibration-table <file>', "take activation ranges from another tool: a TensorRT calibration cache or onnxruntime's calibration.json")
    .addOption(
      new Option('--target-cpu <cpu>', 'deployment CPU for CPU-dependent hazards (u8s8 saturation needs x86 without VNNI)')
        .choices(['this', 'vnni', 'no-vnni'])
        .default('this'),
    )
    .option('--metric <file.mjs>', 'your own per-sample metric (docs/metric.md); judges the run instead of top-1/SQNR')
    .option('--force', 'replace existing output files this command writes; inputs are never replaced')
    .option('--quiet', 'no progress bars');
}

interface QuantOpts {
  data?: string;
  samples?: number;
  preset: PresetName;
  calibration?: CalibrationMethod;
  percentile?: number;
  weightBits?: 4 | 8 | 16;
  actBits?: 4 | 8 | 16;
  perTensor?: boolean;
  perChannel?: boolean;
  symmetric?: boolean;
  asymmetric?: boolean;
  placement?: 'compute' | 'extended';
  exclude?: string[];
  foldBn: boolean;
  batchSize?: number;
  quiet?: boolean;
  force?: boolean;
  calibrationTable?: string;
  targetCpu: 'this' | 'vnni' | 'no-vnni';
  metric?: string;
  input?: string[];
  state?: string[];
  inputShape?: string[];
}

/** The configuration, with the ranges of a --calibration-table applied; its warnings go in the report. */
async function configFor(p: Prepared, o: QuantOpts) {
  const config = configFrom(o);
  if (!o.calibrationTable) return { config, warnings: [] as Warning[] };
  return applyCalibrationTable(p, config, o.calibrationTable);
}

/** Options evaluate() takes from the command line. */
async function evalOpts(o: QuantOpts) {
  return { targetCpu: o.targetCpu, metric: o.metric ? await loadUserMetric(path.resolve(o.metric)) : undefined };
}

/**
 * Every file a command reads: never written over, --force or not. The models' external data files
 * are found by reading the models, which only matters (and is only done) when `file` exists and
 * --force would replace it.
 */
function inputFiles(o: QuantOpts & { float?: string; fix?: string }, model: string, file: string): (string | undefined)[] {
  const models = [model, o.float].filter((m): m is string => !!m);
  const readExternal = !!o.force && realPathOrNull(file) !== null;
  return [...models.flatMap((m) => modelCompanions(m, readExternal)), o.data, o.fix, o.calibrationTable, o.metric];
}

/** An output file named by `option`, checked before any work (fails fast), written at the end. */
function output(o: QuantOpts, model: string, file: string | undefined, option: string, role: string, otherModels: string[] = []): OutputTarget | undefined {
  if (file === undefined) return undefined;
  // "-" is standard output in many tools; here it would be a file named "-"
  if (file === '-') throw new InputError(`${option} -: name a file (QuantLens writes ${role}s to files; analyze --json prints the report on standard output)`);
  const inputs = [model, ...otherModels].flatMap((m) => inputFiles(o, m, file));
  const target: OutputTarget = { path: file, role, option, force: o.force, inputs };
  checkOutput(target);
  return target;
}

/** Two outputs of one command must be two files: the second would replace the first. */
function distinctOutputs(...targets: (OutputTarget | undefined)[]): void {
  const seen = new Map<string, OutputTarget>();
  for (const t of targets) {
    if (!t) continue;
    const real = realTarget(t.path);
    const first = seen.get(real);
    if (first) throw new InputError(`${first.option} and ${t.option} name the same file ${real}; give each its own path`);
    seen.set(real, t);
  }
}

function writeJson(target: OutputTarget | undefined, value: unknown): void {
  if (target) writeOutput(target, JSON.stringify(value, reportReplacer, 1) + '\n');
}

export function configFrom(o: QuantOpts) {
  if (o.perTensor && o.perChannel) throw new InputError('--per-tensor and --per-channel contradict each other');
  if (o.symmetric && o.asymmetric) throw new InputError('--symmetric and --asymmetric contradict each other');
  const over: ConfigOverrides = {
    calibration: o.calibration,
    percentile: o.percentile,
    placement: o.placement,
    exclude: o.exclude,
    foldBatchNorm: o.foldBn,
    weights: { bits: o.weightBits, perChannel: o.perTensor ? false : o.perChannel ? true : undefined },
    activations: {
      bits: o.actBits,
      symmetric: o.symmetric ? true : o.asymmetric ? false : undefined,
      // an asymmetric grid is unsigned (uint8), a symmetric one signed (int8), as ONNX backends expect
      signed: o.symmetric ? true : o.asymmetric ? false : undefined,
    },
  };
  return resolveConfig(o.preset, over);
}

const unitOf = (stage: string) => (stage === 'sensitivity' ? 'layers' : stage === 'sweep' ? 'configs' : 'samples');

/** Milliseconds between plain progress lines when stderr is not a terminal (a CI log): 10 s, or QUANTLENS_PROGRESS_EVERY seconds. */
function plainProgressMs(): number {
  const v = process.env.QUANTLENS_PROGRESS_EVERY?.trim();
  const s = Number(v);
  return v && Number.isFinite(s) && s >= 0 ? s * 1000 : 10_000;
}

/**
 * Progress on stderr: bars, one per stage, on a terminal; elsewhere (a CI log, a pipe) one plain
 * line every 10 s of a long run, so a slow job is seen to move without control codes in the log.
 */
function progressReporter(quiet: boolean | undefined) {
  if (quiet) return { onProgress: undefined, stop: () => {} };
  if (!process.stderr.isTTY && process.env.QUANTLENS_PROGRESS !== '1') {
    const t0 = Date.now();
    const every = plainProgressMs();
    let last = t0;
    return {
      onProgress: (p: Progress) => {
        const now = Date.now();
        if (now - last < every) return;
        last = now;
        process.stderr.write(`quantlens: ${p.stage} ${p.done}/${p.total} ${unitOf(p.stage)} (${Math.round((now - t0) / 1000)} s)\n`);
      },
      stop: () => {},
    };
  }
  const multi = new MultiBar(
    { stream: process.stderr, format: ' {stage} |{bar}| {value}/{total} {unit}', hideCursor: true, clearOnComplete: false },
    Presets.shades_classic,
  );
  const bars = new Map<string, ReturnType<MultiBar['create']>>();
  return {
    onProgress: (p: Progress) => {
      let b = bars.get(p.stage);
      if (!b)
        bars.set(
          p.stage,
          (b = multi.create(p.total, 0, {
            stage: p.stage.padEnd(11),
            unit: unitOf(p.stage),
          })),
        );
      b.setTotal(p.total);
      b.update(p.done);
    },
    stop: () => multi.stop(),
  };
}

/** Budget options shared by analyze --diagnose, mixed-precision and gate. */
interface BudgetOpts {
  maxDrop?: number;
  minSqnr?: number;
}

async function runAnalyze(
  model: string,
  o: QuantOpts &
    BudgetOpts & {
      report?: string;
      sensitivity: boolean;
      isolatedSamples?: number;
      diagnose?: boolean;
      json?: boolean;
      writeCalibrationTable?: string;
      float?: string;
    },
): Promise<void> {
  configFrom(o); // option errors before any work
  const reportOut = output(o, model, o.report, '--report', 'report');
  const tableOut = output(o, model, o.writeCalibrationTable, '--write-calibration-table', 'calibration table');
  distinctOutputs(reportOut, tableOut);
  const bar = progressReporter(o.quiet);
  let report: Report;
  let writeTable: () => void;
  try {
    // The diagnosis ranks culprits by sensitivity: on by default when sensitivity runs.
    const diagnose = (o.diagnose ?? o.sensitivity !== false) ? { maxDrop: o.maxDrop, minSqnrDb: o.minSqnr } : undefined;
    ({ report, writeTable } = await analyzeAny(
      model,
      o,
      { onProgress: bar.onProgress, sensitivity: o.sensitivity, isolatedSamples: o.isolatedSamples, diagnose, diagnoseAsked: o.diagnose === true },
      tableOut,
    ));
  } finally {
    bar.stop();
  }
  // On screen first: a file that cannot be written (a full disk) must not cost the results.
  process.stdout.write(o.json ? JSON.stringify(report, reportReplacer) + '\n' : formatSummary(report));
  writeTable();
  writeJson(reportOut, report);
  if (o.report && !o.json) process.stdout.write(`\nreport: ${path.resolve(o.report)}\n`);
  if (tableOut && !o.json) process.stdout.write(`${o.report ? '' : '\n'}calibration table: ${path.resolve(tableOut.path)}\n`);
}

/** Options that set a configuration: --fix brings its own. */
const FIX_CONFLICTS = [
  'preset',
  'calibration',
  'percentile',
  'weightBits',
  'actBits',
  'perTensor',
  'perChannel',
  'symmetric',
  'asymmetric',
  'placement',
  'exclude',
  'foldBn',
  'calibrationTable',
];

/**
 * The configuration of a verified fix saved in a JSON file: an analyze report (diagnosis.fix) or a
 * mixed-precision result (fix), measured on this very model (same sha256).
 */
function fixConfigFrom(file: string, p: Prepared): QuantConfig {
  const abs = path.resolve(file);
  let json: { model?: { sha256?: string }; diagnosis?: { fix?: { config?: unknown } | null }; fix?: { config?: unknown } | null };
  try {
    json = JSON.parse(readRegularFile(abs, 'report', 256 << 20).toString('utf8'));
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${abs} is not a JSON report (${(e as Error).message.replace(/[^\x20-\x7e]/g, '?').slice(0, 80)})`);
  }
  const config = json?.diagnosis?.fix?.config ?? json?.fix?.config;
  if (!config) throw new InputError(`${abs} holds no verified fix (diagnosis.fix or fix): write one with analyze --report or mixed-precision --report`);
  // A mixed-precision search that did not meet its budget keeps its best plan, which is no fix.
  if ((json as { kind?: string; met?: boolean }).met === false)
    throw new InputError(
      `${abs}: its plan did not meet the budget (met: false), so it is not a verified fix; search again with a larger budget or more samples`,
    );
  if (json.model?.sha256 !== p.loaded.sha256)
    throw new InputError(
      `${abs}: its fix was measured on another model (sha256 ${String(json.model?.sha256).slice(0, 12)}, this one ${p.loaded.sha256.slice(0, 12)})`,
    );
  const parsed = QuantConfigSchema.safeParse(config);
  if (!parsed.success)
    throw new InputError(`${abs}: the fix's configuration is invalid: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  return parsed.data as QuantConfig;
}

async function runQuantize(model: string, o: QuantOpts & { out: string; writeCalibrationTable?: string; fix?: string }): Promise<void> {
  configFrom(o);
  const out = output(o, model, o.out, '--out', 'quantized model')!;
  const tableOut = output(o, model, o.writeCalibrationTable, '--write-calibration-table', 'calibration table');
  distinctOutputs(out, tableOut);
  const bar = progressReporter(o.quiet);
  try {
    const p = await prepareFor(model, o, bar.onProgress);
    const { config, warnings } = o.fix ? { config: fixConfigFrom(o.fix, p), warnings: [] } : await configFor(p, o);
    for (const w of warnings) process.stderr.write(`${w.message}\n`);
    const q = requireQuantizedLayers(await quantizeWith(p, config), p.loaded.path);
    const written = writeQuantizedModel(p, q, out);
    if (tableOut) process.stdout.write(`wrote ${exportCalibrationTable(q, tableOut)}\n`);
    process.stdout.write(`wrote ${written.path} (${written.layers} layers quantized, ${written.sizeBytes} bytes)\n`);
    for (const w of written.warnings) process.stderr.write(`WARNING: ${w}\n`);
  } finally {
    bar.stop();
  }
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** --input / --state / --input-shape as per-input settings (over quantlens.json's `inputs`). */
function inputFlags(o: QuantOpts): Record<string, InputSetting> {
  const out: Record<string, InputSetting> = {};
  const at = (n: string) => (out[n] ??= {});
  for (const spec of o.input ?? []) {
    const [n, v] = parseValueArg(spec);
    Object.assign(at(n), { kind: 'constant', value: v.length === 1 ? v[0] : v });
  }
  for (const spec of o.state ?? []) {
    const [n, from] = parseStateArg(spec);
    Object.assign(at(n), { kind: 'state', from });
  }
  for (const spec of o.inputShape ?? []) {
    const [n, shape] = parseShapeArg(spec);
    at(n).shape = shape;
  }
  return out;
}

/**
 * Prepare a FLOAT model. Commands that quantize refuse a model that already is: they would
 * quantize its dequantized twin, which is not what the user has (analyze and gate take it as deployed).
 */
async function prepareFor(model: string, o: QuantOpts, onProgress?: (p: Progress) => void, loaded = loadModel(model), echoNotes = true) {
  requireFloat(loaded, 'this command');
  // The configuration's placement (the preset's, or --placement) is calibrated in the first pass.
  const config = configFrom(o);
  const p = warnSynthetic(
    await prepareLoaded(loaded, {
      dataPath: o.data,
      samples: o.samples,
      batchSize: o.batchSize,
      onProgress,
      inputs: inputFlags(o),
      placement: config.placement,
    }),
  );
  // A quantlens.json whose configuration this run does not follow (the extension would): said,
  // in the report and (for commands without one on screen) on stderr.
  const { settings, file } = readModelSettings(loaded.path);
  const unknown = unknownSettings(settings);
  if (file && unknown.length) {
    const message = `${file}: ${unknown.map((k) => `"${k}"`).join(', ')} ${unknown.length > 1 ? 'are not keys' : 'is not a key'} QuantLens knows (a typo?); ignored`;
    p.warnings.push({ code: 'settings-unknown-key', message });
    if (echoNotes) process.stderr.write(`note: ${message}\n`);
  }
  // (quantize --fix runs the fix's configuration, not the flags': nothing to compare there)
  const differ = file && !(o as { fix?: string }).fix ? unappliedSettings(settings, { config, dataPath: o.data, modelPath: loaded.path }) : [];
  if (differ.length) {
    const message = `${file} sets ${differ.join(', ')}: the CLI applies only a quantlens.json's inputs (the extension applies all of it); pass the flags to run what it says`;
    p.warnings.push({ code: 'settings-not-applied', message });
    if (echoNotes) process.stderr.write(`note: ${message}\n`);
  }
  return p;
}

function warnSynthetic(p: Prepared): Prepared {
  for (const w of p.warnings.filter((x) => x.code === 'synthetic-data')) process.stderr.write(`\nWARNING: ${w.message}\n\n`);
  return p;
}

/**
 * Analyze a float model with the configured quantization, or an already-quantized one as deployed
 * (its own grids and codes; --float picks the reference). `writeTable` writes the ranges used to
 * `tableOut`, for the caller to call once the results are on screen.
 */
async function analyzeAny(
  model: string,
  o: QuantOpts & { float?: string },
  eo: { onProgress?: (p: Progress) => void; sensitivity: boolean; isolatedSamples?: number; diagnose?: EvaluateOptions['diagnose']; diagnoseAsked?: boolean },
  tableOut?: OutputTarget,
): Promise<{ report: Report; writeTable: () => void }> {
  const loaded = loadModel(model);
  const d = deployedModel(loaded);
  if (!d) {
    if (o.float) throw new InputError(`--float names the float model of an already-quantized one, but ${loaded.path} is a float model`);
    const p = await prepareFor(model, o, eo.onProgress, loaded, false);
    const { config, warnings } = await configFor(p, o);
    const q = requireQuantizedLayers(await quantizeWith(p, config), p.loaded.path);
    const report = await evaluate(p, q, { ...eo, ...(await evalOpts(o)) });
    report.warnings.push(...warnings);
    return { report, writeTable: () => tableOut && exportCalibrationTable(q, tableOut) };
  }
  if (o.calibrationTable)
    throw new InputError(`--calibration-table sets the ranges a float model is quantized with; ${loaded.path} is already quantized and keeps its own grids`);
  const p = warnSynthetic(
    await prepareDeployed(d, { dataPath: o.data, samples: o.samples, batchSize: o.batchSize, onProgress: eo.onProgress, floatPath: o.float }),
  );
  // A deployed model's grids are its own: no recalibration to diagnose and fix here.
  const { diagnose: _d, diagnoseAsked, ...deo } = eo;
  const q = await quantizeDeployed(p, d, deo);
  const report = await evaluateDeployed(p, d, q, { ...deo, ...(await evalOpts(o)) });
  if (diagnoseAsked)
    report.warnings.push({
      code: 'no-diagnosis',
      message: `--diagnose: no diagnosis for ${loaded.path}: an already-quantized model's grids are taken as read, so there is no calibration to blame or to fix; the layers above rank its damage, and analyzing its float model gives culprits and a measured fix`,
    });
  // the deployed grids, for TensorRT or onnxruntime
  return { report, writeTable: () => tableOut && exportCalibrationTable(q, tableOut) };
}

async function runCompareCmd(a: string, b: string, o: QuantOpts & { float?: string; report?: string; sensitivity: boolean; json?: boolean }): Promise<void> {
  const target = output(o, a, o.report, '--report', 'comparison report', [b]);
  const da: DeployedModel = requireDeployed(loadModel(a));
  const db: DeployedModel = requireDeployed(loadModel(b));
  const bar = progressReporter(o.quiet);
  let result: CompareReport;
  try {
    result = await compareModels(da, db, {
      dataPath: o.data,
      samples: o.samples,
      batchSize: o.batchSize,
      floatPath: o.float,
      onProgress: bar.onProgress,
      sensitivity: o.sensitivity,
    });
  } finally {
    bar.stop();
  }
  // On screen first: a report that cannot be written must not cost the results.
  process.stdout.write(o.json ? JSON.stringify(result, reportReplacer) + '\n' : formatCompare(result));
  writeJson(target, result);
  if (o.report && !o.json) process.stdout.write(`report: ${path.resolve(o.report)}\n`);
}

async function runSweepCmd(model: string, o: QuantOpts & { axes?: string; report?: string }): Promise<void> {
  const base = configFrom(o);
  const configs = gridConfigs(base, o.axes ? parseAxes(o.axes) : DEFAULT_AXES);
  const reportOut = output(o, model, o.report, '--report', 'sweep report');
  const bar = progressReporter(o.quiet);
  let report: SweepReport;
  try {
    const p = await prepareFor(model, o, bar.onProgress);
    report = await runSweep(p, configs, { onProgress: bar.onProgress, metric: (await evalOpts(o)).metric });
  } finally {
    bar.stop();
  }
  process.stdout.write(formatSweep(report));
  writeJson(reportOut, report);
  if (o.report) process.stdout.write(`report: ${path.resolve(o.report)}\n`);
}

async function runMixedCmd(model: string, o: QuantOpts & BudgetOpts & { out?: string; report?: string; writeConfig?: boolean }): Promise<void> {
  const config = configFrom(o);
  const modelOut = output(o, model, o.out, '--out', 'quantized model');
  const reportOut = output(o, model, o.report, '--report', 'report');
  const settingsOut = o.writeConfig ? { path: settingsPathFor(model), role: 'settings file', option: '--write-config' } : undefined;
  distinctOutputs(modelOut, reportOut, settingsOut);
  // The model's folder must take the settings file: checked now, not after the search.
  if (settingsOut) checkOutput({ ...settingsOut, force: true, inputs: [model] });
  const bar = progressReporter(o.quiet);
  let result: MixedPrecisionResult;
  let p: Prepared;
  try {
    // With --write-config the settings the run did not follow are said at the end, as written or not.
    p = await prepareFor(model, o, bar.onProgress, undefined, !o.writeConfig);
    result = await mixedPrecision(p, config, { maxDrop: o.maxDrop, minSqnrDb: o.minSqnr, metric: (await evalOpts(o)).metric, onProgress: bar.onProgress });
  } finally {
    bar.stop();
  }
  // Files are written only when asked, and only for a plan that meets the budget.
  const plan = result.fix?.config ?? { ...config, exclude: result.exclude };
  if (result.met && modelOut) result.written = { ...result.written, model: await writeMixedPrecision(p, result, modelOut) };
  if (result.met && o.writeConfig) {
    // The whole configuration the plan was measured with: keys of an earlier one (a calibration
    // method) would otherwise stay in the file and change what the plan means.
    const before = readModelSettings(model).settings;
    const after = settingsFromConfig(plan);
    result.written = { ...result.written, settings: updateModelSettings(model, after) };
    // Keys the file held with another value are replaced: said, so no earlier choice vanishes unseen.
    const replaced = replacedSettings(before, after);
    if (replaced.length) result.notes = [...(result.notes ?? []), `quantlens.json: replaced ${replaced.join(', ')} (the plan was measured with these)`];
  }
  process.stdout.write(
    formatMixedPrecision(result) +
      (!result.met && (modelOut || o.writeConfig)
        ? `no model or configuration written: the budget was not met${reportOut ? ` (the result is in ${reportOut.path})` : ''}\n`
        : ''),
  );
  if (!result.met) process.exitCode = 1;
  const unapplied = p.warnings.find((w) => w.code === 'settings-not-applied');
  if (unapplied && !result.written?.settings) process.stderr.write(`note: ${unapplied.message}\n`);
  writeJson(reportOut, result);
}

/** CI gate: exit 0 within budget with confidence, 1 over it, and 1 when the samples cannot tell (unless --allow-uncertain). */
async function runGateCmd(model: string, o: QuantOpts & BudgetOpts & { allowUncertain?: boolean; report?: string; float?: string }): Promise<void> {
  configFrom(o); // option errors before any work
  const reportOut = output(o, model, o.report, '--report', 'gate result');
  const budget = { maxDrop: o.maxDrop, minSqnrDb: o.minSqnr, allowUncertain: o.allowUncertain };
  const loaded = loadModel(model);
  let result: GateResult;
  let unapplied: string | undefined;
  if (deployedModel(loaded)) {
    // An already-quantized model is judged as deployed (its own grids, against its float reference).
    result = gateFromReport((await analyzeAny(model, o, { sensitivity: false })).report, budget);
  } else {
    const p = await prepareFor(model, o, undefined, loaded, false); // the gate says one line
    unapplied = p.warnings.find((w) => w.code === 'settings-not-applied')?.message;
    const { config } = await configFor(p, o);
    // a configuration that quantizes nothing would pass any budget vacuously
    requireQuantizedLayers(await quantizeWith(p, config), p.loaded.path);
    result = await runGate(p, config, { ...budget, metric: (await evalOpts(o)).metric });
  }
  const out = gateOutcome(result);
  // Still one line: a quantlens.json the run did not follow is said at its end, briefly.
  const note = unapplied ? ` [note: ${unapplied.replace(/: the CLI applies only.*$/, '')}; the CLI runs its flags]` : '';
  (out.stream === 'stdout' ? process.stdout : process.stderr).write(`${out.line}${note}\n`);
  process.exitCode = out.exitCode;
  writeJson(reportOut, result);
}

/**
 * Integer-only execution of the configured quantization (CNNs and transformers alike): top-1,
 * every op that had to run in float (named, with the reason), and each I-BERT kernel's error.
 */
async function runIntegerOnlyCmd(model: string, o: QuantOpts & { report?: string }): Promise<void> {
  const reportOut = output(o, model, o.report, '--report', 'integer-only result');
  const bar = progressReporter(o.quiet);
  let r: IntegerOnlyResult;
  let config: ReturnType<typeof configFrom>;
  let p: Prepared;
  try {
    p = await prepareFor(model, o, bar.onProgress);
    const c = await configFor(p, o);
    config = c.config;
    for (const w of c.warnings) process.stderr.write(`WARNING: ${w.message}\n`);
    const q = requireQuantizedLayers(await quantizeWith(p, config), p.loaded.path);
    r = await aboutModel(p.loaded.path, () => runIntegerOnly(p, q, { batchSize: o.batchSize, onProgress: bar.onProgress }));
  } finally {
    bar.stop();
  }
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(2)}%`);
  const within = (i: Interval | null) => (i ? ` [${(100 * i.low).toFixed(2)}, ${(100 * i.high).toFixed(2)}]` : '');
  const lines = [
    `integer-only execution (${r.samples} samples, ${configLabel(config)}): top-1 ${pct(r.top1)}${within(r.top1Interval)} (float ${pct(r.floatTop1)}), agreement with float ${pct(r.agreement)}${within(r.agreementInterval)} (95% intervals), output SQNR ${r.outputSqnrDb.toFixed(1)} dB`,
    `ops run in integers: ${
      Object.entries(r.ops)
        .map(([op, n]) => `${op} x${n}`)
        .join(', ') || 'none'
    }`,
    r.floatOps.length ? `ops run in float between dequantize/quantize (${r.floatOps.length}):` : 'no op ran in float',
    ...r.floatOps.map((f) => `  ${f.op} ${f.node}: ${f.reason}`),
    `int32 accumulator overflows: ${r.overflowCount}; codes saturated (clamped to their grid): ${r.saturationCount} of ${r.codeCount}${r.codeCount ? ` (${formatRate(r.saturationCount / r.codeCount)})` : ''}`,
  ];
  if (r.kernelErrors.length) {
    lines.push('error each I-BERT kernel adds vs the float op on the same input:');
    for (const k of r.kernelErrors)
      lines.push(`  ${k.kernel.padEnd(12)} ${k.node.padEnd(36)} ${k.sqnrDb.toFixed(1).padStart(6)} dB  max ${k.maxAbsError.toExponential(2)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
  // A saved result says which model, data and configuration it describes (docs/report-schema.md).
  writeJson(reportOut, {
    schemaVersion: REPORT_SCHEMA_VERSION,
    kind: 'integer-only',
    model: { path: p.loaded.path, sha256: p.loaded.sha256 },
    data: { source: p.data.source, synthetic: p.data.synthetic },
    config,
    ...r,
  });
}

/** The integer executor speaks of nodes and tensors: its errors get the model's path in front. */
async function aboutModel<T>(modelPath: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof InputError && !e.message.includes(modelPath)) throw new InputError(`${modelPath}: ${e.message}`);
    throw e;
  }
}

function dropArg(v: string): number {
  const n = numeric(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('must be a non-negative number');
  return n;
}

function dbArg(v: string): number {
  const n = numeric(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('must be a number of dB');
  return n;
}

export function buildProgram(): Command {
  const program = new Command('quantlens')
    .description('Debug quantization of ONNX models: calibration thresholds, simulated vs integer error per layer, sensitivity.')
    .version('0.1.0')
    // Errors are one line and exit 2 (main); help is printed only when asked for.
    .exitOverride()
    .configureOutput({ writeErr: (str) => void (/^error: /.test(str) ? undefined : process.stderr.write(str)) })
    .showSuggestionAfterError(true);
  withQuantOptions(
    program.command('analyze').argument('<model>', 'the .onnx model (never modified): float, or already quantized (QDQ/QOperator: analyzed as deployed)'),
  )
    .description('calibrate, quantize in memory, and report per-layer errors and accuracy; an already-quantized model is analyzed with its own grids')
    .option('--float <model.onnx>', 'for an already-quantized model: its original float model, the reference instead of its float twin')
    .option('--report <out.json>', 'write the full JSON report here')
    .option('--no-sensitivity', 'skip per-layer sensitivity')
    .option(
      '--isolated-samples <n>',
      "measure each layer's isolated error on the first n samples (default: as many as the code-level detail covers, at least 16)",
      intArg,
    )
    .option('--diagnose', 'name the culprit layers, their cause and a measured fix (default when sensitivity runs)')
    .option('--no-diagnose', 'no diagnosis')
    .option(
      '--max-drop <n>',
      "the budget the diagnosis must meet, in the primary metric's loss unit (default 1 point; your metric: 1% of its float score)",
      dropArg,
    )
    .option('--min-sqnr <dB>', 'for models judged by output SQNR (no labels, no classifier, no --metric): the SQNR floor (default 30 dB)', dbArg)
    .option('--write-calibration-table <file>', 'also write the thresholds: a TensorRT calibration cache, or onnxruntime calibration JSON for a .json name')
    .option('--json', 'print the report JSON on stdout instead of the summary')
    .action((model, o) => runAnalyze(model, o));
  withQuantOptions(program.command('quantize').argument('<model>', 'the .onnx model (never modified)'), false)
    .description('write a deployable QDQ model to a NEW file')
    .requiredOption('--out <new.onnx>', 'output model path (must differ from the input)')
    .option('--fix <report.json>', 'quantize with the verified fix of an analyze report or mixed-precision result (its whole configuration)')
    .option('--write-calibration-table <file>', 'also write the thresholds: a TensorRT calibration cache, or onnxruntime calibration JSON for a .json name')
    .action((model, o, cmd: Command) => {
      // --fix brings its whole configuration: a configuration flag beside it would be silently overridden.
      const set = FIX_CONFLICTS.filter((k) => cmd.getOptionValueSource(k) === 'cli');
      // the flags as the user typed them (--no-fold-bn, not --fold-bn)
      const flags = set.map((k) => cmd.options.find((x) => x.attributeName() === k && x.negate === (o[k] === false))?.long ?? `--${k}`);
      if (o.fix && set.length)
        throw new InputError(
          `--fix applies the configuration its fix was measured with; ${flags.join(', ')} would not apply: drop ${set.length > 1 ? 'them' : 'it'}, or analyze again with ${set.length > 1 ? 'them' : 'it'}`,
        );
      return runQuantize(model, o);
    });
  withQuantOptions(program.command('sweep').argument('<model>', 'the .onnx model (never modified)'))
    .description('evaluate a grid of configurations from ONE calibration pass; table + Pareto front of drop vs size')
    .option(
      '--axes <spec>',
      'e.g. "wbits=8,4;abits=8,16;calibration=minmax,percentile:99.9,entropy,mse;granularity=per-channel,per-tensor;symmetric=true,false;preset=tensorrt,ort-cpu" (default: 6 calibrations x wbits 8,4 x granularity = 24)',
    )
    .option('--report <out.json>', 'write the sweep report here')
    .action((model, o) => runSweepCmd(model, o));
  withQuantOptions(program.command('mixed-precision').argument('<model>', 'the .onnx model (never modified)'))
    .description('find the smallest per-layer plan (calibration, bits, granularity, float) that meets a budget, measured on integer kernels')
    .option('--max-drop <n>', "budget in the primary metric's loss unit (default 1 point; your metric: 1% of its float score)", dropArg)
    .option('--min-sqnr <dB>', 'for models judged by output SQNR: the floor (default 30 dB)', dbArg)
    .option('--out <new.onnx>', 'write the resulting QDQ model here (only when the budget is met)')
    .option('--write-config', "record the plan's whole configuration in quantlens.json beside the model (only when the budget is met; other keys kept)")
    .option('--report <out.json>', 'write the result JSON here')
    .action((model, o) => runMixedCmd(model, o));
  withQuantOptions(program.command('gate').argument('<model>', 'the .onnx model (never modified)'))
    .description('CI gate: exit 0 within budget with 95% confidence, 1 over it or when the samples cannot tell (one line saying why)')
    .option('--max-drop <n>', "budget in the primary metric's loss unit (default 1 point; your metric: 1% of its float score)", dropArg)
    .option('--min-sqnr <dB>', 'for models judged by output SQNR: the floor (default 30 dB)', dbArg)
    .option('--allow-uncertain', 'exit 0 when the samples cannot tell (the line still says so)')
    .option('--float <model.onnx>', 'for an already-quantized model: its original float model (the reference)')
    .option('--report <out.json>', 'write the gate result (primary metric, every output, verdict) here')
    .action((model, o) => runGateCmd(model, o));
  program
    .command('compare')
    .argument('<a>', 'a quantized model (QDQ or QOperator)')
    .argument('<b>', 'another quantized version of the same model')
    .description(
      'two quantized versions of one model, layer by layer against one float reference: grids, weight codes, clip rates, errors; the layer that differs most first',
    )
    .option('--data <path>', 'evaluation data: a .npz file or a folder of .npy files named after the inputs (+ labels.npy)')
    .option('--samples <n>', 'use at most this many samples', intArg)
    .option('--float <model.onnx>', 'the original float model: the shared reference (default: the float twin of A)')
    .option('--no-sensitivity', 'skip per-layer sensitivity')
    .option('--batch-size <n>', 'samples per inference batch', intArg)
    .option('--report <out.json>', 'write the comparison JSON here')
    .option('--force', 'replace an existing --report file')
    .option('--json', 'print the comparison JSON on stdout instead of the table')
    .option('--quiet', 'no progress bars')
    .action((a, b, o) => runCompareCmd(a, b, o));
  withQuantOptions(
    program.command('integer-only').argument('<model>', 'the .onnx model: a CNN, or a transformer (GELU via Erf, LayerNormalization, Softmax)'),
    false,
  )
    .description('run the model on integers only: CNNs with the integer graph executor, transformers with I-BERT i-GELU/i-Softmax/i-LayerNorm')
    .option('--report <out.json>', 'write the result JSON here')
    .action((model, o) => runIntegerOnlyCmd(model, o));
  program
    .command('presets')
    .description('list backend presets and their schemes')
    .action(() => {
      for (const [name, p] of Object.entries(PRESETS)) process.stdout.write(`${name}\n  ${p.description}\n`);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  for (const cmd of program.commands)
    cmd.exitOverride().configureOutput({ writeErr: (str) => void (/^error: /.test(str) ? undefined : process.stderr.write(str)) });
  try {
    await program.parseAsync(argv);
    // gate/mixed-precision set exitCode 1 when a budget is not met
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      if (e.exitCode === 0) return 0;
      const sub = argv.slice(2).find((a) => program.commands.some((c) => c.name() === a));
      process.stderr.write(`quantlens: ${e.message.replace(/^error: /, '').split('\n')[0]} (see: quantlens ${sub ? `${sub} ` : ''}--help)\n`);
      return 2;
    }
    if (e instanceof InputError || e instanceof CancelledError) {
      process.stderr.write(`quantlens: ${oneLine(e.message)}\n`);
      return 2;
    }
    return internalError(e);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** A bug: one line for the user, the stack trace in a log file they can attach to a report. */
function internalError(e: unknown): number {
  const log = path.join(os.tmpdir(), `quantlens-crash-${process.pid}-${Date.now()}.log`);
  try {
    fs.writeFileSync(log, `${new Date().toISOString()} quantlens ${process.argv.slice(2).join(' ')}\n${(e as Error)?.stack ?? String(e)}\n`);
  } catch {
    /* the message below still names the error */
  }
  process.stderr.write(
    `quantlens: internal error (a QuantLens bug): ${oneLine((e as Error)?.message ?? String(e))}. The stack trace is in ${log}; please report it.\n`,
  );
  return 1;
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  });
}
