/**
 * The integer-only reference (exact int32 arithmetic in TypeScript) against onnxruntime's fused
 * QLinearConv on one layer with the demo's conv2 shape (16 -> 32 channels, 3x3, stride 2,
 * 28x28 -> 14x14), 300 samples: how much slower the reference is, and that its codes are identical.
 */
import * as ort from 'onnxruntime-node';
import { platform, u8s8Hazard } from '../engine/analysis/platform';
import { qlinearConv } from '../engine/integer/qlinear';
import { encodeModel } from '../engine/onnx/model';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../test/helpers/tinyModels';

export async function integerReferenceVsOrt(): Promise<string[]> {
  const N = 300,
    C = 16,
    M = 32,
    H = 28;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296;
  const x = Uint8Array.from({ length: N * C * H * H }, () => Math.floor(rand() * 256));
  const w = Int8Array.from({ length: M * C * 9 }, () => Math.floor(rand() * 255) - 127);
  const attrs = { pads: [1, 1, 1, 1], strides: [2, 2] };
  const model = buildModel({
    opset: 13,
    nodes: [makeNode('QLinearConv', ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], ['y'], 'conv', attrs)],
    inputs: [valueInfo('x', ['N', C, H, H], DT.UINT8)],
    outputs: [valueInfo('y', ['N', M, 14, 14], DT.UINT8)],
    initializers: [
      makeTensor('xs', DT.FLOAT, [], [0.02]),
      makeTensor('xz', DT.UINT8, [], [128]),
      makeTensor('w', DT.INT8, [M, C, 3, 3], w),
      makeTensor(
        'ws',
        DT.FLOAT,
        [M],
        Array.from({ length: M }, (_, i) => 0.001 + i * 1e-5),
      ),
      makeTensor('wz', DT.INT8, [M], new Array(M).fill(0)),
      makeTensor('ys', DT.FLOAT, [], [0.05]),
      makeTensor('yz', DT.UINT8, [], [128]),
    ],
  });
  const s = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all' });
  const feeds = { x: new ort.Tensor('uint8', x, [N, C, H, H]) };
  await s.run(feeds);
  let t0 = performance.now();
  const ortOut = (await s.run(feeds)).y.data as Uint8Array;
  const ortMs = performance.now() - t0;
  t0 = performance.now();
  const ref = qlinearConv(
    {
      x: { dims: [N, C, H, H], data: x },
      xScale: [0.02],
      xZeroPoint: [128],
      w: { dims: [M, C, 3, 3], data: w },
      wScale: Array.from({ length: M }, (_, i) => 0.001 + i * 1e-5),
      wZeroPoint: new Array(M).fill(0),
      yScale: [0.05],
      yZeroPoint: [128],
      yType: 'uint8',
    },
    attrs,
  ).y.data;
  const refMs = performance.now() - t0;
  let same = 0;
  for (let i = 0; i < ortOut.length; i++) if (ortOut[i] === ref[i]) same++;
  const macs = N * M * 14 * 14 * C * 9;
  const out = [`integer reference vs onnxruntime's QLinearConv on one layer (${N} x ${C}->${M} ch, 3x3/2, 28->14; ${(macs / 1e6).toFixed(0)}M MACs)`];
  out.push(
    `  onnxruntime ${ortMs.toFixed(1)} ms   reference (exact int32, TypeScript) ${refMs.toFixed(1)} ms   ratio ${(refMs / ortMs).toFixed(1)}   identical codes ${((100 * same) / ortOut.length).toFixed(3)}%`,
  );
  // Without VNNI onnxruntime's u8 x s8 kernel saturates int16 pair sums (random full-range codes
  // saturate often): there the reference, exact by design, is not expected to match.
  if (u8s8Hazard(platform())) {
    out.push(
      `  (${platform().cpu} has no VNNI: onnxruntime saturates u8 x s8 pair sums here, so its codes differ from exact int32; conformance-ort.test.ts checks them with the saturation emulated)`,
    );
  }
  await s.release();
  return out;
}
