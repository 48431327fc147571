/**
 * What each model input is fed, decided once per analysis (the data description):
 *   - sample:   one row of the data per sample, axis 0 = samples (the data file's arrays);
 *   - constant: the same value in every run: scalars and configuration inputs such as a sample
 *               rate (`--input sr=16000`, `inputs.sr.value` in quantlens.json, or a one-value
 *               array in the data file for a rank-0 input);
 *   - state:    a recurrent input carried from a model output of the same shape on the next step
 *               (`--state state=stateN`), zeros before the first sample; samples are taken in order.
 * Settings (CLI flags over quantlens.json) win; otherwise the kind is inferred where unambiguous:
 * a rank-0 input the data lacks is a constant that needs a value (an error naming the flag), an
 * input shaped like an output named after it (state/stateN, h/hn, c/cn) is a state.
 */
import type { GraphProto } from 'onnx-buf';
import { InputError } from '../errors';
import { DT } from '../onnx/tensor';
import type { InputArray } from './dtypes';
import { safeFileName } from './sources';

/** A model input as the graph declares it. */
export interface ModelInput {
  name: string;
  dataType: DT;
  /** Fixed sizes as numbers, symbolic/unknown as strings ('' when unnamed). */
  dims: (number | string)[];
  /** Set when `dims` is the shape the user gave (--input-shape, quantlens.json `inputs`), not the model's. */
  userShape?: boolean;
}

export type InputKind = 'sample' | 'constant' | 'state';

/** One input's setting as the user gives it (CLI flags, quantlens.json `inputs`). */
export interface InputSetting {
  kind?: InputKind;
  /** constant: its value (a number or a flat list, row-major). */
  value?: number | number[];
  /** state: the model output that carries it to the next step. */
  from?: string;
  /** Full input shape (batch axis included) where the model leaves dims dynamic, e.g. [1, 512]. */
  shape?: number[];
}

export interface ConstantFeed {
  name: string;
  dataType: DT;
  dims: number[];
  data: InputArray;
}

export interface StateFeed {
  name: string;
  dataType: DT;
  /** The model output that feeds it on the next step. */
  from: string;
  /** Shape of one sample's state (the batch axis, if any, has size 1). */
  dims: number[];
  /** Axis along which samples' states stack into a batch; null: the state has none (batches of 1). */
  batchAxis: number | null;
  /** Per sample (in order), the state it is fed: filled by the state pass before any other pass. */
  values: Float32Array | null;
}

/** How each input was fed, for the report's data section. */
export interface InputDescription {
  name: string;
  kind: InputKind;
  /** sample: per-sample shape; constant: the value's shape; state: one sample's state shape. */
  shape: number[];
  value?: number[];
  from?: string;
  batchAxis?: number | null;
  /** Where the kind came from. */
  decidedBy: 'data' | 'option' | 'inferred';
}

export interface ModelOutputInfo {
  name: string;
  dims: (number | string)[];
}

/** Output names that would carry input `n` to the next step. */
function stateNames(n: string): string[] {
  const base = n.replace(/_?0$/, '');
  return [
    ...new Set([
      `${n}N`,
      `${n}n`,
      `${n}_n`,
      `${n}_out`,
      `${n}out`,
      `${n}Out`,
      `${n}_next`,
      `next_${n}`,
      `${n}_new`,
      `new_${n}`,
      `${base}n`,
      `${base}N`,
      `${base}_n`,
    ]),
  ];
}

/** Same rank (when the output declares one) and equal fixed sizes where both fix them. */
function sameShape(a: (number | string)[], b: (number | string)[]): boolean {
  if (b.length === 0) return true; // the output declares no shape
  return a.length === b.length && a.every((d, i) => typeof d !== 'number' || typeof b[i] !== 'number' || d === b[i]);
}

