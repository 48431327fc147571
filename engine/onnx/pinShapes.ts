/**
 * Graph inputs with their dims pinned to what will be fed. onnxruntime plans a session's memory
 * from the shapes it can infer; where a model declares symbolic dims (PaddleOCR's height and
 * width), creating a session costs up to ~0.8 ms per QuantizeLinear/DequantizeLinear node: the
 * classifier's comparison model took 930 ms, and 140 ms with the same model's spatial dims known.
 * The batch dim is left as declared (the last batch is smaller).
 *
 * Only declared dims are pinned, and only where the declared rank equals the pin's: a pin never
 * makes onnxruntime accept or refuse a feed it would not have otherwise, beyond the shapes the
 * analysis feeds anyway.
 */
import { clone, create } from '@bufbuild/protobuf';
import { type ModelProto, TensorShapeProto_DimensionSchema, type ValueInfoProto, ValueInfoProtoSchema } from 'onnx-buf';

/** Per input name, the dims it will be fed with; null leaves that dim as declared. */
export type DimPins = ReadonlyMap<string, readonly (number | null)[]>;

/** `model` with the pinned inputs' dims set (a shallow copy: the caller's model is unchanged). */
export function withPinnedInputs(model: ModelProto, pins: DimPins): ModelProto {
  const g = model.graph;
  if (!g || pins.size === 0) return model;
  let changed = false;
  const input = g.input.map((vi) => {
    const pinned = pinOne(vi, pins.get(vi.name));
    if (pinned !== vi) changed = true;
    return pinned;
  });
  return changed ? { ...model, graph: { ...g, input } } : model;
}

function pinOne(vi: ValueInfoProto, pin: readonly (number | null)[] | undefined): ValueInfoProto {
  const t = vi.type?.value;
  if (!pin || t?.case !== 'tensorType' || !t.value.shape) return vi;
  const dims = t.value.shape.dim;
  if (dims.length !== pin.length) return vi;
  // A declared number stays (a different pin would be a feed onnxruntime refuses anyway).
  const fixes = pin.flatMap((v, i) => (v === null || dims[i].value.case === 'dimValue' ? [] : [i]));
  if (fixes.length === 0) return vi;
  const out = clone(ValueInfoProtoSchema, vi);
  const ot = out.type?.value;
  if (ot?.case !== 'tensorType' || !ot.value.shape) return vi;
  for (const i of fixes) ot.value.shape.dim[i] = create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: BigInt(pin[i]!) } });
  return out;
}
