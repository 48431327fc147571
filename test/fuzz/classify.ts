/**
 * Each run ends as exactly one of: a clean error, a success with finite numbers, or a failure
 * (crash, hang, memory, silent garbage, changed input, unclear error, refused valid input).
 * Pure: works on what the runners observed.
 */
import * as path from 'node:path';
import { BUG_WORDS, nonFinite } from './finite';
import type { FuzzCase, Observation, Outcome } from './types';

export const MEMORY_LIMIT_BYTES = 2 * 1024 ** 3;

const GARBLED = /\bNaN\b|\bnan\b|\bundefined\b|\[object Object\]/;

const fail = (failure: Extract<Outcome, { kind: 'failure' }>['failure'], detail: string): Outcome => ({ kind: 'failure', failure, detail });

/** What a clean error must name at least one of: the files and options of the command. */
export function defaultMentions(c: FuzzCase): string[] {
  if (c.kind === 'server') {
    const out: string[] = ['params'];
    const p = c.params;
    if (p && typeof p === 'object' && !Array.isArray(p)) {
      for (const [k, v] of Object.entries(p)) {
        out.push(k);
        if (typeof v === 'string' && k.endsWith('Path')) out.push(path.basename(v));
      }
    }
    return out;
  }
  const out: string[] = [];
  c.args.forEach((a, i) => {
    if (a.startsWith('--')) out.push(a);
    // files: positional arguments (the models) and option values that are not plain numbers
    else if (i > 0 && a.trim() && !/^[-+0-9.e]+$/i.test(a.trim())) out.push(path.basename(a) || a);
  });
  return out;
}

/** A message a user can act on: one line, no stack trace, naming a file or option of the case. */
function unclear(message: string, mentions: string[]): string | undefined {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length !== 1) return `${lines.length} lines`;
  if (/\n\s+at |^\s*at \S+ \(|:\d+:\d+\)/m.test(message)) return 'a stack trace';
  if (!mentions.some((m) => m && lines[0].includes(m))) return `names none of ${mentions.map((m) => JSON.stringify(m)).join(', ')}`;
  return undefined;
}

/** gate / mixed-precision exit 1 when the budget is not met: a result, not a crash. */
function budgetNotMet(c: FuzzCase, o: Observation): boolean {
  if (c.kind !== 'cli' || o.exitCode !== 1) return false;
  return (
    (c.args[0] === 'gate' && /^quantlens gate: (FAIL|cannot tell): /.test(o.stderr.trim())) ||
    (c.args[0] === 'mixed-precision' && /NOT met even with/.test(o.stdout))
  );
}

export function classify(c: FuzzCase, o: Observation): Outcome {
  if (o.changed.length) return fail('changed-input', o.changed.join('; '));
  if (o.timedOut) return fail('hang', `no answer within the time limit (${Math.round(o.ms / 1000)} s)`);
  if (o.memoryKilled || o.peakRssBytes > MEMORY_LIMIT_BYTES) return fail('memory', `peak RSS ${(o.peakRssBytes / 1024 ** 3).toFixed(2)} GB`);
  return c.kind === 'cli' ? classifyCli(c, o) : classifyServer(c, o);
}

function classifyCli(c: Extract<FuzzCase, { kind: 'cli' }>, o: Observation): Outcome {
  const err = o.stderr.trim();
  if (o.signal) return fail('crash', `killed by ${o.signal}; stderr: ${err.slice(0, 300)}`);
  if (/internal error/i.test(err)) return fail('crash', err.split('\n')[0].slice(0, 400));
  const mentions = c.mentions ?? defaultMentions(c);
  if (o.exitCode === 2) {
    const why = unclear(err, mentions);
    if (why) return fail('unclear-error', `${why}: ${err.slice(0, 400)}`);
    if (c.expect === 'accept') return fail('refused-valid', err);
    return { kind: 'clean-error', detail: err };
  }
  if (o.exitCode !== 0 && !budgetNotMet(c, o)) return fail('crash', `exit ${o.exitCode}; stderr: ${err.slice(0, 400)}`);
  // exit 0 (or a budget verdict)
  if (c.expect === 'refuse')
    return fail(
      'silent-garbage',
      `exit ${o.exitCode} on an input that must be refused; stdout: ${o.stdout.trim().split('\n').slice(0, 3).join(' | ').slice(0, 300)}`,
    );
  const json = c.args.includes('--json');
  // A number printed as NaN or undefined (warning lines may speak of "NaN values" in words)
  const garbled = json ? undefined : o.stdout.split('\n').find((l) => !/warning/i.test(l) && GARBLED.test(l));
  if (garbled !== undefined) return fail('silent-garbage', `the summary shows ${GARBLED.exec(garbled)![0]}: ${garbled.trim().slice(0, 200)}`);
  if (c.report || json) {
    if (!o.json || o.json.error)
      return fail('silent-garbage', `exit 0 but the report ${json ? 'on stdout' : c.report} is unreadable: ${o.json?.error ?? 'missing'}`);
    const issues = nonFinite(o.json.value);
    if (issues.length)
      return fail(
        'silent-garbage',
        `non-finite numbers in the report: ${issues
          .slice(0, 5)
          .map((i) => `${i.path} = ${i.what}`)
          .join('; ')}`,
      );
  }
  return { kind: 'success', detail: o.exitCode === 0 ? 'exit 0, finite numbers' : 'budget verdict (exit 1), finite numbers' };
}

/** JSON-RPC codes of a request the engine turned down on purpose. */
const CLEAN_CODES = new Set([1, -32602, -32601, -32800]);

function classifyServer(c: Extract<FuzzCase, { kind: 'server' }>, o: Observation): Outcome {
  if (o.serverDied) return fail('crash', `the engine process died: ${o.stderr.slice(-400)}`);
  const e = o.response?.error;
  if (e) {
    if (!CLEAN_CODES.has(e.code) || /internal error/i.test(e.message) || BUG_WORDS.test(e.message)) {
      return fail('crash', `error ${e.code}: ${e.message.slice(0, 400)}`);
    }
    const why = unclear(e.message, c.mentions ?? defaultMentions(c));
    if (why) return fail('unclear-error', `${why}: ${e.message.slice(0, 400)}`);
    if (c.expect === 'accept') return fail('refused-valid', e.message);
    return { kind: 'clean-error', detail: `${e.code}: ${e.message}` };
  }
  if (c.expect === 'refuse') return fail('silent-garbage', `a result for a request that must be refused: ${JSON.stringify(o.response?.result)?.slice(0, 200)}`);
  const issues = nonFinite(o.response?.result ?? null);
  if (issues.length && o.response?.result !== null)
    return fail(
      'silent-garbage',
      `non-finite numbers in the result: ${issues
        .slice(0, 5)
        .map((i) => `${i.path} = ${i.what}`)
        .join('; ')}`,
    );
  return { kind: 'success', detail: 'result with finite numbers' };
}
