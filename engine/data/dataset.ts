/**
 * Calibration/evaluation data: a .npz file, one .npy file, or a folder of .npy files named after
 * the model inputs (first axis = samples), with optional integer labels (`labels.npy` / npz key
 * `labels`). Inputs are streamed: `read(start, count)` reads those samples from the files (in
 * place, or through a sequential inflater for compressed .npz entries), so memory does not grow
 * with the data. Everything that can be checked is checked when the data is loaded; values
 * (NaN/Inf) are checked as they are read.
 * Without data, seeded synthetic inputs stand in, and the caller must warn that thresholds then
 * say nothing about real activations.
 */
import type { ModelProto } from 'onnx-buf';
import { InputError } from '../errors';
import { formatBytes } from '../io/files';
import { DT } from '../onnx/tensor';
import { GraphIndex } from '../onnx/graph';
import { type InputArray, checkCompatible, decode, firstNonFinite } from './dtypes';
import { checkLabels, checkLabelsHeader, readLabels } from './labels';
import type { NpyArray } from './npy';
import { type ArraySource, openCatalog, safeFileName } from './sources';
import type { ConstantFeed, InputDescription, ModelInput, StateFeed } from './inputs';

export type { ModelInput } from './inputs';

export type { InputArray } from './dtypes';
export { checkLabels } from './labels';

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
  /** Where the labels came from (a file, or `archive.npz:labels.npy`), for checkLabels' messages. */
  labelsSource?: string;
  /** How arrays were matched to inputs where not by name, and arrays left unused: for the report's warnings. */
  notes?: string[];
  /** Samples [start, start + count) of every input, in `inputs` order, as fresh arrays. */
  read(start: number, count: number): Promise<InputArray[]>;
  /** Inputs fed the same value in every run (data/inputs.ts); `inputs` holds the sample inputs only. */
  constants?: ConstantFeed[];
  /** Recurrent inputs carried from the float model's outputs (data/inputs.ts). */
  states?: StateFeed[];
  /** How every model input is fed, for the report. */
  description?: InputDescription[];
  /** Release files held open and buffered bytes (a later read opens them again). */
  close(): Promise<void>;
}

/** Every model input the data feeds (samples, constants, states), with its element type. */
export function fedInputs(data: Dataset): { name: string; dataType: DT }[] {
  return [...data.inputs, ...(data.constants ?? []), ...(data.states ?? [])];
}

/** The names of every fed model input: they are fed, never fetched as taps. */
export function inputNamesOf(data: Dataset): Set<string> {
  return new Set(fedInputs(data).map((i) => i.name));
}

/** A dataset over arrays already in memory (synthetic data, tests). */
export function inMemoryDataset(fields: Omit<Dataset, 'read' | 'close' | 'inputs'> & { inputs: (DatasetInput & { data: InputArray })[] }): Dataset {
  return {
    ...fields,
    inputs: fields.inputs.map(({ name, dataType, shape }) => ({ name, dataType, shape })),
    read: async (start, count) => {
      checkRange(start, count, fields.samples);
      return fields.inputs.map((inp) => {
        const per = inp.shape.reduce((a, b) => a * b, 1);
        return inp.data.slice(start * per, (start + count) * per) as InputArray;
      });
    },
    close: async () => {},
  };
}

function checkRange(start: number, count: number, samples: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > samples) {
    throw new Error(`dataset read of samples [${start}, ${start + count}) outside [0, ${samples})`);
  }
}

/** The graph inputs that are not initializers, with their element type and declared dims. */
export function modelInputs(model: ModelProto): ModelInput[] {
  const idx = new GraphIndex(model.graph!);
  return model
    .graph!.input.filter((i) => idx.graphInputs.has(i.name))
    .map((i) => {
      const tt = i.type?.value.case === 'tensorType' ? i.type.value.value : undefined;
      const dims = (tt?.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : ''));
      return { name: i.name, dataType: (tt?.elemType ?? DT.FLOAT) as DT, dims };
    });
}

