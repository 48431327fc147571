/**
 * A session on a model the analysis feeds with its dataset (feedsFor). Its inputs' dims are pinned
 * to the data's, since onnxruntime creates a session on known shapes faster; every such session
 * goes through here, so none forgets the pins.
 */
import type * as ort from 'onnxruntime-node';
import type { ModelProto } from '../onnx/model';
import { type RunMode, createSession, feedPins } from '../runtime/session';
import type { Prepared } from './types';

export function sessionOnData(p: Pick<Prepared, 'data' | 'loaded'>, model: ModelProto, mode: RunMode, label = p.loaded.path): Promise<ort.InferenceSession> {
  return createSession(model, mode, { label, pins: feedPins(p.data) });
}