/** The graph's outputs with their declared dims. */
export function modelOutputs(g: GraphProto): ModelOutputInfo[] {
  return g.output.map((o) => {
    const tt = o.type?.value.case === 'tensorType' ? o.type.value.value : undefined;
    return {
      name: o.name,
      dims: (tt?.shape?.dim ?? []).map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : '')),
    };
  });
}

const fmt = (d: (number | string)[]) => `[${d.map((x) => (x === '' ? '?' : x)).join(',')}]`;

/** Parse `name=value` (CLI): a number or a comma list. */
export function parseValueArg(spec: string): [string, number[]] {
  const k = spec.indexOf('=');
  if (k <= 0) throw new InputError(`--input ${spec}: expected NAME=VALUE (e.g. --input sr=16000)`);
  const values = spec
    .slice(k + 1)
    .split(',')
    .map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v)))
    throw new InputError(`--input ${spec}: the value must be a number or a comma-separated list of numbers`);
  return [spec.slice(0, k), values];
}

/** Parse `name=AxBxC` (CLI --input-shape). */
export function parseShapeArg(spec: string): [string, number[]] {
  const k = spec.indexOf('=');
  const dims = spec
    .slice(k + 1)
    .split('x')
    .map(Number);
  if (k <= 0 || dims.some((d) => !Number.isInteger(d) || d <= 0))
    throw new InputError(`--input-shape ${spec}: expected NAME=AxBxC with positive sizes (e.g. --input-shape input=1x512)`);
  return [spec.slice(0, k), dims];
}

/** Parse `name=output` (CLI --state). */
export function parseStateArg(spec: string): [string, string] {
  const k = spec.indexOf('=');
  if (k <= 0 || k === spec.length - 1) throw new InputError(`--state ${spec}: expected INPUT=OUTPUT (e.g. --state state=stateN)`);
  return [spec.slice(0, k), spec.slice(k + 1)];
}

/** Check a settings object read from quantlens.json (`inputs`), naming the file on a bad entry. */
export function checkInputSettings(value: unknown, file: string): Record<string, InputSetting> {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InputError(`${file}: "inputs" must be an object {name: {kind, value?, from?, shape?}}`);
  const out: Record<string, InputSetting> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    const s = v as InputSetting;
    const bad = (why: string) => new InputError(`${file}: inputs.${name}: ${why}`);
    if (!s || typeof s !== 'object') throw bad('must be an object');
    if (s.kind !== undefined && !['sample', 'constant', 'state'].includes(s.kind))
      throw bad(`kind must be sample, constant or state, not ${JSON.stringify(s.kind)}`);
    const vals = s.value === undefined ? [] : Array.isArray(s.value) ? s.value : [s.value];
    if (vals.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw bad('value must be a number or a list of numbers');
    if (s.from !== undefined && typeof s.from !== 'string') throw bad('from must be an output name');
    if (s.shape !== undefined && (!Array.isArray(s.shape) || s.shape.some((d) => !Number.isInteger(d) || d <= 0)))
      throw bad('shape must be a list of positive integers');
    out[name] = s;
  }
  return out;
}

/** Values as the input's element type. */
function typed(values: number[], dt: DT, name: string): InputArray {
  switch (dt) {
    case DT.FLOAT:
      return Float32Array.from(values);
    case DT.DOUBLE:
      return Float64Array.from(values);
    case DT.INT64:
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case DT.INT32:
      return Int32Array.from(values);
    case DT.UINT8:
    case DT.BOOL:
      return Uint8Array.from(values);
    case DT.INT8:
      return Int8Array.from(values);
    default:
      throw new InputError(`input "${name}": constant values of type ${DT[dt]} are not supported`);
  }
}

