/**
 * The fuzz suite: which generators exist, how a case count is shared among them, and how the
 * cases run (up to `jobs` CLI children at once; server cases one after another against one
 * engine, taking one of the slots while there are any).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { classify } from './classify';
import { calibTables } from './gen/calibTable';
import { deployedModels } from './gen/deployed';
import { modelExternal } from './gen/externalData';
import { modelFlip, modelTruncate } from './gen/modelBytes';
import { modelProto } from './gen/modelProto';
import { npyData } from './gen/npyData';
import { metricFiles } from './gen/metric';
import { labelData, npzData } from './gen/npzData';
import { options } from './gen/options';
import { inputPaths, outputPaths } from './gen/paths';
import { server } from './gen/server';
import { caseDirs, changedFiles, materialize, snapshot } from './layout';
import { caseRng } from './random';
import { DEFAULT_LIMITS, type Limits, runCli } from './runCli';
import { EngineServer } from './runServer';
import type { CaseResult, FuzzCase, Generator, Observation } from './types';

export const GENERATORS: Generator[] = [
  modelTruncate,
  modelFlip,
  modelProto,
  modelExternal,
  deployedModels,
  npyData,
  npzData,
  labelData,
  outputPaths,
  inputPaths,
  options,
  calibTables,
  metricFiles,
  server,
];

export const DEFAULT_SEED = 20250101;
export const DEFAULT_COUNT = 1000;

/** Generator names selected by `only` (names or group names, comma separated; empty: all). */
export function selectGenerators(only?: string): Generator[] {
  if (!only) return GENERATORS;
  const want = only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const picked = GENERATORS.filter((g) => want.includes(g.name) || want.includes(g.group) || want.some((w) => g.name.startsWith(`${w}-`)));
  const unknown = want.filter((w) => !GENERATORS.some((g) => g.name === w || g.group === w || g.name.startsWith(`${w}-`)));
  if (unknown.length) throw new Error(`unknown generator(s) ${unknown.join(', ')}; known: ${GENERATORS.map((g) => g.name).join(', ')}`);
  return picked;
}

/** `count` cases shared among `gens` by weight (largest remainders get the leftovers). */
export function shareCounts(gens: Generator[], count: number): Map<Generator, number> {
  const total = gens.reduce((a, g) => a + g.weight, 0);
  const exact = gens.map((g) => (count * g.weight) / total);
  const n = exact.map(Math.floor);
  let left = count - n.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    n[i]++;
  }
  return new Map(gens.map((g, i) => [g, n[i]]));
}

/** Case `index` of generator `g` under `seed`: the same case on every machine and every run. */
export function buildCase(g: Generator, seed: number, index: number): FuzzCase {
  const draft = g.make(caseRng(seed, g.name, index), index);
  return { ...draft, generator: g.name, index } as FuzzCase;
}

/** A case not built yet (cases are built when they run: some hold megabytes). */
export interface CaseRef {
  generator: Generator;
  seed: number;
  index: number;
}

export function caseRefs(seed: number, count: number, only?: string): CaseRef[] {
  const refs: CaseRef[] = [];
  for (const [generator, n] of shareCounts(selectGenerators(only), count)) for (let index = 0; index < n; index++) refs.push({ generator, seed, index });
  return refs;
}

export interface RunOptions {
  jobs: number;
  limits?: Limits;
  /** Folder the cases are laid out in (a fresh temp folder by default); removed afterwards unless kept. */
  root?: string;
  keep?: boolean;
  onResult?: (r: CaseResult, done: number, total: number) => void;
}

async function runOne(ref: CaseRef, root: string, engine: () => EngineServer, limits: Limits): Promise<CaseResult> {
  const c = buildCase(ref.generator, ref.seed, ref.index);
  const d = caseDirs(root, c);
  materialize(c, d);
  const before = snapshot(d);
  let obs: Observation;
  try {
    const raw = c.kind === 'cli' ? await runCli(c, d, limits) : await engine().run(c, d);
    obs = { ...raw, changed: changedFiles(c, d, before) };
  } catch (e) {
    // The runner itself failed: report it as a crash of the case rather than stopping the suite.
    obs = {
      exitCode: null,
      signal: null,
      timedOut: false,
      peakRssBytes: 0,
      memoryKilled: false,
      stdout: '',
      stderr: `fuzz runner error: ${(e as Error).stack}`,
      changed: [],
      ms: 0,
      serverDied: true,
    };
  }
  // The files' bytes are not needed any more (a failing case's folder stays on disk).
  return { c: { ...c, files: [] }, outcome: classify(c, obs), obs };
}

export async function runCases(cases: CaseRef[], opts: RunOptions): Promise<CaseResult[]> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const root = opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fuzz-'));
  const wsRoot = path.join(root, 'ws');
  fs.mkdirSync(wsRoot, { recursive: true });
  let server: EngineServer | undefined;
  const engine = () => (server ??= new EngineServer(wsRoot, limits));
  const results: CaseResult[] = new Array(cases.length);
  let done = 0;
  const finish = (i: number, r: CaseResult) => {
    results[i] = r;
    opts.onResult?.(r, ++done, cases.length);
    // Passing cases leave nothing behind; failing ones are copied out by the caller from `results`.
    if (!opts.keep && r.outcome.kind !== 'failure') {
      const d = caseDirs(root, r.c);
      fs.rmSync(d.dir, { recursive: true, force: true });
      fs.rmSync(d.outside, { recursive: true, force: true });
    }
  };
  const isServer = (c: CaseRef) => c.generator.group === 'server';
  const cli = cases.map((c, i) => [c, i] as const).filter(([c]) => !isServer(c));
  const srv = cases.map((c, i) => [c, i] as const).filter(([c]) => isServer(c));
  let nextCli = 0;
  let nextSrv = 0;
  const cliLane = async () => {
    while (nextCli < cli.length) {
      const [c, i] = cli[nextCli++];
      finish(i, await runOne(c, root, engine, limits));
    }
  };
  // The server lane runs its cases in order, then helps with CLI cases.
  const serverLane = async () => {
    while (nextSrv < srv.length) {
      const [c, i] = srv[nextSrv++];
      finish(i, await runOne(c, root, engine, limits));
    }
    server?.stop();
    await cliLane();
  };
  const lanes: Promise<void>[] = [];
  const jobs = Math.max(1, opts.jobs);
  if (srv.length) lanes.push(serverLane());
  while (lanes.length < jobs) lanes.push(cliLane());
  try {
    await Promise.all(lanes);
  } finally {
    server?.stop();
  }
  return results;
}
