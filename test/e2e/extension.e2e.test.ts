/**
 * QuantLens inside a real VS Code (code-server + Debian Chromium): the packaged VSIX on a copy of
 * the bundled demo workspace, analyzed with tensorrt + entropy (the configuration that loses 68.67
 * points). Screenshots of every step land in test-artifacts/e2e/; the Diagnosis card's is also
 * copied to docs/images/diagnosis.png for the README.
 * QUANTLENS_SKIP_E2E=1 skips this suite (and says so loudly); CI never sets it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../engine/onnx/model';
import { SATURATING_INT8 } from '../helpers/cpu';
import { VsCode, root, shows, waitFor } from './harness';

/**
 * The demo's entropy drop on 300 samples as the engine measures it on onnxruntime's int8 kernels:
 * 68.67 points where they are exact, 76.67 on x86 without VNNI, where they saturate u8 x s8 pairs
 * (test/helpers/cpu.ts).
 */
const DEMO_DROP = SATURATING_INT8 ? '76.67' : '68.67';

const skip = process.env.QUANTLENS_SKIP_E2E === '1';
if (skip) {
  console.log('\n!!!!!!!! QUANTLENS_SKIP_E2E=1: the end-to-end tests in a real VS Code are SKIPPED !!!!!!!!\n');
}