/** Resolve a model input's shape against the data's per-sample shape, or explain the mismatch. */
function checkShape(input: ModelInput, dataShape: number[], where: string): number[] {
  const sample = dataShape.slice(1);
  const model = input.dims.slice(1);
  const fmt = (d: (number | string)[]) => `[${d.map((x) => (x === '' ? '?' : x)).join(',')}]`;
  const fits = input.dims.length === 0 || (model.length === sample.length && model.every((m, i) => typeof m !== 'number' || m === sample[i]));
  if (!fits) {
    const expects = input.userShape
      ? `the shape given for it (--input-shape or quantlens.json "inputs") is ${fmt(input.dims)}`
      : `the model expects ${fmt(input.dims)}`;
    throw new InputError(`input "${input.name}": data ${where} has shape ${fmt(dataShape)} but ${expects} (first axis = samples)`);
  }
  return sample;
}

export interface LoadOptions {
  /** Use at most this many samples (a positive integer). */
  samples?: number;
  seed?: number;
  /** The model's output width (classes): labels are checked against it when given. */
  outputWidth?: number;
  /** Arrays of the data read by another part (constant inputs taken from the data): not unused. */
  readElsewhere?: readonly string[];
}

function checkOptions(opts: LoadOptions): void {
  if (opts.samples !== undefined && !(Number.isInteger(opts.samples) && opts.samples > 0)) {
    throw new InputError(`samples must be a positive whole number, got ${opts.samples}`);
  }
}

/** A fixed first dimension larger than the run's samples cannot be fed with real samples. */
function checkFixedBatch(inputs: ModelInput[], samples: number, source: string): void {
  for (const inp of inputs) {
    const b = inp.dims[0];
    if (typeof b === 'number' && b > samples) {
      throw new InputError(`model input "${inp.name}" has a fixed batch size of ${b} but ${source} provides only ${samples} samples; use at least ${b}`);
    }
  }
}

/**
 * Open the data at `dataPath` for a model with `inputs` and check it: files, headers, dtypes,
 * shapes, sample counts, zip sizes and CRCs, labels. Synthetic data without a path.
 */
export function loadDataset(dataPath: string | undefined, inputs: ModelInput[], opts: LoadOptions = {}): Dataset {
  checkOptions(opts);
  if (!dataPath) {
    const samples = opts.samples ?? 32;
    checkFixedBatch(inputs, samples, 'synthetic data');
    return syntheticDataset(inputs, samples, opts.seed ?? 1);
  }
  const cat = openCatalog(dataPath);
  try {
    return streamingDataset(cat.root, inputs, cat.arrays, cat.release, opts);
  } finally {
    cat.release();
  }
}

