/**
 * Softmax -> I-BERT i-Softmax (`engine/integer/ibert.ts`): the row maximum is subtracted in
 * integers (the input's zero point cancels), i-exp by the paper's second-order polynomial and
 * shifts, an integer reciprocal of the row sum. Output on the kernel's own grid: probabilities at
 * scale 2^-bits (default 16 bits, `softmaxBits`), rescaled once when the plan fixes another grid
 * (e.g. int8 for the attention x V MatMul). Opset < 13 softmax over the flattened trailing axes
 * and opset >= 13 softmax over any one axis (moved last and back) are both handled.
 */
import type { OpLowering } from '../context';
import { attrInt } from '../../onnx/graph';
import { iSoftmax } from '../../integer/ibert';
import { softmaxRows } from '../../integer/ibertReference';
import { dequantize } from '../floatFallback';
import { decline } from '../types';
import { type Codes, axisOf, codes, numel, transposeData } from '../values';

export const softmaxOps: OpLowering = {
  ops: ['Softmax'],
  lower(n, ctx) {
    const x = n.input[0];
    const out = n.output[0];
    if (!ctx.isCodes(x)) return decline('input is not a float activation');
    const legacy = ctx.opset < 13;
    const axis = attrInt(n, 'axis', legacy ? 1 : -1);
    const gx = ctx.grid(x);
    const bits = ctx.softmaxBits;
    const natural = { scale: 2 ** -bits, zeroPoint: 0, qmin: 0, qmax: 2 ** bits - 1 };
    const name = n.name || out;
    ctx.kernel(name, 'i-Softmax');
    return ctx.finish(n, 'i-Softmax', out, natural, (env) => {
      const v = ctx.codes(env, x);
      const r = v.dims.length;
      const a = axisOf(axis, r, name);
      // Rows of `cols` contiguous values: legacy flattens axes a.., opset 13 moves axis a last.
      const perm = !legacy && a !== r - 1 ? [...v.dims.keys()].filter((k) => k !== a).concat(a) : null;
      let src: Codes = v;
      if (perm) {
        const t = transposeData(v.data, v.dims, perm);
        src = codes(t.dims, t.data);
      }
      const cols = legacy ? numel(v.dims.slice(a)) : v.dims[a];
      const rows = v.data.length / cols;
      const q = iSoftmax(src.data, gx.scale, rows, cols, bits).q;
      if (ctx.measuring && env.stats.kernelAcc) ctx.measure(env, name, softmaxRows(dequantize(src.data, gx), rows, cols), q, natural.scale);
      if (!perm) {
        env.values.set(out, codes(v.dims, q));
        return;
      }
      const inverse = perm.map((_, k) => perm.indexOf(k));
      const back = transposeData(q, src.dims, inverse);
      env.values.set(out, codes(back.dims, back.data));
    });
  },
};
