/**
 * Non-finite numbers in a report as it reaches the user. JSON has no NaN: QuantLens writes NaN as
 * null and infinities as "Infinity" strings (protocol/report.ts reportReplacer). So a null where
 * the schema allows none is a NaN, and an infinity is legitimate only where the report documents
 * one: an SQNR (+inf for identical signals, -inf for a zero reference), a point of the KL curve
 * (P has mass where the candidate Q has none: TensorRT's entropy method skips such thresholds),
 * or a sweep entry that records its own error.
 */

/** Keys the report schema declares `| null` (protocol/report.ts, engine/integer/cnnGraph.ts). */
const NULLABLE = new Set([
  'degenerate', 'chosen', 'integerDiff', 'integerKernel', 'deployedKernel', 'allButThis', 'sensitivity', 'top1', 'dropPoints',
  'float', 'sensitivityInfo', 'floatTop1',
]);

const INFINITE_OK = (path: string, key: string) => /sqnr/i.test(key) || /klCurve\[\d+\]\.value$/.test(path);

/** Words of a JavaScript bug (not a user error) in a message. */
export const BUG_WORDS = /is not a function|Cannot read propert|Cannot set propert|is not defined|undefined is not|Maximum call stack|is not iterable|Invalid array length|RangeError|TypeError|ReferenceError|\bat .+\.(ts|js):\d+/;

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
      // A sweep entry that records its own error carries placeholders (Infinity drop); a bug must not hide there.
      const err = typeof o.error === 'string' ? o.error : undefined;
      if (err && BUG_WORDS.test(err)) issues.push({ path: `${at}.error`, what: `a bug swallowed as an entry error: ${err.slice(0, 200)}` });
      for (const [k, x] of Object.entries(o)) walk(x, at ? `${at}.${k}` : k, k, errored || err !== undefined);
    }
  };
  walk(value, '', '', false);
  return issues;
}
