/**
 * Run one CLI case as a user would: the built CLI (bin/quantlens.js) as a child process in the
 * case folder, killed after the time limit or when its resident memory passes the limit. Peak
 * memory is polled from /proc and recorded exactly by the child itself at exit (peakRss.cjs).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MEMORY_LIMIT_BYTES } from './classify';
import { ROOT } from './fixtures';
import type { CaseDirs } from './layout';
import type { CliCase, Observation } from './types';

export const CLI = path.join(ROOT, 'bin/quantlens.js');
const PEAK_HOOK = path.join(__dirname, 'peakRss.cjs');
const OUTPUT_CAP = 1 << 20;

export interface Limits {
  timeoutMs: number;
  memoryBytes: number;
}

export const DEFAULT_LIMITS: Limits = { timeoutMs: 60_000, memoryBytes: MEMORY_LIMIT_BYTES };

/** Resident memory now and at its peak (bytes) of a live process, from /proc. */
export function procMemory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** The command a user would type to reproduce the run (in the case folder). */
export function cliCommand(c: CliCase): string {
  return `node ${CLI} ${c.args.map(shellQuote).join(' ')}`;
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function runCli(c: CliCase, d: CaseDirs, limits: Limits = DEFAULT_LIMITS): Promise<Omit<Observation, 'changed'>> {
  const rssFile = path.join(d.outside, '.peak-rss');
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--require', PEAK_HOOK, CLI, ...c.args], {
      cwd: d.dir,
      env: { ...process.env, QUANTLENS_FUZZ_RSS_FILE: rssFile, QUANTLENS_PROGRESS: '0', NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => void (stdout.length < OUTPUT_CAP && (stdout += b.toString())));
    child.stderr.on('data', (b: Buffer) => void (stderr.length < OUTPUT_CAP && (stderr += b.toString())));
    let peak = 0;
    let memoryKilled = false;
    let timedOut = false;
    const poll = setInterval(() => {
      const m = child.pid ? procMemory(child.pid) : undefined;
      if (!m) return;
      peak = Math.max(peak, m.hwm, m.rss);
      if (m.rss > limits.memoryBytes) {
        memoryKilled = true;
        child.kill('SIGKILL');
      }
    }, 50);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limits.timeoutMs);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      try {
        peak = Math.max(peak, Number(fs.readFileSync(rssFile, 'utf8')) || 0);
        fs.rmSync(rssFile, { force: true });
      } catch {
        /* killed before exit: the polled peak stands */
      }
      const finished = code === 0 || code === 1;
      // --json prints the report on stdout (read through a pipe, as `quantlens ... --json | jq` would)
      const json = !finished ? undefined : c.args.includes('--json') ? parseJson(stdout) : c.report ? readJson(path.resolve(d.dir, c.report)) : undefined;
      resolve({
        exitCode: code,
        signal: timedOut || memoryKilled ? null : signal,
        timedOut,
        peakRssBytes: peak,
        memoryKilled,
        stdout,
        stderr,
        json,
        ms: Date.now() - t0,
      });
    });
  });
}

function parseJson(text: string): { value?: unknown; error?: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: `stdout is not JSON (${text.length} bytes): ${(e as Error).message.split('\n')[0]}` };
  }
}

function readJson(file: string): { value?: unknown; error?: string } {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return { error: 'not a regular file' };
    if (st.size > 256 * 1024 * 1024) return { error: `${st.size} bytes` };
    return { value: JSON.parse(fs.readFileSync(file, 'utf8')) };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}
