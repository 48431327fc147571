/**
 * The top-level protobuf fields of a message as byte ranges, read from the wire format alone.
 * A truncation that ends exactly between two top-level fields leaves a shorter but well-formed
 * message (the model may still be valid); one that ends inside a field cannot be decoded.
 */

export interface WireField {
  field: number;
  wireType: number;
  start: number;
  end: number;
}

function varint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = at; i < b.length && i < at + 10; i++) {
    v += (b[i] & 0x7f) * mul;
    mul *= 128;
    if (!(b[i] & 0x80)) return [v, i + 1];
  }
  throw new Error('bad varint');
}

/** Top-level fields of a well-formed message. */
export function topLevelFields(b: Uint8Array): WireField[] {
  const out: WireField[] = [];
  let at = 0;
  while (at < b.length) {
    const start = at;
    const [tag, afterTag] = varint(b, at);
    const wireType = tag & 7;
    let end: number;
    if (wireType === 0) end = varint(b, afterTag)[1];
    else if (wireType === 1) end = afterTag + 8;
    else if (wireType === 5) end = afterTag + 4;
    else if (wireType === 2) {
      const [len, afterLen] = varint(b, afterTag);
      end = afterLen + len;
    } else throw new Error(`wire type ${wireType} at ${start}`);
    out.push({ field: Math.floor(tag / 8), wireType, start, end });
    at = end;
  }
  return out;
}

/** Is `length` a cut that falls between two top-level fields (or at the end)? */
export function cutsBetweenFields(b: Uint8Array, length: number): boolean {
  return topLevelFields(b).some((f) => f.end === length) || length === 0;
}
