/**
 * Calibration/evaluation data: a .npz file or a folder of .npy files named after the model inputs
 * (first axis = samples), with optional integer labels (`labels.npy` / npz key `labels`).
 * Without data, seeded synthetic inputs stand in, and the caller must warn that thresholds then
 * say nothing about real activations.
 *
 * Batches are views into the loaded arrays (no copies); activations are never kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import { parse as parseNpy, type NpyArray } from 'npyjs';
import type { ModelProto } from 'onnx-buf';
import { InputError } from '../onnx/model';
import { DT } from '../onnx/tensor';
import { GraphIndex } from '../onnx/graph';

export interface ModelInput {
  name: string;
  dataType: DT;
  /** Fixed sizes as numbers, symbolic/unknown as strings ('' when unnamed). */
  dims: (number | string)[];
}

export type InputArray = Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array;

/** One model input as the data provides it: per-sample shape (the sample axis left out). */
export interface DatasetInput {
  name: string;
  dataType: DT;
  shape: number[];
}

/**
 * Calibration/evaluation samples. Inputs are READ in batches (`read`), never held whole, so memory
 * does not grow with the size of the data file; labels (one integer per sample) are small and kept.
 */
export interface Dataset {
  source: string;
  synthetic: boolean;
  samples: number;
  inputs: DatasetInput[];
  labels: Int32Array | null;
  /** Samples [start, start + count) of every input, in `inputs` order, as fresh arrays. */
  read(start: number, count: number): Promise<InputArray[]>;
  /** Release files held open. */
  close(): Promise<void>;
}

/** A dataset over arrays already in memory (synthetic data, tests). */
export function inMemoryDataset(
  fields: Omit<Dataset, 'read' | 'close' | 'inputs'> & { inputs: (DatasetInput & { data: InputArray })[] },
): Dataset {
  const arrays = fields.inputs.map((i) => i.data);
  return {
    ...fields,
    inputs: fields.inputs.map(({ name, dataType, shape }) => ({ name, dataType, shape })),
    read: async (start, count) => fields.inputs.map((inp, k) => sliceArray(arrays[k], inp.shape, start, count)),
    close: async () => {},
  };
}

function sliceArray(data: InputArray, shape: number[], start: number, count: number): InputArray {
  const per = shape.reduce((a, b) => a * b, 1);
  return data.subarray(start * per, (start + count) * per) as InputArray;
}

export function modelInputs(model: ModelProto): ModelInput[] {
  const idx = new GraphIndex(model.graph!);
  return model.graph!.input
    .filter((i) => idx.graphInputs.has(i.name))
    .map((i) => {
      const tt = i.type?.value.case === 'tensorType' ? i.type.value.value : undefined;
      const dims = (tt?.shape?.dim ?? []).map((d) =>
        d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '',
      );
      return { name: i.name, dataType: (tt?.elemType ?? DT.FLOAT) as DT, dims };
    });
}

function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function readNpy(bytes: Uint8Array, where: string): NpyArray {
  try {
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return parseNpy(ab);
  } catch (e) {
    throw new InputError(`${where} is not a readable .npy array: ${(e as Error).message}`);
  }
}

/** Load arrays by key from a .npz or a folder of .npy files. */
function loadArrays(dataPath: string): Map<string, { arr: NpyArray; where: string }> {
  const abs = path.resolve(dataPath);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new InputError(`calibration data ${abs} does not exist`);
  }
  const out = new Map<string, { arr: NpyArray; where: string }>();
  if (st.isDirectory()) {
    for (const f of fs.readdirSync(abs)) {
      if (!f.endsWith('.npy')) continue;
      const where = path.join(abs, f);
      out.set(f.slice(0, -4), { arr: readNpy(fs.readFileSync(where), where), where });
    }
  } else if (abs.endsWith('.npz')) {
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(fs.readFileSync(abs));
    } catch (e) {
      throw new InputError(`${abs} is not a readable .npz (zip) file: ${(e as Error).message}`);
    }
    for (const [k, v] of Object.entries(entries)) {
      if (k.endsWith('.npy')) out.set(k.slice(0, -4), { arr: readNpy(v, `${abs}:${k}`), where: `${abs}:${k}` });
    }
  } else if (abs.endsWith('.npy')) {
    out.set(path.basename(abs, '.npy'), { arr: readNpy(fs.readFileSync(abs), abs), where: abs });
  } else {
    throw new InputError(`calibration data ${abs} must be a .npz file or a folder of .npy files`);
  }
  return out;
}

const EXPECTED: Partial<Record<DT, string[]>> = {
  [DT.FLOAT]: ['f4', 'f8', 'f2'],
  [DT.INT64]: ['i8', 'i4'],
  [DT.INT32]: ['i4'],
  [DT.UINT8]: ['u1'],
  [DT.INT8]: ['i1'],
};

