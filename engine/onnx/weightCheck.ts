/**
 * Weights that make every number computed from them meaningless, caught at load time rather than
 * turned into a confident report: NaN or infinite values in float tensors (initializers, Constant
 * values, at any depth) and a BatchNormalization whose constant variance is negative (its
 * sqrt(var + eps) is NaN) are refused; finite values so large that any quantization range built on
 * them is absurd (|w| > 1e30) come back as warnings.
 */
import { type GraphProto, type ModelProto, type TensorProto, TensorProto_DataType as DT } from 'onnx-buf';
import { InputError } from '../errors';
import { nodeLabel, subgraphScope, subgraphsOf, tensorSites } from './walk';

/** Above this magnitude a weight is almost surely garbage (float32 max is 3.4e38). */
export const HUGE_WEIGHT = 1e30;

/** Bits of an IEEE half or bfloat16 value, widened to float32. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
const bf16 = new Float32Array(1);
const bf16Bits = new Uint32Array(bf16.buffer);
function bfloatToFloat(h: number): number {
  bf16Bits[0] = (h & 0xffff) << 16;
  return bf16[0];
}

/** A typed view of raw_data (copied when its offset is not a multiple of the element size). */
function rawView<A>(raw: Uint8Array, bytes: number, make: (b: ArrayBuffer, offset: number, length: number) => A): A {
  const length = Math.floor(raw.length / bytes);
  if (raw.byteOffset % bytes === 0) return make(raw.buffer as ArrayBuffer, raw.byteOffset, length);
  // new Uint8Array(view) copies; Buffer#slice (raw_data decoded from a Buffer is one) would not.
  return make(new Uint8Array(raw).buffer as ArrayBuffer, 0, length);
}

/** A float tensor's values (any float width), or undefined for other types. */
export function floatValues(t: TensorProto): ArrayLike<number> | undefined {
  const raw = t.rawData;
  const from16 = (conv: (h: number) => number): ArrayLike<number> => {
    const bits = raw.length ? rawView(raw, 2, (b, o, l) => new Uint16Array(b, o, l)) : t.int32Data;
    return Float32Array.from(bits, conv);
  };
  switch (t.dataType) {
    case DT.FLOAT:
      return raw.length ? rawView(raw, 4, (b, o, l) => new Float32Array(b, o, l)) : t.floatData;
    case DT.DOUBLE:
      return raw.length ? rawView(raw, 8, (b, o, l) => new Float64Array(b, o, l)) : t.doubleData;
    case DT.FLOAT16:
      return from16(halfToFloat);
    case DT.BFLOAT16:
      return from16(bfloatToFloat);
    default:
      return undefined;
  }
}

interface Census {
  nan: number;
  inf: number;
  huge: number;
  largest: number;
}

function census(v: ArrayLike<number>): Census {
  const c: Census = { nan: 0, inf: 0, huge: 0, largest: 0 };
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x !== x) c.nan++;
    else if (x === Infinity || x === -Infinity) c.inf++;
    else if (x > HUGE_WEIGHT || x < -HUGE_WEIGHT) {
      c.huge++;
      c.largest = Math.max(c.largest, Math.abs(x));
    }
  }
  return c;
}

/**
 * Refuse non-finite weights and negative BatchNormalization variances (InputError naming the file
 * and the tensor or node); return one warning per tensor with values above 1e30 in magnitude.
 */
export function checkWeights(model: ModelProto, file: string): string[] {
  const warnings: string[] = [];
  for (const { tensor, where } of tensorSites(model)) {
    const v = floatValues(tensor);
    if (!v) continue;
    const c = census(v);
    const bad = [c.nan ? `${c.nan} NaN` : '', c.inf ? `${c.inf} infinite` : ''].filter(Boolean).join(' and ');
    if (bad) throw new InputError(`${file}: ${where} holds ${bad} values (of ${v.length}); weights must be finite`);
    if (c.huge) {
      warnings.push(
        `${file}: ${where} holds ${c.huge} values above ${HUGE_WEIGHT.toExponential(0)} in magnitude (largest ${c.largest.toExponential(2)}); quantization ranges and errors built on them mean little`,
      );
    }
  }
  if (model.graph) checkBatchNorms(model.graph, file, '', new Map());
  return warnings;
}

/** BatchNormalization input 4 is the variance; when it is a constant, no entry may be negative. */
function checkBatchNorms(g: GraphProto, file: string, scope: string, outer: ReadonlyMap<string, TensorProto>): void {
  const constants = new Map(outer);
  for (const t of g.initializer) constants.set(t.name, t);
  for (const n of g.node) {
    const value = n.opType === 'Constant' ? n.attribute.find((a) => a.name === 'value')?.t : undefined;
    if (value && n.output[0]) constants.set(n.output[0], value);
  }
  g.node.forEach((n, i) => {
    const isBn = n.opType === 'BatchNormalization' && (n.domain === '' || n.domain === 'ai.onnx');
    const variance = isBn && n.input[4] ? constants.get(n.input[4]) : undefined;
    const v = variance && floatValues(variance);
    if (v) {
      let negative = 0;
      let smallest = 0;
      for (let k = 0; k < v.length; k++) {
        if (v[k] < 0) {
          negative++;
          smallest = Math.min(smallest, v[k]);
        }
      }
      if (negative) {
        throw new InputError(
          `${file}: ${nodeLabel(n, i)}${scope} has variance ${n.input[4]} with ${negative} negative values (smallest ${smallest}); a variance cannot be negative`,
        );
      }
    }
    for (const { attr, graph } of subgraphsOf(n)) checkBatchNorms(graph, file, subgraphScope(scope, attr, n, i), constants);
  });
}
