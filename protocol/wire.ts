/**
 * Reports as JSON: the one encode/decode pair for the values JSON cannot carry. JSON has no
 * Infinity (an exact match's SQNR, an infinite KL divergence): `reportReplacer` writes infinities
 * as the strings "Infinity" / "-Infinity" (NaN as null), and `reviveNumbers` turns those strings
 * back into numbers. Report files, the engine's replies, the webview and the engine's restored
 * report all use this pair.
 */

/** JSON.stringify replacer for reports: JSON has no Infinity, so an exact match's SQNR is written "Infinity". */
export function reportReplacer(_key: string, v: unknown): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? null : v > 0 ? 'Infinity' : '-Infinity';
  return v;
}

/** `value` as it arrives after a trip through JSON (infinities as strings): a deep copy. */
export function onTheWire(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, reportReplacer));
}

// Fields whose string values are names or prose: a tensor literally called "Infinity" must stay a string.
const STRING_KEYS = new Set([
  'name',
  'node',
  'op',
  'output',
  'inputs',
  'integerKernel',
  'path',
  'sha256',
  'producer',
  'source',
  'exclude',
  'warnings',
  'integerEncoding',
  'createdAt',
  'tool',
  'kind',
  'degenerate',
  'method',
  'preset',
  'calibration',
  'placement',
  'code',
  'message',
  'tensor',
  // Sweep and mixed-precision results: configuration labels, error text, kept layers, written paths.
  'label',
  'error',
  'kept',
  'dropBasis',
  'written',
  // Root-cause names of the integer diff.
  'cause',
  // Schema 2: kernels, platform, primary metric and the diagnosis's prose.
  'deployedKernel',
  'arch',
  'cpu',
  'target',
  'description',
  'rationale',
  'lossUnit',
  'unit',
  'metric',
  'verdict',
  'summary',
  'notes',
  'from',
]);

function reviveNumber(value: unknown): unknown {
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  if (value === 'NaN') return NaN;
  return value;
}

/**
 * Converts "Infinity"/"-Infinity"/"NaN" strings back to numbers, in place (the value is a fresh
 * copy from postMessage or JSON.parse, and reports can be several MB), except under the keys that
 * hold names or prose. Returns its argument.
 */
export function reviveNumbers(value: unknown): unknown {
  return walk(value);
}

function walk(value: unknown): unknown {
  if (Array.isArray(value)) {
    // Histograms make up most of a report: skip plain numbers without a call per element.
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number') value[i] = walk(v);
    }
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      if (!STRING_KEYS.has(key)) obj[key] = walk(obj[key]);
    }
    return obj;
  }
  return reviveNumber(value);
}
