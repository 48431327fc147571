/**
 * ONNX element types: how many bits one element takes in raw_data, and which typed repeated field
 * (float_data, int32_data, ...) holds it otherwise, with how many entries per element. These are
 * what the size checks of a TensorProto need; the rules are the ONNX 1.20 TensorProto comments.
 */
import { type TensorProto, TensorProto_DataType as DT } from 'onnx-buf';

type TypedField = 'floatData' | 'int32Data' | 'stringData' | 'int64Data' | 'doubleData' | 'uint64Data';

interface ElementType {
  /** Bits per element in raw_data (0: the type has no raw form, i.e. STRING). */
  bits: number;
  field: TypedField;
  /** Elements per typed-field entry, as a fraction: complex takes 2 entries, int4 packs 2 per entry. */
  entriesPerElement: number;
}

const T = (bits: number, field: TypedField, entriesPerElement = 1): ElementType => ({ bits, field, entriesPerElement });

const TYPES: Partial<Record<DT, ElementType>> = {
  [DT.FLOAT]: T(32, 'floatData'),
  [DT.UINT8]: T(8, 'int32Data'),
  [DT.INT8]: T(8, 'int32Data'),
  [DT.UINT16]: T(16, 'int32Data'),
  [DT.INT16]: T(16, 'int32Data'),
  [DT.INT32]: T(32, 'int32Data'),
  [DT.INT64]: T(64, 'int64Data'),
  [DT.STRING]: T(0, 'stringData'),
  [DT.BOOL]: T(8, 'int32Data'),
  [DT.FLOAT16]: T(16, 'int32Data'),
  [DT.DOUBLE]: T(64, 'doubleData'),
  [DT.UINT32]: T(32, 'uint64Data'),
  [DT.UINT64]: T(64, 'uint64Data'),
  [DT.COMPLEX64]: T(64, 'floatData', 2),
  [DT.COMPLEX128]: T(128, 'doubleData', 2),
  [DT.BFLOAT16]: T(16, 'int32Data'),
  [DT.FLOAT8E4M3FN]: T(8, 'int32Data'),
  [DT.FLOAT8E4M3FNUZ]: T(8, 'int32Data'),
  [DT.FLOAT8E5M2]: T(8, 'int32Data'),
  [DT.FLOAT8E5M2FNUZ]: T(8, 'int32Data'),
  [DT.UINT4]: T(4, 'int32Data', 1 / 2),
  [DT.INT4]: T(4, 'int32Data', 1 / 2),
  [DT.FLOAT4E2M1]: T(4, 'int32Data', 1 / 2),
  [DT.FLOAT8E8M0]: T(8, 'int32Data'),
  [DT.UINT2]: T(2, 'int32Data', 1 / 4),
  [DT.INT2]: T(2, 'int32Data', 1 / 4),
};

/** Is `dt` an element type ONNX defines (UNDEFINED and unknown numbers are not)? */
export function isKnownElementType(dt: number): boolean {
  return TYPES[dt as DT] !== undefined;
}

/** The ONNX name of an element type, or its number when ONNX defines none. */
export function elementTypeName(dt: number): string {
  return isKnownElementType(dt) ? DT[dt] : `${dt} (not an ONNX element type)`;
}

/** Bytes `n` elements take in raw_data (sub-byte types packed), or undefined for STRING/unknown. */
export function rawBytesFor(dt: number, n: number): number | undefined {
  const t = TYPES[dt as DT];
  if (!t || t.bits === 0) return undefined;
  return Math.ceil((n * t.bits) / 8);
}

/** The typed repeated field that holds `dt`'s values, and the entry count `n` elements need. */
export function typedFieldFor(dt: number, n: number): { field: TypedField; entries: number } | undefined {
  const t = TYPES[dt as DT];
  return t && { field: t.field, entries: Math.ceil(n * t.entriesPerElement) };
}

/** How many entries the tensor holds in its typed field for its type (the others are ignored). */
export function typedEntries(t: TensorProto): number {
  const f = TYPES[t.dataType as DT]?.field;
  return f ? t[f].length : 0;
}

/** Product of dims; dims are checked non-negative elsewhere. */
export function elementCountOf(dims: readonly (number | bigint)[]): number {
  let n = 1;
  for (const d of dims) n *= Number(d);
  return n;
}
