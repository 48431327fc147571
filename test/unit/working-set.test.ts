/**
 * The batch an analysis runs at when neither the user nor the model sets it (taps.ts,
 * workingSetBatch): as many samples as WORKING_BYTES of activations hold, between 1 and the cap.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WORKING_BYTES, workingSetBatch } from '../../engine/analysis/taps';

describe('workingSetBatch', () => {
  const MB = 1e6;
  it('the measured models: recogniser 4, classifier 15, demo at the cap, 512x512 at 1', () => {
    // per-sample activation bytes as calibration measured them (docs/performance.md, eleventh round)
    assert.equal(WORKING_BYTES, 201_326_592);
    assert.equal(workingSetBatch(32, [45.42 * MB]), 4); // 201.3 / 45.42 = 4.43
    assert.equal(workingSetBatch(32, [13.27 * MB]), 15); // 201.3 / 13.27 = 15.2
    assert.equal(workingSetBatch(32, [0.3 * MB]), 32); // 671, capped
    assert.equal(workingSetBatch(32, [565.5 * MB]), 1); // one sample is over the budget: still 1
  });

  it('sums the tensors, and a sample that fills the budget exactly gives 1', () => {
    assert.equal(workingSetBatch(32, [WORKING_BYTES / 4, WORKING_BYTES / 4]), 2);
    assert.equal(workingSetBatch(32, [WORKING_BYTES]), 1);
    assert.equal(workingSetBatch(32, [WORKING_BYTES / 3 + 1]), 2);
  });

  it('nothing measured leaves the cap', () => {
    assert.equal(workingSetBatch(32, []), 32);
    assert.equal(workingSetBatch(7, [0]), 7);
  });
});
