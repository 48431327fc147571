/**
 * Integer-only reference executor (first part): exact integer kernels for the ONNX quantized
 * operators, the two requantization schemes deployments use, and emulation of the x86 u8s8
 * pairwise int16 saturation. Each module's header explains its choices.
 */
export * from './types';
export * from './requantize';
export { accumulateGemm, type OutputPlacement, type PackedGemm } from './accumulate';
export * from './conv';
export * from './matmul';
export * from './qlinear';
export * from './quantizeLinear';
export { INTEGER_OPS, type NodeRunResult, runIntegerNode } from './onnxNode';
export * from './ibert';
