/**
 * Integer-only execution of a quantized model: one table-driven executor for CNNs and
 * transformers (`run.ts`), the op table (`ops/`), and the float fallback for any other op.
 */
export { type IntegerOnlyOptions, type IntegerOnlyResult, runIntegerOnly } from './run';
export { type Feed, Program, compile } from './program';
export { type CompileSpec, activationTensors } from './context';
export { probeTypes } from './probe';
export type { FloatOp, IBertKernel, KernelError, RunStats } from './types';
export { newRunStats } from './types';
export type { Codes, Raw, Value } from './values';
