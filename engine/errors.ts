/** An error about the user's input: the CLI prints its message as one line, the extension shows it. */
export class InputError extends Error {
  override name = 'InputError';
}
