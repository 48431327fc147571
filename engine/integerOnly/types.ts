/**
 * Shared types of the integer-only executor: steps, the run-time environment, the op table's
 * entry shape, and what a run reports.
 */
import type { ErrorAccumulator } from '../analysis/metrics';
import type { Value } from './values';

/** Counters a run accumulates (over all batches). */
export interface RunStats {
  /** Exact int32 accumulations (Conv/Gemm/MatMul) whose value left int32 and wrapped. */
  overflow: number;
  /** Codes clamped to their grid at a requantization. */
  saturated: number;
  /** Codes produced where `saturated` is counted (its denominator). */
  codes: number;
  /** Per I-BERT kernel node: its output against the float op on the same dequantized input. */
  kernelAcc: Map<string, ErrorAccumulator> | null;
}

export function newRunStats(measureKernels = true): RunStats {
  return { overflow: 0, saturated: 0, codes: 0, kernelAcc: measureKernels ? new Map() : null };
}

/** Values of one batch, by tensor name. */
export interface Env {
  values: Map<string, Value>;
  stats: RunStats;
}

/** One compiled unit of work. */
export interface Step {
  node: string;
  op: string;
  /** True for a float fallback (the node ran in onnxruntime between dequantize and quantize). */
  float: boolean;
  run(env: Env): void | Promise<void>;
}

/** A lowering's refusal: the next lowering for the op is tried, then the float fallback. */
export interface Decline {
  decline: string;
}

export function decline(reason: string): Decline {
  return { decline: reason };
}

export function isDecline(x: unknown): x is Decline {
  return typeof x === 'object' && x !== null && 'decline' in x;
}

export type IBertKernel = 'i-GELU' | 'i-Softmax' | 'i-LayerNorm';

/** A node that ran in float (onnxruntime) between a dequantize and a quantize. */
export interface FloatOp {
  node: string;
  op: string;
  reason: string;
}

export interface KernelError {
  /** The ONNX node the kernel replaces (the Erf node for a matched GELU). */
  node: string;
  kernel: IBertKernel;
  /** 10 log10(sum ref^2 / sum (ref - kernel)^2), ref = the float op on the kernel's dequantized input. */
  sqnrDb: number;
  /** Largest |ref - kernel| (real units). */
  maxAbsError: number;
  /** Elements compared. */
  count: number;
}