/** The dims a constant's value takes: the model's, with dynamic dims from `shape` or the value count. */
function constantDims(inp: ModelInput, count: number, shape?: number[]): number[] {
  const dims = shape ?? inp.dims.map((d) => (typeof d === 'number' ? d : -1));
  const dyn = dims.filter((d) => d < 0).length;
  const fixed = dims.filter((d) => d >= 0).reduce((a, b) => a * b, 1);
  const out = dyn === 1 && fixed > 0 && count % fixed === 0 ? dims.map((d) => (d < 0 ? count / fixed : d)) : dims;
  if (out.some((d) => d < 0) || out.reduce((a, b) => a * b, 1) !== count) {
    throw new InputError(`input "${inp.name}" ${fmt(inp.dims)}: ${count} value(s) do not fill it; give its shape with --input-shape ${inp.name}=AxB`);
  }
  return out;
}

/** A state's per-sample dims and batch axis: the one dynamic dim (size 1 per sample), others fixed or set. */
function stateShape(inp: ModelInput, shape?: number[]): { dims: number[]; batchAxis: number | null } {
  const dyn = inp.dims.map((d, i) => (typeof d === 'number' ? -1 : i)).filter((i) => i >= 0);
  if (shape) {
    if (shape.length !== inp.dims.length)
      throw new InputError(`input "${inp.name}": --input-shape gives ${shape.length} dims, the model declares ${fmt(inp.dims)}`);
    return { dims: dyn.length === 1 ? shape.map((d, i) => (i === dyn[0] ? 1 : d)) : shape, batchAxis: dyn.length === 1 ? dyn[0] : null };
  }
  if (dyn.length > 1) {
    throw new InputError(
      `state input "${inp.name}" ${fmt(inp.dims)} has ${dyn.length} dynamic dims: give its shape with --input-shape ${inp.name}=${inp.dims.map((d) => (typeof d === 'number' ? d : 'N')).join('x')}`,
    );
  }
  return { dims: inp.dims.map((d) => (typeof d === 'number' ? d : 1)), batchAxis: dyn.length === 1 ? dyn[0] : null };
}

export interface DescribedInputs {
  samples: ModelInput[];
  constants: ConstantFeed[];
  states: StateFeed[];
  /** Constants whose value is to come from the data file (the caller reads them). */
  constantsFromData: ModelInput[];
  decidedBy: Map<string, InputDescription['decidedBy']>;
}

/**
 * Decide each input's kind. `dataKeys`: the array names the data file holds (null: synthetic).
 * `modelFile` names the model in messages.
 */
