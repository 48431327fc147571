/** Cancellation of long runs: the pipeline checks an AbortSignal between batches. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor() {
    super('analysis cancelled');
  }
}

export function checkCancel(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