const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('QuantLens in a real VS Code', { skip, timeout: 15 * 60 * 1000 }, () => {
  let vs: VsCode;
  let ws: string;
  let model: string;
  let settingsFile: string;

  before(async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-ws-'));
    ws = path.join(base, 'examples');
    fs.cpSync(path.join(root, 'examples'), ws, { recursive: true });
    for (const f of fs.readdirSync(path.join(ws, 'mnist-cnn'))) if (/\.qdq(-\d+)?\.onnx$|quantlens-report/.test(f)) fs.rmSync(path.join(ws, 'mnist-cnn', f));
    // The demo's failing configuration: tensorrt (the default preset) with entropy calibration.
    settingsFile = path.join(ws, 'mnist-cnn/quantlens.json');
    fs.writeFileSync(settingsFile, JSON.stringify({ dataPath: 'data', calibration: 'entropy' }));
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

  /** The report's creation stamp (footer): a new analysis changes it. */
  const stamp = () =>
    vs
      .webview()
      .locator('.provenance')
      .first()
      .textContent({ timeout: 5000 })
      .catch(() => null);
  const newReport = async (before: string | null, what: string) =>
    waitFor(
      async () => {
        const now = await stamp();
        return now !== null && now !== before;
      },
      180000,
      what,
    );
  /** A toast's button by its exact label ("Write model" is also the start of "Write model and quantlens.json"). */

  it("Analyze: the Diagnosis card comes first, with the drop's interval; badges name culprits by own damage; the KL point is on the curve", async () => {
    await vs.contextMenu('mnist-cnn/model.onnx', 'Analyze Quantization');
    const web = vs.webview();
    const card = web.locator('#diagnosis');
    await card.waitFor({ timeout: 180000 });
    const rows = web.locator('#layer-table tr[data-node]');
    const compute = loadModel(model)
      .proto.graph!.node.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType))
      .map((n) => n.name);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-node')));
    for (const name of compute) assert.ok(shown.includes(name), `${name} not in the table (${shown.join(', ')})`);

    // The drop on the primary metric with its 95% interval (the demo's entropy loss, DEMO_DROP points on 300 samples).
    const drop = (await web.locator('#accuracy-drop').textContent())!;
    assert.match(drop, new RegExp(`${DEMO_DROP.replace('.', '\\.')}\\s*points`));
    assert.match(drop, /95% interval \[\d+\.\d\d, \d+\.\d\d\] · 300 samples/);
    assert.equal(await card.getAttribute('data-significant'), 'true');
    // /fc/Gemm has the lowest accumulated SQNR of all layers but does almost no damage itself: no
    // culprit badge (where int8 kernels saturate u8 x s8 pairs its own kernel diverges: a culprit there).
    const culprits = await web.locator('#diagnosis-culprits li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-node')));
    assert.ok(culprits.length > 0, 'culprits named');
    if (!SATURATING_INT8) {
      assert.equal(await web.locator('tr[data-node="/fc/Gemm"] .tag-culprit').count(), 0, 'the victim carries no culprit badge');
      assert.ok(!culprits.includes('/fc/Gemm'), `culprits: ${culprits.join(', ')}`);
    }
    // u8s8 saturation only where the target CPU can saturate (quantlens.targetCpu "this": this machine's flags).
    const platform = (await web.locator('#platform').textContent())!;
    const u8s8Tags = await web.locator('.tag-hazard:not(.tag-overflow)').count();
    if (/cannot happen/.test(platform)) assert.equal(u8s8Tags, 0, `u8s8 badges on a target that cannot saturate (${platform})`);

    // The first screen, as the user sees it: the top of the report.
    await web.locator('#summary').evaluate((el) => el.ownerDocument.defaultView?.scrollTo(0, 0));
    const shot = await vs.screenshot('diagnosis-card');
    fs.mkdirSync(path.join(root, 'docs/images'), { recursive: true });
    fs.copyFileSync(shot, path.join(root, 'docs/images/diagnosis.png'));

    // The histogram has every method's threshold line; the KL curve marks the picked threshold ON the curve, at its minimum.
    await web.locator('#layer-table tr[data-node="/conv1/Conv"]').click();
    const hist = web.locator('canvas#histogram-chart');
    await waitFor(async () => Number(await hist.getAttribute('data-threshold-lines')) >= 4, 20000, 'threshold lines on the histogram');
    const kl = web.locator('canvas#kl-chart');
    await kl.waitFor({ timeout: 10000 });
    const chosenKl = Number(await kl.getAttribute('data-chosen-kl'));
    assert.ok(chosenKl > 0.3 && chosenKl < 0.45, `KL at the chosen threshold ${chosenKl} (the search's minimum is 0.383)`);
    assert.match((await web.locator('#kl-caption').textContent())!, /amax 0\.5135, KL 0\.383\d* \(the minimum of the curve\)/);
    await vs.screenshot('layer-detail-kl');
  });

  it('Sweep, pick a configuration, Mixed precision on THAT configuration; nothing is written without confirmation', async () => {
    await vs.palette('View: Close All Editors');
    await vs.palette('QuantLens: Sweep Configurations...');
    const input = vs.page.locator('.quick-input-widget input');
    await vs.page.locator('.quick-input-list .monaco-list-row', { hasText: 'mnist-cnn/model.onnx' }).first().waitFor({ timeout: 20000 });
    await input.fill('mnist-cnn/model.onnx');
    await vs.page.keyboard.press('Enter');
    // Vary only the calibration method (6 configurations): untick the preselected weight bits and granularity.
    await vs.page.locator('.quick-input-widget', { hasText: 'axes to vary' }).first().waitFor({ timeout: 20000 });
    for (const axis of ['Weight bits', 'Granularity']) {
      await vs.page.locator('.quick-input-list .monaco-list-row', { hasText: axis }).first().click();
    }
    await vs.screenshot('sweep-pick-axes');
    await vs.page.keyboard.press('Enter');
    await vs.page.locator('.quick-input-widget', { hasText: 'Calibration methods' }).first().waitFor({ timeout: 20000 });
    await vs.page.keyboard.press('Enter');
    const web = vs.webview();
    const chart = web.locator('canvas#sweep-chart');
    await waitFor(async () => (await chart.getAttribute('data-points')) === '6', 180000, 'the 6-point sweep chart');
    // The drop column carries the interval when the engine measured one.
    await vs.screenshot('sweep-chart');

    // Pick the entropy configuration (the failing one) and start mixed precision from it.
    await web.locator('#sweep-table tr[data-config]', { hasText: 'entropy' }).first().click();
    const picked = web.locator('#sweep-picked');
    await waitFor(async () => (await picked.getAttribute('data-config')) !== null, 10000, 'the picked configuration');
    const pickedConfig = JSON.parse((await picked.getAttribute('data-config'))!);
    assert.equal(pickedConfig.calibration, 'entropy');
    await web.locator('#sweep-mixed').click();
    const budget = vs.page.locator('.quick-input-widget input');
    await budget.waitFor({ timeout: 20000 });
    await budget.fill('1');
    await vs.page.keyboard.press('Enter');
    const mixedConfig = web.locator('#mixed-config');
    await mixedConfig.waitFor({ timeout: 180000 });
    const resultConfig = JSON.parse((await mixedConfig.getAttribute('data-config'))!);
    assert.deepEqual(resultConfig, pickedConfig, 'mixed precision ran on the configuration picked in the sweep, not on quantlens.json');
    await vs.screenshot('mixed-precision');
    // Asked (when the budget is met), never written unasked: the offer stays unanswered.
    assert.deepEqual(
      fs.readdirSync(path.join(ws, 'mnist-cnn')).filter((f) => f.includes('.mixed.')),
      [],
      'nothing written without confirmation',
    );
    assert.deepEqual(JSON.parse(fs.readFileSync(settingsFile, 'utf8')), { dataPath: 'data', calibration: 'entropy' }, 'quantlens.json untouched');
    // Dismissing the offer declines it; toasts left open would hide later ones.
    await vs.palette('Notifications: Clear All Notifications');
    assert.deepEqual(
      fs.readdirSync(path.join(ws, 'mnist-cnn')).filter((f) => f.includes('.mixed.')),
      [],
      'declined: still nothing written',
    );
  });

  it('Export HTML holds every view of the session (report with diagnosis, sweep, mixed precision) and renders offline', async () => {
    const web = vs.webview();
    await web.locator('#export-html').click();
    // The save dialog proposes a fresh name beside the model: accept it.
    const input = vs.page.locator('.quick-input-widget input');
    await input.waitFor({ timeout: 20000 });
    await vs.page.keyboard.press('Enter');
    const file = path.join(ws, 'mnist-cnn/model.quantlens-report.html');
    await waitFor(async () => fs.existsSync(file), 30000, `${file} to be written`);
    const page = await vs.open(`file://${file}`);
    await page.locator('#diagnosis').waitFor({ timeout: 20000 });
    assert.ok((await page.locator('#accuracy-drop').textContent())!.includes(DEMO_DROP));
    await page.locator('vscode-tab-header[data-tab="sweep"]').click();
    assert.equal(await page.locator('#sweep-table tr[data-config]').count(), 6);
    await page.locator('vscode-tab-header[data-tab="mixed"]').click();
    await page.locator('#mixed-config').waitFor({ timeout: 10000 });
    assert.equal(await page.getByText('No sweep yet').count(), 0);
    assert.equal(await page.getByText('No mixed-precision search yet').count(), 0);
    await page.screenshot({ path: path.join(path.dirname(await vs.screenshot('export-written')), 'export-standalone.png') });
    await page.close();
  });

  // Where int8 kernels saturate u8 x s8 pairs no calibration-only fix meets the budget: no button.
  it('Apply fix: one click re-analyzes with the fix; the new drop is within budget; the model is written only when confirmed', {
    skip: SATURATING_INT8,
  }, async () => {
    await vs.palette('QuantLens: Show Last Report');
    const web = vs.webview();
    await web.locator('vscode-tab-header[data-tab="layers"]').click();
    const apply = web.locator('#apply-fix');
    await apply.waitFor({ timeout: 20000 });
    const before = await stamp();
    const budgetText = (await web.locator('#accuracy-drop .drop-detail').textContent())!;
    const budget = Number(/budget ([\d.]+)/.exec(budgetText)![1]);
    await apply.click();
    await newReport(before, 'the report with the fix applied');
    const drop = Number(/([-\d.]+)\s*points/.exec((await web.locator('#accuracy-drop .drop-value').textContent())!)![1]);
    assert.ok(drop <= budget, `drop ${drop} with the fix, budget ${budget}`);
    await vs.screenshot('fix-applied');
    const modelSha = sha(model);
    await vs.clickNotificationButton(/Write the fixed model/, 'Write model');
    const out = path.join(ws, 'mnist-cnn/model.fixed.qdq.onnx');
    await waitFor(async () => fs.existsSync(out), 60000, `${out} to be written`);
    assert.equal(sha(model), modelSha, 'the model is untouched');
    assert.deepEqual(
      JSON.parse(fs.readFileSync(settingsFile, 'utf8')),
      { dataPath: 'data', calibration: 'entropy' },
      'quantlens.json untouched ("Write model" only)',
    );
  });

  it('What-if: typing a threshold splits the expected clip and rounding error at once; one click re-measures with it as a tensor override', async () => {
    const web = vs.webview();
    await web.locator('vscode-tab-header[data-tab="layers"]').click(); // whatever tab the last test left open
    await web.locator('#layer-table tr[data-node="/conv1/Conv"]').click();
    const whatIf = web.locator('#whatif');
    await whatIf.waitFor({ timeout: 20000 });
    await web.locator('vscode-tab-header[data-tab="layers"]').click();
    const before = Number(await whatIf.getAttribute('data-total'));
    await web.locator('#whatif-hi').fill('3');
    await waitFor(async () => Number(await whatIf.getAttribute('data-total')) !== before, 5000, 'the what-if split to update');
    const clip = Number(await web.locator('#whatif-new td[data-clip]').getAttribute('data-clip'));
    const rounding = Number(await web.locator('#whatif-new td[data-rounding]').getAttribute('data-rounding'));
    assert.ok(clip >= 0 && rounding > 0, `clip ${clip}, rounding ${rounding}`);
    // For the README: no toasts over it, the histogram panel at the top of the view.
    await vs.palette('Notifications: Clear All Notifications');
    await web.locator('#histogram-chart').evaluate((el) => el.closest('.panel')?.scrollIntoView({ block: 'start' }));
    fs.copyFileSync(await vs.screenshot('what-if'), path.join(root, 'docs/images/what-if.png'));
    const stampBefore = await stamp();
    await web.locator('#whatif-remeasure').click();
    await newReport(stampBefore, 'the report re-measured with the what-if range');
    const overrides = (await web.locator('.overrides').textContent())!;
    assert.match(overrides, /\/conv1\/Conv_output_0: range \[-3, 3\]/);
  });

  /** Hover /conv1/Conv's line in the open Model Outline until a hover with its SQNR shows; its text. */
  const outlineHover = async (): Promise<string> => {
    const line = vs.page.locator('.monaco-editor .view-line', { hasText: '/conv1/Conv  Conv' }).first();
    await line.waitFor({ timeout: 30000 });
    const box = (await line.boundingBox())!;
    await waitFor(
      async () => {
        await vs.page.mouse.move(box.x + 5, box.y + box.height / 2);
        await vs.page.mouse.move(box.x + 25, box.y + box.height / 2);
        return shows(vs.page.locator('.monaco-hover', { hasText: 'SQNR' }).first(), 2000);
      },
      30000,
      'the hover with SQNR',
    );
    return (await vs.page.locator('.monaco-hover', { hasText: 'SQNR' }).first().textContent())!;
  };
  let hoverBeforeCrash = '';

  it('hovering a node in the Model Outline shows its SQNR', async () => {
    await vs.contextMenu('mnist-cnn/model.onnx', 'Open Model Outline');
    const hover = await outlineHover();
    assert.match(hover, /\/conv1\/Conv/);
    assert.match(hover, /SQNR -?\d+\.\d dB/);
    hoverBeforeCrash = hover;
    // The hover fades in: shown as soon as it is visible, the screenshot caught it half transparent.
    await vs.page.waitForTimeout(400);
    await vs.screenshot('outline-hover');
  });

  it('if the engine dies it restarts; a corrupt .onnx gives a clear error; Quantize Model then writes the configuration on screen after confirmation', async () => {
    await vs.palette('Notifications: Clear All Notifications');
    const pids = vs.enginePids();
    assert.ok(pids.length >= 1, 'the engine runs as its own process');
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await vs.notificationText(/engine stopped unexpectedly/, 30000);
    await vs.screenshot('engine-crashed');
    await waitFor(async () => vs.enginePids().some((p) => !pids.includes(p)), 30000, 'a new engine process');
    await vs.palette('Notifications: Clear All Notifications');
    // The new engine was given the report on screen: the outline's hover shows the same numbers
    // (the mouse leaves first, so the hover read is a new one).
    await vs.page.mouse.move(0, 0);
    await waitFor(async () => !(await vs.page.locator('.monaco-hover', { hasText: 'SQNR' }).first().isVisible()), 10000, 'the old hover to close');
    assert.equal(await outlineHover(), hoverBeforeCrash);
    await vs.contextMenu('corrupt.onnx', 'Analyze Quantization');
    assert.match(await vs.notificationText(/analysis failed: .*corrupt\.onnx/, 60000), /not an ONNX model/);
    await vs.screenshot('corrupt-error');
    await vs.palette('Notifications: Clear All Notifications');
    // The next command works on the new engine: quantize, which writes only once confirmed.
    const before = sha(model);
    // From the palette: the active editor is the model's outline, so the command is about this model.
    await vs.palette('QuantLens: Quantize Model');
    // The configuration on screen: the report's (after Apply fix) or the sweep's pick it came from.
    await vs.clickNotificationButton(/quantize with the configuration from (the report on screen|sweep #\d+)/, 'Write model');
    const out = path.join(ws, 'mnist-cnn/model.qdq.onnx');
    await waitFor(async () => fs.existsSync(out), 120000, `${out} to be written`);
    assert.equal(sha(model), before, 'the model is untouched');
    assert.ok(loadModel(out).proto.graph!.node.some((n) => n.opType === 'QuantizeLinear'));
    await vs.screenshot('quantized-after-restart');
  });
});
