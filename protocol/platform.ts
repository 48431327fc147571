/**
 * Whether a CPU-dependent integer hazard can happen on the deployment target. Pure: the engine
 * (terminal summary, diagnosis) and the webview (badges, warnings) decide it with this one function.
 */
import type { Platform } from './report';

/**
 * Can u8 x s8 pair sums saturate int16 on the target? onnxruntime's x86 int8 kernels without VNNI
 * add pairs of products in int16 (VPMADDUBSW); with AVX-512 VNNI or AVX-VNNI they accumulate in
 * int32 and cannot. 'vnni' / 'no-vnni' name the target; 'this' means the machine that ran the
 * analysis. A report without platform information (older reports) is treated as exposed.
 */
export function u8s8Hazard(pl: Platform | undefined | null): boolean {
  if (!pl) return true;
  if (pl.target === 'vnni') return false;
  if (pl.target === 'no-vnni') return true;
  return pl.arch === 'x64' && !pl.vnni;
}
