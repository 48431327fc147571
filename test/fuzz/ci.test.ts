/**
 * The fuzz suite's CI subset: the first cases of every generator under the default seed (150 in
 * all, about a minute on 2 cores), run exactly as `npm run fuzz` runs them, must all end as a clean
 * error or a success with finite numbers. Needs the built CLI and engine (node scripts/build.mjs).
 *
 *   node --import tsx --test test/fuzz/ci.test.ts
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './fixtures';
import { DEFAULT_SEED, GENERATORS, caseRefs, runCases } from './suite';
import { reproCommand, summaryTable, writeFailures } from './summary';

const CI_COUNT = 150;

describe('fuzz CI subset', () => {
  it(`${CI_COUNT} seeded cases across every generator: no crash, hang, memory blow-up, silent garbage or changed input`, { timeout: 600_000 }, async (t) => {
    for (const f of ['out/cli.js', 'out/server.js']) assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} is missing: run node scripts/build.mjs first`);
    const refs = caseRefs(DEFAULT_SEED, CI_COUNT);
    assert.deepEqual(new Set(refs.map((r) => r.generator.name)), new Set(GENERATORS.map((g) => g.name)), 'every generator contributes');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-fuzz-ci-'));
    try {
      const results = await runCases(refs, { jobs: 2, root });
      for (const line of summaryTable(results).split('\n')) t.diagnostic(line);
      const failed = results.filter((r) => r.outcome.kind === 'failure');
      const list = writeFailures(results, root, path.join(ROOT, 'test-artifacts/fuzz/ci-failures'), DEFAULT_SEED);
      assert.equal(
        failed.length,
        0,
        `${failed.length} failing case(s) (copied to ${list}):\n${failed
          .map(
            (r) =>
              `  ${r.outcome.kind === 'failure' ? r.outcome.failure : ''}: ${r.c.title}\n    ${r.outcome.detail.slice(0, 300)}\n    ${reproCommand(r.c, DEFAULT_SEED)}`,
          )
          .join('\n')}`,
      );
      // Both kinds of outcome occur: the subset exercises refusals and full runs alike.
      assert.ok(results.some((r) => r.outcome.kind === 'clean-error') && results.some((r) => r.outcome.kind === 'success'));
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
