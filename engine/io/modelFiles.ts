/**
 * The files that come with a model and are never written over, by any command or by the
 * extension: the model, the external data files it names, and the quantlens.json beside it
 * (whether or not it exists yet: a report written there would be read back as the model's settings).
 */
import { externalDataFiles } from '../onnx/model';
import { settingsPathFor } from './modelSettings';

/** `model` and its companions; `withExternal` reads the model for its external data files (a decode). */
export function modelCompanions(model: string, withExternal = true): string[] {
  return [model, settingsPathFor(model), ...(withExternal ? externalDataFiles(model) : [])];
}
