/**
 * Memory of the calibration-data layer: peak RSS while every batch of an .npz is streamed through
 * `feedsFor` into a real onnxruntime float session (the demo CNN), for N and 10N samples of the
 * same per-sample shape (1x28x28 float32: the demo's real digits, cycled), stored (np.savez) and
 * deflated (np.savez_compressed). Each measurement runs in a fresh child process, so one run
 * cannot inflate another's number. Memory must not grow with the data: 10N/N <= 1.2.
 *
 * Each format is streamed twice: through onnxruntime (what an analysis does), and read alone (the
 * data layer's own memory). They differ because onnxruntime, run without its memory arena as
 * the engine runs it, allocates each run's tensors from glibc, whose dynamic mmap threshold lets
 * large freed blocks fragment the heap: the RSS jumps once, at some early batch, and a longer
 * stream is more likely to meet that jump (docs/performance.md, fourteenth round).
 *
 * Not a test (it writes ~150 MB of temporary files and takes a while); `npm run bench` calls it.
 * Run alone: node --import tsx bench/dataMemory.ts
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import { batchRanges, loadDataset, modelInputs } from '../engine/data/dataset';
import { loadModel } from '../engine/onnx/model';
import { createSession, feedsFor, runSession } from '../engine/runtime/session';
import { selfArgs } from './child';
import { liveMb, peakRssMb } from './peakRss';

const root = path.resolve(__dirname, '..');
const MODEL = path.join(root, 'examples/mnist-cnn/model.onnx');
const DIGITS = path.join(root, 'examples/mnist-cnn/data');
const PER_SAMPLE = 28 * 28 * 4;
const BATCH = 64;
export const DATA_MEMORY_CHILD = '--data-memory-child';

/** What each batch goes through: read alone, or read and run through the float session. */
export type Through = 'read' | 'onnxruntime';

export interface DataMemoryResult {
  format: 'stored' | 'deflated';
  through: Through;
  samplesN: number;
  fileMbN: number;
  fileMb10N: number;
  peakRssMbN: number;
  peakRssMb10N: number;
  /** Held after a garbage collection at the end (JS heap and array buffers), MB. */
  liveMbN: number;
  liveMb10N: number;
  /** peak at 10N / peak at N: must be <= 1.2. */
  ratio: number;
}

/** .npy header bytes (format 1.0, padded to 64 bytes as numpy does). */
function npyHeader(descr: string, shape: number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const text = dict + ' '.repeat(63 - ((10 + dict.length) % 64)) + '\n';
  const out = new Uint8Array(10 + text.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length & 0xff, text.length >> 8]);
  out.set(Buffer.from(text, 'latin1'), 10);
  return out;
}

/** Write an .npz of `samples` digits (+ labels), streaming: never more than a chunk in memory. */
function writeNpz(file: string, samples: number, deflated: boolean): void {
  const digits = fs.readFileSync(path.join(DIGITS, 'input.npy'));
  const labels = fs.readFileSync(path.join(DIGITS, 'labels.npy'));
  const have = 300;
  const x = new Uint8Array(digits.buffer, digits.byteOffset + digits.length - have * PER_SAMPLE, have * PER_SAMPLE);
  const y = new Uint8Array(labels.buffer, labels.byteOffset + labels.length - have * 8, have * 8);
  const fd = fs.openSync(file, 'w');
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    fs.writeSync(fd, chunk);
  });
  const entry = (name: string) => (deflated ? new ZipDeflate(name, { level: 6 }) : new ZipPassThrough(name));
  const stream = (name: string, head: Uint8Array, block: Uint8Array, itemBytes: number) => {
    const e = entry(name);
    zip.add(e);
    e.push(head, false);
    for (let done = 0; done < samples; done += have) {
      const n = Math.min(have, samples - done);
      e.push(block.subarray(0, n * itemBytes), done + n >= samples);
    }
  };
  stream('input.npy', npyHeader('<f4', [samples, 1, 28, 28]), x, PER_SAMPLE);
  stream('labels.npy', npyHeader('<i8', [samples]), y, 8);
  zip.end();
  fs.closeSync(fd);
}

