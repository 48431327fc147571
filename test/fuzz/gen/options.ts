/**
 * Option values: out of range, malformed, contradictory; and random VALID combinations of every
 * quantization option (4-bit grids, power-of-two scales, one sample, tiny percentiles, everything
 * excluded...), which must give finite numbers or a clean error (onnxruntime runs no uint4
 * QLinearConv, for one).
 */
import { baseModels } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, Generator } from '../types';
import { file, validNpz } from './common';

interface Bad {
  option: string;
  values: string[];
  expect: Expectation;
  /** The command the option belongs to (default analyze). */
  cmd?: string;
}

const BAD: Bad[] = [
  { option: '--samples', values: ['0', '-1', '1.5', 'abc', '1e400', '', 'NaN', '2e', ' '], expect: 'refuse' },
  { option: '--samples', values: ['0x10', '1e9', '1e300'], expect: 'either' },
  { option: '--samples', values: ['9007199254740993', '100000'], expect: 'accept' },
  { option: '--batch-size', values: ['0', '-3', 'x', '0.5', 'Infinity'], expect: 'refuse' },
  { option: '--batch-size', values: ['1', '1000000000'], expect: 'accept' },
  { option: '--percentile', values: ['0', '-1', '100.5', 'NaN', 'abc', '', '1e999', '-0'], expect: 'refuse' },
  { option: '--percentile', values: ['100', '1e-9', '50', '99.9999999'], expect: 'accept' },
  { option: '--weight-bits', values: ['3', '32', '0', '-8', 'eight', '8.0', '1e1'], expect: 'refuse' },
  { option: '--act-bits', values: ['2', '7', '64', '', '16 '], expect: 'refuse' },
  { option: '--preset', values: ['bogus', 'TensorRT', '', 'tensorrt,qnn'], expect: 'refuse' },
  { option: '--calibration', values: ['bogus', 'percentile:99', '', 'MSE'], expect: 'refuse' },
  { option: '--placement', values: ['everything', ''], expect: 'refuse' },
  { option: '--max-drop', values: ['-1', 'NaN', 'abc', '', '-0.001', 'Infinity'], expect: 'refuse', cmd: 'gate' },
  { option: '--max-drop', values: ['1e308', '0'], expect: 'accept', cmd: 'gate' },
  { option: '--max-drop', values: ['-5', 'x'], expect: 'refuse', cmd: 'mixed-precision' },
  { option: '--max-drop', values: ['0', '1e308'], expect: 'either', cmd: 'mixed-precision' },
  {
    option: '--axes',
    cmd: 'sweep',
    expect: 'refuse',
    values: [
      'wbits=3',
      'foo=1',
      'calibration=',
      'calibration=percentile:200',
      'preset=evil',
      'abits=8;abits=4',
      'wbits',
      '=8',
      'symmetric=maybe',
      'granularity=per-row',
      'calibration=percentile:NaN',
    ],
  },
  // an empty item in a list says nothing: skipping it is as good as refusing
  { option: '--axes', cmd: 'sweep', expect: 'either', values: ['wbits=8,,4', 'wbits=8,4,', ';wbits=8'] },
  {
    option: '--axes',
    cmd: 'sweep',
    expect: 'accept',
    values: ['wbits=4', 'calibration=mse,ema;symmetric=true,false', 'preset=qnn,power-of-two;abits=16', 'calibration=percentile:100,percentile:0.001'],
  },
  { option: '--exclude', values: ['nope', ',,,', 'conv1,conv1', ' '], expect: 'either' },
  { option: '--frobnicate', values: ['1'], expect: 'refuse' },
];

/** Every quantization option at a random valid value. */
function randomValidOptions(r: Rng, nodes: string[]): string[] {
  const out: string[] = [];
  if (r.bool(0.7)) out.push('--preset', r.pick(['tensorrt', 'ort-cpu', 'qnn', 'power-of-two']));
  if (r.bool(0.7)) out.push('--calibration', r.pick(['minmax', 'ema', 'percentile', 'entropy', 'mse']));
  if (r.bool(0.4)) out.push('--percentile', String(r.pick([100, 99.999, 90, 50, 1e-6, 0.5])));
  if (r.bool(0.5)) out.push('--weight-bits', r.pick(['4', '8', '16']));
  if (r.bool(0.5)) out.push('--act-bits', r.pick(['4', '8', '16']));
  if (r.bool(0.3)) out.push(r.pick(['--per-tensor', '--per-channel']));
  if (r.bool(0.3)) out.push(r.pick(['--symmetric', '--asymmetric']));
  if (r.bool(0.3)) out.push('--placement', r.pick(['compute', 'extended']));
  if (r.bool(0.2)) out.push('--no-fold-bn');
  if (r.bool(0.2)) out.push('--exclude', nodes.filter(() => r.bool(0.5)).join(',') || nodes[0]);
  if (r.bool(0.3)) out.push('--batch-size', String(r.pick([1, 2, 3, 1000])));
  out.push('--samples', String(r.pick([1, 2, 3, 6])));
  return out;
}

export const options: Generator = {
  name: 'options',
  group: 'paths and options',
  weight: 100,
  make(r: Rng, index: number): CaseDraft {
    const { tiny, demo } = baseModels();
    // Half the cases are valid random configurations (every option at once), on either model.
    const valid = index % 2 === 1;
    const b = valid && r.bool(0.3) ? demo : tiny;
    const files = [file('model.onnx', b.bytes), file('data.npz', validNpz(b)), { path: 'out', kind: 'dir' as const }];
    if (valid) {
      const cmd = r.pick(['analyze', 'analyze', 'analyze', 'gate', 'sweep', 'integer-only', 'mixed-precision']);
      const opts = randomValidOptions(
        r,
        b.proto.graph!.node.map((n) => n.name),
      );
      const extra =
        cmd === 'analyze'
          ? [...(r.bool(0.3) ? [] : ['--no-sensitivity']), ...(r.bool(0.3) ? ['--json'] : [])]
          : cmd === 'gate' || cmd === 'mixed-precision'
            ? ['--max-drop', '100']
            : cmd === 'sweep'
              ? ['--axes', 'wbits=8,4']
              : [];
      return {
        kind: 'cli',
        title: `valid options: ${cmd} ${b.name} ${opts.join(' ')}`,
        expect: 'either',
        files,
        args: [cmd, 'model.onnx', '--data', 'data.npz', '--quiet', ...opts, ...extra, '--report', 'out/report.json'],
        report: 'out/report.json',
      };
    }
    const bad = BAD[Math.floor(index / 2) % BAD.length];
    const value = r.pick(bad.values);
    const cmd = bad.cmd ?? 'analyze';
    const extra = cmd === 'analyze' ? ['--no-sensitivity'] : cmd === 'gate' && bad.option !== '--max-drop' ? ['--max-drop', '100'] : [];
    const report = 'out/report.json';
    const args = [cmd, 'model.onnx', '--data', 'data.npz', '--samples', '2', '--quiet', ...extra, bad.option, value, '--report', report];
    // --samples given twice: the later one wins, as in any CLI.
    if (bad.option === '--samples') args.splice(args.indexOf('--samples'), 2);
    return {
      kind: 'cli',
      title: `${cmd} ${bad.option} ${JSON.stringify(value)}`,
      expect: bad.expect,
      files,
      args,
      report,
      mentions: [bad.option],
    };
  },
};