export function describeInputs(
  modelFile: string,
  inputs: ModelInput[],
  outputs: ModelOutputInfo[],
  settings: Record<string, InputSetting>,
  dataKeys: Set<string> | null,
): DescribedInputs {
  const known = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(settings)) {
    if (!known.has(name)) throw new InputError(`${modelFile} has no input "${name}" (inputs: ${[...known].join(', ')})`);
  }
  const out: DescribedInputs = { samples: [], constants: [], states: [], constantsFromData: [], decidedBy: new Map() };
  const inData = (n: string) => dataKeys?.has(n) || dataKeys?.has(safeFileName(n));
  for (const inp of inputs) {
    const s = settings[inp.name] ?? {};
    let kind = s.kind ?? (s.value !== undefined ? 'constant' : s.from !== undefined ? 'state' : undefined);
    let decided: InputDescription['decidedBy'] = 'option';
    let from = s.from;
    if (!kind) {
      decided = 'inferred';
      const carriers = outputs.filter((o) => stateNames(inp.name).includes(o.name) && sameShape(inp.dims, o.dims));
      // a scalar has no sample axis; a [1] input the data lacks is a configuration value too
      if (inp.dims.length === 0 || (inp.dims.length === 1 && inp.dims[0] === 1 && !inData(inp.name))) kind = 'constant';
      else if (!inData(inp.name) && carriers.length === 1) {
        kind = 'state';
        from = carriers[0].name;
      } else {
        kind = 'sample';
        decided = dataKeys ? 'data' : 'inferred';
      }
    }
    out.decidedBy.set(inp.name, decided);
    const withShape = s.shape ? { ...inp, dims: s.shape, userShape: true } : inp;
    if (kind === 'sample') {
      out.samples.push(withShape);
    } else if (kind === 'constant') {
      const values = s.value === undefined ? undefined : Array.isArray(s.value) ? s.value : [s.value];
      if (values)
        out.constants.push({
          name: inp.name,
          dataType: inp.dataType,
          dims: constantDims(inp, values.length, s.shape),
          data: typed(values, inp.dataType, inp.name),
        });
      else if (inData(inp.name)) {
        out.constantsFromData.push(withShape);
        out.decidedBy.set(inp.name, decided === 'inferred' ? 'data' : decided);
      } else {
        throw new InputError(
          `${modelFile}: input "${inp.name}" (${DT[inp.dataType]} ${fmt(inp.dims)}) is a constant the data does not hold: give its value with --input ${inp.name}=VALUE ` +
            `(or "inputs": {"${inp.name}": {"kind": "constant", "value": VALUE}} in quantlens.json)`,
        );
      }
    } else {
      if (!from || !outputs.some((o) => o.name === from)) {
        throw new InputError(
          `${modelFile}: state input "${inp.name}" needs the model output that carries it${from ? `, and the model has no output "${from}"` : ''}: --state ${inp.name}=OUTPUT (outputs: ${outputs.map((o) => o.name).join(', ')})`,
        );
      }
      if (inp.dataType !== DT.FLOAT) throw new InputError(`${modelFile}: state input "${inp.name}" is ${DT[inp.dataType]}; only float32 states are supported`);
      out.states.push({ name: inp.name, dataType: inp.dataType, from, ...stateShape(inp, s.shape), values: null });
    }
  }
  if (out.samples.length === 0)
    throw new InputError(`${modelFile}: no input is fed from the data (every input is a constant or a state); at least one must hold the samples`);
  return out;
}

/** Samples [start, start + count) of a state, stacked along its batch axis (count 1 without one). */
export function stateBatch(s: StateFeed, start: number, count: number): { data: Float32Array; dims: number[] } {
  const per = s.dims.reduce((a, b) => a * b, 1);
  const src = s.values!;
  if (s.batchAxis === null) {
    if (count !== 1) throw new Error(`state ${s.name} has no batch axis: batches of 1 only`);
    return { data: src.slice(start * per, (start + 1) * per), dims: s.dims };
  }
  const ax = s.batchAxis;
  const outer = s.dims.slice(0, ax).reduce((a, b) => a * b, 1);
  const inner = per / outer; // batch axis has size 1 per sample
  const data = new Float32Array(per * count);
  for (let k = 0; k < count; k++) {
    const base = (start + k) * per;
    for (let o = 0; o < outer; o++) data.set(src.subarray(base + o * inner, base + (o + 1) * inner), (o * count + k) * inner);
  }
  return { data, dims: s.dims.map((d, i) => (i === ax ? count : d)) };
}

/** The batch axis of each output that carries a state whose batch axis is not the first. */
/** The model outputs fed back as state inputs on the next step. */
export function fedBackOutputs(states: readonly StateFeed[] | undefined): Set<string> {
  return new Set((states ?? []).map((s) => s.from));
}

export function stateOutputAxes(states: readonly StateFeed[]): Map<string, number> {
  return new Map(states.filter((s) => s.batchAxis !== null && s.batchAxis > 0).map((s) => [s.from, s.batchAxis!]));
}

/** `dims`/`data` with axis `axis` moved to the front (per-sample comparisons read samples along axis 0). */
export function batchFirst<T extends ArrayLike<number>>(data: T, dims: readonly number[], axis: number): { data: Float32Array; dims: number[] } {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * n * inner);
  for (let o = 0; o < outer; o++) for (let b = 0; b < n; b++) for (let i = 0; i < inner; i++) out[(b * outer + o) * inner + i] = data[(o * n + b) * inner + i];
  return { data: out, dims: [n, ...dims.slice(0, axis), ...dims.slice(axis + 1)] };
}
