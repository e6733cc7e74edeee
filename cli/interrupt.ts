// Ctrl-C and SIGTERM for the commands that run until stopped (up, demo): the first signal
// asks for an orderly stop (an AbortSignal), a second one forces it.
export interface Interrupt extends Disposable {
  readonly signal: AbortSignal;
  /** Resolves when the first SIGINT or SIGTERM arrives. */
  readonly requested: Promise<NodeJS.Signals>;
  /** What a second signal does (SIGKILL the children, exit). */
  onForce(force: () => void): void;
}

export function listenForInterrupt(): Interrupt {
  const controller = new AbortController();
  let resolveRequested!: (signal: NodeJS.Signals) => void;
  const requested = new Promise<NodeJS.Signals>((resolve) => (resolveRequested = resolve));
  let force: () => void = () => process.exit(130);
  const handler = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      force();
      return;
    }
    controller.abort();
    resolveRequested(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    requested,
    onForce: (f) => (force = f),
    [Symbol.dispose]: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** Rejects with `error` as soon as `signal` aborts; otherwise settles like `promise`. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal, error: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(error());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(error());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
