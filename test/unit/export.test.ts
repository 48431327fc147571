import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Report } from '../../protocol/report';
import type { SessionExport } from '../../protocol/messages';
import { csvCell, reportCsv, reportHtml, reportJson } from '../../extension/export';

const metrics = (sqnrDb: number) => ({ sqnrDb, cosine: 0.99, mse: 0.01, maxAbs: 0.2 });
const report = {
  schemaVersion: 1,
  model: { path: '/m/model.onnx' },
  tensors: [{ name: 'y', kind: 'activation', clipRate: 0.25 }],
  layers: [
    {
      node: '/a,"b"/Conv',
      op: 'Conv',
      output: 'y',
      inputs: ['x'],
      integerKernel: null,
      simulated: metrics(30),
      integer: metrics(Infinity),
      isolated: { simulated: metrics(31), integer: metrics(32) },
      simVsIntMismatch: 0.001,
      simVsIntMaxLsb: 1,
      sensitivity: null,
      integerDiff: null,
      errorHistogram: { lsb: [], counts: [] },
    },
  ],
} as unknown as Report;

describe('report export', () => {
  it('JSON writes infinities as strings (JSON has none)', () => {
    const j = JSON.parse(reportJson(report));
    assert.equal(j.layers[0].integer.sqnrDb, 'Infinity');
  });

  it('CSV: one header, one row per layer, RFC 4180 quoting', () => {
    const lines = reportCsv(report).trimEnd().split('\n');
    assert.equal(lines.length, 2);
    const header = lines[0].split(',');
    assert.equal(header[0], 'node');
    assert.ok(lines[1].startsWith('"/a,""b""/Conv",Conv,float,30,Infinity,'));
    assert.equal(lines[1].split(',').length >= header.length, true);
    assert.ok(lines[1].includes(',0.25,'), 'output clip rate from the tensor');
  });

  it('CSV: text a spreadsheet would run as a formula is neutralised; numbers, even negative, stay numbers', () => {
    for (const evil of ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx']) {
      const cell = csvCell(evil);
      const unquoted = cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;
      assert.equal(unquoted, `'${evil}`, JSON.stringify(evil));
    }
    assert.equal(csvCell(-3.5), '-3.5');
    assert.equal(csvCell('/conv1/Conv'), '/conv1/Conv');
    const csv = reportCsv({ ...report, layers: [{ ...report.layers[0], node: '=cmd|" /C calc"!A0' }] } as unknown as Report);
    assert.ok(csv.split('\n')[1].startsWith(`"'=cmd|"" /C calc""!A0"`), csv.split('\n')[1]);
  });

  it('HTML: standalone, CSP with a nonce on script and style, the embedded JSON cannot close its script', () => {
    const evil = { ...report, model: { path: '</script><script>alert(1)</script>' } } as unknown as Report;
    const session = { kind: 'quantlens-session', schemaVersion: 2, sqnrWarningDb: 20, report: evil, sweep: null, mixedPrecision: null, compare: null } as const;
    const html = reportHtml(session, 'console.log("</script>")', 'body{}');
    const nonce = /'nonce-([^']+)'/.exec(html)![1];
    assert.match(
      html,
      new RegExp(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}'`),
    );
    assert.equal((html.match(/<script/g) ?? []).length, 2, 'only the data block and the inlined bundle');
    assert.ok(!html.includes('</script><script>alert'), 'report text is escaped');
    assert.ok(html.includes('\\u003c/script>'), 'JSON uses \\u003c');
    assert.ok(!/https?:\/\//.test(html), 'nothing remote');
  });

  it('HTML and JSON carry every view of the session: report, sweep and mixed precision', () => {
    const sweep = { kind: 'sweep', configs: [{ id: 0, label: 'W8/ch A8 sym mse', drop: Infinity }] };
    const mixed = { kind: 'mixed-precision', steps: [{ kept: [], drop: 68.67 }], exclude: ['/conv1/Conv'] };
    const session = { kind: 'quantlens-session', schemaVersion: 2, sqnrWarningDb: 25, report, sweep, mixedPrecision: mixed } as unknown as SessionExport;
    const html = reportHtml(session, '', '');
    const block = /<script type="application\/json" id="quantlens-report" data-sqnr-warning-db="25">([\s\S]*?)<\/script>/.exec(html)![1];
    const embedded = JSON.parse(block);
    assert.equal(embedded.kind, 'quantlens-session');
    assert.equal(embedded.sweep.configs[0].drop, 'Infinity', 'infinities as strings, as in the report');
    assert.deepEqual(embedded.mixedPrecision.exclude, ['/conv1/Conv']);
    assert.equal(embedded.report.layers[0].node, '/a,"b"/Conv');
    assert.deepEqual(JSON.parse(reportJson(session)).mixedPrecision.steps[0], { kept: [], drop: 68.67 });
  });
});
