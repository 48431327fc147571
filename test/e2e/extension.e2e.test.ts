/**
 * QuantLens inside a real VS Code (code-server + Debian Chromium): the packaged VSIX on a copy of
 * the bundled demo workspace. Screenshots of every step land in test-artifacts/e2e/.
 * QUANTLENS_SKIP_E2E=1 skips this suite (and says so loudly); CI never sets it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../engine/onnx/model';
import { VsCode, root, waitFor } from './harness';

const skip = process.env.QUANTLENS_SKIP_E2E === '1';
if (skip) {
  console.log('\n!!!!!!!! QUANTLENS_SKIP_E2E=1: the end-to-end tests in a real VS Code are SKIPPED !!!!!!!!\n');
}

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('QuantLens in a real VS Code', { skip, timeout: 15 * 60 * 1000 }, () => {
  let vs: VsCode;
  let ws: string;
  let model: string;

  before(async () => {
    const base = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'quantlens-ws-'));
    ws = path.join(base, 'examples');
    fs.cpSync(path.join(root, 'examples'), ws, { recursive: true });
    for (const f of fs.readdirSync(path.join(ws, 'mnist-cnn'))) if (/\.qdq(-\d+)?\.onnx$|quantlens-report/.test(f)) fs.rmSync(path.join(ws, 'mnist-cnn', f));
    fs.writeFileSync(path.join(ws, 'corrupt.onnx'), 'not a model at all');
    model = path.join(ws, 'mnist-cnn/model.onnx');
    vs = new VsCode(ws);
    await vs.start();
    await vs.screenshot('workspace-open');
  });

  after(async () => {
    await vs?.screenshot('final').catch(() => {});
    await vs?.stop();
  });

  it('right-click the model -> Analyze Quantization: every layer, a histogram with threshold lines, the accuracy drop', async () => {
    await vs.contextMenu('mnist-cnn/model.onnx', 'Analyze Quantization');
    await vs.screenshot('analyze-started');
    const web = vs.webview();
    const rows = web.locator('#layer-table tr[data-node]');
    await rows.first().waitFor({ timeout: 180000 });
    const compute = loadModel(model).proto.graph!.node.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType)).map((n) => n.name);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node')));
    for (const name of compute) assert.ok(shown.includes(name), `${name} not in the table (${shown.join(', ')})`);
    const canvas = web.locator('canvas#histogram-chart');
    await canvas.waitFor({ timeout: 30000 });
    await waitFor(async () => Number(await canvas.getAttribute('data-threshold-lines')) >= 2, 20000, 'threshold lines on the histogram');
    const lines = (await canvas.getAttribute('data-threshold-lines'))!;
    assert.ok(Number(lines) >= 4, `only ${lines} threshold lines drawn`);
    const drop = web.locator('#accuracy-drop');
    await drop.waitFor({ timeout: 10000 });
    assert.match((await drop.textContent())!, /-?\d+(\.\d+)?\s*(points|pt)/);
    await vs.screenshot('report-webview');
    // keyboard: select another layer with the arrow keys, the detail follows
    await rows.nth(0).focus();
    await vs.page.keyboard.press('ArrowDown');
    await vs.page.keyboard.press('Enter');
    await vs.screenshot('report-second-layer');
  });

  it('Quantize Model writes a new QDQ file beside the model and leaves the original byte-identical', async () => {
    const before = sha(model);
    await vs.contextMenu('mnist-cnn/model.onnx', 'Quantize Model');
    const out = path.join(ws, 'mnist-cnn/model.qdq.onnx');
    await waitFor(async () => fs.existsSync(out), 120000, `${out} to be written`);
    await vs.notification(/wrote model\.qdq\.onnx/).waitFor({ timeout: 30000 });
    assert.equal(sha(model), before);
    assert.ok(loadModel(out).proto.graph!.node.some((n) => n.opType === 'QuantizeLinear'));
    await vs.screenshot('quantized');
  });

  it('hovering a node in the Model Outline shows its SQNR; weak layers carry diagnostics', async () => {
    await vs.contextMenu('mnist-cnn/model.onnx', 'Open Model Outline');
    const line = vs.page.locator('.monaco-editor .view-line', { hasText: '/conv1/Conv  Conv' }).first();
    await line.waitFor({ timeout: 30000 });
    const box = (await line.boundingBox())!;
    await waitFor(async () => {
      await vs.page.mouse.move(box.x + 5, box.y + box.height / 2);
      await vs.page.mouse.move(box.x + 25, box.y + box.height / 2);
      return vs.page.locator('.monaco-hover', { hasText: 'SQNR' }).first().isVisible({ timeout: 2000 });
    }, 30000, 'the hover with SQNR');
    const hover = await vs.page.locator('.monaco-hover', { hasText: 'SQNR' }).first().textContent();
    assert.match(hover!, /\/conv1\/Conv/);
    assert.match(hover!, /SQNR -?\d+\.\d dB/);
    await vs.screenshot('outline-hover');
  });

  it('QuantLens: Sweep Configurations... runs from the palette and draws the sweep chart', async () => {
    // With no model editor active the command asks which model (an open Model Outline would choose it).
    await vs.palette('View: Close All Editors');
    await vs.palette('QuantLens: Sweep Configurations...');
    const input = vs.page.locator('.quick-input-widget input');
    // which model: the picker lists the workspace's .onnx files
    await vs.page.locator('.quick-input-list .monaco-list-row', { hasText: 'mnist-cnn/model.onnx' }).first().waitFor({ timeout: 20000 });
    await input.fill('mnist-cnn/model.onnx');
    await vs.page.keyboard.press('Enter');
    // axes, then the values of each axis: accept the preselected defaults
    // (6 calibrations x weight bits 8,4 x granularity 2 = 24 configurations)
    for (const title of ['axes to vary', 'Calibration methods', 'Weight bits', 'Weight granularity']) {
      await vs.page.locator('.quick-input-widget', { hasText: title }).first().waitFor({ timeout: 20000 });
      await vs.screenshot(`sweep-pick-${title.split(' ')[0].toLowerCase()}`);
      await vs.page.keyboard.press('Enter');
    }
    const chart = vs.webview().locator('canvas#sweep-chart');
    await waitFor(async () => (await chart.getAttribute('data-points')) === '24', 240000, 'the 24-point sweep chart');
    const rows = await vs.webview().locator('#sweep-table tr[data-config]').count();
    assert.equal(rows, 24);
    await vs.screenshot('sweep-chart');
  });

  it('if the engine process dies, the user is told, it restarts, and the next analysis works', async () => {
    // The report footer carries its creation time: a new analysis changes it.
    const stamp = vs.webview().locator('text=/calibrate \\d/').first();
    const before = await stamp.textContent({ timeout: 10000 }).catch(() => null);
    const pids = vs.enginePids();
    assert.ok(pids.length >= 1, 'the engine runs as its own process');
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await vs.notification(/engine stopped unexpectedly/).waitFor({ timeout: 30000 });
    await vs.screenshot('engine-crashed');
    await waitFor(async () => vs.enginePids().some((p) => !pids.includes(p)), 30000, 'a new engine process');
    await vs.contextMenu('mnist-cnn/model.onnx', 'Analyze Quantization');
    await vs.notification(/analysis failed/).waitFor({ timeout: 3000 }).then(
      () => assert.fail('analysis failed after the restart'),
      () => {},
    );
    await waitFor(async () => {
      const now = await stamp.textContent({ timeout: 2000 }).catch(() => null);
      return now !== null && now !== before;
    }, 180000, 'a new report after the engine restarted');
    await vs.screenshot('after-engine-restart');
  });

  it('a corrupt .onnx gives a clear error naming the file, and the extension keeps working', async () => {
    await vs.contextMenu('corrupt.onnx', 'Analyze Quantization');
    // the error toast, not the "analyzing corrupt.onnx" progress toast that precedes it
    const toast = vs.notification(/analysis failed: .*corrupt\.onnx/);
    await toast.waitFor({ timeout: 60000 });
    assert.match((await toast.textContent())!, /not an ONNX model/);
    await vs.screenshot('corrupt-error');
    // still alive: the report comes back from the palette, and a new analysis runs
    await vs.palette('QuantLens: Show Last Report');
    await vs.webview().locator('#layer-table tr[data-node]').first().waitFor({ timeout: 30000 });
    await vs.contextMenu('mnist-cnn/model.onnx', 'Analyze Quantization');
    await vs.webview().locator('#layer-table tr[data-node]').first().waitFor({ timeout: 180000 });
    await vs.screenshot('after-error-still-working');
  });
});
