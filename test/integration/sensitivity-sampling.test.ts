/**
 * Sensitivity sized per layer, on the bundled demo: at the pilot's looks (8 and 16 samples), the
 * layers whose output SQNR is above the most damaging layer's on the same samples (a paired 97.5%
 * interval above 3 dB) stop; the others go on. Each layer's numbers must equal an analysis that
 * measured every layer on that layer's sample count.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import type { LayerReport, Report } from '../../protocol/report';
import { evaluate, prepareAnalysis, quantizeWith, type Prepared, type Quantized } from '../../engine/analysis/analyze';
import { resolveConfig } from '../../engine/quantize/presets';

const root = path.resolve(__dirname, '../..');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');

describe('sensitivity samples per layer (demo)', () => {
  let p: Prepared;
  let q: Quantized;
  let adaptive: Report;
  const fixed = new Map<number, Report>();
  const at = async (n: number) => {
    if (!fixed.has(n)) fixed.set(n, await evaluate(p, q, { sensitivitySamples: n, integerDiff: false }));
    return fixed.get(n)!;
  };
  const layer = (r: Report, node: string) => r.layers.find((l) => l.node === node)!.sensitivity!;

  before(async () => {
    p = await prepareAnalysis(model, { dataPath: data });
    q = await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'percentile' }));
    adaptive = await evaluate(p, q, { integerDiff: false });
  });

  it('some layers settle at a look of the pilot, the most damaging goes on, and the reason says so', () => {
    const counts = adaptive.layers.map((l) => l.sensitivity!.onlyThis.samples!);
    const info = adaptive.sensitivityInfo!;
    assert.ok(counts.some((c) => c === 8 || c === 16) && counts.some((c) => c > 16), counts.join(','));
    assert.equal(Math.max(...counts), info.samples);
    const leader = adaptive.layers.find((l) => l.sensitivity!.rank === 1)!;
    assert.equal(leader.sensitivity!.onlyThis.samples, info.samples);
    const at8 = counts.filter((c) => c === 8).length;
    const at16 = counts.filter((c) => c === 16).length;
    const looks = [at8 ? `${at8} at 8 samples` : '', at16 ? `${at16} at 16 samples` : ''].filter(Boolean).join(', ');
    assert.match(info.reason, new RegExp(`${at8 + at16} of ${counts.length} layers stopped after the pilot \\(${looks}\\)`));
  });

  it("a settled layer is above the leader on the pilot's samples, by the difference of their means there", async () => {
    const byRank = [...adaptive.layers].sort((a, b) => a.sensitivity!.rank - b.sensitivity!.rank);
    assert.deepEqual(
      byRank.map((l) => l.sensitivity!.rank),
      byRank.map((_, i) => i + 1),
    );
    const settled = adaptive.layers.filter((x: LayerReport) => x.sensitivity!.aboveLeader);
    assert.ok(settled.length > 0);
    // The demo has one output, so the per-sample SQNR the pilot compares is the primary output's.
    // Over the same samples (none reproduced exactly here) the mean of the differences is the
    // difference of the means: read off an independent analysis of every layer on that many samples.
    for (const l of settled) {
      const a = l.sensitivity!.aboveLeader!;
      const n = l.sensitivity!.onlyThis.samples!;
      assert.ok(n === 8 || n === 16, `${l.node} ${n}`);
      assert.equal(a.leader, byRank[0].node, l.node);
      assert.equal(a.diffDb.level, 0.975);
      assert.ok(a.diffDb.low > 3 && a.diffDb.high > a.diffDb.low, `${l.node} ${JSON.stringify(a.diffDb)}`);
      const pilot = await at(n);
      const diff = layer(pilot, l.node).onlyThisPrimary!.sqnrDb.estimate - layer(pilot, a.leader).onlyThisPrimary!.sqnrDb.estimate;
      assert.ok(Math.abs(a.diffDb.estimate - diff) < 1e-9, `${l.node} ${a.diffDb.estimate} vs ${diff}`);
    }
    for (const l of adaptive.layers.filter((x) => !x.sensitivity!.aboveLeader)) assert.ok(l.sensitivity!.onlyThis.samples! > 16, l.node);
  });

  it('on 8 samples (no look at 8 or 16 possible) the pilot looks once, at 4 samples and 95%', async () => {
    const p8 = await prepareAnalysis(model, { dataPath: data, samples: 8 });
    const r = await evaluate(p8, await quantizeWith(p8, resolveConfig('tensorrt', { calibration: 'percentile' })), { integerDiff: false });
    const stopped = r.layers.filter((l) => l.sensitivity!.aboveLeader);
    assert.ok(stopped.length > 0);
    for (const l of stopped) {
      assert.equal(l.sensitivity!.onlyThis.samples, 4, l.node);
      assert.equal(l.sensitivity!.aboveLeader!.diffDb.level, 0.95);
      assert.ok(l.sensitivity!.aboveLeader!.diffDb.low > 3);
    }
    // the layers that go on get all 8: a spread read off 4 samples is too rough to size a sample by
    for (const l of r.layers.filter((x) => !x.sensitivity!.aboveLeader)) assert.equal(l.sensitivity!.onlyThis.samples, 8, l.node);
    assert.equal(r.sensitivityInfo!.samples, 8);
    assert.match(r.sensitivityInfo!.reason, /at a look after 4 samples, the 95% interval/);
  });

  it("every layer's numbers equal an analysis of every layer on that layer's sample count", async () => {
    for (const l of adaptive.layers) {
      const s = l.sensitivity!;
      const ref = layer(await at(s.onlyThis.samples!), l.node);
      assert.equal(ref.onlyThis.samples, s.onlyThis.samples);
      assert.ok(Math.abs(ref.onlyThis.outputSqnrDb - s.onlyThis.outputSqnrDb) < 1e-9, `${l.node} ${ref.onlyThis.outputSqnrDb} ${s.onlyThis.outputSqnrDb}`);
      assert.equal(ref.onlyThis.agreement, s.onlyThis.agreement, l.node);
      assert.ok(Math.abs(ref.onlyThisPrimary!.sqnrDb.estimate - s.onlyThisPrimary!.sqnrDb.estimate) < 1e-9, l.node);
    }
  });
});
