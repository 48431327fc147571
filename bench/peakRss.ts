/**
 * Peak resident memory of THIS process, in MB. Linux keeps getrusage's maxrss across execve (the
 * kernel folds the parent's high-water mark in at exec), so a child spawned by a large bench
 * process reports the parent's peak through process.resourceUsage(). /proc/self/status's VmHWM
 * belongs to the child's own address space: that is the number we want.
 */
import * as fs from 'node:fs';

export function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall back below
  }
  return process.resourceUsage().maxRSS / 1024;
}
