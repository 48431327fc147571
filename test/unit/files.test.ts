/**
 * engine/io/files.ts: the user's files are never lost. Every rule is checked on real files in a
 * temporary folder: existing files kept without force, inputs kept even with force, no half-written
 * file after a failure, non-regular files refused without blocking.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkOutput, freshPath, readRegularFile, statRegularFile, tempPathFor, writeOutput } from '../../engine/io/files';
import { PathPolicy } from '../../engine/io/pathPolicy';
import { InputError } from '../../engine/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quantlens-files-'));
const file = (name: string, content = 'x') => {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
};

describe('writeOutput', () => {
  it('writes a new file whole, and leaves no temporary file behind', () => {
    const out = path.join(dir, 'new.json');
    writeOutput({ path: out, role: 'report' }, '{"a":1}');
    assert.equal(fs.readFileSync(out, 'utf8'), '{"a":1}');
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
    );
  });

  it('refuses an existing file without force, keeping its bytes; replaces it with force', () => {
    const out = file('existing.json', 'old');
    assert.throws(() => writeOutput({ path: out, role: 'report', option: '--report' }, 'new'), /existing\.json \(--report\) already exists; pass --force/);
    assert.equal(fs.readFileSync(out, 'utf8'), 'old');
    writeOutput({ path: out, role: 'report', force: true }, 'new');
    assert.equal(fs.readFileSync(out, 'utf8'), 'new');
  });

  it('never writes over an input, even with force, also through a symlink or a relative path', () => {
    const model = file('m.onnx', 'model bytes');
    const link = path.join(dir, 'link.onnx');
    fs.symlinkSync(model, link);
    for (const target of [model, link, path.relative(process.cwd(), model)]) {
      assert.throws(() => writeOutput({ path: target, role: 'report', force: true, inputs: [model] }, 'json'), /over the input/);
    }
    assert.equal(fs.readFileSync(model, 'utf8'), 'model bytes');
  });

  it('never writes inside an input data folder', () => {
    const data = path.join(dir, 'data');
    file('data/x.npy', 'npy');
    assert.throws(() => writeOutput({ path: path.join(data, 'report.json'), role: 'report', inputs: [data] }, 'x'), /inside the input folder/);
  });

  it('gives one clear line for an empty path, a missing folder, a folder, a file as parent', () => {
    const parentFile = file('plain.txt');
    const cases: [string, RegExp][] = [
      ['', /path is empty/],
      [path.join(dir, 'missing/out.json'), /folder .*missing does not exist/],
      [dir, /it is a folder/],
      [path.join(parentFile, 'out.json'), /plain\.txt is not a folder/],
    ];
    for (const [p, re] of cases) {
      const e = (() => {
        try {
          checkOutput({ path: p, role: 'report' });
        } catch (x) {
          return x as Error;
        }
      })();
      assert.ok(e instanceof InputError, `${p}: ${e}`);
      assert.match(e.message, re);
      assert.equal(e.message.split('\n').length, 1);
    }
  });

  it("a name at the file system's limit is written (its temporary file too); a longer one is refused before any work", () => {
    // ext4, tmpfs, xfs and btrfs allow 255 bytes per name
    const longest = path.join(dir, 'r'.repeat(250));
    writeOutput({ path: longest, role: 'report' }, 'ok');
    assert.equal(fs.readFileSync(longest, 'utf8'), 'ok');
    assert.ok(path.basename(tempPathFor(longest)).length <= 255);
    const tooLong = path.join(dir, 'r'.repeat(300));
    assert.throws(
      () => checkOutput({ path: tooLong, role: 'report', option: '--report' }),
      (e: Error) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, /^cannot write report \S+r{300} \(--report\): the name is too long for the file system \(ENAMETOOLONG\)$/);
        return true;
      },
    );
    assert.throws(() => writeOutput({ path: tooLong, role: 'report' }, 'x'), InputError);
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
    );
  });

  it('a failed write leaves the old file and no temporary file', () => {
    const out = file('keep.bin', 'old');
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro);
    const inRo = path.join(ro, 'x.bin');
    fs.writeFileSync(inRo, 'old');
    fs.chmodSync(ro, 0o500);
    try {
      if (process.getuid?.() === 0) return; // root ignores permissions: nothing to observe
      assert.throws(() => writeOutput({ path: inRo, role: 'model', force: true }, 'new'), InputError);
      assert.equal(fs.readFileSync(inRo, 'utf8'), 'old');
      assert.deepEqual(fs.readdirSync(ro), ['x.bin']);
    } finally {
      fs.chmodSync(ro, 0o700);
    }
    assert.equal(fs.readFileSync(out, 'utf8'), 'old');
  });

  it('freshPath never names an existing file', () => {
    file('fresh.qdq.onnx');
    file('fresh-2.qdq.onnx');
    assert.equal(freshPath(path.join(dir, 'fresh'), '.qdq.onnx'), path.join(dir, 'fresh-3.qdq.onnx'));
  });
});

describe('reading user files', () => {
  it('refuses a FIFO at once (no hang), a device, a folder, a missing file; caps the size', () => {
    const fifo = path.join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    assert.throws(() => readRegularFile(fifo, 'model', 1e9), /model .*pipe is a FIFO \(named pipe\), not a regular file/);
    assert.throws(() => readRegularFile('/dev/zero', 'model', 1e9), /\/dev\/zero is a character device/);
    assert.throws(() => statRegularFile(dir, 'calibration data'), /is a folder, not a regular file/);
    assert.throws(() => statRegularFile(path.join(dir, 'nope'), 'model'), /model .*nope does not exist/);
    const big = file('big.bin', 'x'.repeat(2048));
    assert.throws(() => readRegularFile(big, 'model', 1024), /is 2\.0 KiB, over the limit of 1\.0 KiB/);
    assert.equal(readRegularFile(big, 'model', 4096).length, 2048);
  });
});

describe('PathPolicy', () => {
  it('allows the workspace and picked files, refuses the rest and symlinks leading out', () => {
    const ws = path.join(dir, 'ws');
    const outside = file('outside/secret.onnx', 's');
    file('ws/model.onnx', 'm');
    fs.symlinkSync(outside, path.join(ws, 'sneaky.onnx'));
    const policy = new PathPolicy();
    policy.setWorkspaceFolders([`file://${ws}`]);
    policy.check(path.join(ws, 'model.onnx'), 'model');
    policy.check(path.join(ws, 'new-output.onnx'), 'output');
    assert.throws(() => policy.check(outside, 'model'), /outside the workspace folders/);
    assert.throws(() => policy.check(path.join(ws, 'sneaky.onnx'), 'model'), /outside the workspace folders/);
    assert.throws(() => policy.check(path.join(ws, '../outside/secret.onnx'), 'model'), /outside/);
    assert.throws(() => policy.check('relative.onnx', 'model'), /not an absolute path/);
    policy.allow(outside);
    policy.check(outside, 'model');
    assert.throws(() => policy.check(path.join(path.dirname(outside), 'other.onnx'), 'model'), /outside/, 'only the picked file');
  });
});
