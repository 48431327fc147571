/**
 * Conversion between ONNX TensorProto and typed arrays.
 *
 * Handles the three places ONNX keeps tensor values: typed repeated fields (float_data, int32_data
 * ...), little-endian `raw_data`, and external files beside the model.
 */
import { create } from '@bufbuild/protobuf';
import { type TensorProto, TensorProtoSchema, TensorProto_DataLocation, TensorProto_DataType as DT } from 'onnx-buf';
import { InputError } from '../errors';
import { readExternalBytes } from './externalData';

export { DT };

export type NumericArray = Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

export interface HostTensor {
  dims: number[];
  data: NumericArray;
  dataType: DT;
}

const BYTES: Partial<Record<DT, number>> = {
  [DT.FLOAT]: 4,
  [DT.DOUBLE]: 8,
  [DT.INT8]: 1,
  [DT.UINT8]: 1,
  [DT.INT16]: 2,
  [DT.UINT16]: 2,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.BOOL]: 1,
};

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function viewOf(dt: DT, buf: Uint8Array, n: number): NumericArray {
  // Copy into an aligned buffer: raw_data slices are not guaranteed to be aligned for typed views.
  const bytes = BYTES[dt];
  if (bytes === undefined) throw new InputError(`tensor data type ${DT[dt]} is not supported`);
  const aligned = new Uint8Array(n * bytes);
  aligned.set(buf.subarray(0, n * bytes));
  const b = aligned.buffer;
  switch (dt) {
    case DT.FLOAT:
      return new Float32Array(b);
    case DT.DOUBLE:
      return new Float64Array(b);
    case DT.INT8:
      return new Int8Array(b);
    case DT.UINT8:
    case DT.BOOL:
      return new Uint8Array(b);
    case DT.INT16:
      return new Int16Array(b);
    case DT.UINT16:
      return new Uint16Array(b);
    case DT.INT32:
      return new Int32Array(b);
    case DT.INT64:
      return new BigInt64Array(b);
    default:
      throw new InputError(`tensor data type ${DT[dt]} is not supported`);
  }
}

/** Read a tensor's values. `modelDir` resolves external data (checked like loadModel does). */
export function readTensor(t: TensorProto, modelDir: string): HostTensor {
  const dims = t.dims.map(Number);
  const n = elementCount(dims);
  const dt = t.dataType as DT;
  let data: NumericArray;
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    // Models from loadModel hold no external data any more; a bare TensorProto read from a file may.
    data = viewOf(dt, readExternalBytes(t, `tensor ${t.name}`, modelDir, modelDir), n);
  } else if (t.rawData.length > 0) {
    data = viewOf(dt, t.rawData, n);
  } else {
    switch (dt) {
      case DT.FLOAT:
        data = Float32Array.from(t.floatData);
        break;
      case DT.DOUBLE:
        data = Float64Array.from(t.doubleData);
        break;
      case DT.INT64:
        data = BigInt64Array.from(t.int64Data);
        break;
      case DT.INT32:
        data = Int32Array.from(t.int32Data);
        break;
      case DT.INT8:
        data = Int8Array.from(t.int32Data);
        break;
      case DT.UINT8:
      case DT.BOOL:
        data = Uint8Array.from(t.int32Data);
        break;
      case DT.INT16:
        data = Int16Array.from(t.int32Data);
        break;
      case DT.UINT16:
        data = Uint16Array.from(t.int32Data);
        break;
      default:
        throw new InputError(`tensor ${t.name}: data type ${DT[dt]} is not supported`);
    }
  }
  return { dims, data, dataType: dt };
}

/** Values as float32 (weights are float in the models we quantize; doubles are narrowed). */
export function readFloatTensor(t: TensorProto, modelDir: string): { dims: number[]; data: Float32Array } {
  const h = readTensor(t, modelDir);
  if (h.data instanceof Float32Array) return { dims: h.dims, data: h.data };
  if (h.data instanceof BigInt64Array) return { dims: h.dims, data: Float32Array.from(h.data, Number) };
  return { dims: h.dims, data: Float32Array.from(h.data as ArrayLike<number>) };
}

/** int4/uint4 pack two values per byte, low nibble first (ONNX spec). */
function packInt4(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const nib = values[i] & 0x0f;
    out[i >> 1] |= i & 1 ? nib << 4 : nib;
  }
  return out;
}

/** `t` under another name, sharing its bytes (initializers are never rewritten once made). */
export function renamedTensor(t: TensorProto, name: string): TensorProto {
  return create(TensorProtoSchema, { name, dataType: t.dataType, dims: [...t.dims], rawData: t.rawData });
}

/** Build a TensorProto holding `data` in raw_data. */
export function makeTensor(name: string, dataType: DT, dims: readonly number[], data: ArrayLike<number> | BigInt64Array): TensorProto {
  let raw: Uint8Array;
  if (dataType === DT.INT4 || dataType === DT.UINT4) {
    raw = packInt4(data as ArrayLike<number>);
  } else {
    let arr: NumericArray;
    switch (dataType) {
      case DT.FLOAT:
        arr = Float32Array.from(data as ArrayLike<number>);
        break;
      case DT.DOUBLE:
        arr = Float64Array.from(data as ArrayLike<number>);
        break;
      case DT.INT8:
        arr = Int8Array.from(data as ArrayLike<number>);
        break;
      case DT.UINT8:
        arr = Uint8Array.from(data as ArrayLike<number>);
        break;
      case DT.INT16:
        arr = Int16Array.from(data as ArrayLike<number>);
        break;
      case DT.UINT16:
        arr = Uint16Array.from(data as ArrayLike<number>);
        break;
      case DT.INT32:
        arr = Int32Array.from(data as ArrayLike<number>);
        break;
      case DT.INT64:
        arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data as ArrayLike<number>, (v) => BigInt(v));
        break;
      default:
        throw new Error(`makeTensor: unsupported type ${DT[dataType]}`);
    }
    raw = new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
  }
  return create(TensorProtoSchema, {
    name,
    dataType,
    dims: dims.map((d) => BigInt(d)),
    rawData: raw as Uint8Array<ArrayBuffer>,
  });
}
