/**
 * Rounding modes. ONNX QuantizeLinear rounds half to even; many integer kernels and hardware
 * round half away from zero. The choice shows up as 1-LSB differences between simulation and
 * deployment, so each is named and kept here.
 */

/** Round half to even (banker's rounding), as ONNX QuantizeLinear and numpy.round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // half up (towards +inf)
  // Math.round rounds .5 up; on an exact tie pick the even neighbour instead.
  if (Math.abs(x % 1) === 0.5) return 2 * Math.round(x / 2);
  return r;
}

/** Round half away from zero, as C's round() and gemmlowp's rounding right shift do. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}
