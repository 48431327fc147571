/**
 * Elementwise functions of one activation (Sigmoid, Tanh, HardSigmoid, HardSwish, Exp, Sqrt, Pow
 * by a constant, ...) as a lookup table, the way TFLite and NPUs run int8 LOGISTIC/TANH: an
 * input grid of at most 2^16 codes has at most 2^16 possible inputs, so the op is tabulated once
 * at compile time and run as one integer load per element.
 *
 * The table is filled by onnxruntime itself running the node on every input code, dequantized,
 * and quantizing the results onto the output grid: the integer result is exactly what the float
 * fallback would produce, element by element. Wider inputs (int32 grids) decline.
 */
import * as ort from 'onnxruntime-node';
import type { OpLowering } from '../context';
import { roundHalfEven } from '../../quantize/rounding';
import { createSession, runSession } from '../../runtime/session';
import { dequantize, nodeModel, quantizeTo } from '../floatFallback';
import { newRunStats, decline } from '../types';
import { codes } from '../values';

const MAX_ENTRIES = 65536;

/** Elementwise ops whose only activation input is input 0 (others, like Pow's exponent, constant). */
export const TABLE_OPS = [
  'Sigmoid',
  'Tanh',
  'Erf',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Neg',
  'Abs',
  'Softplus',
  'Softsign',
  'HardSigmoid',
  'HardSwish',
  'Elu',
  'Selu',
  'Celu',
  'Mish',
  'Gelu',
  'ThresholdedRelu',
  'Shrink',
  'Sin',
  'Cos',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'Asinh',
  'Acosh',
  'Atanh',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Pow',
] as const;

export const tableOps: OpLowering = {
  ops: TABLE_OPS,
  async lower(n, ctx) {
    const x = n.input[0];
    const out = n.output[0];
    if (!ctx.isCodes(x) || !ctx.isCodes(out)) return decline('not a float activation in and out');
    if (n.output.length > 1) return decline('more than one output');
    // A table is one input value -> one output value: any other input must be a constant scalar.
    if (n.input.slice(1).some((t) => t && (!ctx.isConst(t) || ctx.constHost(t).data.length !== 1))) return decline('a second input is not a constant scalar');
    const gx = ctx.grid(x);
    const entries = gx.qmax - gx.qmin + 1;
    if (entries > MAX_ENTRIES) return decline(`input grid of ${entries} codes is too wide for a table`);
    const go = ctx.target(out);
    const { model } = nodeModel(n, ctx);
    const label = `${n.opType} ${n.name} tabulated`;
    const session = await createSession(model, 'float', { label });
    let table: Int32Array;
    const clipped = new Uint8Array(entries);
    try {
      const all = Int32Array.from({ length: entries }, (_, i) => gx.qmin + i);
      const res = await runSession(session, { [x]: new ort.Tensor('float32', dequantize(all, gx), [entries]) }, label);
      const y = res[out].data as Float32Array;
      table = quantizeTo(y, go, newRunStats(false));
      for (let i = 0; i < entries; i++) {
        const r = roundHalfEven(y[i] / go.scale) + go.zeroPoint;
        clipped[i] = r > go.qmax || r < go.qmin ? 1 : 0;
      }
    } finally {
      await session.release();
    }
    ctx.setGrid(out, go);
    const lo = gx.qmin;
    return ctx.step(n, `${n.opType}(table)`, (env) => {
      const v = ctx.codes(env, x);
      const res = new Int32Array(v.data.length);
      let sat = 0;
      for (let i = 0; i < res.length; i++) {
        const k = v.data[i] - lo;
        res[i] = table[k];
        sat += clipped[k];
      }
      env.stats.saturated += sat;
      env.stats.codes += res.length;
      env.values.set(out, codes(v.dims, res));
    });
  },
};