function streamingDataset(root: string, inputs: ModelInput[], arrays: Map<string, ArraySource>, release: () => void, opts: LoadOptions): Dataset {
  const nonLabel = [...arrays.values()].filter((a) => a.key !== 'labels');
  const used = inputs.map((inp) => {
    const src = arrays.get(inp.name) ?? arrays.get(safeFileName(inp.name)) ?? (inputs.length === 1 && nonLabel.length === 1 ? nonLabel[0] : undefined);
    if (!src) {
      throw new InputError(
        `calibration data ${root} has no array for model input "${inp.name}" (expected ${safeFileName(inp.name)}.npy; found: ${[...arrays.keys()].join(', ') || 'nothing'})`,
      );
    }
    const arr = src.open();
    if (arr.header.shape.length === 0) {
      throw new InputError(
        `${src.where}: a 0-d array (a scalar) has no sample axis; if "${inp.name}" takes the same value for every sample, declare it a constant (--input ${inp.name}=VALUE)`,
      );
    }
    checkCompatible(arr.header.dtype, inp.dataType, src.where, inp.name);
    const shape = checkShape(inp, arr.header.shape, src.where);
    return { inp, src, arr, shape };
  });
  const counts = new Set(used.map((u) => u.arr.samples));
  if (counts.size > 1) {
    throw new InputError(`calibration arrays disagree on the number of samples: ${used.map((u) => `${u.src.where}: ${u.arr.samples}`).join(', ')}`);
  }
  const all = used[0]?.arr.samples ?? 0;
  if (all === 0) throw new InputError(`calibration data ${root}: the model has no inputs to feed`);
  const labelSrc = arrays.get('labels');
  const labelArr = labelSrc?.open();
  if (labelArr) checkLabelsHeader(labelArr, all);
  // The expensive check once everything cheap has passed; labels' values after their CRC.
  for (const u of used) u.src.verify();
  labelSrc?.verify();
  let labels = labelArr ? readLabels(labelArr, all) : null;
  const samples = Math.min(all, opts.samples ?? all);
  // How the arrays were matched, where it is not by name: said, never silent.
  const notes: string[] = [];
  for (const u of used)
    if (u.src.key !== u.inp.name && u.src.key !== safeFileName(u.inp.name))
      notes.push(`${u.src.where} is read as model input "${u.inp.name}": it is the only array besides labels, under another name`);
  const unused = [...arrays.keys()].filter((k) => k !== 'labels' && !used.some((u) => u.src.key === k) && !opts.readElsewhere?.includes(k));
  if (unused.length)
    notes.push(
      `calibration data ${root}: ${unused.map((k) => `"${k}"`).join(', ')} not used (no model input of that name; the inputs read are ${used.map((u) => `"${u.inp.name}"`).join(', ')})`,
    );
  checkFixedBatch(inputs, samples, root);
  if (labels && samples < all) labels = labels.slice(0, samples);
  if (labels && opts.outputWidth !== undefined) checkLabels(labels, opts.outputWidth, labelSrc!.where);
  return {
    source: root,
    synthetic: false,
    samples,
    inputs: used.map((u) => ({ name: u.inp.name, dataType: u.inp.dataType, shape: u.shape })),
    labels,
    labelsSource: labelSrc?.where,
    ...(notes.length ? { notes } : {}),
    read: async (start, count) => {
      checkRange(start, count, samples);
      try {
        return used.map((u) => readInput(u.arr, u.inp, start, count));
      } finally {
        release();
      }
    },
    close: async () => {
      release();
      for (const u of used) u.arr.reset();
    },
  };
}

/** The array names a data path holds (to tell which inputs the data feeds). */
export function dataKeys(dataPath: string): Set<string> {
  const cat = openCatalog(dataPath);
  cat.release();
  return new Set([...cat.arrays.keys()].filter((k) => k !== 'labels'));
}

/**
 * A constant input's value from the data file: an array without a sample axis, holding the whole
 * input (for a rank-0 input: any one-value array, 0-d included).
 */
export function readConstant(dataPath: string, inp: ModelInput): ConstantFeed {
  const cat = openCatalog(dataPath);
  try {
    const src = cat.arrays.get(inp.name) ?? cat.arrays.get(safeFileName(inp.name))!;
    const arr = src.open();
    checkCompatible(arr.header.dtype, inp.dataType, src.where, inp.name);
    const shape = arr.header.shape;
    const count = shape.reduce((a, b) => a * b, 1);
    const fits = inp.dims.length === 0 ? count === 1 : shape.length === inp.dims.length && inp.dims.every((d, i) => typeof d !== 'number' || d === shape[i]);
    if (!fits)
      throw new InputError(
        `${src.where}: constant input "${inp.name}" expects shape [${inp.dims.join(',')}] (no sample axis), the array has (${shape.join(', ')})`,
      );
    src.verify();
    return {
      name: inp.name,
      dataType: inp.dataType,
      dims: inp.dims.length === 0 ? [] : shape,
      data: decode(arr.rows(0, arr.samples), arr.header.dtype, inp.dataType),
    };
  } finally {
    cat.release();
  }
}

