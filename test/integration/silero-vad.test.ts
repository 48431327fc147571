/**
 * A real user's model end to end: Silero VAD v6 as shipped in @ricky0123/vad-web (opset 16, every
 * Conv inside the branches of an If on the sample rate, an LSTM in nested Ifs, a scalar `sr` input
 * and a recurrent `state` fed from the `stateN` output). Data: real speech (espeak-ng, made by
 * scripts/make_vad_speech.sh) cut into frames of 512 new samples at 16 kHz, each with the 64
 * samples before it as context, exactly as vad-web feeds the model; `sr` is a constant 16000 and
 * `state` is carried from `stateN`.
 *
 * Independent expectations: onnxruntime running the model directly, frame by frame with its own
 * state (the speech probabilities and states), and onnxruntime loading the written QDQ file.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { dump, parse as parseNpy } from 'npyjs';
import { evaluate, prepareAnalysis, quantizeWith, type Prepared, type Quantized } from '../../engine/analysis/analyze';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { formatSummary } from '../../engine/report/summary';
import { decodeModel } from '../../engine/onnx/model';
import { graphsOf } from '../../engine/onnx/scopes';
import type { Report } from '../../protocol/report';
import { resolveConfig } from '../../engine/quantize/presets';
import { feedsFor } from '../../engine/runtime/session';
import { tempDir } from '../helpers/tinyModels';

const MODEL = path.join(path.dirname(require.resolve('@ricky0123/vad-web/package.json')), 'dist', 'silero_vad_v6.onnx');
const FRAME = 512;
const CONTEXT = 64;
const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Frames of 64 context + 512 new samples (zeros before the start), in [-1, 1). */
function frames(): { rows: Float32Array; count: number } {
  const bytes = fs.readFileSync(path.join(__dirname, '../fixtures/vad/speech16k.npy'));
  const a = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer).data as Int16Array;
  const count = Math.floor(a.length / FRAME);
  const w = CONTEXT + FRAME;
  const rows = new Float32Array(count * w);
  for (let k = 0; k < count; k++)
    for (let i = 0; i < w; i++) {
      const j = k * FRAME - CONTEXT + i;
      rows[k * w + i] = j < 0 ? 0 : a[j] / 32768;
    }
  return { rows, count };
}

const { rows, count } = frames();
const dataDir = path.join(dir, 'data');
fs.mkdirSync(dataDir);
fs.writeFileSync(path.join(dataDir, 'input.npy'), Buffer.from(dump(rows, [count, CONTEXT + FRAME])));
const sr = () => new ort.Tensor('int64', BigInt64Array.from([16000n]), []);

/** onnxruntime directly: frame by frame, each fed the previous frame's stateN (zeros first). */
async function sequential(modelBytes: Uint8Array): Promise<{ probs: Float32Array; states: Float32Array[] }> {
  const s = await ort.InferenceSession.create(modelBytes);
  let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]);
  const probs = new Float32Array(count);
  const states: Float32Array[] = [];
  for (let k = 0; k < count; k++) {
    states.push(state.data as Float32Array);
    const w = CONTEXT + FRAME;
    const r = await s.run({ input: new ort.Tensor('float32', rows.slice(k * w, (k + 1) * w), [1, w]), state, sr: sr() });
    probs[k] = (r.output.data as Float32Array)[0];
    state = r.stateN;
  }
  await s.release();
  return { probs, states };
}

