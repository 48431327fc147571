/**
 * Where outputs go and what inputs are: --report / --out onto the model, the data, a folder, a
 * missing folder, '', an existing file (with and without --force), a FIFO, devices, symlinks;
 * a model or data path that is a folder, a FIFO, a device, empty, missing.
 */
import { baseModels } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Expectation, FileSpec, Generator } from '../types';
import { file, validNpz } from './common';

interface Target {
  name: string;
  /** The path given to the option. */
  path: string;
  expect: Expectation;
  files?: FileSpec[];
  /** With --force the file may be replaced. */
  force?: boolean;
  mayChange?: string[];
  mustNotExist?: string[];
}

const PRECIOUS = new TextEncoder().encode('precious, do not lose\n');

/** Output targets: every one but a fresh file (or an existing one with --force) must be refused. */
function outputTargets(r: Rng): Target[] {
  return [
    { name: 'fresh file', path: 'out/result', expect: 'accept' },
    { name: 'the model', path: 'model.onnx', expect: 'refuse', force: r.bool() },
    {
      name: 'the model by another spelling',
      path: r.pick(['./model.onnx', 'out/../model.onnx', `${'./'.repeat(3)}model.onnx`]),
      expect: 'refuse',
      force: r.bool(),
    },
    {
      name: 'a symlink to the model',
      path: 'link.onnx',
      expect: 'refuse',
      force: r.bool(),
      files: [{ path: 'link.onnx', kind: 'symlink', target: 'model.onnx' }],
    },
    {
      name: 'a hard-to-see symlink to the data',
      path: 'out/d',
      expect: 'refuse',
      force: r.bool(),
      files: [{ path: 'out/d', kind: 'symlink', target: '../data.npz' }],
    },
    { name: 'the data', path: 'data.npz', expect: 'refuse', force: r.bool() },
    { name: 'a folder', path: r.pick(['out', 'out/', '.', '/']), expect: 'refuse', force: r.bool() },
    { name: 'a missing folder', path: 'no/such/folder/result', expect: 'refuse', mustNotExist: ['no'] },
    { name: 'empty', path: r.pick(['', ' ', '\t']), expect: 'refuse' },
    { name: 'an existing file', path: 'keep.txt', expect: 'refuse', files: [file('keep.txt', PRECIOUS)] },
    { name: 'an existing file with --force', path: 'keep.txt', expect: 'accept', force: true, files: [file('keep.txt', PRECIOUS)], mayChange: ['keep.txt'] },
    { name: 'a FIFO', path: 'pipe', expect: 'refuse', force: r.bool(), files: [{ path: 'pipe', kind: 'fifo' }] },
    { name: 'a device', path: r.pick(['/dev/null', '/dev/full', '/dev/zero', '/dev/stdout', '/proc/self/fd/1']), expect: 'refuse', force: r.bool() },
    { name: 'a file as parent folder', path: 'model.onnx/result', expect: 'refuse', force: r.bool() },
    {
      name: 'a dangling symlink',
      path: 'dangling',
      expect: 'either',
      force: r.bool(),
      files: [{ path: 'dangling', kind: 'symlink', target: 'nowhere/x' }],
      mayChange: ['dangling'],
    },
    { name: 'a name too long', path: `out/${'x'.repeat(300)}`, expect: 'refuse' },
    { name: 'a path through a symlinked folder', path: 'outlink/result', expect: 'accept', files: [{ path: 'outlink', kind: 'symlink', target: 'out' }] },
  ];
}

type Cmd = 'analyze --report' | 'quantize --out' | 'sweep --report' | 'mixed-precision --out' | 'gate --report' | 'integer-only --report';
const COMMANDS: Cmd[] = ['analyze --report', 'quantize --out', 'sweep --report', 'mixed-precision --out', 'gate --report', 'integer-only --report'];

function commandArgs(cmd: Cmd, model: string, data: string | undefined): string[] {
  const [name] = cmd.split(' ');
  const extra: Record<string, string[]> = {
    analyze: ['--no-sensitivity'],
    quantize: [],
    sweep: ['--axes', 'wbits=8,4'],
    'mixed-precision': ['--max-drop', '100'],
    gate: ['--max-drop', '100'],
    'integer-only': [],
  };
  return [name, model, ...(data === undefined ? [] : ['--data', data]), '--samples', '2', '--quiet', ...extra[name]];
}

