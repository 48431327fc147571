/**
 * What a fuzz case is and what can come of it. A case is pure data: the files to lay out, the
 * command (CLI arguments or one engine request) and what a correct QuantLens must do with it.
 * Generators build cases from (seed, index) alone, so any case can be rebuilt and rerun.
 */

/** One entry of a case folder, laid out before the run (paths relative to the case folder). */
export type FileSpec =
  | { path: string; kind: 'file'; bytes: Uint8Array }
  | { path: string; kind: 'dir' }
  /** `target` may use {case} (the case folder) and {outside} (a folder beside it, outside the workspace). */
  | { path: string; kind: 'symlink'; target: string }
  | { path: string; kind: 'fifo' };

/**
 * What a correct QuantLens does with the case:
 *  - refuse: a clean error (exit 2 / an error response), never a result;
 *  - accept: a result with finite numbers (the input is valid);
 *  - either: a clean error or a finite result (the mutation may or may not break the input).
 */
export type Expectation = 'refuse' | 'accept' | 'either';

interface CaseBase {
  /** Generator name (the table's row; `--only` selects by it). */
  generator: string;
  /** Index within the generator: (seed, generator, index) rebuilds the case. */
  index: number;
  /** What was done, in a few words ("truncate at 1234 of 105431 bytes"). */
  title: string;
  expect: Expectation;
  /** Files laid out in the case folder. */
  files: FileSpec[];
  /** Files (relative) the run may change (outputs replaced with --force); every other existing file must keep its bytes. */
  mayChange?: string[];
  /** Paths (relative, may use {outside}) that must not exist after the run (outputs that were refused). */
  mustNotExist?: string[];
  /** Words of which a clean error must name at least one (file names, options); default from the command. */
  mentions?: string[];
}

/** The built CLI run in the case folder: `node bin/quantlens.js ...args`. */
export interface CliCase extends CaseBase {
  kind: 'cli';
  args: string[];
  /** The JSON file (relative) to check for non-finite numbers after a success. */
  report?: string;
}

/**
 * One request to the long-lived engine server. `params` is JSON in which the strings "{case}" and
 * "{outside}" (also inside longer strings) become the case folder (in the workspace) and a folder
 * outside the workspace.
 */
export interface ServerCase extends CaseBase {
  kind: 'server';
  method: string;
  params: unknown;
}

export type FuzzCase = CliCase | ServerCase;

export type FailureKind = 'crash' | 'hang' | 'memory' | 'silent-garbage' | 'changed-input' | 'unclear-error' | 'refused-valid';

export type Outcome = { kind: 'clean-error'; detail: string } | { kind: 'success'; detail: string } | { kind: 'failure'; failure: FailureKind; detail: string };

/** What a run observed, before classification. */
export interface Observation {
  /** Exit code (CLI) or null when killed by a signal / the server did not answer. */
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Peak resident memory of the child (CLI) or the engine server during the request, in bytes. */
  peakRssBytes: number;
  memoryKilled: boolean;
  stdout: string;
  stderr: string;
  /** Server: the error response, if any. */
  response?: { error?: { code: number; message: string }; result?: unknown };
  /** Server: did the engine process die during or right after the request. */
  serverDied?: boolean;
  /** Parsed JSON to check for non-finite numbers (CLI report file / server result), or a parse error. */
  json?: { value?: unknown; error?: string };
  /** Files whose bytes changed, or that exist but must not. */
  changed: string[];
  ms: number;
}

export interface CaseResult {
  c: FuzzCase;
  outcome: Outcome;
  obs: Observation;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** A case as a generator makes it; the suite adds the generator name and index. */
export type CaseDraft = DistributiveOmit<FuzzCase, 'generator' | 'index'>;

export interface Generator {
  name: string;
  /** The group in the summary table: models, data, paths and options, server. */
  group: 'models' | 'data' | 'paths and options' | 'server';
  /** Share of the default case count. */
  weight: number;
  /** Build case `index` from its own random stream (`index` also cycles through the mutation kinds). */
  make(r: import('./random').Rng, index: number): CaseDraft;
}