describe('Silero VAD v6 (If branches, LSTM, constant sr, carried state)', () => {
  let p: Prepared;
  let q: Quantized;
  let rep: Report;
  let direct: { probs: Float32Array; states: Float32Array[] };
  before(async () => {
    direct = await sequential(fs.readFileSync(MODEL));
    p = await prepareAnalysis(MODEL, { dataPath: dataDir, inputs: { sr: { value: 16000 } } });
    q = await quantizeWith(p, resolveConfig('ort-cpu', {}));
    rep = await evaluate(p, q, { sensitivity: true });
  });

  it('describes the inputs: frames from the data, sr a constant, state inferred from stateN', () => {
    const byName = Object.fromEntries(rep.data.inputs.map((i) => [i.name, i]));
    assert.deepEqual(byName.input, { name: 'input', kind: 'sample', shape: [CONTEXT + FRAME], decidedBy: 'data' });
    assert.deepEqual(byName.sr, { name: 'sr', kind: 'constant', shape: [], value: [16000], decidedBy: 'option' });
    assert.deepEqual(byName.state, { name: 'state', kind: 'state', shape: [2, 1, 128], from: 'stateN', batchAxis: 1, decidedBy: 'inferred' });
    assert.equal(rep.data.states, 'float-model');
    assert.equal(rep.samples, count);
  });

  it('feeds the float model exactly what onnxruntime run frame by frame gives: states and speech probabilities', async () => {
    const s = await ort.InferenceSession.create(fs.readFileSync(MODEL));
    const probs = new Float32Array(count);
    // batches of 32 frames, each frame with its own carried state stacked along the state's batch axis
    for (let start = 0; start < count; start += 32) {
      const n = Math.min(32, count - start);
      const feeds = await feedsFor(p.data, start, n);
      assert.deepEqual(feeds.state.dims, [2, n, 128]);
      for (let k = 0; k < n; k++) {
        const d = feeds.state.data as Float32Array;
        const want = direct.states[start + k];
        for (let l = 0; l < 2; l++) for (let i = 0; i < 128; i++) assert.equal(d[(l * n + k) * 128 + i], want[l * 128 + i]);
      }
      const r = await s.run(feeds);
      probs.set(r.output.data as Float32Array, start);
    }
    await s.release();
    let maxDiff = 0;
    for (let k = 0; k < count; k++) maxDiff = Math.max(maxDiff, Math.abs(probs[k] - direct.probs[k]));
    assert.ok(maxDiff < 1e-5, `max |p_batched - p_sequential| = ${maxDiff}`);
    // the data holds speech and silence: the probabilities must span both
    assert.ok(Math.min(...direct.probs) < 0.05 && Math.max(...direct.probs) > 0.95);
  });

  it('reports every Conv of the 16 kHz branch as a layer with numbers, and of the 8 kHz branch as not executed', () => {
    const convs = rep.layers.filter((l) => l.op === 'Conv');
    assert.equal(convs.length, 6, convs.map((l) => l.node).join(', '));
    for (const l of convs) {
      assert.match(l.node, /^If_0\/then_branch\/If_0_then_branch__Inline_0__\/(stft|encoder\/[0-3]\/reparam_conv|decoder\/decoder\/2)\/Conv$/);
      for (const v of [l.simulated.sqnrDb, l.integer.sqnrDb, l.isolated.simulated.sqnrDb, l.isolated.integer.sqnrDb])
        assert.ok(Number.isFinite(v) && v > 0, `${l.node}: ${v}`);
      // only this layer's error: never more than the error accumulated from upstream (0.5 dB slack)
      assert.ok(l.isolated.integer.sqnrDb >= l.integer.sqnrDb - 0.5, `${l.node}: isolated ${l.isolated.integer.sqnrDb} < accumulated ${l.integer.sqnrDb}`);
      const out = rep.tensors.find((t) => t.name === l.output)!;
      assert.ok(out.clipRate >= 0 && out.clipRate < 0.05 && out.count > 0, `${l.output} clip ${out.clipRate}`);
      assert.equal(typeof l.integerKernel === 'string' || l.integerKernel === null, true);
      assert.ok(l.sensitivity && Number.isFinite(l.sensitivity.onlyThis.outputSqnrDb));
    }
    if (process.arch === 'x64') for (const l of convs) assert.equal(l.integerKernel, 'QLinearConv', l.node);
    const notRun = rep.warnings.filter((w) => w.code === 'layer-not-executed' && /^If_0\/else_branch\//.test(w.node ?? ''));
    const notRunConvs = notRun.filter((w) => / Conv /.test(` ${w.message.split(' ')[0]} `));
    assert.equal(notRunConvs.length, 6, notRun.map((w) => w.node).join('\n'));
    for (const w of notRunConvs) assert.match(w.message, /never ran on the \d+ samples \(it sits in If_0\/else_branch, a branch the data never took\)/);
  });

  it('is judged on its speech probability, not on the recurrent state it feeds back; agreement is n/a', () => {
    const pm = rep.primaryMetric!;
    assert.equal(pm.kind, 'sqnr');
    assert.equal(pm.output, 'output');
    assert.match(pm.rationale, /'stateN' is recurrent state fed back to the model, not its answer/);
    const out = rep.outputs!.find((o) => o.name === 'output')!;
    assert.equal(pm.value.estimate, out.perSampleSqnrDb.estimate);
    // a single probability per frame: its argmax "agrees" trivially, so no agreement is shown
    assert.equal(out.classifier, null);
    const table = formatSummary(rep)
      .split('\n')
      .filter((l) => /^(float|simulated|integer)\s+(n\/a|[\d.]+%)/.test(l));
    assert.equal(table.length, 3);
    for (const l of table) assert.match(l, /^\S+\s+n\/a\s+n\/a/, l);
    // no diagnosis here: the layer table's last column is each layer's sensitivity rank ("alone")
    const text = formatSummary(rep);
    assert.match(text, /kernel +alone\n/);
    const rows = text.split('\n').filter((l) => /^ {2}\S+ +Conv /.test(l));
    assert.ok(rows.length > 0);
    for (const row of rows) {
      const shown = row.trim().split(/\s+/)[0].replace(/^…/, '');
      const layer = rep.layers.find((l) => l.node.endsWith(shown))!;
      assert.match(row, new RegExp(`#${layer.sensitivity!.rank}$`), row);
    }
  });

  it('quantize writes a model quantized inside the If branch that onnxruntime runs; its speech decisions follow float', async (t) => {
    const out = path.join(dir, 'silero.qdq.onnx');
    writeQuantizedModel(p, q, { path: out, role: 'quantized model' });
    const quant = await sequential(fs.readFileSync(out));
    let agree = 0;
    let maxDiff = 0;
    for (let k = 0; k < count; k++) {
      assert.ok(quant.probs[k] >= 0 && quant.probs[k] <= 1);
      if (quant.probs[k] > 0.5 === direct.probs[k] > 0.5) agree++;
      maxDiff = Math.max(maxDiff, Math.abs(quant.probs[k] - direct.probs[k]));
    }
    // the quantized model carries its OWN state here (errors accumulate through the recurrence)
    t.diagnostic(`int8 (ort-cpu, own state): speech decision agreement ${agree}/${count}, max |dp| ${maxDiff.toFixed(3)}`);
    assert.ok(agree / count >= 0.9, `speech decisions agree on ${agree}/${count} frames`);
    // every node of the file keeps its own name in the written model, at every depth (the analysis
    // qualifies body names as If_0/then_branch/...; the file must not carry those)
    const names = (file: string, op: string) => {
      const out: string[] = [];
      for (const { graph } of graphsOf(decodeModel(fs.readFileSync(file), file).proto)) for (const n of graph.node) if (n.opType === op) out.push(n.name);
      return out.sort();
    };
    for (const op of ['Conv', 'If', 'LSTM']) assert.deepEqual(names(out, op), names(MODEL, op), op);
    // analysing that file as deployed would need its Q/DQ read from inside the branches: refused in one line
    const cli = path.join(__dirname, '../../bin/quantlens.js');
    const r = spawnSync(process.execPath, [cli, 'analyze', out, '--data', dataDir, '--input', 'sr=16000', '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(r.stderr.includes(out));
    assert.match(r.stderr, /is quantized inside If\/Loop\/Scan bodies \(\d+ quantized operators there\).*analyze its float model instead/);
  });

  it('CLI: --input sr=16000 feeds the constant (the state is inferred); without it, exit 2 and one line naming the flag', () => {
    const cli = path.join(__dirname, '../../bin/quantlens.js');
    const bad = spawnSync(process.execPath, [cli, 'analyze', MODEL, '--data', dataDir, '--quiet'], { encoding: 'utf8' });
    assert.equal(bad.status, 2, bad.stderr);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.match(bad.stderr, /input "sr" .* give its value with --input sr=VALUE/);
    const ok = spawnSync(
      process.execPath,
      [cli, 'analyze', MODEL, '--data', dataDir, '--input', 'sr=16000', '--samples', '32', '--no-sensitivity', '--preset', 'ort-cpu', '--json', '--quiet'],
      { encoding: 'utf8', maxBuffer: 1 << 28 },
    );
    assert.equal(ok.status, 0, ok.stderr);
    const r = JSON.parse(ok.stdout) as Report;
    assert.equal(r.samples, 32);
    assert.equal(r.layers.filter((l) => l.op === 'Conv').length, 6);
    assert.equal(r.data.inputs.find((i) => i.name === 'state')!.from, 'stateN');
  });
});
