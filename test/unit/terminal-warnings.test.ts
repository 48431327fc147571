import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { warningLines } from '../../engine/report/summary';
import type { Report } from '../../protocol/report';

const w = (code: string, k: number) => ({ code, message: `${code} #${k}` });
const many = (code: string, n: number) => Array.from({ length: n }, (_, k) => w(code, k));

describe('terminal warnings: the important kinds first, each kind in a few lines', () => {
  it('22 "not fused" warnings no longer hide 4 heavy-clipping ones; every warning is shown or counted', () => {
    const warnings: Report['warnings'] = [...many('not-fused-in-written-file', 22), ...many('heavy-clipping', 4), w('synthetic-data', 0)];
    const lines = warningLines(warnings);
    assert.deepEqual(lines, [
      '',
      'warning: synthetic-data #0',
      'warning: heavy-clipping #0',
      'warning: heavy-clipping #1',
      'warning: heavy-clipping #2',
      'warning: heavy-clipping #3',
      'warning: not-fused-in-written-file #0',
      'warning: not-fused-in-written-file #1',
      "  ... and 20 more 'not-fused-in-written-file' warnings like these",
    ]);
  });

  it('past the line budget, the kinds left are counted in one line', () => {
    const warnings = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].flatMap((c) => many(c, 3));
    const lines = warningLines(warnings);
    const counted = lines.filter((l) => l.startsWith('warning: ')).length;
    const more = lines.map((l) => /and (\d+) more '/.exec(l)).reduce((a, m) => a + (m ? Number(m[1]) : 0), 0);
    const rest = Number(/^\.\.\. and (\d+) more warnings in the report$/.exec(lines[lines.length - 1])![1]);
    assert.equal(counted + more + rest, warnings.length);
    assert.ok(lines.length <= 15, `${lines.length} lines`);
    assert.deepEqual(warningLines([]), []);
  });
});
