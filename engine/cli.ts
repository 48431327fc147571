/**
 * `quantlens` command line: analyze, quantize. Bad input exits 2 with one line on stderr;
 * progress bars go to stderr so stdout stays clean for pipes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MultiBar, Presets } from 'cli-progress';
import type { CalibrationMethod, PresetName, Report } from '../protocol/report';
import { CALIBRATION_METHODS } from '../protocol/report';
import { CancelledError, type Progress, evaluate, prepareAnalysis, quantizeWith } from './analysis/analyze';
import { writeQuantizedModel } from './analysis/quantizeModel';
import { InputError } from './onnx/model';
import { type ConfigOverrides, PRESETS, PRESET_NAMES, resolveConfig } from './quantize/presets';
import { formatSummary } from './report/summary';

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function bitsArg(v: string): 4 | 8 | 16 {
  if (v !== '4' && v !== '8' && v !== '16') throw new InvalidArgumentError('must be 4, 8 or 16');
  return Number(v) as 4 | 8 | 16;
}

function percentileArg(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 100)) throw new InvalidArgumentError('must be in (0, 100]');
  return n;
}

/** Options shared by every command that quantizes. */
function withQuantOptions(cmd: Command): Command {
  return cmd
    .option('--data <path>', 'calibration data: a .npz file or a folder of .npy files named after the inputs (+ labels.npy)')
    .option('--samples <n>', 'use at most this many samples', intArg)
    .addOption(new Option('--preset <name>', 'backend preset').choices(PRESET_NAMES).default('tensorrt'))
    .addOption(new Option('--calibration <method>', 'activation calibration method (default: the preset\'s)').choices(CALIBRATION_METHODS as string[]))
    .option('--percentile <p>', 'percentile for --calibration percentile', percentileArg)
    .option('--weight-bits <bits>', 'weight bits: 4, 8 or 16', bitsArg)
    .option('--act-bits <bits>', 'activation bits: 4, 8 or 16', bitsArg)
    .option('--per-tensor', 'quantize weights per tensor instead of per channel')
    .option('--per-channel', 'quantize weights per output channel')
    .option('--symmetric', 'symmetric activations (zero point at the grid centre)')
    .option('--asymmetric', 'asymmetric activations')
    .addOption(new Option('--placement <policy>', 'compute: only Conv/Gemm/MatMul; extended: also Add/Mul/Concat/pooling').choices(['compute', 'extended']))
    .option('--exclude <nodes>', 'comma-separated node names kept in float', (v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--no-fold-bn', 'do not fold BatchNormalization into the preceding Conv')
    .option('--batch-size <n>', 'samples per inference batch', intArg)
    .option('--quiet', 'no progress bars');
}

interface QuantOpts {
  data?: string; samples?: number; preset: PresetName; calibration?: CalibrationMethod; percentile?: number;
  weightBits?: 4 | 8 | 16; actBits?: 4 | 8 | 16; perTensor?: boolean; perChannel?: boolean; symmetric?: boolean; asymmetric?: boolean;
  placement?: 'compute' | 'extended'; exclude?: string[]; foldBn: boolean; batchSize?: number; quiet?: boolean;
}

export function configFrom(o: QuantOpts) {
  if (o.perTensor && o.perChannel) throw new InputError('--per-tensor and --per-channel contradict each other');
  if (o.symmetric && o.asymmetric) throw new InputError('--symmetric and --asymmetric contradict each other');
  const over: ConfigOverrides = {
    calibration: o.calibration, percentile: o.percentile, placement: o.placement, exclude: o.exclude, foldBatchNorm: o.foldBn,
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

/** Progress bars on stderr, one per stage. */
function progressReporter(quiet: boolean | undefined) {
  if (quiet || !process.stderr.isTTY && process.env.QUANTLENS_PROGRESS !== '1') {
    return { onProgress: undefined, stop: () => {} };
  }
  const multi = new MultiBar({ stream: process.stderr, format: ' {stage} |{bar}| {value}/{total} {unit}', hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
  const bars = new Map<string, ReturnType<MultiBar['create']>>();
  return {
    onProgress: (p: Progress) => {
      let b = bars.get(p.stage);
      if (!b) bars.set(p.stage, (b = multi.create(p.total, 0, { stage: p.stage.padEnd(11), unit: p.stage === 'sensitivity' ? 'layers' : 'samples' })));
      b.setTotal(p.total);
      b.update(p.done);
    },
    stop: () => multi.stop(),
  };
}

async function runAnalyze(model: string, o: QuantOpts & { report?: string; sensitivity: boolean; json?: boolean }): Promise<void> {
  const config = configFrom(o);
  const bar = progressReporter(o.quiet);
  let report: Report;
  try {
    const p = await prepareAnalysis(model, { dataPath: o.data, samples: o.samples, batchSize: o.batchSize, onProgress: bar.onProgress });
    for (const w of p.warnings.filter((x) => x.code === 'synthetic-data')) process.stderr.write(`\nWARNING: ${w.message}\n\n`);
    report = await evaluate(p, quantizeWith(p, config), { onProgress: bar.onProgress, sensitivity: o.sensitivity });
  } finally {
    bar.stop();
  }
  if (o.report) {
    fs.mkdirSync(path.dirname(path.resolve(o.report)), { recursive: true });
    fs.writeFileSync(o.report, JSON.stringify(report, jsonNumbers, 1));
  }
  process.stdout.write(o.json ? JSON.stringify(report, jsonNumbers) + '\n' : formatSummary(report) + (o.report ? `\nreport: ${path.resolve(o.report)}\n` : ''));
}

/** JSON has no Infinity: SQNR of an exact match is written as the string "Infinity". */
export function jsonNumbers(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? null : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

async function runQuantize(model: string, o: QuantOpts & { out: string }): Promise<void> {
  const config = configFrom(o);
  const bar = progressReporter(o.quiet);
  try {
    const p = await prepareAnalysis(model, { dataPath: o.data, samples: o.samples, batchSize: o.batchSize, onProgress: bar.onProgress });
    for (const w of p.warnings.filter((x) => x.code === 'synthetic-data')) process.stderr.write(`\nWARNING: ${w.message}\n\n`);
    const written = writeQuantizedModel(p, quantizeWith(p, config), o.out);
    process.stdout.write(`wrote ${written.path} (${written.layers} layers quantized, ${written.sizeBytes} bytes)\n`);
  } finally {
    bar.stop();
  }
}

export function buildProgram(): Command {
  const program = new Command('quantlens')
    .description('Debug quantization of ONNX models: calibration thresholds, simulated vs integer error per layer, sensitivity.')
    .version('0.1.0')
    .showHelpAfterError();
  withQuantOptions(program.command('analyze').argument('<model>', 'the .onnx model (never modified)'))
    .description('calibrate, quantize in memory, and report per-layer errors and accuracy')
    .option('--report <out.json>', 'write the full JSON report here')
    .option('--no-sensitivity', 'skip per-layer sensitivity (2 extra runs per layer)')
    .option('--json', 'print the report JSON on stdout instead of the summary')
    .action((model, o) => runAnalyze(model, o));
  withQuantOptions(program.command('quantize').argument('<model>', 'the .onnx model (never modified)'))
    .description('write a deployable QDQ model to a NEW file')
    .requiredOption('--out <new.onnx>', 'output model path (must differ from the input)')
    .action((model, o) => runQuantize(model, o));
  program.command('presets').description('list backend presets and their schemes').action(() => {
    for (const [name, p] of Object.entries(PRESETS)) process.stdout.write(`${name}\n  ${p.description}\n`);
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof InputError || e instanceof CancelledError || e instanceof RangeError) {
      process.stderr.write(`quantlens: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`quantlens: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