export const outputPaths: Generator = {
  name: 'paths-output',
  group: 'paths and options',
  weight: 90,
  make(r: Rng, index: number): CaseDraft {
    const targets = outputTargets(r);
    const t = targets[index % targets.length];
    const cmd = r.pick(COMMANDS);
    const option = cmd.split(' ')[1];
    const { tiny } = baseModels();
    const files: FileSpec[] = [file('model.onnx', tiny.bytes), file('data.npz', validNpz(tiny)), { path: 'out', kind: 'dir' }, ...(t.files ?? [])];
    const args = [...commandArgs(cmd, 'model.onnx', 'data.npz'), option, t.path, ...(t.force ? ['--force'] : [])];
    const report = option === '--report' && t.expect === 'accept' ? t.path : undefined;
    return {
      kind: 'cli',
      title: `${cmd} onto ${t.name} (${JSON.stringify(t.path)})${t.force ? ' --force' : ''}`,
      expect: t.expect,
      files,
      args,
      report,
      mayChange: t.mayChange,
      mustNotExist: t.mustNotExist,
      mentions: [option, t.path.trim() || option],
    };
  },
};

/** Inputs that are not regular files, or not there. */
export const inputPaths: Generator = {
  name: 'paths-input',
  group: 'paths and options',
  weight: 50,
  make(r: Rng, index: number): CaseDraft {
    const { tiny } = baseModels();
    const kinds: { name: string; path: string; files?: FileSpec[]; expect?: Expectation }[] = [
      { name: 'a folder', path: 'dir', files: [{ path: 'dir', kind: 'dir' }] },
      { name: 'a FIFO', path: 'pipe', files: [{ path: 'pipe', kind: 'fifo' }] },
      {
        name: 'a symlink to a FIFO',
        path: 'plink',
        files: [
          { path: 'pipe', kind: 'fifo' },
          { path: 'plink', kind: 'symlink', target: 'pipe' },
        ],
      },
      { name: 'a device', path: r.pick(['/dev/zero', '/dev/null', '/dev/urandom', '/dev/stdin']) },
      { name: 'a symlink to /dev/zero', path: 'zero', files: [{ path: 'zero', kind: 'symlink', target: '/dev/zero' }] },
      { name: 'an empty file', path: 'empty', files: [file('empty', new Uint8Array(0))] },
      { name: 'missing', path: 'missing.onnx' },
      { name: 'empty path', path: '' },
      { name: 'a symlink loop', path: 'loop', files: [{ path: 'loop', kind: 'symlink', target: 'loop' }] },
      { name: 'a text file', path: 'notes.txt', files: [file('notes.txt', new TextEncoder().encode('hello\n'))] },
      { name: 'a /proc file', path: r.pick(['/proc/self/status', '/proc/self/mem', '/proc/self/environ']) },
    ];
    const k = kinds[index % kinds.length];
    const role = r.pick(['model', 'data'] as const);
    const files: FileSpec[] = [file('model.onnx', tiny.bytes), file('data.npz', validNpz(tiny)), { path: 'out', kind: 'dir' }, ...(k.files ?? [])];
    const cmd = r.pick(COMMANDS);
    const model = role === 'model' ? k.path : 'model.onnx';
    const data = role === 'data' ? k.path : 'data.npz';
    // '--data ""' is the same as no --data: synthetic inputs, said loudly. Either is fine.
    const expect: Expectation = role === 'data' && k.path === '' ? 'either' : 'refuse';
    const option = cmd.split(' ')[1];
    const args = [...commandArgs(cmd, model, data), option, 'out/result'];
    return {
      kind: 'cli',
      title: `${cmd}: ${role} is ${k.name} (${JSON.stringify(k.path)})`,
      expect,
      files,
      args,
      report: option === '--report' ? 'out/result' : undefined,
      mustNotExist: expect === 'refuse' ? ['out/result'] : undefined,
      mentions: [k.path || (role === 'model' ? 'model' : '--data'), role === 'data' ? '--data' : 'model'],
    };
  },
};
