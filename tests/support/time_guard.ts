/**
 * @module
 * A real-time guard for tests whose timing runs on a FakeClock: the fake clock decides when
 * the proxy acts, and {@linkcode within} only makes a test whose awaited outcome never comes
 * (a timer set far too long, a drain that never ends) fail with a name instead of hanging.
 * Its bound is generous on purpose; it is not what the test measures.
 */

/** `promise`, or a failure naming `what` after `ms` of real time. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks whether `promise` has settled yet, without awaiting it. */
export function settledFlag(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  return () => settled;
}
