/**
 * protocol/wire.ts: the one encode/decode pair for what JSON cannot carry. A report that goes to
 * JSON and back must come back equal, infinities included, names untouched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { reportReplacer, reviveNumbers } from '../../protocol/wire';

const roundTrip = (v: unknown) => reviveNumbers(JSON.parse(JSON.stringify(v, reportReplacer)));

describe('report JSON encode/decode', () => {
  it('infinities survive a round trip; NaN becomes null (JSON has no NaN either)', () => {
    const v = {
      layers: [{ node: 'a', integer: { sqnrDb: Infinity, cosine: 1 }, isolated: { integer: { sqnrDb: -Infinity } } }],
      klCurve: [
        { threshold: 0.5, value: Infinity },
        { threshold: 1, value: 0.25 },
      ],
      counts: [1, 2, 3],
      missing: NaN,
    };
    const back = roundTrip(v) as typeof v;
    assert.deepEqual(back, { ...v, missing: null });
    assert.equal(JSON.stringify(v, reportReplacer).includes('"Infinity"'), true, 'encoded as strings, not null');
  });

  it('names and prose that read "Infinity" stay strings', () => {
    const v = {
      tensors: [{ name: 'Infinity', kind: 'activation', min: -Infinity }],
      layers: [{ node: 'Infinity', op: 'Conv', output: 'NaN', inputs: ['Infinity'] }],
      warnings: [{ code: 'x', message: 'Infinity', tensor: '-Infinity' }],
    };
    assert.deepEqual(roundTrip(v), v);
  });

  it('a value that is not a report passes through', () => {
    assert.equal(reviveNumbers('Infinity'), Infinity);
    assert.equal(reviveNumbers(null), null);
    assert.deepEqual(reviveNumbers([1, 'Infinity', { a: '-Infinity' }]), [1, Infinity, { a: -Infinity }]);
  });
});
