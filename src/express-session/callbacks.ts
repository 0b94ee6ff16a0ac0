import { SessionBackendUnavailableError } from "../errors";

/** A node-style callback as express-session passes them. */
export type Callback<T> = (err: unknown, value?: T) => void;

/**
 * Settles `promise` into `cb` exactly once, or returns the promise when there is no callback. A callback
 * that throws does not get called a second time with its own error (connect-redis 10 does that): the
 * throw surfaces as an uncaught exception, as it would from any Node callback.
 */
export function settle<T>(promise: Promise<T>, cb: Callback<T> | undefined): Promise<T> | undefined {
  if (cb === undefined) return promise;
  promise.then(
    (value) => invoke(cb, null, value),
    (err: unknown) => invoke(cb, err, undefined),
  );
  return undefined;
}

function invoke<T>(cb: Callback<T>, err: unknown, value: T | undefined): void {
  try {
    if (err === null) cb(null, value);
    else cb(err);
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown;
    });
  }
}

/**
 * Rejects with SessionBackendUnavailableError when `fn` has not settled within `ms`, whatever the
 * client does (a client with an offline queue would otherwise hold the call until Redis comes back).
 */
export function withDeadline<T>(op: string, ms: number, fn: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new SessionBackendUnavailableError(`the session store did not answer within ${ms} ms (${op})`)),
      ms,
    );
    fn().then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
