/**
 * The CPU the integer kernels ran on. onnxruntime's x86 int8 kernels without VNNI sum u8 x s8
 * pairs in int16 (VPMADDUBSW) and can saturate; with AVX-512 VNNI or AVX-VNNI they cannot. Whether
 * that hazard is real depends on the DEPLOYMENT CPU, which the user can name (`--target-cpu`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Platform } from '../../protocol/report';

let cached: { cpu: string; vnni: boolean } | undefined;

function probe(): { cpu: string; vnni: boolean } {
  if (cached) return cached;
  let flags = '';
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? '';
  } catch {
    /* not Linux: no flags to read; VNNI unknown, treated as absent */
  }
  const set = new Set(flags.trim().split(/\s+/));
  cached = { cpu: os.cpus()[0]?.model ?? 'unknown', vnni: set.has('avx512_vnni') || set.has('avx_vnni') };
  return cached;
}

export type TargetCpu = Platform['target'];

/** This machine, and the deployment CPU the diagnosis reasons about. */
export function platform(target: TargetCpu = 'this'): Platform {
  const p = probe();
  return { arch: process.arch, cpu: p.cpu, vnni: p.vnni, target };
}

/** Can u8 x s8 pair sums saturate on the target? Declared once in protocol/ (the webview decides with it too). */
export { u8s8Hazard } from '../../protocol/platform';