function convert(arr: NpyArray, want: DT, where: string): InputArray {
  const ok = EXPECTED[want];
  if (ok && !ok.includes(arr.dtype)) {
    throw new InputError(`${where}: dtype ${arr.dtype} does not fit the model input type ${DT[want]}`);
  }
  const d = arr.data as unknown as ArrayLike<number> & { BYTES_PER_ELEMENT: number };
  switch (want) {
    case DT.FLOAT: return arr.data instanceof Float32Array ? arr.data : Float32Array.from(d);
    case DT.INT64: return arr.data instanceof BigInt64Array ? arr.data : BigInt64Array.from(d, (v) => BigInt(v));
    case DT.INT32: return arr.data as Int32Array;
    case DT.UINT8: return arr.data as Uint8Array;
    case DT.INT8: return arr.data as Int8Array;
    default: throw new InputError(`${where}: model input type ${DT[want]} is not supported`);
  }
}

/** Resolve a model input's shape against the data's per-sample shape, or explain the mismatch. */
function checkShape(input: ModelInput, dataShape: number[], where: string): number[] {
  const sample = dataShape.slice(1);
  const model = input.dims.slice(1);
  const fmt = (d: (number | string)[]) => `[${d.map((x) => (x === '' ? '?' : x)).join(',')}]`;
  const fits = input.dims.length === 0 || (model.length === sample.length && model.every((m, i) => typeof m !== 'number' || m === sample[i]));
  if (!fits) {
    throw new InputError(
      `input "${input.name}": data ${where} has shape ${fmt(dataShape)} but the model expects ${fmt(input.dims)} (first axis = samples)`,
    );
  }
  return sample;
}

export interface LoadOptions {
  samples?: number;
  seed?: number;
}

export function loadDataset(dataPath: string | undefined, inputs: ModelInput[], opts: LoadOptions = {}): Dataset {
  if (!dataPath) return syntheticDataset(inputs, opts.samples ?? 32, opts.seed ?? 1);
  const arrays = loadArrays(dataPath);
  let samples = Infinity;
  const loaded = inputs.map((inp) => {
    const hit = arrays.get(inp.name) ?? arrays.get(safeFileName(inp.name)) ?? (inputs.length === 1 && arrays.size <= 2 ? firstNonLabel(arrays) : undefined);
    if (!hit) {
      throw new InputError(
        `calibration data ${path.resolve(dataPath)} has no array for model input "${inp.name}" (expected ${safeFileName(inp.name)}.npy; found: ${[...arrays.keys()].join(', ') || 'nothing'})`,
      );
    }
    const sampleShape = checkShape(inp, hit.arr.shape, hit.where);
    samples = Math.min(samples, hit.arr.shape[0]);
    return { name: inp.name, dataType: inp.dataType, shape: sampleShape, data: convert(hit.arr, inp.dataType, hit.where), where: hit.where, n: hit.arr.shape[0] };
  });
  const counts = new Set(loaded.map((l) => l.n));
  if (counts.size > 1) {
    throw new InputError(`calibration arrays disagree on the number of samples: ${loaded.map((l) => `${l.where}: ${l.n}`).join(', ')}`);
  }
  let labels: Int32Array | null = null;
  const lab = arrays.get('labels');
  if (lab) {
    if (lab.arr.shape.length !== 1 || lab.arr.shape[0] !== samples) {
      throw new InputError(`${lab.where}: labels must be a 1-D array with one integer per sample (${samples}), got shape [${lab.arr.shape.join(',')}]`);
    }
    labels = Int32Array.from(lab.arr.data as unknown as ArrayLike<number | bigint>, (v) => Number(v));
  }
  if (opts.samples !== undefined) samples = Math.min(samples, opts.samples);
  if (samples === 0 || !Number.isFinite(samples)) throw new InputError(`calibration data ${path.resolve(dataPath)} holds no samples`);
  return inMemoryDataset({
    source: path.resolve(dataPath),
    synthetic: false,
    samples,
    inputs: loaded.map(({ name, dataType, shape, data }) => ({ name, dataType, shape, data })),
    labels: labels ? labels.subarray(0, samples) : null,
  });
}

function firstNonLabel(arrays: Map<string, { arr: NpyArray; where: string }>) {
  for (const [k, v] of arrays) if (k !== 'labels') return v;
  return undefined;
}

/** Seeded standard-normal inputs (float) or small integers, resolving symbolic dims to 1. */
export function syntheticDataset(inputs: ModelInput[], samples: number, seed: number): Dataset {
  let s = seed >>> 0 || 1;
  const rand = () => {
    // xorshift32: deterministic across runs and platforms
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return inMemoryDataset({
    source: 'synthetic',
    synthetic: true,
    samples,
    labels: null,
    inputs: inputs.map((inp) => {
      const shape = inp.dims.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
      const n = samples * shape.reduce((a, b) => a * b, 1);
      let data: InputArray;
      if (inp.dataType === DT.FLOAT) data = Float32Array.from({ length: n }, normal);
      else if (inp.dataType === DT.INT64) data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 100)));
      else throw new InputError(`synthetic data for input "${inp.name}" of type ${DT[inp.dataType]} is not supported; pass --data`);
      return { name: inp.name, dataType: inp.dataType, shape, data };
    }),
  });
}

/** Batches of at most `size` samples: [start, count]. */
export function* batchRanges(samples: number, size: number): Generator<[number, number]> {
  for (let start = 0; start < samples; start += size) yield [start, Math.min(size, samples - start)];
}
