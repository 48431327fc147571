/**
 * BatchNormalization that could not be folded into a Conv, as an integer per-channel affine
 * y = a_c x + b_c (a_c = gamma / sqrt(var + eps), b_c = beta - a_c mean; float work done once):
 *   acc = sign(a_c) (q - z_in) 2^8 + B_c,   B_c = round(b_c 2^8 / (|a_c| S_in))
 *   out = z_out + round(acc |a_c| S_in / (2^8 S_out))      (one fixed-point multiplier per channel)
 * The 2^8 keeps the bias B_c eight bits finer than the input grid.
 */
import type { OpLowering } from '../context';
import { attrFloat } from '../../onnx/graph';
import { InputError } from '../../errors';
import { Multipliers, saturate } from '../fixedPoint';
import { decline } from '../types';
import { codes, numel } from '../values';

const UP = 8;

export const batchNormOps: OpLowering = {
  ops: ['BatchNormalization'],
  lower(n, ctx) {
    const x = n.input[0];
    const out = n.output[0];
    if (!ctx.isCodes(x)) return decline('input is not a float activation');
    if (n.output.slice(1).some(Boolean)) return decline('training-mode outputs');
    if (!n.input.slice(1, 5).every((t) => ctx.isConst(t))) return decline('scale/bias/mean/var are not constants');
    const gx = ctx.grid(x);
    const eps = attrFloat(n, 'epsilon', 1e-5);
    const [gamma, beta, mean, variance] = n.input.slice(1, 5).map((t) => ctx.constFloat(t).data);
    const C = gamma.length;
    const signs = new Int32Array(C);
    const biasInt = new Float64Array(C);
    const real = new Float64Array(C);
    const go = ctx.target(out);
    for (let c = 0; c < C; c++) {
      const a = gamma[c] / Math.sqrt(variance[c] + eps);
      const b = beta[c] - a * mean[c];
      const absA = Math.abs(a) || 1e-30;
      signs[c] = a < 0 ? -1 : a > 0 ? 1 : 0;
      biasInt[c] = Math.round((b * 2 ** UP) / (absA * gx.scale));
      real[c] = (absA * gx.scale) / (2 ** UP * go.scale);
      if (Math.abs(biasInt[c]) > 2 ** 30) return decline(`the bias of channel ${c} does not fit int32 at the input scale`);
    }
    ctx.setGrid(out, go);
    const mult = new Multipliers(real, n.name);
    return ctx.step(n, 'BatchNormalization(integer affine)', (env) => {
      const v = ctx.codes(env, x);
      if (v.dims[1] !== C) throw new InputError(`${n.name}: ${v.dims[1]} channels, BatchNormalization has ${C}`);
      const inner = numel(v.dims.slice(2));
      const res = new Int32Array(v.data.length);
      for (let i = 0; i < res.length; i++) {
        const c = Math.floor(i / inner) % C;
        const acc = signs[c] * (v.data[i] - gx.zeroPoint) * 2 ** UP + biasInt[c];
        res[i] = saturate(go.zeroPoint + mult.apply(acc, c), go, env.stats);
      }
      env.values.set(out, codes(v.dims, res));
    });
  },
};
