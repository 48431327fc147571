// What each per-layer table column shows and how it sorts. Separate from the DOM code so the sort
// order and the cell text can be unit tested.
import { formatDb, formatFixed, formatPercent } from './format';
import { formatRate, integerDiffOf } from './integerDiff';
import type { LayerRow } from './reportData';

export type SortKey = 'index' | 'node' | 'op' | 'kernel' | 'sqnrSim' | 'sqnrInt' | 'cosine' | 'clip' | 'isolated' | 'refOrt' | 'mismatch' | 'maxLsb' | 'rank';

export interface Column {
  key: SortKey;
  label: string;
  /** Header tooltip: the abbreviations need explaining. */
  title: string;
  numeric: boolean;
  /** First click sorts descending: for these columns a high value is the bad one worth seeing first. */
  firstDescending?: boolean;
  /** null sorts last in both directions: a missing value is not "small". */
  value(row: LayerRow): number | string | null;
  text(row: LayerRow): string;
}

const num = (v: number | null | undefined): number | null => (v === null || v === undefined || Number.isNaN(v) ? null : v);

export const COLUMNS: readonly Column[] = [
  {
    key: 'index',
    label: '#',
    title: 'Position in graph order',
    numeric: true,
    value: (r) => r.index,
    text: (r) => String(r.index + 1),
  },
  {
    key: 'node',
    label: 'Node',
    title: 'Node name',
    numeric: false,
    value: (r) => r.layer.node,
    text: (r) => r.layer.node,
  },
  {
    key: 'op',
    label: 'Op',
    title: 'ONNX operator',
    numeric: false,
    value: (r) => r.layer.op,
    text: (r) => r.layer.op,
  },
  {
    key: 'kernel',
    label: 'Kernel',
    title: 'Kernel onnxruntime ran in the integer session ("float" = not fused)',
    numeric: false,
    value: (r) => r.layer.integerKernel ?? 'float',
    text: (r) => r.layer.integerKernel ?? 'float',
  },
  {
    key: 'sqnrSim',
    label: 'SQNR sim',
    title: 'Accumulated SQNR (dB), float vs simulated (fake-quant) execution',
    numeric: true,
    value: (r) => num(r.layer.simulated.sqnrDb),
    text: (r) => formatDb(r.layer.simulated.sqnrDb),
  },
  {
    key: 'sqnrInt',
    label: 'SQNR int',
    title: 'Accumulated SQNR (dB), float vs onnxruntime integer kernels',
    numeric: true,
    value: (r) => num(r.layer.integer.sqnrDb),
    text: (r) => formatDb(r.layer.integer.sqnrDb),
  },
  {
    key: 'cosine',
    label: 'Cosine',
    title: 'Cosine similarity, float vs integer (accumulated)',
    numeric: true,
    value: (r) => num(r.layer.integer.cosine),
    text: (r) => formatFixed(r.layer.integer.cosine, 4),
  },
  {
    key: 'clip',
    firstDescending: true,
    label: 'Clip',
    title: 'Share of the output activation that saturates the integer grid',
    numeric: true,
    value: (r) => num(r.output?.clipRate),
    text: (r) => (r.output ? formatPercent(r.output.clipRate) : '–'),
  },
  {
    key: 'isolated',
    label: 'Isolated',
    title: 'SQNR (dB) with only this layer quantized, fed float inputs (integer), on the first samples (the layer detail says how many)',
    numeric: true,
    value: (r) => num(r.layer.isolated.integer.sqnrDb),
    text: (r) => formatDb(r.layer.isolated.integer.sqnrDb),
  },
  {
    key: 'refOrt',
    firstDescending: true,
    label: 'Ref≠ORT',
    numeric: true,
    title:
      'Share of output codes where QuantLens\'s integer-only reference and onnxruntime differ, on the integer diff\'s samples ("–": not compared for this layer)',
    value: (r) => num(integerDiffOf(r.layer)?.referenceVsOrt.mismatchRate),
    text: (r) => {
      const d = integerDiffOf(r.layer);
      return d ? formatRate(d.referenceVsOrt.mismatchRate) : '–';
    },
  },
  {
    key: 'mismatch',
    firstDescending: true,
    label: 'Sim≠int',
    title: "Share of output codes where simulated and integer execution differ, on the code-level detail's samples (the layer detail says how many)",
    numeric: true,
    value: (r) => num(r.layer.simVsIntMismatch),
    text: (r) => formatRate(r.layer.simVsIntMismatch),
  },
  {
    key: 'maxLsb',
    firstDescending: true,
    label: 'Max LSB',
    title: 'Largest simulated vs integer code difference, in LSB',
    numeric: true,
    value: (r) => num(r.layer.simVsIntMaxLsb),
    text: (r) => formatFixed(r.layer.simVsIntMaxLsb, 0),
  },
  {
    key: 'rank',
    label: 'Sens.',
    title: 'Sensitivity rank: 1 = most damage to the model output when quantized alone',
    numeric: true,
    value: (r) => r.layer.sensitivity?.rank ?? null,
    text: (r) => (r.layer.sensitivity ? `#${r.layer.sensitivity.rank}` : '–'),
  },
];

/** Own damage first: the isolated SQNR (only this layer quantized), lowest first. Never accumulated SQNR, which ranks victims first. */
export const DEFAULT_SORT: { key: SortKey; descending: boolean } = { key: 'isolated', descending: false };

export function columnFor(key: string | undefined): Column | undefined {
  return COLUMNS.find((c) => c.key === key);
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

/** Sorted copy; ties fall back to graph order so the result is stable whichever way it flips. */
export function sortRows(rows: readonly LayerRow[], key: SortKey, descending: boolean): LayerRow[] {
  const column = columnFor(key) ?? COLUMNS[0];
  const keyed = rows.map((row) => ({ row, v: column.value(row) }));
  const dir = descending ? -1 : 1;
  keyed.sort((a, b) => {
    if (a.v === null || b.v === null) {
      if (a.v === b.v) return a.row.index - b.row.index;
      return a.v === null ? 1 : -1;
    }
    let c: number;
    if (typeof a.v === 'number' && typeof b.v === 'number') c = a.v === b.v ? 0 : a.v < b.v ? -1 : 1;
    else c = collator.compare(String(a.v), String(b.v));
    return c !== 0 ? c * dir : a.row.index - b.row.index;
  });
  return keyed.map((k) => k.row);
}
