/**
 * What a fuzz run tells the reader: a table of outcomes per generator (Markdown, for the README)
 * and a folder holding each failing case with a one-line command that reproduces it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { caseDirs } from './layout';
import { cliCommand, shellQuote } from './runCli';
import { GENERATORS } from './suite';
import type { CaseResult, FailureKind, FuzzCase } from './types';

const FAILURES: FailureKind[] = ['crash', 'hang', 'memory', 'silent-garbage', 'changed-input', 'unclear-error', 'refused-valid'];

/** The command that reruns one case through the fuzz runner. */
export function reproCommand(c: FuzzCase, seed: number): string {
  return `node --import tsx test/fuzz/run.ts --seed ${seed} --only ${c.generator} --case ${c.index}`;
}

export function summaryTable(results: CaseResult[]): string {
  const head = ['group', 'generator', 'cases', 'clean error', 'success', ...FAILURES];
  const rows: string[][] = [];
  const total = new Array(head.length - 2).fill(0);
  for (const g of GENERATORS) {
    const rs = results.filter((r) => r.c.generator === g.name);
    if (!rs.length) continue;
    const counts = [
      rs.length,
      rs.filter((r) => r.outcome.kind === 'clean-error').length,
      rs.filter((r) => r.outcome.kind === 'success').length,
      ...FAILURES.map((f) => rs.filter((r) => r.outcome.kind === 'failure' && r.outcome.failure === f).length),
    ];
    counts.forEach((n, i) => (total[i] += n));
    rows.push([g.group, g.name, ...counts.map(String)]);
  }
  rows.push(['**all**', '', ...total.map((n) => `**${n}**`)]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (i < 2 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

export function timingLine(results: CaseResult[], wallMs: number): string {
  const ms = results.map((r) => r.obs.ms).sort((a, b) => a - b);
  const peak = Math.max(0, ...results.map((r) => r.obs.peakRssBytes));
  return `${results.length} cases in ${(wallMs / 1000).toFixed(0)} s; per case median ${ms[Math.floor(ms.length / 2)] ?? 0} ms, slowest ${ms[ms.length - 1] ?? 0} ms; highest peak RSS ${(peak / 1024 ** 2).toFixed(0)} MB`;
}

/**
 * Copy each failing case (as laid out, with the files outside its folder) into `dir`, with
 * repro.txt, and list them all in dir/failures.md. Returns the list's path.
 */
export function writeFailures(results: CaseResult[], root: string, dir: string, seed: number): string | undefined {
  const failed = results.filter((r) => r.outcome.kind === 'failure');
  fs.rmSync(dir, { recursive: true, force: true });
  if (!failed.length) return undefined;
  fs.mkdirSync(dir, { recursive: true });
  const lines: string[] = [`# ${failed.length} failing fuzz case(s), seed ${seed}`, ''];
  for (const r of failed) {
    const o = r.outcome as Extract<CaseResult['outcome'], { kind: 'failure' }>;
    const d = caseDirs(root, r.c);
    const dest = path.join(dir, d.name);
    fs.mkdirSync(dest, { recursive: true });
    // cp -a keeps symlinks and FIFOs as they are (copying a FIFO's content would hang)
    for (const [from, to] of [
      [d.dir, 'case'],
      [d.outside, 'outside'],
    ]) {
      if (fs.existsSync(from)) execFileSync('cp', ['-a', from, path.join(dest, to)]);
    }
    const direct =
      r.c.kind === 'cli'
        ? `cd ${shellQuote(path.join(dest, 'case'))} && ${cliCommand(r.c)}`
        : `engine request ${r.c.method} ${JSON.stringify(r.c.params).slice(0, 2000)}`;
    fs.writeFileSync(
      path.join(dest, 'repro.txt'),
      [
        reproCommand(r.c, seed),
        `# ${r.c.title}`,
        `# expected: ${r.c.expect}; got: ${o.failure}: ${o.detail}`,
        `# by hand: ${direct}`,
        '# stderr:',
        r.obs.stderr,
        '',
      ].join('\n'),
    );
    lines.push(`- **${o.failure}** ${d.name}: ${r.c.title}  \n  ${o.detail.split('\n')[0].slice(0, 300)}  \n  \`${reproCommand(r.c, seed)}\``);
  }
  const list = path.join(dir, 'failures.md');
  fs.writeFileSync(list, lines.join('\n') + '\n');
  return list;
}
