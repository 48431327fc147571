/**
 * `npm run fuzz`: seeded fuzz cases against the built CLI and the engine server.
 *
 *   node --import tsx test/fuzz/run.ts [--seed N] [--count N] [--only gen1,gen2] [--case I] [--jobs 2]
 *
 * Prints a table of outcomes per generator, writes failing cases (each with a one-line
 * reproduction command) to test-artifacts/fuzz/failures, and exits 1 on any failure.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ROOT } from './fixtures';
import { CLI } from './runCli';
import { type CaseRef, DEFAULT_COUNT, DEFAULT_SEED, buildCase, caseRefs, runCases, selectGenerators } from './suite';
import { reproCommand, summaryTable, timingLine, writeFailures } from './summary';

function nonNegativeInt(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(v);
}

function positiveInt(v: string): number {
  const n = nonNegativeInt(v);
  if (n === 0) throw new InvalidArgumentError('must be at least 1');
  return n;
}

async function main(): Promise<number> {
  const program = new Command('fuzz')
    .description('seeded fuzz cases against the built QuantLens CLI and engine server')
    .option('--seed <n>', 'seed of every case', nonNegativeInt, DEFAULT_SEED)
    .option('--count <n>', 'number of cases, shared among the generators by weight', positiveInt, DEFAULT_COUNT)
    .option('--only <generators>', 'comma-separated generator or group names (models, data, server, ...)')
    .option('--case <index>', 'run only case INDEX of the one generator named by --only', nonNegativeInt)
    .option('--jobs <n>', 'cases run at once', positiveInt, 2)
    .option('--timeout <seconds>', 'time limit of one case', positiveInt, 60)
    .option('--out <dir>', 'where failing cases are written', path.join(ROOT, 'test-artifacts/fuzz'))
    .option('--match <regexp>', 'run only the cases whose title matches')
    .option('--keep', 'keep every case folder (printed at the end)')
    .option('--list', 'print the cases without running them')
    .parse();
  const o = program.opts<{
    seed: number;
    count: number;
    only?: string;
    case?: number;
    jobs: number;
    timeout: number;
    out: string;
    match?: string;
    keep?: boolean;
    list?: boolean;
  }>();

  let cases: CaseRef[];
  if (o.case !== undefined) {
    const gens = selectGenerators(o.only);
    if (gens.length !== 1) program.error('--case needs --only naming exactly one generator');
    cases = [{ generator: gens[0], seed: o.seed, index: o.case }];
  } else {
    cases = caseRefs(o.seed, o.count, o.only);
  }
  if (o.match) {
    const re = new RegExp(o.match, 'i');
    cases = cases.filter((ref) => re.test(buildCase(ref.generator, ref.seed, ref.index).title));
  }
  if (o.list) {
    for (const ref of cases) {
      const c = buildCase(ref.generator, ref.seed, ref.index);
      process.stdout.write(`${c.generator}#${c.index} [${c.expect}] ${c.title}\n`);
    }
    return 0;
  }
  if (!fs.existsSync(CLI) || !fs.existsSync(path.join(ROOT, 'out/cli.js')) || !fs.existsSync(path.join(ROOT, 'out/server.js'))) {
    program.error('build QuantLens first: node scripts/build.mjs');
  }

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fuzz-'));
  const t0 = Date.now();
  const results = await runCases(cases, {
    jobs: o.jobs,
    root,
    keep: o.keep,
    limits: { timeoutMs: o.timeout * 1000, memoryBytes: 2 * 1024 ** 3 },
    onResult: (r, done, total) => {
      if (r.outcome.kind === 'failure')
        process.stderr.write(`FAIL ${r.outcome.failure} ${r.c.generator}#${r.c.index}: ${r.c.title}\n     ${r.outcome.detail.split('\n')[0].slice(0, 300)}\n`);
      if (cases.length === 1)
        process.stderr.write(
          `${r.outcome.kind}: ${r.outcome.kind === 'failure' ? r.outcome.failure : ''} ${r.outcome.detail}\n--- stderr\n${r.obs.stderr}\n--- stdout\n${r.obs.stdout.slice(0, 2000)}\n`,
        );
      if (done % 50 === 0 || done === total) process.stderr.write(`${done}/${total} cases\n`);
    },
  });
  const wall = Date.now() - t0;
  const failed = results.filter((r) => r.outcome.kind === 'failure');
  process.stdout.write(`\nQuantLens fuzz, seed ${o.seed}\n\n${summaryTable(results)}\n\n${timingLine(results, wall)}\n`);
  const list = writeFailures(results, root, path.join(o.out, 'failures'), o.seed);
  if (list) {
    process.stdout.write(`\n${failed.length} failure(s), each with its reproduction command in ${list}:\n`);
    for (const r of failed.slice(0, 30))
      process.stdout.write(`  ${reproCommand(r.c, o.seed)}   # ${r.outcome.kind === 'failure' ? r.outcome.failure : ''}: ${r.c.title.slice(0, 80)}\n`);
  }
  if (o.keep) process.stdout.write(`\ncase folders kept in ${root}\n`);
  else fs.rmSync(root, { recursive: true, force: true });
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`fuzz: ${(e as Error).stack ?? e}\n`);
    process.exit(2);
  },
);
