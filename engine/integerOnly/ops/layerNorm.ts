/**
 * LayerNormalization -> I-BERT i-LayerNorm (`engine/integer/ibert.ts`): integer mean and variance
 * over the normalized axes (the input's zero point cancels in cols * q - sum(q)), the standard
 * deviation by an exact integer square root (Newton), gamma quantized on 16 bits and beta at the
 * output scale (float work done once). Output on the kernel's int32 grid; one rescale when the
 * plan fixes the output's grid (e.g. int8 for the next MatMul).
 */
import type { OpLowering } from '../context';
import { attrFloat, attrInt } from '../../onnx/graph';
import { InputError } from '../../errors';
import { iLayerNorm, quantizeLayerNormAffine } from '../../integer/ibert';
import { layerNormRows } from '../../integer/ibertReference';
import { dequantize } from '../floatFallback';
import { int32Grid } from '../fixedPoint';
import { decline } from '../types';
import { axisOf, codes, numel } from '../values';

export const layerNormOps: OpLowering = {
  ops: ['LayerNormalization'],
  lower(n, ctx) {
    const [x, scaleName, biasName] = n.input;
    const out = n.output[0];
    if (!ctx.isCodes(x)) return decline('input is not a float activation');
    if (n.output.slice(1).some(Boolean)) return decline('Mean / InvStdDev outputs');
    if (!ctx.isConst(scaleName) || (biasName && !ctx.isConst(biasName))) return decline('scale / bias are not constants');
    const axis = attrInt(n, 'axis', -1);
    const eps = attrFloat(n, 'epsilon', 1e-5);
    const gamma = ctx.constFloat(scaleName).data;
    const beta = biasName ? ctx.constFloat(biasName).data : new Float32Array(gamma.length);
    const cols = gamma.length;
    if (beta.length !== cols) return decline('scale and bias differ in size');
    let aff: ReturnType<typeof quantizeLayerNormAffine>;
    try {
      aff = quantizeLayerNormAffine(gamma, beta, cols);
    } catch (e) {
      return decline((e as Error).message);
    }
    const gx = ctx.grid(x);
    const name = n.name || out;
    const natural = int32Grid(aff.gammaScale * 2 ** -aff.fracBits);
    ctx.kernel(name, 'i-LayerNorm');
    return ctx.finish(n, 'i-LayerNorm', out, natural, (env) => {
      const v = ctx.codes(env, x);
      const a = axisOf(axis, v.dims.length, name);
      if (numel(v.dims.slice(a)) !== cols) throw new InputError(`${name}: normalized size ${numel(v.dims.slice(a))} but ${cols} scale values`);
      const rows = v.data.length / cols;
      const q = iLayerNorm(v.data, gx.scale, rows, cols, aff.gammaInt, aff.betaInt, { gammaScale: aff.gammaScale, fracBits: aff.fracBits, eps }).q;
      if (ctx.measuring && env.stats.kernelAcc) ctx.measure(env, name, layerNormRows(dequantize(v.data, gx), rows, cols, gamma, beta, eps), q, natural.scale);
      env.values.set(out, codes(v.dims, q));
    });
  },
};
