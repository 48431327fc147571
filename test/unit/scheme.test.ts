import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundHalfAway, roundHalfEven } from '../../engine/quantize/rounding';
import { dequantize, paramsFor, quantize } from '../../engine/quantize/scheme';
import { resolveConfig } from '../../engine/quantize/presets';

const int8sym = { bits: 8 as const, signed: true, symmetric: true, narrowRange: true, powerOfTwo: false };
const uint8asym = { bits: 8 as const, signed: false, symmetric: false, narrowRange: false, powerOfTwo: false };

describe('rounding', () => {
  it('half to even vs half away from zero', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, -3]);
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5].map(roundHalfAway), [1, 2, 3, -1, -2, -3]);
  });
});

describe('scale and zero point', () => {
  it('int8 symmetric narrow range: scale = amax / 127, zero point 0', () => {
    const p = paramsFor(-0.5, 1.27, int8sym);
    assert.equal(p.scale, Math.fround(0.01));
    assert.equal(p.zeroPoint, 0);
    assert.deepEqual([p.qmin, p.qmax], [-127, 127]);
  });

  it('uint8 asymmetric [-1, 3]: scale 4/255, zero point round(255/4) = 64', () => {
    const p = paramsFor(-1, 3, uint8asym);
    assert.equal(p.scale, Math.fround(4 / 255));
    assert.equal(p.zeroPoint, 64);
    // zero is exactly representable
    assert.equal(dequantize(quantize(0, p), p), 0);
  });

  it('a positive-only range still includes zero', () => {
    const p = paramsFor(2, 4, uint8asym);
    assert.equal(p.zeroPoint, 0);
    assert.equal(p.scale, Math.fround(4 / 255));
  });

  it('power-of-two scales round up to 2^k', () => {
    const p = paramsFor(-3, 3, { bits: 8, signed: true, symmetric: true, narrowRange: false, powerOfTwo: true });
    // 6 / 255 = 0.0235 -> 2^-5
    assert.equal(p.scale, 2 ** -5);
  });

  it('a zero-width range gets scale 1', () => {
    assert.equal(paramsFor(0, 0, int8sym).scale, 1);
  });

  it('quantize saturates and rounds half to even', () => {
    const p = { scale: 0.5, zeroPoint: 0, qmin: -128, qmax: 127 };
    assert.deepEqual(
      [0.25, 0.75, 1.25, -0.25, 1000, -1000].map((x) => quantize(x, p)),
      [0, 2, 2, 0, 127, -128],
    );
  });

  it('4- and 16-bit grids', () => {
    assert.deepEqual((({ qmin, qmax }) => [qmin, qmax])(paramsFor(-1, 1, { ...int8sym, bits: 4 })), [-7, 7]);
    assert.deepEqual((({ qmin, qmax }) => [qmin, qmax])(paramsFor(-1, 1, { ...uint8asym, bits: 16 })), [0, 65535]);
  });
});

describe('presets', () => {
  it('explicit options override the preset', () => {
    const c = resolveConfig('tensorrt', { calibration: 'percentile', weights: { perChannel: false }, activations: { bits: 16 } });
    assert.equal(c.calibration, 'percentile');
    assert.equal(c.weights.perChannel, false);
    assert.equal(c.weights.bits, 8);
    assert.equal(c.activations.bits, 16);
    assert.equal(c.activations.symmetric, true);
    assert.throws(() => resolveConfig('nope' as never), /unknown preset/);
  });
});
