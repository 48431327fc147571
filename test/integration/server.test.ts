/**
 * The engine as a language server (out/server.js), spoken to over node IPC exactly as
 * vscode-languageclient does: custom requests with work-done progress and cancellation, the
 * outline, hover and diagnostics.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource, IPCMessageReader, IPCMessageWriter, type MessageConnection, createMessageConnection } from 'vscode-jsonrpc/node';
import { AllowPathRequest, AnalyzeRequest, CompareRequest, OutlineRequest, QuantizeRequest, RestoreReportRequest } from '../../protocol/messages';
import { type CompareReport, REPORT_SCHEMA_VERSION, type Report } from '../../protocol/report';
import { prepareAnalysis, quantizeWith } from '../../engine/analysis/analyze';
import { writeQuantizedModel } from '../../engine/analysis/quantizeModel';
import { resolveConfig } from '../../engine/quantize/presets';
import { tempDir } from '../helpers/tinyModels';
import { SATURATING_INT8 } from '../helpers/cpu';

const root = path.resolve(__dirname, '../..');
const model = path.join(root, 'examples/mnist-cnn/model.onnx');
const data = path.join(root, 'examples/mnist-cnn/data');

type Diagnostics = { uri: string; diagnostics: { message: string; range: { start: { line: number } } }[] }[];
type Progress = { token: string; value: { kind: string; percentage?: number; message?: string } }[];

/** A fresh engine process, initialized as vscode-languageclient does, its notifications collected. */
async function startEngine(progress: Progress, diagnostics: Diagnostics): Promise<{ child: ChildProcess; conn: MessageConnection }> {
  const child = fork(path.join(root, 'out/server.js'), ['--node-ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const conn = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  conn.onNotification('$/progress', (p) => void progress.push(p));
  conn.onNotification('textDocument/publishDiagnostics', (p) => void diagnostics.push(p));
  conn.onRequest('window/workDoneProgress/create', () => null);
  conn.listen();
  // The workspace is the examples folder: the engine may read and write only inside it.
  const init = await conn.sendRequest('initialize', {
    processId: process.pid,
    rootUri: null,
    capabilities: { window: { workDoneProgress: true } },
    workspaceFolders: [{ uri: pathToFileURL(path.join(root, 'examples')).href, name: 'examples' }],
  });
  assert.ok((init as { capabilities: { hoverProvider: boolean } }).capabilities.hoverProvider);
  await conn.sendNotification('initialized', {});
  return { child, conn };
}

describe('engine language server over IPC', () => {
  let child: ChildProcess;
  let conn: MessageConnection;
  const progress: Progress = [];
  const diagnostics: Diagnostics = [];

  before(async () => {
    ({ child, conn } = await startEngine(progress, diagnostics));
  });

  after(() => {
    conn?.dispose();
    child?.kill();
  });

  const params = (extra: object = {}) => ({
    modelPath: model,
    dataPath: data,
    config: resolveConfig('tensorrt', { calibration: 'percentile' }),
    sensitivity: false,
    sqnrWarningDb: 35,
    ...extra,
  });

  it('analyze returns the report and reports work-done progress on the given token', async () => {
    const report = (await conn.sendRequest(AnalyzeRequest.method, params({ workDoneToken: 'tok-1', targetCpu: 'no-vnni' }))) as Report;
    assert.equal(report.schemaVersion, REPORT_SCHEMA_VERSION);
    // The target CPU the user set reaches the report (u8s8 warnings are judged against it).
    assert.equal(report.platform?.target, 'no-vnni');
    assert.equal(report.layers.length, 6);
    const mine = progress.filter((p) => p.token === 'tok-1');
    assert.equal(mine[0].value.kind, 'begin');
    assert.equal(mine[mine.length - 1].value.kind, 'end');
    const pct = mine.filter((p) => p.value.kind === 'report').map((p) => p.value.percentage!);
    assert.ok(pct.length >= 3 && pct.every((x, i) => i === 0 || x >= pct[i - 1]), `monotonic progress: ${pct.join(',')}`);
  });

  it('infinities cross JSON-RPC as "Infinity" (as in report files), not as null like a NaN', async () => {
    const report = (await conn.sendRequest(AnalyzeRequest.method, params({ samples: 32 }))) as unknown as Report;
    // The KL divergence of a threshold whose last bin is empty while P has mass there is infinite
    // (engine/calibration/thresholds.ts); MNIST inputs (many exact zeros) give such thresholds.
    const kl = report.tensors.flatMap((t) => t.klCurve ?? []).map((p) => p.value as unknown);
    assert.ok(kl.includes('Infinity'), 'some KL curve points are infinite');
    assert.ok(!kl.includes(null), 'no KL curve point arrives as null');
    assert.ok(kl.every((v) => v === 'Infinity' || (typeof v === 'number' && Number.isFinite(v))));
  });

  it('bad input is a clear error, not a crash; the server keeps answering', async () => {
    const readme = path.join(root, 'README.md');
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, params({ modelPath: readme })), /README\.md is outside the workspace folders/);
    await conn.sendRequest(AllowPathRequest.method, { path: readme }); // as if the user picked it
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, params({ modelPath: readme })), /README\.md is not an ONNX model/);
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, null), /invalid quantlens\/analyze request: params: /);
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, { modelPath: model }), /invalid quantlens\/analyze request: config: /);
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, params({ samples: -1 })), /samples: .*>0|samples: Too small/i);
    await assert.rejects(conn.sendRequest(AnalyzeRequest.method, params({ config: { ...params().config, preset: 'evil' } })), /config\.preset/);
    await assert.rejects(
      conn.sendRequest(QuantizeRequest.method, params({ outPath: '/tmp/quantlens-escape.onnx' })),
      /output \/tmp\/quantlens-escape\.onnx is outside the workspace/,
    );
    await assert.rejects(conn.sendRequest(QuantizeRequest.method, params({ outPath: model })), /over the input/);
    assert.ok(!fs.existsSync('/tmp/quantlens-escape.onnx'));
    const report = (await conn.sendRequest(AnalyzeRequest.method, params({ samples: 32 }))) as Report;
    assert.equal(report.samples, 32);
  });

  it('cancellation stops a running analysis', async () => {
    const cts = new CancellationTokenSource();
    const pending = conn.sendRequest(AnalyzeRequest.method, params({ sensitivity: true, workDoneToken: 'tok-cancel' }), cts.token);
    // cancel once the engine is visibly working
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (progress.some((p) => p.token === 'tok-cancel' && p.value.kind === 'report')) {
          clearInterval(t);
          resolve();
        }
      }, 20);
    });
    cts.cancel();
    await assert.rejects(pending, /cancel/i);
  });

  it("the outline lists every node; hover shows a layer's SQNR; weak layers get diagnostics", async () => {
    const uri = `quantlens-outline:${model}.outline`;
    const { text } = (await conn.sendRequest(OutlineRequest.method, { modelPath: model, uri })) as { text: string };
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.startsWith('/conv1/Conv  Conv  ('));
    assert.ok(line > 0, text.slice(0, 400));
    assert.equal(lines.filter((l) => /^\S+ {2}\S+ {2}\(/.test(l)).length, 16, 'one line per node');
    await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'quantlens-outline', version: 1, text } });
    const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 3 } })) as {
      contents: { value: string };
    };
    assert.match(hover.contents.value, /\*\*\/conv1\/Conv\*\* \(Conv\)/);
    assert.match(hover.contents.value, /SQNR \d+\.\d dB/);
    // sqnrWarningDb 35 in these requests: some demo layers do more error than that themselves (isolated SQNR)
    const d = diagnostics.filter((x) => x.uri === uri).pop();
    assert.ok(d && d.diagnostics.length > 0, 'warnings published for the outline');
    for (const diag of d!.diagnostics) assert.match(lines[diag.range.start.line], /^\S+ {2}(Conv|Gemm)/);
  });

  it('a restarted engine given the report on screen shows it in the outline: same hovers, same warnings', async () => {
    // What the extension holds: the report as it came over JSON-RPC (infinities as strings).
    const report = (await conn.sendRequest(AnalyzeRequest.method, params({ samples: 32 }))) as Report;
    const uri = `quantlens-outline:${model}.outline`;
    const hoverOn = async (c: MessageConnection, line: number) =>
      ((await c.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 3 } })) as { contents: { value: string } } | null)
        ?.contents.value;
    const lines = ((await conn.sendRequest(OutlineRequest.method, { modelPath: model, uri })) as { text: string }).text.split('\n');
    const nodeLines = lines.flatMap((l, i) => (/^\S+ {2}(Conv|Gemm)/.test(l) ? [i] : []));
    const before = await Promise.all(nodeLines.map((i) => hoverOn(conn, i)));
    const warned = diagnostics
      .filter((x) => x.uri === uri)
      .pop()!
      .diagnostics.map((d) => d.message);

    const fresh: Diagnostics = [];
    const engine = await startEngine([], fresh);
    try {
      const c = engine.conn;
      const text = ((await c.sendRequest(OutlineRequest.method, { modelPath: model, uri })) as { text: string }).text;
      await c.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'quantlens-outline', version: 1, text } });
      // Without a report the new engine knows the nodes but has no numbers.
      assert.match((await hoverOn(c, nodeLines[0]))!, /run \*\*QuantLens: Analyze Quantization\*\*/);
      assert.equal(await c.sendRequest(RestoreReportRequest.method, { report, sqnrWarningDb: 35 }), null);
      assert.deepEqual(await Promise.all(nodeLines.map((i) => hoverOn(c, i))), before);
      assert.ok(before.every((h) => h && /SQNR \d+\.\d dB/.test(h)));
      assert.deepEqual(
        fresh
          .filter((x) => x.uri === uri)
          .pop()!
          .diagnostics.map((d) => d.message),
        warned,
      );
      assert.ok(warned.length > 0);
      // The extension host is trusted, but a malformed report is still refused by name.
      await assert.rejects(
        c.sendRequest(RestoreReportRequest.method, { report: { ...report, layers: 'x' }, sqnrWarningDb: 35 }),
        /invalid quantlens\/restoreReport request: report\.layers/,
      );
    } finally {
      engine.conn.dispose();
      engine.child.kill();
    }
  });

  it('an already-quantized model: analyze takes it as deployed, compare ranks its layers, quantize refuses it', { skip: SATURATING_INT8 }, async () => {
    const tmp = tempDir();
    try {
      const p = await prepareAnalysis(model, { dataPath: data, samples: 100 });
      const pct = path.join(tmp, 'pct.qdq.onnx');
      const ent = path.join(tmp, 'ent.qdq.onnx');
      writeQuantizedModel(p, await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'percentile' })), { path: pct, role: 'quantized model' });
      writeQuantizedModel(p, await quantizeWith(p, resolveConfig('tensorrt', { calibration: 'entropy' })), { path: ent, role: 'quantized model' });
      await conn.sendRequest(AllowPathRequest.method, { path: tmp }); // as if the user picked the folder
      const report = (await conn.sendRequest(AnalyzeRequest.method, params({ modelPath: pct, samples: 100 }))) as Report;
      assert.equal(report.model.quantization?.kind, 'qdq');
      assert.equal(report.layers.length, 6);
      assert.ok(report.tensors.filter((t) => t.kind === 'activation').every((t) => t.chosen?.deployed));
      const cmp = (await conn.sendRequest(CompareRequest.method, {
        modelPath: pct,
        otherModelPath: ent,
        dataPath: data,
        samples: 100,
        sensitivity: false,
      })) as CompareReport;
      assert.equal(cmp.kind, 'compare');
      assert.equal(cmp.mostDifferent, '/conv1/Conv');
      await assert.rejects(
        conn.sendRequest(CompareRequest.method, { modelPath: pct, sensitivity: false }),
        /invalid quantlens\/compare request: otherModelPath/,
      );
      await assert.rejects(
        conn.sendRequest(CompareRequest.method, { modelPath: pct, otherModelPath: model, sensitivity: false }),
        /model\.onnx is a float model; compare takes two quantized versions/,
      );
      await assert.rejects(
        conn.sendRequest(QuantizeRequest.method, params({ modelPath: pct, outPath: path.join(tmp, 'again.onnx') })),
        /pct\.qdq\.onnx is already quantized \(qdq\)/,
      );
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a Python identifier naming a layer segment shows that layer', async () => {
    const uri = 'file:///tmp/quantlens-model.py';
    const text = 'class Net:\n    def __init__(self):\n        self.conv1 = nn.Conv2d(1, 16, 3)\n';
    await conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text } });
    const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 2, character: 14 } })) as {
      contents: { value: string };
    } | null;
    assert.ok(hover, 'hover on conv1');
    assert.match(hover!.contents.value, /\/conv1\/Conv/);
    const none = await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 0, character: 2 } });
    assert.equal(none, null, '"class" names no layer');
  });

  it('malformed hover params are InvalidParams naming the field, and the engine keeps answering', async () => {
    for (const bad of [
      {},
      { textDocument: null },
      { textDocument: { uri: 42 }, position: 'x' },
      { textDocument: { uri: 'file:///x.py' }, position: { line: -1, character: 0 } },
    ]) {
      await assert.rejects(conn.sendRequest('textDocument/hover', bad), (e: { code: number; message: string }) => {
        assert.equal(e.code, -32602, e.message);
        assert.match(e.message, /^invalid textDocument\/hover request: (textDocument|position)/);
        return true;
      });
    }
    const uri = 'file:///tmp/quantlens-model.py';
    const hover = (await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 2, character: 14 } })) as {
      contents: { value: string };
    } | null;
    assert.match(hover!.contents.value, /\/conv1\/Conv/);
  });
});
