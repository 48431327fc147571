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

/**
 * What this process still holds once the garbage is collected (JS heap and array buffers), in MB;
 * needs node --expose-gc. Flat while the peak grows with the data: the growth is garbage awaiting
 * collection and memory the allocator kept, not data kept per sample.
 */
export function liveMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('liveMb needs node --expose-gc');
  gc();
  gc();
  const u = process.memoryUsage();
  return (u.heapUsed + u.arrayBuffers) / 2 ** 20;
}
