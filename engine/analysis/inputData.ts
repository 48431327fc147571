/**
 * The data every pass feeds: sample inputs from the data file (or synthetic), constants, and
 * recurrent states (data/inputs.ts decides which input is which).
 *
 * States follow the FLOAT model: one sequential pass over the samples in order, in batches of 1,
 * feeds each sample the float model's own state output of the previous sample (zeros before the
 * first) and keeps it. Every later pass, float or quantized, feeds sample k that float state: the
 * quantized numbers then measure each step's own error (comparable sample by sample with float)
 * rather than error accumulated through the recurrence, and samples can be batched again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelProto } from 'onnx-buf';
import { type Dataset, dataKeys, loadDataset, modelInputs, readConstant } from '../data/dataset';
import { type InputDescription, type InputSetting, checkInputSettings, describeInputs, modelOutputs } from '../data/inputs';
import { InputError } from '../errors';
import { readModelSettings } from '../io/modelSettings';
import type { LoadedModel } from '../onnx/model';
import { createSession, feedsFor, runSession } from '../runtime/session';
import { checkCancel } from './cancel';
import { safeFileName } from '../data/sources';

/** States kept in memory for the whole run: refuse beyond this rather than swap. */
const MAX_STATE_BYTES = 1 << 30;

/**
 * Input settings: `inputs` of the quantlens.json beside the model, then `given` (CLI flags) over
 * them, input by input.
 */
export function inputSettings(modelPath: string, given: Record<string, InputSetting> = {}): Record<string, InputSetting> {
  let fromFile: Record<string, InputSetting> = {};
  const settingsFile = path.join(path.dirname(path.resolve(modelPath)), 'quantlens.json');
  if (fs.existsSync(settingsFile)) {
    const { settings, file } = readModelSettings(modelPath);
    fromFile = checkInputSettings(settings.inputs, file ?? settingsFile);
  }
  const out: Record<string, InputSetting> = { ...fromFile };
  for (const [k, v] of Object.entries(given)) out[k] = { ...fromFile[k], ...v };
  return out;
}

/** Decide each input's kind and open the data for the sample inputs. */
export function loadInputData(
  loaded: LoadedModel,
  float: ModelProto,
  opts: { dataPath?: string; samples?: number; inputs?: Record<string, InputSetting> },
): Dataset {
  const settings = inputSettings(loaded.path, opts.inputs);
  const all = modelInputs(float);
  const d = describeInputs(loaded.path, all, modelOutputs(float.graph!), settings, opts.dataPath ? dataKeys(opts.dataPath) : null);
  const elsewhere = d.constantsFromData.flatMap((i) => [i.name, safeFileName(i.name)]);
  const data = loadDataset(opts.dataPath, d.samples, { samples: opts.samples, readElsewhere: elsewhere });
  data.constants = [...d.constants, ...d.constantsFromData.map((i) => readConstant(opts.dataPath!, i))];
  data.states = d.states;
  const description: InputDescription[] = all.map((inp) => {
    const by = d.decidedBy.get(inp.name)!;
    const s = data.inputs.find((x) => x.name === inp.name);
    if (s) return { name: inp.name, kind: 'sample', shape: s.shape, decidedBy: by };
    const c = data.constants!.find((x) => x.name === inp.name);
    if (c)
      return { name: inp.name, kind: 'constant', shape: c.dims, value: Array.from(c.data as ArrayLike<number | bigint>, Number).slice(0, 64), decidedBy: by };
    const st = data.states!.find((x) => x.name === inp.name)!;
    return { name: inp.name, kind: 'state', shape: st.dims, from: st.from, batchAxis: st.batchAxis, decidedBy: by };
  });
  data.description = description;
  return data;
}

/**
 * Fill every state's per-sample values from the float model run over the samples in order.
 * `label` names the model in messages.
 */
export async function carryStates(data: Dataset, float: ModelProto, label: string, signal?: AbortSignal): Promise<void> {
  const states = data.states ?? [];
  if (states.length === 0) return;
  const N = data.samples;
  const per = states.map((s) => s.dims.reduce((a, b) => a * b, 1));
  const bytes = N * per.reduce((a, b) => a + b, 0) * 4;
  if (bytes > MAX_STATE_BYTES)
    throw new InputError(`${label}: carrying the states over ${N} samples needs ${(bytes / 2 ** 20).toFixed(0)} MiB; use fewer samples (--samples)`);
  states.forEach((s, i) => (s.values = new Float32Array(N * per[i]))); // zeros: the state before the first sample
  const session = await createSession(float, 'float', { label });
  try {
    for (let k = 0; k + 1 < N; k++) {
      checkCancel(signal);
      const res = await runSession(session, await feedsFor(data, k, 1), label);
      states.forEach((s, i) => {
        const t = res[s.from];
        if (!t || t.type !== 'float32' || t.size !== per[i]) {
          throw new InputError(
            `${label}: output "${s.from}" ${t ? `has shape [${t.dims.join(',')}] (${t.type})` : 'is missing'} but state input "${s.name}" takes [${s.dims.join(',')}] float32 for one sample`,
          );
        }
        s.values!.set(t.data as Float32Array, (k + 1) * per[i]);
      });
      for (const t of Object.values(res)) t.dispose();
    }
  } finally {
    await session.release();
  }
}
