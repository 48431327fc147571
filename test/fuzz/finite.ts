/**
 * Non-finite numbers in a report as it reaches the user. JSON has no NaN: QuantLens writes NaN as
 * null and infinities as "Infinity" strings (protocol/wire.ts reportReplacer). So a null where
 * the schema allows none is a NaN, and an infinity is legitimate only where the report documents
 * one: an SQNR or an interval of SQNRs (+inf for identical signals, -inf for a zero reference), a point of the KL curve
 * (P has mass where the candidate Q has none: TensorRT's entropy method skips such thresholds),
 * or a sweep entry that records its own error.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where the report, sweep, mixed-precision, comparison and integer-only results are declared. */
const SCHEMA_DIRS = ['protocol', 'engine/integer', 'engine/integerOnly'];

function schemaSources(): string[] {
  const root = path.resolve(__dirname, '../..');
  return SCHEMA_DIRS.flatMap((d) =>
    (fs.existsSync(path.join(root, d)) ? fs.readdirSync(path.join(root, d)) : [])
      .filter((f) => f.endsWith('.ts'))
      .map((f) => fs.readFileSync(path.join(root, d, f), 'utf8')),
  );
}

/**
 * Keys the schema declares `| null`, read from its TypeScript declarations so the check follows
 * the schema as it grows: `key: T | null` on one line, and `key: { ... } | null` over several
 * (the key of the brace that `} | null` closes).
 */
export function nullableKeys(sources: string[]): Set<string> {
  const keys = new Set<string>();
  for (const src of sources) {
    // fields only (at a line's start, or after { or ; in an inline object type), not function parameters
    for (const m of src.matchAll(/(?:^|[{;])\s*(?:readonly\s+)?(\w+)\??:[^;\n{}]*\|\s*null\b/gm)) keys.add(m[1]);
    for (const m of src.matchAll(/\}\s*\|\s*null\b/g)) {
      let depth = 0;
      for (let i = m.index; i >= 0; i--) {
        if (src[i] === '}') depth++;
        else if (src[i] === '{' && --depth === 0) {
          const key = /(\w+)\??:\s*$/.exec(src.slice(Math.max(0, i - 200), i));
          if (key) keys.add(key[1]);
          break;
        }
      }
    }
  }
  return keys;
}

const NULLABLE = nullableKeys(schemaSources());

const INFINITE_OK = (path: string, key: string) => /sqnr/i.test(key) || /klCurve\[\d+\]\.value$/.test(path) || /sqnr\w*\.(estimate|low|high)$/i.test(path);

/** Words of a JavaScript bug (not a user error) in a message. */
export const BUG_WORDS =
  /is not a function|Cannot read propert|Cannot set propert|is not defined|undefined is not|Maximum call stack|is not iterable|Invalid array length|RangeError|TypeError|ReferenceError|\bat .+\.(ts|js):\d+/;

export interface FiniteIssue {
  path: string;
  what: string;
}

/** Every NaN (as null), unexpected infinity, or swallowed bug in a report-like JSON value. */
export function nonFinite(value: unknown): FiniteIssue[] {
  const issues: FiniteIssue[] = [];
  const walk = (v: unknown, at: string, key: string, errored: boolean) => {
    if (issues.length > 20) return;
    if (v === null) {
      if (!NULLABLE.has(key) && !errored) issues.push({ path: at, what: 'null (a NaN)' });
      return;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) issues.push({ path: at, what: String(v) });
      return;
    }
    if (v === 'Infinity' || v === '-Infinity' || v === 'NaN') {
      if (!(INFINITE_OK(at, key) && v !== 'NaN') && !errored) issues.push({ path: at, what: v });
      return;
    }
    if (Array.isArray(v)) {
      // an array element is named after its array ("counts" of a histogram)
      v.forEach((x, i) => walk(x, `${at}[${i}]`, key, errored));
      return;
    }
    if (typeof v === 'object') {
      const o = v as Record<string, unknown>;
      // An interval over fewer than two values has no width to estimate: (-inf, inf) is honest there.
      if ('low' in o && 'high' in o && typeof o.n === 'number' && o.n < 2) {
        const { low: _l, high: _h, ...rest } = o;
        walk(rest, at, key, errored);
        return;
      }
      // A sweep entry that records its own error carries placeholders (Infinity drop); a bug must not hide there.
      const err = typeof o.error === 'string' ? o.error : undefined;
      if (err && BUG_WORDS.test(err)) issues.push({ path: `${at}.error`, what: `a bug swallowed as an entry error: ${err.slice(0, 200)}` });
      for (const [k, x] of Object.entries(o)) walk(x, at ? `${at}.${k}` : k, k, errored || err !== undefined);
    }
  };
  walk(value, '', '', false);
  return issues;
}