/** Child: stream every batch (through a float session, or read alone), print the peak RSS in MB. */
async function child(npz: string, through: Through): Promise<void> {
  const model = loadModel(MODEL);
  const data = loadDataset(npz, modelInputs(model.proto));
  const session = await createSession(model.proto, 'float');
  let seen = 0;
  for (const [start, count] of batchRanges(data.samples, BATCH)) {
    const feeds = await feedsFor(data, start, count);
    if (through === 'onnxruntime') for (const t of Object.values(await runSession(session, feeds))) t.dispose();
    seen += count;
  }
  await data.close();
  await session.release();
  if (seen !== data.samples) throw new Error(`streamed ${seen} of ${data.samples} samples`);
  const maxRssMb = peakRssMb();
  process.stdout.write(JSON.stringify({ maxRssMb, liveMb: liveMb() }));
}

/** One fresh process streaming `npz`: its peak RSS and what it still holds after a collection, MB. */
function childMemory(npz: string, through: Through): { maxRssMb: number; liveMb: number } {
  const r = spawnSync(process.execPath, [...selfArgs(__filename), DATA_MEMORY_CHILD, npz, through], { encoding: 'utf8', cwd: root });
  if (r.status !== 0) throw new Error(`data memory child failed on ${npz}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The run of median peak among `runs` fresh processes: a process's RSS varies by ~10 MB from run to run on its own. */
function medianRun(npz: string, through: Through, runs: number): { maxRssMb: number; liveMb: number } {
  const all = Array.from({ length: runs }, () => childMemory(npz, through)).sort((a, b) => a.maxRssMb - b.maxRssMb);
  return all[Math.floor(runs / 2)];
}

/**
 * Peak RSS at N and 10N samples (10N = 100000 digits: 314 MB of float32), stored and deflated,
 * each the median of `runs` child processes. Throws nothing on a bad ratio: the caller prints and
 * judges.
 *
 * Why N = 10000 (31 MB): every batch is a fresh array, and V8 lets about 30 MB of such freed
 * buffers pile up before it collects them. With less data than that in total, the N run ends
 * before the pile reaches its usual height and its peak is lower for that reason alone (4000
 * samples: ~140 MB; 10000, 40000, 100000: ~160-168 MB). From N = 10000 on, both runs measure the
 * steady state, which is what must not grow.
 */
export async function dataMemoryBench(samplesN = 10000, runs = 3): Promise<DataMemoryResult[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-data-memory-'));
  try {
    const results: DataMemoryResult[] = [];
    for (const format of ['stored', 'deflated'] as const) {
      const files = [samplesN, 10 * samplesN].map((n) => {
        const f = path.join(tmp, `${format}-${n}.npz`);
        writeNpz(f, n, format === 'deflated');
        return f;
      });
      const mb = (f: string) => fs.statSync(f).size / 2 ** 20;
      for (const through of ['onnxruntime', 'read'] as const) {
        const [n, n10] = files.map((f) => medianRun(f, through, runs));
        results.push({
          format,
          through,
          samplesN,
          fileMbN: mb(files[0]),
          fileMb10N: mb(files[1]),
          peakRssMbN: n.maxRssMb,
          peakRssMb10N: n10.maxRssMb,
          ratio: n10.maxRssMb / n.maxRssMb,
          liveMbN: n.liveMb,
          liveMb10N: n10.liveMb,
        });
      }
      for (const f of files) fs.rmSync(f);
    }
    return results;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** One line per format, for the bench's printout. */
export function formatDataMemory(results: DataMemoryResult[]): string[] {
  return results.map(
    (r) =>
      `  ${r.format.padEnd(8)} ${r.through === 'read' ? 'read alone ' : 'through ORT'}  N = ${r.samplesN} (${r.fileMbN.toFixed(1)} MB file): ${r.peakRssMbN.toFixed(1)} MB   ` +
      `10N = ${10 * r.samplesN} (${r.fileMb10N.toFixed(1)} MB file): ${r.peakRssMb10N.toFixed(1)} MB   ratio ${r.ratio.toFixed(2)}${r.ratio > 1.2 ? '  OVER 1.2' : ''}` +
      `   live after GC ${r.liveMbN.toFixed(1)} -> ${r.liveMb10N.toFixed(1)} MB`,
  );
}

if (process.argv[2] === DATA_MEMORY_CHILD) {
  child(process.argv[3], process.argv[4] as Through).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else if (require.main === module && __filename.endsWith('dataMemory.ts')) {
  // (run alone from the sources; inside the bench's bundle this module is not the entry)
  dataMemoryBench().then(
    (r) =>
      console.log(
        ['memory: peak RSS streaming every batch of an .npz, into the demo CNN and read alone (fresh process each)', ...formatDataMemory(r)].join('\n'),
      ),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