/** Samples [start, start + count) of one input, converted to its type; float inputs must be finite. */
function readInput(arr: NpyArray, inp: ModelInput, start: number, count: number): InputArray {
  const a = decode(arr.rows(start, count), arr.header.dtype, inp.dataType);
  if (a instanceof Float32Array) {
    const i = firstNonFinite(a);
    if (i >= 0) {
      throw new InputError(
        `${arr.where}: input "${inp.name}" holds ${a[i]} in sample ${start + Math.floor(i / arr.perSample)} (first one); quantization needs finite inputs`,
      );
    }
  }
  return a;
}

/**
 * Most bytes of synthetic inputs QuantLens makes up (they are held in memory whole). A model whose
 * fixed input shape needs more is analysed on real data or on fewer samples.
 */
export const SYNTHETIC_LIMIT_BYTES = 2 ** 30;

/** Refuse synthetic inputs over SYNTHETIC_LIMIT_BYTES before allocating any (a fixed 30000x30000 input...). */
function checkSyntheticSize(inputs: ModelInput[], samples: number): void {
  let total = 0;
  for (const inp of inputs) {
    const shape = syntheticShape(inp.dims);
    const perSample = shape.reduce((a, b) => a * b, 1) * (inp.dataType === DT.INT64 ? 8 : 4);
    total += perSample * samples;
    if (total > SYNTHETIC_LIMIT_BYTES) {
      throw new InputError(
        `synthetic data for input "${inp.name}" of shape [${shape.join(',')}] takes ${formatBytes(perSample)} per sample, ${formatBytes(total)} for ${samples} samples, ` +
          `over the ${formatBytes(SYNTHETIC_LIMIT_BYTES)} QuantLens makes up; pass --data with real samples, or fewer --samples`,
      );
    }
  }
}

/**
 * The size a synthetic sample gets along a dynamic dim: never 1, which collapses an image model's
 * feature maps to a point (a text detector on a 3x1x1 "image" gave a flawless 150 dB, a text
 * recogniser at width 1 a one-step output read as a classifier); at least 64 (five stride-2
 * stages still leave 2x2), or the input's largest fixed dim (a 48-pixel-high text line gets 48x64).
 */
export const SYNTHETIC_MIN_DIM = 64;

export function syntheticShape(dims: readonly (number | string)[]): number[] {
  const fixed = dims.slice(1).filter((d): d is number => typeof d === 'number' && d > 0);
  const guess = Math.max(SYNTHETIC_MIN_DIM, ...fixed);
  return dims.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : guess));
}

/** Seeded standard-normal inputs (float) or small integers, dynamic dims as `syntheticShape` sets them. */
export function syntheticDataset(inputs: ModelInput[], samples: number, seed: number): Dataset {
  checkSyntheticSize(inputs, samples);
  let s = seed >>> 0 || 1;
  const rand = () => {
    // xorshift32: deterministic across runs and platforms
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return inMemoryDataset({
    source: 'synthetic',
    synthetic: true,
    samples,
    labels: null,
    inputs: inputs.map((inp) => {
      const shape = syntheticShape(inp.dims);
      const n = samples * shape.reduce((a, b) => a * b, 1);
      let data: InputArray;
      if (inp.dataType === DT.FLOAT) data = Float32Array.from({ length: n }, normal);
      else if (inp.dataType === DT.INT64) data = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 100)));
      else throw new InputError(`synthetic data for input "${inp.name}" of type ${DT[inp.dataType]} is not supported; pass --data`);
      return { name: inp.name, dataType: inp.dataType, shape, data };
    }),
  });
}

/** Samples per batch so that `bytesPerSample` each stay within `budget`: at least 1, at most `max`. */
export function batchWithin(budget: number, bytesPerSample: number, max: number): number {
  return Math.max(1, Math.min(max, Math.floor(budget / Math.max(1, bytesPerSample))));
}

/** Batches of at most `size` samples: [start, count]. */
export function* batchRanges(samples: number, size: number): Generator<[number, number]> {
  for (let start = 0; start < samples; start += size) yield [start, Math.min(size, samples - start)];
}
