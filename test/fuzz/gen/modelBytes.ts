/**
 * Model files damaged as bytes: truncated at any length, and bytes flipped anywhere (often in the
 * first few hundred bytes, where the graph's structure is encoded).
 */
import { baseModels } from '../fixtures';
import type { Rng } from '../random';
import type { CaseDraft, Generator } from '../types';
import { cutsBetweenFields } from '../wire';
import { cliCase, file, pickCommand, validNpz } from './common';

function pickBase(r: Rng) {
  const { demo, tiny } = baseModels();
  return r.bool(0.6) ? tiny : demo;
}

export const modelTruncate: Generator = {
  name: 'model-truncate',
  group: 'models',
  weight: 50,
  make(r: Rng): CaseDraft {
    const b = pickBase(r);
    const n = b.bytes.length;
    // Mostly anywhere; sometimes very short, sometimes a few bytes short of the end.
    const len = r.pick([() => r.int(0, n - 1), () => r.int(0, 40), () => n - r.int(1, 64)])();
    const cut = b.bytes.slice(0, len);
    // A cut between two top-level fields leaves a well-formed (shorter) message: it may load.
    const expect = len > 0 && cutsBetweenFields(b.bytes, len) ? 'either' : 'refuse';
    return cliCase(
      { title: `${b.name} model cut to ${len} of ${n} bytes`, expect, files: [file('model.onnx', cut), file('data.npz', validNpz(b))] },
      pickCommand(r),
      'model.onnx',
      'data.npz',
    );
  },
};

export const modelFlip: Generator = {
  name: 'model-flip',
  group: 'models',
  weight: 80,
  make(r: Rng): CaseDraft {
    const b = pickBase(r);
    const bytes = b.bytes.slice();
    const k = r.int(1, 12);
    const where = r.bool(0.5) ? Math.min(bytes.length, 400) : bytes.length;
    const at: number[] = [];
    for (let i = 0; i < k; i++) {
      const p = r.int(0, where - 1);
      bytes[p] ^= r.int(1, 255);
      at.push(p);
    }
    // Sometimes also garbage appended after the message.
    const tail = r.bool(0.15) ? Uint8Array.from({ length: r.int(1, 32) }, () => r.int(0, 255)) : new Uint8Array(0);
    const out = new Uint8Array(bytes.length + tail.length);
    out.set(bytes);
    out.set(tail, bytes.length);
    return cliCase(
      {
        title: `${b.name} model, ${k} byte(s) flipped at ${at.sort((x, y) => x - y).join(',')}${tail.length ? `, ${tail.length} bytes appended` : ''}`,
        expect: 'either',
        files: [file('model.onnx', out), file('data.npz', validNpz(b))],
      },
      pickCommand(r),
      'model.onnx',
      'data.npz',
    );
  },
};
